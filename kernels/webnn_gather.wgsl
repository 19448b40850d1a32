// WebNN flat gather and scatter over int32 index maps.
//
// Workgroup layout: flat_1d.wgsl's, 64 invocations, one (outer, inner) line each; each invocation
// walks its n inputs in order, accumulating in C (f32 for float storage, i32 for int32).
//
// Bindings (group 0), both kernels:
//   @binding(0) X array<T> read (gather: the source; scatter: the updates)
//   @binding(1) I array<i32> read (flat element positions)
//   @binding(2) O array<T> read_write                @binding(3) p Params (uniform)
// Workgroup layout: flat_1d.wgsl's, 64 invocations, one element (output or update) each.
//   gather:  O[i] = X[x_off + I[i]], or the fill value where I[i] < 0. Every data-movement op with
//            static shapes (pad, reverse, triangular, im2col for conv, pooling windows, resample) is
//            this kernel over an index map built at build time; gather ops with runtime indices work
//            the map out on the device first. Positions past the end read the last element.
//   scatter: O[I[i]] = X[x_off + i] for every update i (O already holds the input's copy); positions
//            are clamped to O's length; where two updates hit one element, which one lands is
//            unspecified (as the spec allows).
{{ENABLE}}
const WG: u32 = 64u;

struct Params {
    n: u32,       // outputs (gather) or updates (scatter)
    x_off: u32,
    i_off: u32,
    len: u32,     // elements of X (gather) or of O (scatter)
    fill: u32,    // gather's fill value, as bits
}

@group(0) @binding(0) var<storage, read> X: array<{{T}}>;
@group(0) @binding(1) var<storage, read> I: array<i32>;
@group(0) @binding(2) var<storage, read_write> O: array<{{T}}>;
@group(0) @binding(3) var<uniform> p: Params;

//# include flat_1d

fn element_count() -> u32 {
    return p.n;
}

//! kernel gather
fn element(i: u32) {
    let idx = I[p.i_off + i];
    if (idx < 0) {
        O[i] = {{FILL}};
    } else {
        O[i] = X[p.x_off + min(u32(idx), p.len - 1u)];
    }
}

//! kernel scatter
fn element(i: u32) {
    let idx = clamp(I[p.i_off + i], 0, i32(p.len) - 1);
    O[u32(idx)] = X[p.x_off + i];
}
