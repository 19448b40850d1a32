// Elementwise kernels: unary (copy, cast, scale and the math ops), binary (add ... minimum) and fill.
//
// The file is one shared part (types, Params, math helpers, the entry point) and three kernel sections
// (each its bindings and `store`), each starting at a line "//! kernel" + its name; the planner
// compiles the shared part with the one section it needs.
//
// Bindings (group 0):
//   unary:  @binding(0) x    array<SX> read         @binding(1) out array<SO> read_write   @binding(2) p
//   binary: @binding(0) a    array<SA> read         @binding(1) b   array<SB> read
//           @binding(2) out  array<SO> read_write   @binding(3) p
//   fill:   @binding(0) out  array<SO> read_write   @binding(1) p
//
// Workgroup layout: 1-D, WG invocations; the flat workgroup index is wid.x + wid.y * nwg.x (grid_1d).
// Invocation t of workgroup w handles elements w * WG * EPT + t + k * WG for k < EPT (coalesced).
// Modes (MODE, chosen by the planner):
//   0 dense:   every operand lies densely from its offset; no index math. With VEC = 4 the storage
//              types are vec4s (every offset and the length are multiples of 4), so each element here
//              is 4 tensor elements.
//   1 strided: the general case: flat index -> RANK coordinates -> one element offset per operand
//              (strides may be 0 for broadcast dims or negative for reversed views; u32 arithmetic
//              wraps, so a negative stride is its two's complement). Costs a div/mod per dim per element.
//   2 rows:    the innermost dim is long enough: RL lanes serve RL consecutive elements of one row
//              (WG / RL rows per workgroup; a row longer than RL takes `chunks` workgroups), so a
//              row's outer coordinates are worked out once per invocation and each element costs one
//              multiply-add per operand. With VEC = 4 (inner strides 1, everything a multiple of 4)
//              the elements are vec4s along the row.
// Values are converted to the compute type C (f32, or i32 for integer ops; f16 storage computes in
// f32) on load and to the output element type on store.

alias C = {{C}};          // compute scalar type
alias VC = {{VC}};        // C, or vec4<C> in the VEC = 4 mode
alias SX = {{SX}};        // storage element types (scalar or vec4)
alias SA = {{SA}};
alias SB = {{SB}};
alias SO = {{SO}};

const WG: u32 = {{WG}}u;
const EPT: u32 = {{EPT}}u;
const MODE: u32 = {{MODE}}u;
const RANK: i32 = {{RANK}};
const RL: u32 = {{RL}}u;   // rows mode: lanes per row (a power of two dividing WG)

struct Params {
    n: u32,          // elements to write (vec4s in the VEC = 4 mode); rows in the rows mode
    o_off: u32,      // element offsets (in vec4s in the VEC = 4 mode)
    a_off: u32,      // x (unary) or a (binary)
    b_off: u32,
    alpha: f32,      // scale factor of the unary `scale`
    bits: u32,       // fill value, as the bits of an f32 or i32
    inner: u32,      // rows mode: the length of the innermost dim ...
    chunks: u32,     // ... and the workgroups per row
    shape: array<vec4<u32>, 2>,   // coalesced shape, outermost first (strided and rows modes)
    os: array<vec4<u32>, 2>,      // strides of out, a/x and b, in elements
    as_: array<vec4<u32>, 2>,
    bs: array<vec4<u32>, 2>,
}

const NAN_BITS: u32 = 0x7fc00000u;

//# include float_math

// the infinity test on the bits, like is_nan's
fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) < 0x7f800000u;
}

fn relu(x: f32) -> f32 {
    return select(max(x, 0.0), x, is_nan(x));
}

fn sigmoid(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}

// sin/cos with a Cody-Waite reduction by pi/2 and cephes' polynomials on [-pi/4, pi/4]: a few ulp for
// |x| up to ~5e4 (WGSL's builtins only promise 2^-11 absolute error, and only on [-pi, pi]).
fn trig(x: f32, want_cos: bool) -> f32 {
    if (!is_finite(x)) {
        return bitcast<f32>(NAN_BITS);
    }
    let ax = abs(x);
    if (ax > 1.0e9) {
        return select(sin(x), cos(x), want_cos);
    }
    let j = (u32(ax * 1.2732395447351628) + 1u) & ~1u;   // nearest even multiple of pi/4
    let y = f32(j);
    let r = ((ax - y * 0.78515625) - y * 2.4187564849853515625e-4) - y * 3.77489497744594108e-8;
    let z = r * r;
    let s = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * r + r;
    let c = ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z * z
        - 0.5 * z + 1.0;
    var q = (j >> 1u) & 3u;          // quadrant of ax
    if (want_cos) {
        q = (q + 1u) & 3u;           // cos(ax) = sin(ax + pi/2), and cos is even
    }
    var v = select(s, c, (q & 1u) == 1u);
    if (q >= 2u) {
        v = -v;
    }
    if (!want_cos && x < 0.0) {
        v = -v;
    }
    return v;
}

