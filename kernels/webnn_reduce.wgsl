// WebNN reductions over the middle axis of a dense (outer, n, inner) tensor -> (outer, inner).
//
// Bindings (group 0):
//   @binding(0) X array<T> read   @binding(1) O array<TO> read_write   @binding(2) p Params (uniform)
// Workgroup layout: 1-D, 64 invocations, one output element each (flat workgroup index
// wid.x + wid.y * nwg.x); each invocation walks its n inputs in order. OP is sum, prod, max, min
// (accumulating in C: f32 for float storage, i32 for int32), argmax or argmin (first index of the
// extreme value, as i32).
{{ENABLE}}
struct Params {
    outer: u32,
    n: u32,
    inner: u32,
    x_off: u32,
}

@group(0) @binding(0) var<storage, read> X: array<{{T}}>;
@group(0) @binding(1) var<storage, read_write> O: array<{{TO}}>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (i >= p.outer * p.inner) {
        return;
    }
    let o = i / p.inner;
    let j = i % p.inner;
    let base = p.x_off + o * p.n * p.inner + j;
    var acc: {{C}} = {{C}}(X[base]);
    var best: i32 = 0;
    for (var k = 1u; k < p.n; k = k + 1u) {
        let v = {{C}}(X[base + k * p.inner]);
        {{STEP}}
    }
    O[i] = {{TO}}({{RESULT}});
}
