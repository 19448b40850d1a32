// WebNN cumulative sum along the middle axis of a dense (outer, n, inner) tensor (same shape out).
//
// Bindings (group 0):
//   @binding(0) X array<T> read   @binding(1) O array<T> read_write   @binding(2) p Params (uniform)
// Workgroup layout: 1-D, 64 invocations, one (outer, inner) line each (flat workgroup index
// wid.x + wid.y * nwg.x), walked forwards or (reversed = 1) backwards; exclusive = 1 writes the
// sum before adding the element. Accumulates in C (f32 for float storage, i32 for int32).
{{ENABLE}}
struct Params {
    outer: u32,
    n: u32,
    inner: u32,
    x_off: u32,
    exclusive: u32,
    reversed: u32,
}

@group(0) @binding(0) var<storage, read> X: array<{{T}}>;
@group(0) @binding(1) var<storage, read_write> O: array<{{T}}>;
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
    let base = o * p.n * p.inner + j;
    var acc: {{C}} = {{C}}(0);
    for (var s = 0u; s < p.n; s = s + 1u) {
        var k = s;
        if (p.reversed == 1u) {
            k = p.n - 1u - s;
        }
        let v = {{C}}(X[p.x_off + base + k * p.inner]);
        if (p.exclusive == 1u) {
            O[base + k * p.inner] = {{T}}(acc);
            acc = acc + v;
        } else {
            acc = acc + v;
            O[base + k * p.inner] = {{T}}(acc);
        }
    }
}
