// Softmax over the last dim of a contiguous (rows, n) tensor: out = exp(x - max) / sum(exp(x - max)).
// Statistics in f32; a row that is all -inf gives zeros (as the CPU backend does).
//
// Bindings (group 0):
//   @binding(0) x    array<T> read         (rows, n) from element x_off
//   @binding(1) out  array<T> read_write   (rows, n) from element o_off
//   @binding(2) p    uniform Params
//
// Workgroup layout: WG = 256 invocations = (WG / TPR) rows x TPR lanes per row; the flat workgroup index
// (wid.x + wid.y * nwg.x, grid_1d) times WG / TPR is its first row. Lane c of a row reads elements
// c, c + TPR, ... (coalesced). Row reductions are trees over workgroup memory within each TPR-lane
// segment (sequential addressing: no bank conflicts); every invocation reaches every barrier, also
// those of rows past the end.
//   CACHED (n <= TPR * K): each lane keeps its K values in registers: one read and one write of x.
//   streamed: each lane keeps a running (max, sum) (online softmax), the pairs are merged, and a second
//   pass over x writes the output.
// The running max starts at -F32_MAX rather than -inf, so exp(-inf - max) = 0 and no inf - inf appears.

alias T = {{T}};

const WG: u32 = 256u;
const TPR: u32 = {{TPR}}u;   // lanes per row (a power of two dividing WG)
const K: u32 = {{K}}u;       // values per lane kept in registers (CACHED)
const CACHED: bool = {{CACHED}};
const ROWS_PER_WG: u32 = WG / TPR;
const LOWEST: f32 = -3.4028234663852886e38;

struct Params {
    rows: u32,
    n: u32,
    x_off: u32,
    o_off: u32,
}

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read_write> out: array<T>;
@group(0) @binding(2) var<uniform> p: Params;

var<workgroup> red_m: array<f32, WG>;
var<workgroup> red_s: array<f32, WG>;

// max over the TPR lanes of this invocation's row segment (every lane gets the result)
fn segment_max(lid: u32, v: f32) -> f32 {
    red_m[lid] = v;
    workgroupBarrier();
    let lane = lid % TPR;
    for (var s = TPR / 2u; s > 0u; s = s >> 1u) {
        if (lane < s) {
            red_m[lid] = max(red_m[lid], red_m[lid + s]);
        }
        workgroupBarrier();
    }
    let r = red_m[lid - lane];
    workgroupBarrier();
    return r;
}

fn segment_sum(lid: u32, v: f32) -> f32 {
    red_s[lid] = v;
    workgroupBarrier();
    let lane = lid % TPR;
    for (var s = TPR / 2u; s > 0u; s = s >> 1u) {
        if (lane < s) {
            red_s[lid] = red_s[lid] + red_s[lid + s];
        }
        workgroupBarrier();
    }
    let r = red_s[lid - lane];
    workgroupBarrier();
    return r;
}

// merge the running (max, sum) pairs of the segment's lanes
fn segment_max_sum(lid: u32, m: f32, s: f32) -> vec2f {
    red_m[lid] = m;
    red_s[lid] = s;
    workgroupBarrier();
    let lane = lid % TPR;
    for (var w = TPR / 2u; w > 0u; w = w >> 1u) {
        if (lane < w) {
            let m1 = red_m[lid];
            let m2 = red_m[lid + w];
            let mm = max(m1, m2);
            red_s[lid] = red_s[lid] * exp(m1 - mm) + red_s[lid + w] * exp(m2 - mm);
            red_m[lid] = mm;
        }
        workgroupBarrier();
    }
    let r = vec2f(red_m[lid - lane], red_s[lid - lane]);
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let row = (wid.x + wid.y * nwg.x) * ROWS_PER_WG + lid / TPR;
    let lane = lid % TPR;
    let n = p.n;
    let live = row < p.rows;
    let xb = p.x_off + row * n;
    let ob = p.o_off + row * n;

    if (CACHED) {
        var v: array<f32, K>;
        var m = LOWEST;
        for (var k = 0u; k < K; k++) {
            let i = lane + k * TPR;
            v[k] = LOWEST;
            if (live && i < n) {
                v[k] = f32(x[xb + i]);
                m = max(m, v[k]);
            }
        }
        m = segment_max(lid, m);
        var s = 0.0;
        for (var k = 0u; k < K; k++) {
            v[k] = exp(v[k] - m);
            if (lane + k * TPR < n) {
                s += v[k];
            }
        }
        s = segment_sum(lid, s);
        let inv = select(0.0, 1.0 / s, s > 0.0);
        for (var k = 0u; k < K; k++) {
            let i = lane + k * TPR;
            if (live && i < n) {
                out[ob + i] = T(v[k] * inv);
            }
        }
    } else {
        var m = LOWEST;
        var s = 0.0;
        if (live) {
            for (var i = lane; i < n; i += TPR) {
                let v = f32(x[xb + i]);
                if (v > m) {
                    s = s * exp(m - v) + 1.0;
                    m = v;
                } else {
                    s += exp(v - m);
                }
            }
        }
        let ms = segment_max_sum(lid, m, s);
        let inv = select(0.0, 1.0 / ms.y, ms.y > 0.0);
        if (live) {
            for (var i = lane; i < n; i += TPR) {
                out[ob + i] = T(exp(f32(x[xb + i]) - ms.x) * inv);
            }
        }
    }
}
