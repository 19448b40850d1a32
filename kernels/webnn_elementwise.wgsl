// WebNN element-wise kernel: out[i] = EXPR(a, b, c) over up to three broadcast operands.
//
// Bindings (group 0):
//   @binding(0) A array<TA> read    @binding(1) B array<TB> read    @binding(2) Cin array<TC> read
//   @binding(3) O array<TO> read_write                              @binding(4) p Params (uniform)
// An unused operand is bound to a dummy buffer and never read.
// Workgroup layout: 1-D, 64 invocations, one output element each; the flat workgroup index is
// wid.x + wid.y * nwg.x (grid_1d). The output is dense; each operand has its own element offset and
// strides (0 on broadcast dims), so broadcasting never copies. Values load as their compute type
// (f32 for f32/f16 storage, i32 for i32, or u32 for uint32 data held in i32) and the expression's
// result is wrapped (int8/uint8) and converted to the output storage type.
{{ENABLE}}
struct Params {
    n: u32,
    rank: u32,
    a_off: u32,
    b_off: u32,
    c_off: u32,
    alpha: f32,
    beta: f32,
    ialpha: u32,     // integer options, as bits (bitcast<i32> for signed ones)
    ibeta: u32,
    shape: array<vec4<u32>, 2>,
    as_: array<vec4<u32>, 2>,
    bs: array<vec4<u32>, 2>,
    cs: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read> A: array<{{TA}}>;
@group(0) @binding(1) var<storage, read> B: array<{{TB}}>;
@group(0) @binding(2) var<storage, read> Cin: array<{{TC}}>;
@group(0) @binding(3) var<storage, read_write> O: array<{{TO}}>;
@group(0) @binding(4) var<uniform> p: Params;

fn dim(v: array<vec4<u32>, 2>, d: u32) -> u32 {
    return v[d / 4u][d % 4u];
}

fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn is_inf(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u;
}

// erf(x) for |x| <= 4 as x * P(x^2) / Q(x^2) (the rational approximation accelkit's elementwise
// kernels use, accurate to a few ulp); |x| > 4 saturates to +-1.
fn erf_approx(x0: f32) -> f32 {
    let x = clamp(x0, -4.0, 4.0);
    let x2 = x * x;
    var p = -2.72614225801306e-10;
    p = p * x2 + 2.77068142495902e-08;
    p = p * x2 - 2.10102402082508e-06;
    p = p * x2 - 5.69250639462346e-05;
    p = p * x2 - 7.34990630326855e-04;
    p = p * x2 - 2.95459980854025e-03;
    p = p * x2 - 1.60960333262415e-02;
    var q = -1.45660718464996e-05;
    q = q * x2 - 2.13374055278905e-04;
    q = q * x2 - 1.68282697438203e-03;
    q = q * x2 - 7.37332916720468e-03;
    q = q * x2 - 1.42647390514189e-02;
    return x * p / q;
}

// pow with a negative base and an integral exponent (WGSL's pow is undefined for x < 0)
fn pow_safe(x: f32, y: f32) -> f32 {
    if (x >= 0.0) {
        return pow(x, y);
    }
    if (y != floor(y)) {
        return bitcast<f32>(0x7fc00000u);
    }
    let r = pow(-x, y);
    return select(r, -r, (abs(y) % 2.0) == 1.0);
}

fn tanh_safe(x: f32) -> f32 {
    return select(tanh(clamp(x, -10.0, 10.0)), x, is_nan(x));
}

// erfc(z) for z >= 0 with a relative error below 1.2e-7 (Numerical Recipes' erfcc), so that
// 1 + erf(x) for negative x keeps its precision (gelu's left tail)
fn erfc_pos(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * z);
    var r = 0.17087277;
    r = -0.82215223 + t * r;
    r = 1.48851587 + t * r;
    r = -1.13520398 + t * r;
    r = 0.27886807 + t * r;
    r = -0.18628806 + t * r;
    r = 0.09678418 + t * r;
    r = 0.37409196 + t * r;
    r = 1.00002368 + t * r;
    return t * exp(-z * z - 1.26551223 + t * r);
}

// exp(x) - 1 and log(1 + y) for small arguments by series, since the Vulkan precision rules let log
// near 1 be off by 2^-21 absolute, which is most of a small result's digits
fn expm1_safe(x: f32) -> f32 {
    if (abs(x) >= 0.5) {
        return exp(x) - 1.0;
    }
    var r = 1.0 / 362880.0;
    r = 1.0 / 40320.0 + x * r;
    r = 1.0 / 5040.0 + x * r;
    r = 1.0 / 720.0 + x * r;
    r = 1.0 / 120.0 + x * r;
    r = 1.0 / 24.0 + x * r;
    r = 1.0 / 6.0 + x * r;
    r = 0.5 + x * r;
    r = 1.0 + x * r;
    return x * r;
}

// log(1 + y) for 0 <= y <= 1 as 2 atanh(s), s = y / (2 + y) <= 1/3 (odd series to s^17)
fn log1p_unit(y: f32) -> f32 {
    let s = y / (2.0 + y);
    let s2 = s * s;
    var r = 1.0 / 17.0;
    r = 1.0 / 15.0 + s2 * r;
    r = 1.0 / 13.0 + s2 * r;
    r = 1.0 / 11.0 + s2 * r;
    r = 1.0 / 9.0 + s2 * r;
    r = 1.0 / 7.0 + s2 * r;
    r = 1.0 / 5.0 + s2 * r;
    r = 1.0 / 3.0 + s2 * r;
    r = 1.0 + s2 * r;
    return 2.0 * s * r;
}

fn gelu(x: f32) -> f32 {
    let z = x * 0.70710678118654752;
    if (z < -0.5) {
        return 0.5 * x * erfc_pos(-z);
    }
    return 0.5 * x * (1.0 + erf_approx(z));
}

fn softplus(x: f32) -> f32 {
    return max(x, 0.0) + log1p_unit(exp(-abs(x)));
}

fn wrap(v: {{CO}}) -> {{CO}} {
    return {{WRAP}};
}

fn expr(a: {{CA}}, b: {{CB}}, c: {{CC}}) -> {{CO}} {
    return {{EXPR}};
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (i >= p.n) {
        return;
    }
    var rem = i;
    var ia = p.a_off;
    var ib = p.b_off;
    var ic = p.c_off;
    for (var d = i32(p.rank) - 1; d >= 0; d = d - 1) {
        let k = u32(d);
        let size = dim(p.shape, k);
        let q = rem % size;
        rem = rem / size;
        ia = ia + q * dim(p.as_, k);
        ib = ib + q * dim(p.bs, k);
        ic = ic + q * dim(p.cs, k);
    }
    O[i] = {{TO}}(wrap(expr({{CA}}(A[ia]), {{CB}}(B[ib]), {{CC}}(Cin[ic]))));
}
