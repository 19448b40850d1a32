// WebNN reductions and cumulative sums along the middle axis of a dense (outer, n, inner) tensor.
//
// The file is one shared part (Params, bindings, the entry point) and two kernel sections, each
// starting at a line "//! kernel" + its name; the planner compiles the shared part with the one
// section it needs.
//
// Bindings (group 0): @binding(0) X array<T> read   @binding(1) O array<TO> read_write
//                     @binding(2) p Params (uniform)
// Workgroup layout: flat_1d.wgsl's, 64 invocations, one (outer, inner) line each; each invocation
// walks its n inputs in order, accumulating in C (f32 for float storage, i32 for int32).
//   reduce: O (outer, inner) = OP over the line: sum, prod, max, min (STEP), argmax or argmin (the
//           first index of the extreme value, as i32; RESULT picks acc or best).
//   cumsum: O (outer, n, inner) = running sums along the line, walked backwards with reversed = 1;
//           exclusive = 1 writes the sum before adding the element.
{{ENABLE}}
const WG: u32 = 64u;

struct Params {
    outer: u32,
    n: u32,
    inner: u32,
    x_off: u32,
    exclusive: u32,
    reversed: u32,
}

@group(0) @binding(0) var<storage, read> X: array<{{T}}>;
@group(0) @binding(1) var<storage, read_write> O: array<{{TO}}>;
@group(0) @binding(2) var<uniform> p: Params;

//# include flat_1d

fn element_count() -> u32 {
    return p.outer * p.inner;
}

//! kernel reduce
fn element(i: u32) {
    let base = p.x_off + (i / p.inner) * p.n * p.inner + i % p.inner;
    var acc: {{C}} = {{C}}(X[base]);
    var best: i32 = 0;
    for (var k = 1u; k < p.n; k = k + 1u) {
        let v = {{C}}(X[base + k * p.inner]);
        {{STEP}}
    }
    O[i] = {{TO}}({{RESULT}});
}

//! kernel cumsum
fn element(i: u32) {
    let base = (i / p.inner) * p.n * p.inner + i % p.inner;
    var acc: {{C}} = {{C}}(0);
    for (var s = 0u; s < p.n; s = s + 1u) {
        var k = s;
        if (p.reversed == 1u) {
            k = p.n - 1u - s;
        }
        let v = {{C}}(X[p.x_off + base + k * p.inner]);
        if (p.exclusive == 1u) {
            O[base + k * p.inner] = {{TO}}(acc);
            acc = acc + v;
        } else {
            acc = acc + v;
            O[base + k * p.inner] = {{TO}}(acc);
        }
    }
}
