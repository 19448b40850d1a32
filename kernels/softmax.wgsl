// Softmax over the last dim of a contiguous (rows, n) tensor: out = exp(x - max) / sum(exp(x - max)).
// Statistics in f32; a row that is all -inf gives zeros (as the CPU backend does).
//
// Bindings (group 0):
//   @binding(0) x    array<S> read         (rows, n) from element x_off
//   @binding(1) out  array<S> read_write   (rows, n) from element o_off
//   @binding(2) p    uniform Params
// S is T, or vec4<T> when n and both offsets are multiples of 4 (VEC = 4; then n and the offsets in
// Params count vec4s, "units" below).
//
// Workgroup layout (row_reduce.wgsl's entry point): WG invocations = (WG / TPR) rows x TPR lanes per
// row. Lane c of a row takes units c, c + TPR, ... (coalesced).
//   CACHED (n <= TPR * K units): each lane keeps its K units in registers: one read and one write of x.
//   streamed: each lane keeps a running (max, sum) (online softmax), and a second pass writes.
// Row reductions: row_reduce.wgsl's (subgroup shuffles where the device has them).
// Every invocation reaches every barrier, also those of rows past the end.
// The running max starts at -F32_MAX rather than -inf, so exp(-inf - max) = 0 and no inf - inf appears.

alias T = {{T}};
alias S = {{S}};      // storage unit
alias V = {{V}};      // a unit in f32: f32 or vec4<f32>

const WG: u32 = {{WG}}u;
const TPR: u32 = {{TPR}}u;   // lanes per row (a power of two dividing WG)
const K: u32 = {{K}}u;       // units per lane kept in registers (CACHED)
const CACHED: bool = {{CACHED}};
const SUBGROUPS: bool = {{SUBGROUPS}};

struct Params {
    rows: u32,
    n: u32,       // units per row
    x_off: u32,   // in units
    o_off: u32,
}

@group(0) @binding(0) var<storage, read> x: array<S>;
@group(0) @binding(1) var<storage, read_write> out: array<S>;
@group(0) @binding(2) var<uniform> p: Params;

//# include row_reduce

fn row_kernel(lid: u32, sgs: u32, row: u32, lane: u32, live: bool) {
    let n = p.n;
    let xb = p.x_off + row * n;
    let ob = p.o_off + row * n;

    if (CACHED) {
        var v: array<V, K>;
        var m = LOWEST;
        for (var k = 0u; k < K; k++) {
            let i = lane + k * TPR;
            v[k] = V(LOWEST);
            if (live && i < n) {
                v[k] = V(x[xb + i]);
                m = max(m, hmax(v[k]));
            }
        }
        m = row_reduce(lid, sgs, m, true);
        var s = 0.0;
        for (var k = 0u; k < K; k++) {
            v[k] = exp(v[k] - m);
            if (lane + k * TPR < n) {
                s += hsum(v[k]);
            }
        }
        s = row_reduce(lid, sgs, s, false);
        let inv = select(0.0, 1.0 / s, s > 0.0);
        for (var k = 0u; k < K; k++) {
            let i = lane + k * TPR;
            if (live && i < n) {
                out[ob + i] = S(v[k] * inv);
            }
        }
    } else {
        var m = LOWEST;
        var s = 0.0;
        if (live) {
            for (var i = lane; i < n; i += TPR) {
                let v = V(x[xb + i]);
                let mv = max(m, hmax(v));
                s = s * exp(m - mv) + hsum(exp(v - mv));
                m = mv;
            }
        }
        let mm = row_reduce(lid, sgs, m, true);
        let total = row_reduce(lid, sgs, s * exp(m - mm), false);
        let inv = select(0.0, 1.0 / total, total > 0.0);
        if (live) {
            for (var i = lane; i < n; i += TPR) {
                out[ob + i] = S(exp(V(x[xb + i]) - mm) * inv);
            }
        }
    }
}
