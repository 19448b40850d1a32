// Embedding lookup (a row gather): out[i, :] = table[clamp(ids[i], 0, vocab - 1), :].
//
// Bindings (group 0):
//   @binding(0) ids    array<i32> read        (n,) from element ids_off
//   @binding(1) table  array<S> read          (vocab, d) contiguous from t_off
//   @binding(2) out    array<S> read_write    (n, d) contiguous from o_off
//   @binding(3) p      uniform Params
// S is the element type, or vec4 of it when d and both offsets are multiples of 4 (then d, t_off and
// o_off are counted in vec4s).
//
// Workgroup layout: flat_1d.wgsl's, WG = 256 invocations, one (vec4) element of out each. Neighbouring
// invocations copy neighbouring elements of a row, so both the table row and the output row are read
// and written coalesced.

alias S = {{S}};

const WG: u32 = 256u;

struct Params {
    total: u32,     // n * d
    d: u32,
    vocab: u32,
    ids_off: u32,
    t_off: u32,
    o_off: u32,
}

@group(0) @binding(0) var<storage, read> ids: array<i32>;
@group(0) @binding(1) var<storage, read> table: array<S>;
@group(0) @binding(2) var<storage, read_write> out: array<S>;
@group(0) @binding(3) var<uniform> p: Params;

//# include flat_1d

fn element_count() -> u32 {
    return p.total;
}

fn element(e: u32) {
    let row = e / p.d;
    let col = e - row * p.d;
    let id = u32(clamp(ids[p.ids_off + row], 0, i32(p.vocab) - 1));
    out[p.o_off + e] = table[p.t_off + id * p.d + col];
}
