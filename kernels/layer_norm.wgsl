// Layer norm over the last dim, optionally of (x + residual):
//   v = x [+ residual];  out = (v - mean(v)) / sqrt(var(v) + eps) [* weight] [+ bias]
// Statistics in f32, shifted and two-pass: every value is taken relative to the row's first value
// (the pivot; exact for values near it), the mean of those shifts comes first, then the mean of the
// squared deviations, so they match a float64 reference to ~1e-6 relative even for rows whose mean
// is large against their spread.
//
// Bindings (group 0):
//   @binding(0) x         array<T> read         (rows, n) contiguous from element x_off
//   @binding(1) residual  array<T> read         (rows, n) from r_off; a dummy when p.has_residual == 0
//   @binding(2) weight    array<T> read         (n,) from w_off; a dummy when p.has_weight == 0
//   @binding(3) bias      array<T> read         (n,) from b_off; a dummy when p.has_bias == 0
//   @binding(4) out       array<T> read_write   (rows, n) from o_off
//   @binding(5) p         uniform Params
//
// Workgroup layout: WG = 256 invocations = (WG / TPR) rows x TPR lanes per row (flat workgroup index
// wid.x + wid.y * nwg.x, grid_1d). Lane c of a row takes elements c, c + TPR, ... (coalesced); the row
// sums are trees over workgroup memory within each TPR-lane segment (no bank conflicts).
//   CACHED (n <= TPR * K): each lane keeps its K values of v in registers: x is read once.
//   streamed: three passes over the row in global memory (sum, squared deviations, output).

alias T = {{T}};

const WG: u32 = 256u;
const TPR: u32 = {{TPR}}u;
const K: u32 = {{K}}u;
const CACHED: bool = {{CACHED}};
const ROWS_PER_WG: u32 = WG / TPR;

struct Params {
    rows: u32,
    n: u32,
    eps: f32,
    has_residual: u32,
    has_weight: u32,
    has_bias: u32,
    x_off: u32,
    r_off: u32,
    w_off: u32,
    b_off: u32,
    o_off: u32,
}

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read> residual: array<T>;
@group(0) @binding(2) var<storage, read> weight: array<T>;
@group(0) @binding(3) var<storage, read> bias: array<T>;
@group(0) @binding(4) var<storage, read_write> out: array<T>;
@group(0) @binding(5) var<uniform> p: Params;

var<workgroup> red: array<f32, WG>;

fn segment_sum(lid: u32, v: f32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    let lane = lid % TPR;
    for (var s = TPR / 2u; s > 0u; s = s >> 1u) {
        if (lane < s) {
            red[lid] = red[lid] + red[lid + s];
        }
        workgroupBarrier();
    }
    let r = red[lid - lane];
    workgroupBarrier();
    return r;
}

fn load(row_base: u32, i: u32) -> f32 {
    var v = f32(x[p.x_off + row_base + i]);
    if (p.has_residual != 0u) {
        v += f32(residual[p.r_off + row_base + i]);
    }
    return v;
}

fn store(row_base: u32, i: u32, centered: f32, rstd: f32) {
    var y = centered * rstd;
    if (p.has_weight != 0u) {
        y *= f32(weight[p.w_off + i]);
    }
    if (p.has_bias != 0u) {
        y += f32(bias[p.b_off + i]);
    }
    out[p.o_off + row_base + i] = T(y);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let row = (wid.x + wid.y * nwg.x) * ROWS_PER_WG + lid / TPR;
    let lane = lid % TPR;
    let n = p.n;
    let live = row < p.rows;
    let base = row * n;
    let inv_n = 1.0 / f32(n);
    var pivot = 0.0;
    if (live) {
        pivot = load(base, 0u);
    }

    if (CACHED) {
        var v: array<f32, K>;
        var s = 0.0;
        for (var k = 0u; k < K; k++) {
            let i = lane + k * TPR;
            v[k] = 0.0;
            if (live && i < n) {
                v[k] = load(base, i) - pivot;
                s += v[k];
            }
        }
        let shift = segment_sum(lid, s) * inv_n;   // mean - pivot
        var q = 0.0;
        for (var k = 0u; k < K; k++) {
            v[k] -= shift;
            if (lane + k * TPR < n) {
                q += v[k] * v[k];
            }
        }
        let rstd = 1.0 / sqrt(segment_sum(lid, q) * inv_n + p.eps);
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
                s += load(base, i) - pivot;
            }
        }
        let shift = segment_sum(lid, s) * inv_n;
        var q = 0.0;
        if (live) {
            for (var i = lane; i < n; i += TPR) {
                let d = (load(base, i) - pivot) - shift;
                q += d * d;
            }
        }
        let rstd = 1.0 / sqrt(segment_sum(lid, q) * inv_n + p.eps);
        if (live) {
            for (var i = lane; i < n; i += TPR) {
                store(base, i, (load(base, i) - pivot) - shift, rstd);
            }
        }
    }
}
