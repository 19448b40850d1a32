// The entry point of kernels that give each invocation one element of a flat range, shared through
// "//# include flat_1d" (see render in accelkit/backends/webgpu/wgsl.py). The including kernel defines
//   const WG: u32              invocations per workgroup
//   fn element_count() -> u32  how many elements there are
//   fn element(i: u32)         the work of element i, for every i < element_count()
// Workgroup layout: 1-D, WG invocations, invocation lid of flat workgroup w takes i = w * WG + lid;
// the flat workgroup index is wid.x + wid.y * nwg.x, so grids over 65,535 workgroups wide spread
// over y (the planners size them with grid_1d).
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + lid;
    if (i < element_count()) {
        element(i);
    }
}
