// The entry point of the row kernels (softmax.wgsl, layer_norm.wgsl) and their reductions over the
// TPR lanes of a row, shared through "//# include row_reduce" (see render in
// accelkit/backends/webgpu/wgsl.py). The including kernel defines WG, TPR, SUBGROUPS, V (f32 or
// vec4<f32>), Params p with a field `rows`, and `fn row_kernel(lid, sgs, row, lane, live)`; HMAX, HSUM
// and FIRST fold a V to one f32 (the planner's _VEC4_HELPERS / _SCALAR_HELPERS), SG_ARG/SG_SIZE bring
// in @builtin(subgroup_size) only with SUBGROUPS (it needs the device feature).
// With SUBGROUPS, a butterfly of subgroup shuffles inside each aligned block of min(TPR, subgroup size)
// lanes, then (only when a row spans several subgroups) a second butterfly over their results
// (exchanged through workgroup memory); without, a tree over workgroup memory (sequential addressing:
// no bank conflicts). They hold barriers: every invocation calls them, also those of rows past the end.

const LOWEST: f32 = -3.4028234663852886e38;   // -F32_MAX: the start of a max

var<workgroup> red: array<f32, WG>;

fn hmax(v: V) -> f32 {
    {{HMAX}}
}

fn hsum(v: V) -> f32 {
    {{HSUM}}
}

fn first(v: V) -> f32 {
    {{FIRST}}
}

fn combine(a: f32, b: f32, is_max: bool) -> f32 {
    return select(a + b, max(a, b), is_max);
}

// a butterfly of subgroup shuffles: the max or sum over each aligned block of `width` lanes
fn shuffle_reduce(v: f32, width: u32, is_max: bool) -> f32 {
    var r = v;
    for (var m = 1u; m < width; m = m << 1u) {
        r = combine(r, subgroupShuffleXor(r, m), is_max);
    }
    return r;
}

// max (is_max) or sum over the TPR lanes of this invocation's row; every lane gets the result
fn row_reduce(lid: u32, sgs: u32, v: f32, is_max: bool) -> f32 {
    let lane = lid % TPR;
    let base = lid - lane;
    if (SUBGROUPS) {
        let block = min(TPR, sgs);
        let r = shuffle_reduce(v, block, is_max);
        if (block == TPR) {
            return r;
        }
        // the row spans TPR / block subgroups: their results meet in workgroup memory (compacted,
        // row after row) and one more butterfly folds them
        if (lid % block == 0u) {
            red[lid / block] = r;
        }
        workgroupBarrier();
        var t = select(0.0, LOWEST, is_max);
        for (var j = lid % block; j < TPR / block; j += block) {
            t = combine(t, red[base / block + j], is_max);
        }
        workgroupBarrier();
        return shuffle_reduce(t, block, is_max);
    }
    red[lid] = v;
    workgroupBarrier();
    for (var s = TPR / 2u; s > 0u; s = s >> 1u) {
        if (lane < s) {
            red[lid] = combine(red[lid], red[lid + s], is_max);
        }
        workgroupBarrier();
    }
    let r = red[base];
    workgroupBarrier();
    return r;
}

fn row_sum(lid: u32, sgs: u32, v: f32) -> f32 {
    return row_reduce(lid, sgs, v, false);
}

// WG / TPR rows per workgroup (its flat index wid.x + wid.y * nwg.x, grid_1d, times that is its first
// row), TPR lanes per row. row_kernel gets the invocation's index in the workgroup, the subgroup size
// (1 without SUBGROUPS), its row, its lane in the row and whether the row exists: rows past the end
// still reach every barrier.
const ROWS_PER_WG: u32 = WG / TPR;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32{{SG_ARG}}) {
    let row = (wid.x + wid.y * nwg.x) * ROWS_PER_WG + lid / TPR;
    row_kernel(lid, {{SG_SIZE}}, row, lid % TPR, row < p.rows);
}
