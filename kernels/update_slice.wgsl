// In-place slice update at an offset read from the device: dst[..., p + i, ...] = src[..., i, ...] along one
// axis, where p = clamp(start[start_off], 0, limit) (limit = dst.shape[axis] - src.shape[axis]). This is
// XLA's dynamic_update_slice along one axis: the offset is data, not a shape, so one compiled dispatch
// (and one captured plan) serves every position, e.g. a decoder writing a step's keys/values into a
// fixed (B, H, max_len, D) KV cache at the position the step's position buffer holds.
//
// Bindings (group 0):
//   @binding(0) src    array<T> read        any strided layout (src_off, ss)
//   @binding(1) start  array<i32> read      the offset p at element start_off
//   @binding(2) dst    array<T> read_write  any strided layout (dst_off, ds); ax_stride = ds[axis]
//   @binding(3) p      uniform Params
// T is the element type of both (f32, f16 or i32): values are moved, never converted.
//
// Workgroup layout: flat_1d.wgsl's, WG = 256 invocations, one element of src each, in src's row-major
// order. The flat index is split into RANK coordinates (innermost first), each adding its stride to both offsets (strides are i32 bits).

alias T = {{T}};

const WG: u32 = 256u;

struct Params {
    numel: u32,      // elements of src
    rank: u32,       // dims of shape/ss/ds in use (1..8)
    limit: i32,      // largest allowed offset: dst.shape[axis] - src.shape[axis]
    start_off: u32,  // element of `start` holding the offset
    src_off: u32,
    dst_off: u32,
    ax_stride: i32,  // dst's stride along the axis
    _pad: u32,
    shape: array<vec4<u32>, 2>,  // src's shape, outermost first
    ss: array<vec4<u32>, 2>,     // src strides (i32 bits)
    ds: array<vec4<u32>, 2>,     // dst strides (i32 bits)
}

@group(0) @binding(0) var<storage, read> src: array<T>;
@group(0) @binding(1) var<storage, read> start: array<i32>;
@group(0) @binding(2) var<storage, read_write> dst: array<T>;
@group(0) @binding(3) var<uniform> p: Params;

//# include flat_1d

fn element_count() -> u32 {
    return p.numel;
}

fn element(e: u32) {
    let at = clamp(start[p.start_off], 0, p.limit);
    var rem = e;
    var so = i32(p.src_off);
    var dof = i32(p.dst_off) + at * p.ax_stride;
    for (var r = i32(p.rank) - 1; r >= 0; r--) {
        let n = p.shape[r / 4][r % 4];
        let i = i32(rem % n);
        rem = rem / n;
        so += i * bitcast<i32>(p.ss[r / 4][r % 4]);
        dof += i * bitcast<i32>(p.ds[r / 4][r % 4]);
    }
    dst[u32(dof)] = src[u32(so)];
}
