// Layer norm over the last dim, optionally of (x + residual):
//   v = x [+ residual];  out = (v - mean(v)) / sqrt(var(v) + eps) [* weight] [+ bias]
// With PARTS > 0, x is a split-K matmul's PARTS slices of f32 partial sums ([slice][row][n], p.part_ss
// units apart; matmul.wgsl's tiled pass) and v = (sum of the slices + lbias) [+ residual]: the matmul's
// own reduction pass and this kernel in one dispatch (ops.linear_layer_norm).
// Statistics in f32, shifted and two-pass: every value is taken relative to the row's first value
// (the pivot; exact for values near it), the mean of those shifts comes first, then the mean of the
// squared deviations, so they match a float64 reference to ~1e-6 relative even for rows whose mean
// is large against their spread.
//
// Bindings (group 0):
//   @binding(0) x         array<S> read         (rows, n) contiguous from unit x_off
//   @binding(1) residual  array<S> read         (rows, n) from r_off; a dummy when p.has_residual == 0
//   @binding(2) weight    array<S> read         (n,) from w_off; a dummy when p.has_weight == 0
//   @binding(3) bias      array<S> read         (n,) from b_off; a dummy when p.has_bias == 0
//   @binding(4) out       array<S> read_write   (rows, n) from o_off
//   @binding(5) lbias     array<S> read         (n,) from lb_off, the matmul's bias (PARTS > 0 only; a dummy
//                         when p.has_lbias == 0)
//   @binding(5 or 6) p    uniform Params
// S is T, or vec4<T> when n and every offset are multiples of 4 (VEC = 4; then n and the offsets in
// Params count vec4s, "units" below).
//
// Workgroup layout (row_reduce.wgsl's entry point): WG invocations = (WG / TPR) rows x TPR lanes per
// row. Lane c of a row takes units c, c + TPR, ... (coalesced).
//   CACHED (n <= TPR * K units): each lane keeps its K units of v in registers: x is read once.
//   streamed: three passes over the row in global memory (sum, squared deviations, output).
// Row sums: row_reduce.wgsl's (subgroup shuffles where the device has them).

alias T = {{T}};
alias S = {{S}};      // storage unit
alias V = {{V}};      // a unit in f32: f32 or vec4<f32>

const WG: u32 = {{WG}}u;
const TPR: u32 = {{TPR}}u;
const K: u32 = {{K}}u;
const CACHED: bool = {{CACHED}};
const SUBGROUPS: bool = {{SUBGROUPS}};
const PARTS: u32 = {{PARTS}}u;

struct Params {
    rows: u32,
    n: u32,         // units per row
    elements: u32,  // elements per row (n * VEC)
    eps: f32,
    has_residual: u32,
    has_weight: u32,
    has_bias: u32,
    x_off: u32,     // offsets in units
    r_off: u32,
    w_off: u32,
    b_off: u32,
    o_off: u32,
    part_ss: u32,   // units between two partial-sum slices (PARTS > 0)
    lb_off: u32,
    has_lbias: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> x: array<{{XS}}>;
@group(0) @binding(1) var<storage, read> residual: array<S>;
@group(0) @binding(2) var<storage, read> weight: array<S>;
@group(0) @binding(3) var<storage, read> bias: array<S>;
@group(0) @binding(4) var<storage, read_write> out: array<S>;
//# if {{PARTS}}
@group(0) @binding(5) var<storage, read> lbias: array<S>;
@group(0) @binding(6) var<uniform> p: Params;
//# else
@group(0) @binding(5) var<uniform> p: Params;
//# endif

//# include row_reduce

fn load(row_base: u32, i: u32) -> V {
//# if {{PARTS}}
    // the slices' loads issued together, summed in slice order (as matmul.wgsl's splitk_reduce), then the bias
//# for s in range({{PARTS}})
    let s$[s] = x[p.x_off + $[s]u * p.part_ss + row_base + i];
//# endfor
    var v = s0;
//# for s in range(1, {{PARTS}})
    v += s$[s];
//# endfor
    if (p.has_lbias != 0u) {
        v += V(lbias[p.lb_off + i]);
    }
//# else
    var v = V(x[p.x_off + row_base + i]);
//# endif
    if (p.has_residual != 0u) {
        v += V(residual[p.r_off + row_base + i]);
    }
    return v;
}

fn store(row_base: u32, i: u32, centered: V, rstd: f32) {
    var y = centered * rstd;
    if (p.has_weight != 0u) {
        y *= V(weight[p.w_off + i]);
    }
    if (p.has_bias != 0u) {
        y += V(bias[p.b_off + i]);
    }
    out[p.o_off + row_base + i] = S(y);
}

fn row_kernel(lid: u32, sgs: u32, row: u32, lane: u32, live: bool) {
    let n = p.n;
    let base = row * n;
    let inv_n = 1.0 / f32(p.elements);
    var pivot = 0.0;
    if (live) {
        pivot = first(load(base, 0u));
    }

    if (CACHED) {
        var v: array<V, K>;
        var s = 0.0;
        for (var k = 0u; k < K; k++) {
            let i = lane + k * TPR;
            v[k] = V(0.0);
            if (live && i < n) {
                v[k] = load(base, i) - pivot;
                s += hsum(v[k]);
            }
        }
        let shift = row_sum(lid, sgs, s) * inv_n;   // mean - pivot
        var q = 0.0;
        for (var k = 0u; k < K; k++) {
            v[k] -= shift;
            if (lane + k * TPR < n) {
                q += hsum(v[k] * v[k]);
            }
        }
        let rstd = 1.0 / sqrt(row_sum(lid, sgs, q) * inv_n + p.eps);
        for (var k = 0u; k < K; k++) {
            let i = lane + k * TPR;
            if (live && i < n) {
                store(base, i, v[k], rstd);
            }
        }
    } else {
        var s = 0.0;
        if (live) {
            for (var i = lane; i < n; i += TPR) {
                s += hsum(load(base, i) - pivot);
            }
        }
        let shift = row_sum(lid, sgs, s) * inv_n;
        var q = 0.0;
        if (live) {
            for (var i = lane; i < n; i += TPR) {
                let d = (load(base, i) - pivot) - shift;
                q += hsum(d * d);
            }
        }
        let rstd = 1.0 / sqrt(row_sum(lid, sgs, q) * inv_n + p.eps);
        if (live) {
            for (var i = lane; i < n; i += TPR) {
                store(base, i, (load(base, i) - pivot) - shift, rstd);
            }
        }
    }
}
