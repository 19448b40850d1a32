// Reductions over the middle axis of a contiguous (outer, n, inner) tensor into a contiguous (outer, inner):
// sum, mean, max, min, argmax (first index of the maximum, as i32; NaN counts as the maximum, as in numpy).
//
// Bindings (group 0):
//   @binding(0) x    array<TX> read         (outer, n, inner) from element x_off
//   @binding(1) out  array<TO> read_write   (outer, inner) from element o_off
//   @binding(2) p    uniform Params
//
// Workgroup layout: WG invocations serve WG / L outputs, L lanes each (flat workgroup index
// wid.x + wid.y * nwg.x, grid_1d). Lane l of an output takes k = l, l + L, ... < n (four loads in
// flight at a time), then the L partial results meet in a tree over workgroup memory (sequential
// addressing: no bank conflicts).
//   rows   (COLS = false, inner == 1): the L lanes of an output are neighbours (lane = lid % L), so a
//          row is read coalesced by its lanes.
//   columns (COLS = true, inner > 1): neighbouring invocations take neighbouring outputs (slot = lid % STEP)
//          and the L = WG / STEP lanes of an output are slices of n (lane = lid / STEP), so each step
//          reads STEP consecutive elements.
// Sums accumulate in f32 with Kahan compensation (or wrap in i32 for int32 sums, as numpy's do).

alias TX = {{TX}};
alias TO = {{TO}};
alias A = {{A}};               // accumulator type

const WG: u32 = {{WG}}u;
const OP: u32 = {{OP}}u;       // 0 sum, 1 mean, 2 max, 3 min, 4 argmax
const COLS: bool = {{COLS}};
const L: u32 = {{L}}u;         // lanes per output (a power of two)
const STEP: u32 = {{STEP}}u;   // distance between the lanes of one output in the workgroup
const NONE: u32 = 0xffffffffu;

struct Params {
    outputs: u32,   // outer * inner
    n: u32,
    inner: u32,
    x_off: u32,
    o_off: u32,
}

@group(0) @binding(0) var<storage, read> x: array<TX>;
@group(0) @binding(1) var<storage, read_write> out: array<TO>;
@group(0) @binding(2) var<uniform> p: Params;

var<workgroup> red_v: array<A, WG>;
var<workgroup> red_i: array<u32, WG>;

fn is_nan(v: A) -> bool {
    {{IS_NAN}}
}

fn lowest() -> A {
    {{LOWEST}}
}

fn highest() -> A {
    {{HIGHEST}}
}

fn nan_of(a: A, b: A) -> A {
    return select(b, a, is_nan(a));
}

fn max_nan(a: A, b: A) -> A {
    if (is_nan(a) || is_nan(b)) {
        return nan_of(a, b);
    }
    return max(a, b);
}

fn min_nan(a: A, b: A) -> A {
    if (is_nan(a) || is_nan(b)) {
        return nan_of(a, b);
    }
    return min(a, b);
}

// a beats b for argmax: larger, or NaN against a number
fn greater(a: A, b: A) -> bool {
    return a > b || (is_nan(a) && !is_nan(b));
}

fn same(a: A, b: A) -> bool {
    return a == b || (is_nan(a) && is_nan(b));
}

fn identity() -> A {
    if (OP == 2u || OP == 4u) {
        return lowest();
    }
    if (OP == 3u) {
        return highest();
    }
    return A(0);
}

// what one lane has seen so far
struct State {
    acc: A,
    comp: A,    // Kahan compensation of a sum
    idx: u32,   // argmax: where acc was first seen
}

fn take(st: ptr<function, State>, v: A, k: u32) {
    if (OP <= 1u) {
        let y = v - (*st).comp;
        let t = (*st).acc + y;
        (*st).comp = (t - (*st).acc) - y;
        if (is_nan((*st).comp)) {   // an infinity went by: nothing left to compensate
            (*st).comp = A(0);
        }
        (*st).acc = t;
    } else if (OP == 2u) {
        (*st).acc = max_nan((*st).acc, v);
    } else if (OP == 3u) {
        (*st).acc = min_nan((*st).acc, v);
    } else if ((*st).idx == NONE || greater(v, (*st).acc)) {
        (*st).acc = v;
        (*st).idx = k;
    }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
    var lane = lid % L;
    var slot = lid / L;
    if (COLS) {
        lane = lid / STEP;
        slot = lid % STEP;
    }
    let o = (wid.x + wid.y * nwg.x) * (WG / L) + slot;   // output index in (outer * inner)
    let live = o < p.outputs;
    let inner = p.inner;
    let n = p.n;
    let base = p.x_off + (o / inner) * n * inner + o % inner;

    var st = State(identity(), A(0), NONE);
    if (live) {
        var k = lane;
        for (; k + 3u * L < n; k += 4u * L) {
            let v0 = A(x[base + k * inner]);
            let v1 = A(x[base + (k + L) * inner]);
            let v2 = A(x[base + (k + 2u * L) * inner]);
            let v3 = A(x[base + (k + 3u * L) * inner]);
            take(&st, v0, k);
            take(&st, v1, k + L);
            take(&st, v2, k + 2u * L);
            take(&st, v3, k + 3u * L);
        }
        for (; k < n; k += L) {
            take(&st, A(x[base + k * inner]), k);
        }
    }
    red_v[lid] = st.acc - st.comp;
    red_i[lid] = st.idx;
    workgroupBarrier();
    for (var s = L / 2u; s > 0u; s = s >> 1u) {
        if (lane < s) {
            let a = red_v[lid];
            let b = red_v[lid + s * STEP];
            if (OP <= 1u) {
                red_v[lid] = a + b;
            } else if (OP == 2u) {
                red_v[lid] = max_nan(a, b);
            } else if (OP == 3u) {
                red_v[lid] = min_nan(a, b);
            } else {
                let ia = red_i[lid];
                let ib = red_i[lid + s * STEP];
                if (ia == NONE || (ib != NONE && (greater(b, a) || (same(a, b) && ib < ia)))) {
                    red_v[lid] = b;
                    red_i[lid] = ib;
                }
            }
        }
        workgroupBarrier();
    }
    if (lane == 0u && live) {
        var r = red_v[lid];
        if (OP == 1u) {
            r = r / A(n);
        }
        if (OP == 4u) {
            out[p.o_off + o] = TO(red_i[lid]);
        } else {
            out[p.o_off + o] = TO(r);
        }
    }
}
