// WebNN element-wise kernel: out[i] = EXPR(a, b, c) over up to three broadcast operands.
//
// Bindings (group 0):
//   @binding(0) A array<TA> read    @binding(1) B array<TB> read    @binding(2) Cin array<TC> read
//   @binding(3) O array<TO> read_write                              @binding(4) p Params (uniform)
// An unused operand is bound to a dummy buffer and never read.
// Workgroup layout: flat_1d.wgsl's, 64 invocations, one output element each. The output is dense; each operand has its own element offset and
// strides (0 on broadcast dims), so broadcasting never copies. Values load as their compute type
// (f32 for f32/f16 storage, i32 for i32, or u32 for uint32 data held in i32) and the expression's
// result is wrapped (int8/uint8) and converted to the output storage type.
{{ENABLE}}
const WG: u32 = 64u;

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

//# include float_math

fn is_inf(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u;
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

// c[0] + x * (c[1] + x * (... + x * c[8])) by Horner's rule, from the highest coefficient down
fn horner9(x: f32, c: array<f32, 9>) -> f32 {
    var coefficients = c;  // a var: indexed at run time
    var r = coefficients[8];
    for (var k = 7; k >= 0; k--) {
        r = coefficients[k] + x * r;
    }
    return r;
}

// erfc(z) for z >= 0 with a relative error below 1.2e-7 (Numerical Recipes' erfcc), so that
// 1 + erf(x) for negative x keeps its precision (gelu's left tail)
fn erfc_pos(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = horner9(t, array<f32, 9>(
        1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807,
        -1.13520398, 1.48851587, -0.82215223, 0.17087277));
    return t * exp(-z * z - 1.26551223 + t * r);
}

// exp(x) - 1 and log(1 + y) for small arguments by series, since the Vulkan precision rules let log
// near 1 be off by 2^-21 absolute, which is most of a small result's digits
fn expm1_safe(x: f32) -> f32 {
    if (abs(x) >= 0.5) {
        return exp(x) - 1.0;
    }
    return x * horner9(x, array<f32, 9>(  // 1/1!, 1/2!, ..., 1/9!
        1.0, 0.5, 1.0 / 6.0, 1.0 / 24.0, 1.0 / 120.0, 1.0 / 720.0, 1.0 / 5040.0, 1.0 / 40320.0, 1.0 / 362880.0));
}

// log(1 + y) for 0 <= y <= 1 as 2 atanh(s), s = y / (2 + y) <= 1/3 (odd series to s^17)
fn log1p_unit(y: f32) -> f32 {
    let s = y / (2.0 + y);
    let s2 = s * s;
    return 2.0 * s * horner9(s2, array<f32, 9>(  // 1/1, 1/3, ..., 1/17
        1.0, 1.0 / 3.0, 1.0 / 5.0, 1.0 / 7.0, 1.0 / 9.0, 1.0 / 11.0, 1.0 / 13.0, 1.0 / 15.0, 1.0 / 17.0));
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

//# include flat_1d

fn element_count() -> u32 {
    return p.n;
}

fn element(i: u32) {
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
