// WebNN flat gather: out[i] = X[x_off + I[i]], or the fill value where I[i] < 0.
//
// Bindings (group 0):
//   @binding(0) X array<T> read   @binding(1) I array<i32> read   @binding(2) O array<T> read_write
//   @binding(3) p Params (uniform)
// Workgroup layout: 1-D, 64 invocations, one output element each (flat workgroup index
// wid.x + wid.y * nwg.x). Every data-movement op with static shapes (transpose, pad, tile, reverse,
// im2col for conv, pooling windows, resample) is this kernel over an index map built at build
// time; gather ops with runtime indices compute the map on the device first. Indices past the end
// are clamped to the last element (never read out of bounds).
{{ENABLE}}
struct Params {
    n: u32,
    x_off: u32,
    i_off: u32,
    x_len: u32,
    fill: u32,
}

@group(0) @binding(0) var<storage, read> X: array<{{T}}>;
@group(0) @binding(1) var<storage, read> I: array<i32>;
@group(0) @binding(2) var<storage, read_write> O: array<{{T}}>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (i >= p.n) {
        return;
    }
    let idx = I[p.i_off + i];
    if (idx < 0) {
        O[i] = {{FILL}};
    } else {
        O[i] = X[p.x_off + min(u32(idx), p.x_len - 1u)];
    }
}
