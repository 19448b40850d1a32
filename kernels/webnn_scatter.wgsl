// WebNN flat scatter: O[I[i]] = U[u_off + i] for every update i (O already holds the input's copy).
//
// Bindings (group 0):
//   @binding(0) U array<T> read   @binding(1) I array<i32> read   @binding(2) O array<T> read_write
//   @binding(3) p Params (uniform)
// Workgroup layout: 1-D, 64 invocations, one update each (flat workgroup index wid.x + wid.y * nwg.x).
// Indices are flat element positions in O, clamped to its length; where two updates hit one
// element, which one lands is unspecified (as the spec allows).
{{ENABLE}}
struct Params {
    n: u32,
    u_off: u32,
    i_off: u32,
    o_len: u32,
}

@group(0) @binding(0) var<storage, read> U: array<{{T}}>;
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
    let idx = clamp(I[p.i_off + i], 0, i32(p.o_len) - 1);
    O[u32(idx)] = U[p.u_off + i];
}