// numpy's float power: x^0 = 1, 1^y = 1, small integer exponents by repeated squaring (exact-ish),
// negative bases allowed for integer exponents, NaN for negative bases with fractional exponents.
fn pow_f32(a: f32, b: f32) -> f32 {
    if (b == 0.0 || a == 1.0) {
        return 1.0;
    }
    if (is_nan(a) || is_nan(b)) {
        return bitcast<f32>(NAN_BITS);
    }
    let is_int = round(b) == b;
    if (is_int && abs(b) <= 64.0) {
        var e = u32(abs(b));
        var base = a;
        var r = 1.0;
        loop {
            if ((e & 1u) == 1u) {
                r = r * base;
            }
            e = e >> 1u;
            if (e == 0u) {
                break;
            }
            base = base * base;
        }
        return select(r, 1.0 / r, b < 0.0);
    }
    let r = exp2(b * log2(abs(a)));
    if (a < 0.0) {
        if (!is_int) {
            return bitcast<f32>(NAN_BITS);
        }
        if (fract(b * 0.5) != 0.0) {
            return -r;
        }
    }
    return r;
}

// integer power with C semantics for negative exponents (1, -1 stay; everything else truncates to 0).
fn pow_i32(a: i32, b: i32) -> i32 {
    if (b < 0) {
        if (a == 1) {
            return 1;
        }
        if (a == -1) {
            return select(1, -1, (b & 1) == 1);
        }
        return 0;
    }
    var e = u32(b);
    var base = a;
    var r = 1;
    loop {
        if (e == 0u) {
            break;
        }
        if ((e & 1u) == 1u) {
            r = r * base;
        }
        base = base * base;
        e = e >> 1u;
    }
    return r;
}

// numpy's maximum/minimum propagate NaN; WGSL's max/min may not.
fn max_nan(a: f32, b: f32) -> f32 {
    if (is_nan(a) || is_nan(b)) {
        return bitcast<f32>(NAN_BITS);
    }
    return max(a, b);
}

fn min_nan(a: f32, b: f32) -> f32 {
    if (is_nan(a) || is_nan(b)) {
        return bitcast<f32>(NAN_BITS);
    }
    return min(a, b);
}

fn dim_of(a: array<vec4<u32>, 2>, d: i32) -> u32 {
    return a[d / 4][d % 4];
}

// Where element i (or, in rows mode, element j of this workgroup's row) lies in each operand:
// (out, a, b) element offsets. `valid` is false past the end.
struct Where {
    o: u32,
    a: u32,
    b: u32,
    valid: bool,
}

// w moved by c steps along dim d of every operand
fn moved(w: Where, c: u32, d: i32) -> Where {
    return Where(w.o + c * dim_of(p.os, d), w.a + c * dim_of(p.as_, d), w.b + c * dim_of(p.bs, d), w.valid);
}

// w moved to the coordinates of flat index `flat` over dims 0..=last (row-major; dim 0 takes the rest)
fn at_coords(w_in: Where, flat: u32, last: i32) -> Where {
    var w = w_in;
    var rest = flat;
    for (var d = last; d >= 0; d--) {
        var c = rest;
        if (d > 0) {
            let n_d = dim_of(p.shape, d);
            c = rest % n_d;
            rest = rest / n_d;
        }
        w = moved(w, c, d);
    }
    return w;
}

fn locate(wg: u32, lid: u32, k: u32) -> Where {
    var w = Where(p.o_off, p.a_off, p.b_off, true);
    if (MODE == 2u) {
        let group = wg / p.chunks;
        let row = group * (WG / RL) + lid / RL;
        let j = (wg - group * p.chunks) * RL + lid % RL;
        w.valid = j < p.inner && row < p.n;
        return moved(at_coords(w, row, RANK - 2), j, RANK - 1);
    }
    let i = wg * (WG * EPT) + lid + k * WG;
    w.valid = i < p.n;
    if (MODE == 0u) {
        return Where(w.o + i, w.a + i, w.b + i, w.valid);
    }
    return at_coords(w, i, RANK - 1);
}

// Every kernel: each invocation stores its EPT elements (locate), through its section's `store`.
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let wg = wid.x + wid.y * nwg.x;
    for (var k = 0u; k < EPT; k++) {
        let w = locate(wg, lid, k);
        if (!w.valid) {
            return;
        }
        store(w);
    }
}

//! kernel unary

@group(0) @binding(0) var<storage, read> x: array<SX>;
@group(0) @binding(1) var<storage, read_write> out: array<SO>;
@group(0) @binding(2) var<uniform> p: Params;

fn unary_op(x: C) -> C {
    {{UNARY_OP}}
}

fn apply(v: VC) -> VC {
    {{APPLY_UNARY}}
}

fn store(w: Where) {
    out[w.o] = SO(apply(VC(x[w.a])));
}

//! kernel binary

@group(0) @binding(0) var<storage, read> a: array<SA>;
@group(0) @binding(1) var<storage, read> b: array<SB>;
@group(0) @binding(2) var<storage, read_write> out: array<SO>;
@group(0) @binding(3) var<uniform> p: Params;

fn binary_op(a: C, b: C) -> C {
    {{BINARY_OP}}
}

fn apply(u: VC, v: VC) -> VC {
    {{APPLY_BINARY}}
}

fn store(w: Where) {
    out[w.o] = SO(apply(VC(a[w.a]), VC(b[w.b])));
}

//! kernel fill
// (dense out only: MODE 0)

@group(0) @binding(0) var<storage, read_write> out: array<SO>;
@group(0) @binding(1) var<uniform> p: Params;

fn store(w: Where) {
    out[w.o] = SO(VC(bitcast<C>(p.bits)));
}
