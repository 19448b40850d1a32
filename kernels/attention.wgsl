// Fused scaled dot-product attention: out = softmax(q k^T * scale + mask [+ causal]) v, flash-attention
// style (online softmax with a running max and sum, in base 2); the scores live only in registers and
// workgroup memory, one tile at a time, and nothing of size Tq x Tk is ever written to global memory.
//
// Bindings (group 0), all rank-4 (B, H, T, D) with any element strides (offsets and strides in P):
//   @binding(0) q     array<E> read        (B, H, Tq, D)
//   @binding(1) k     array<E> read        (B, H, Tk, D)
//   @binding(2) v     array<E> read        (B, H, Tk, Dv)
//   @binding(3) mask  array<T> read        (B, H, Tq, Tk) additive, -inf = never attend; a dummy when P.has_mask == 0
//   @binding(4) out   array<O> read_write  (B, H, Tq, Dv)
//   @binding(5) P     uniform Params
// DYN (decode shape only): q's rows sit at key positions p, p + 1, ... where p = kv_start[kv_off] is read
// from a storage buffer at @binding(5) (P moves to 6), and only the first min(p + Tq, Tk) keys exist: k and
// v are a fixed-size cache (Tk = its capacity), so one dispatch serves every decoding step.
// E is vec4<T> when VEC (q, k, v contiguous along D, D and Dv multiples of 4, every other stride and
// offset a multiple of 4: rows are read as whole vec4s), else T (any strides, read element by element);
// O likewise with VEC_O for out. Offsets and strides in P always count elements.
//
// Two shapes (TILE selects; accelkit/backends/webgpu/attention.py picks them):
//
// tile (prefill, encoders): a workgroup serves BQ query rows of one head: head bh = w / q_blocks, rows
//   BQ * (w % q_blocks) + ... (w = the flat workgroup index over grid x and y). WG = WGY x WGX
//   invocations; invocation t is lane tx = t % WGX of row group ty = t / WGX and owns the TM query rows
//   ty + WGY * m (m < TM). The key loop walks tiles of BK keys (under causal it stops after the last key
//   the block's last row may see); per tile:
//     1. the K tile (rows swizzled against bank conflicts: vec4 x of key row j sits at x ^ ((j/4) & SWZ))
//        and the V tile are copied to workgroup memory (Q was copied once, before the loop);
//     2. register-blocked scores: each invocation computes TM rows x (TN4 groups of 4 keys), the key
//        group 4 * (tx + WGX * n) .. + 3, as fma chains over the head dim (UX steps unrolled); scale
//        (pre-multiplied by log2(e)), mask and causal limit applied in registers;
//     3. the row max over the WGX lanes of a row: subgroup shuffles (SUBGROUPS: a row's lanes are
//        consecutive invocations inside one subgroup) or workgroup memory (red); p = exp2(s - m), the
//        running sums and accumulators rescaled by exp2(m_old - m_new);
//     4. p goes to workgroup memory (over the K tile when ALIAS: K is dead by then), and each invocation
//        adds p @ V for its TM rows x TD vec4 columns (columns tx + WGX * u) in registers.
//   4 barriers per tile. Lane partial sums of a row meet once, after the last tile.
//
// decode (Tq <= 4, e.g. a decoder step over a KV cache): a workgroup serves one query row; its TPR lanes
//   score keys c, c + TPR, ... of a tile of KB keys straight from global memory (no other row would
//   reuse a staged tile), reduce the max (a tree when TPR is large), turn scores into p in place, then
//   accumulate p @ V in vec4 registers: column lane cl = c % CL owns vec4 columns cl + CL * u, key group
//   g = c / CL takes keys g, g + KG, ...; the key groups are summed through workgroup memory at the end.
//
// Masked scores are MASKED (below every real score, which is clamped to >= FLOOR), so a row with nothing
// to attend keeps l == 0 and writes zeros; -inf in the mask is recognised from its bits (drivers may
// assume no inf/NaN); finite masks such as finfo.min stay finite, as on the CPU backend.
//
// Template: double-brace placeholders, then `//# if`/`//# for` directives (webgpu/wgsl.py render) unroll
// the per-invocation register blocks.

alias T = {{T}};

struct Params {
    tq: u32,
    tk: u32,
    d: u32,
    dv: u32,
    d4: u32,
    dv4: u32,
    heads: u32,
    q_blocks: u32,
    total: u32,
    causal: u32,
    has_mask: u32,
    scale: f32,  // softmax scale * log2(e)
    q_off: i32, q_sb: i32, q_sh: i32, q_st: i32, q_sd: i32,
    k_off: i32, k_sb: i32, k_sh: i32, k_st: i32, k_sd: i32,
    v_off: i32, v_sb: i32, v_sh: i32, v_st: i32, v_sd: i32,
    o_off: i32, o_sb: i32, o_sh: i32, o_st: i32, o_sd: i32,
    m_off: i32, m_sb: i32, m_sh: i32, m_sq: i32, m_sk: i32,
//# if {{DYN}}
    kv_off: i32,  // element of kv_start holding the position of the first query row
//# endif
}

@group(0) @binding(0) var<storage, read> q: array<{{E}}>;
@group(0) @binding(1) var<storage, read> k: array<{{E}}>;
@group(0) @binding(2) var<storage, read> v: array<{{E}}>;
@group(0) @binding(3) var<storage, read> mask: array<T>;
@group(0) @binding(4) var<storage, read_write> out: array<{{O}}>;
//# if {{DYN}}
@group(0) @binding(5) var<storage, read> kv_start: array<i32>;
//# endif
@group(0) @binding({{PB}}) var<uniform> P: Params;

const MASKED: f32 = -3.4e38;    // a score that must not count
const IS_MASKED: f32 = -3.2e38;
const FLOOR: f32 = -3.0e38;     // every real score is clamped to >= FLOOR
const MASK_MIN: f32 = -2.0e38;  // finite mask values are clamped here before the * log2(e)
const LOG2E: f32 = 1.4426950408889634;
const NEG_INF_BITS: u32 = 0xff800000u;

// ------------------------------------------------------------------------------ loads and stores
// load_?4(base, x): elements 4x .. 4x+3 of the row starting at element `base` (zeros past the head dim)
//# if {{VEC}}
//# for t in ("q", "k", "v")
fn load_$[t]4(base: i32, x: u32) -> vec4<T> {
    return $[t][u32(base >> 2u) + x];
}

//# endfor
//# else
//# for t, n in (("q", "d"), ("k", "d"), ("v", "dv"))
fn load_$[t]4(base: i32, x: u32) -> vec4<T> {
    var r = vec4<T>();
    for (var i = 0u; i < 4u; i++) {
        let d = x * 4u + i;
        if (d < P.$[n]) {
            r[i] = $[t][u32(base + i32(d) * P.$[t]_sd)];
        }
    }
    return r;
}

//# endfor
//# endif

// out columns 4x .. 4x+3 of the row starting at element `base` (x < P.dv4)
fn store_o4(base: i32, x: u32, val: vec4<f32>) {
//# if {{VEC_O}}
    out[u32(base >> 2u) + x] = vec4<T>(val);
//# else
    for (var e = 0u; e < 4u; e++) {
        let d = x * 4u + e;
        if (d < P.dv) {
            out[u32(base + i32(d) * P.o_sd)] = T(val[e]);
        }
    }
//# endif
}

// the score of key j for a query row, in log2 units: MASKED outside the row / causal limit or where the
// mask is -inf, else max(dot * scale * log2e + mask * log2e, FLOOR)
fn score(dot_qk: f32, row_ok: bool, j: u32, lim: u32, m_row: i32) -> f32 {
    var s = MASKED;
    if (row_ok && j < lim) {
        s = dot_qk * P.scale;
        if (P.has_mask != 0u) {
            let mv = f32(mask[u32(m_row + i32(j) * P.m_sk)]);
            if (bitcast<u32>(mv) == NEG_INF_BITS) {
                s = MASKED;
            } else {
                s = max(s + max(mv, MASK_MIN) * LOG2E, FLOOR);
            }
        } else {
            s = max(s, FLOOR);
        }
    }
    return s;
}

fn dot_acc(a: vec4<f32>, b: vec4<f32>, c: f32) -> f32 {
    return fma(a.w, b.w, fma(a.z, b.z, fma(a.y, b.y, fma(a.x, b.x, c))));
}

//# if {{TILE}}
// ------------------------------------------------------------------------------ tile
const BQ: u32 = {{BQ}}u;    // query rows per workgroup
const BK: u32 = {{BK}}u;    // keys per tile
const WGX: u32 = {{WGX}}u;  // lanes per query row
const WGY: u32 = {{WGY}}u;  // row groups
const WG: u32 = {{WG}}u;    // WGX * WGY
const DK4: u32 = {{DK4}}u;  // head-dim bucket of q/k (vec4s): the q_tile row stride
const KS: u32 = {{KS}}u;    // k_tile row stride (vec4s): DK4, or DK4 + 1 for small heads (no swizzle)
const SWZ: u32 = {{SWZ}}u;  // k_tile swizzle mask (7 when DK4 >= 8, else 0)
const VS: u32 = {{VS}}u;    // v_tile row stride (vec4s): the head-dim bucket of v
const PS: u32 = BK / 4u;    // p_tile row stride (vec4s)

var<workgroup> q_tile: array<vec4<T>, {{Q_LEN}}>;
var<workgroup> k_tile: array<vec4<{{KT}}>, {{K_LEN}}>;
//# if not {{ALIAS}}
var<workgroup> p_tile: array<vec4<f32>, {{P_LEN}}>;
//# endif
var<workgroup> v_tile: array<vec4<T>, {{V_LEN}}>;
//# if not {{SUBGROUPS}}
var<workgroup> red: array<f32, {{RED_LEN}}>;
//# endif

// this invocation's share of the K and V tiles: NKL + NVL vec4s, element e = t + l * WG of the tile
const NKL: u32 = {{NKL}}u;
const NVL: u32 = {{NVL}}u;

struct Staged {
    k: array<vec4<T>, NKL>,
    v: array<vec4<T>, NVL>,
}

// global -> registers, for the tile of keys jn .. jn + BK - 1 (zeros past kv_end and the head dims)
fn stage_load(t: u32, jn: u32, kv_end: u32, k_base: i32, v_base: i32) -> Staged {
    var r: Staged;
//# for l in range({{NKL}})
    {
        let e = t + $[l * {{WG}}]u;
        let rr = e / DK4;
        let x = e - rr * DK4;
        if (($[{{BK}} * {{DK4}} % {{WG}} == 0 and 'true' or 'false'] || e < BK * DK4) && jn + rr < kv_end && x < P.d4) {
            r.k[$[l]] = load_k4(k_base + i32(jn + rr) * P.k_st, x);
        }
    }
//# endfor
//# for l in range({{NVL}})
    {
        let e = t + $[l * {{WG}}]u;
        let rr = e / VS;
        let x = e - rr * VS;
        if (($[{{BK}} * {{VS}} % {{WG}} == 0 and 'true' or 'false'] || e < BK * VS) && jn + rr < kv_end && x < P.dv4) {
            r.v[$[l]] = load_v4(v_base + i32(jn + rr) * P.v_st, x);
        }
    }
//# endfor
    return r;
}

// registers -> the workgroup's K (swizzled) and V tiles
fn stage_store(t: u32, r: Staged) {
//# for l in range({{NKL}})
    {
        let e = t + $[l * {{WG}}]u;
        let rr = e / DK4;
        let x = e - rr * DK4;
        if ($[{{BK}} * {{DK4}} % {{WG}} == 0 and 'true' or 'false'] || e < BK * DK4) {
            k_tile[rr * KS + (x ^ ((rr >> 2u) & SWZ))] = vec4<{{KT}}>(r.k[$[l]]);
        }
    }
//# endfor
//# for l in range({{NVL}})
    {
        let e = t + $[l * {{WG}}]u;
        if ($[{{BK}} * {{VS}} % {{WG}} == 0 and 'true' or 'false'] || e < BK * VS) {
            v_tile[e] = r.v[$[l]];
        }
    }
//# endfor
}

//# if {{SUBGROUPS}}
// max / sum over the WGX lanes of a row (consecutive invocations of one subgroup)
fn lanes_max(x: f32) -> f32 {
    var r = x;
//# for s in {{SHUFFLES}}
    r = max(r, subgroupShuffleXor(r, $[s]u));
//# endfor
    return r;
}

fn lanes_sum(x: f32) -> f32 {
    var r = x;
//# for s in {{SHUFFLES}}
    r += subgroupShuffleXor(r, $[s]u);
//# endfor
    return r;
}
//# endif

const LANES: u32 = WG;

// the tile of query rows `block` of head (b, h); t: this invocation
fn attend(b: i32, h: i32, block: u32, t: u32) {
    let q0 = block * BQ;
    let tx = t % WGX;
    let ty = t / WGX;
    let shift = i32(P.tk) - i32(P.tq);  // causal: query i sees keys j <= i + shift
    var kv_end = P.tk;  // keys this block needs at all
    if (P.causal != 0u) {
        let last = i32(min(P.tq, q0 + BQ)) - 1;
        kv_end = u32(clamp(last + shift + 1, 0, i32(P.tk)));
    }
    let q_base = P.q_off + b * P.q_sb + h * P.q_sh;
    let k_base = P.k_off + b * P.k_sb + h * P.k_sh;
    let v_base = P.v_off + b * P.v_sb + h * P.v_sh;
    let m_base = P.m_off + b * P.m_sb + h * P.m_sh;

    // this invocation's rows: index, in range, causal key limit, mask row, running max / sum, accumulators
//# for m in range({{TM}})
    let i$[m] = q0 + ty + $[m * {{WGY}}]u;
    let ok$[m] = i$[m] < P.tq;
    var lim$[m] = P.tk;
    if (P.causal != 0u) {
        lim$[m] = u32(clamp(i32(i$[m]) + shift + 1, 0, i32(P.tk)));
    }
    let mrow$[m] = m_base + i32(i$[m]) * P.m_sq;
//# if {{RSWZ}}
    let rswz$[m] = (ty + $[m * {{WGY}}]u) & {{RSWZ}}u;
//# endif
    var mrun$[m] = MASKED;
    var lrun$[m] = 0.0;
//# for u in range({{TD}})
    var acc$[m]_$[u] = vec4<f32>(0.0);
//# endfor
//# endfor
//# if {{RSWZ}}
    // (RSWZ) the rows of q_tile and p are swizzled like K's: vec4 x of block row r sits at x ^ (r & RSWZ),
    // so that the row groups of one subgroup, which read the same column of rows DK4 or BK / 4 vec4s
    // apart (the same banks), read different banks; rswz above is r & RSWZ for this invocation's rows
//# endif
    // this invocation's key groups: their k_tile row offsets and swizzles
//# for n in range({{TN4}})
    let krow$[n] = (tx + $[n * {{WGX}}]u) * (4u * KS);
    let kswz$[n] = (tx + $[n * {{WGX}}]u) & SWZ;
//# endfor

    // Q, once (the first tile's barrier publishes it)
    for (var e = t; e < BQ * DK4; e += WG) {
        let rr = e / DK4;
        let x = e - rr * DK4;
        var val = vec4<T>();
        if (q0 + rr < P.tq && x < P.d4) {
            val = load_q4(q_base + i32(q0 + rr) * P.q_st, x);
        }
//# if {{RSWZ}}
        q_tile[rr * DK4 + (x ^ (rr & {{RSWZ}}u))] = val;
//# else
        q_tile[e] = val;
//# endif
    }

    for (var j0 = 0u; j0 < kv_end; j0 += BK) {
        // 1. stage the K and V tiles (rows past kv_end and columns past the head dims are zeros). (Loading
        //    the next tile into registers while this one is used measured no faster on an H100.)
        stage_store(t, stage_load(t, j0, kv_end, k_base, v_base));
        workgroupBarrier();

        // 2. scores: TM rows x TN4 groups of 4 keys
//# for m in range({{TM}})
//# for n in range({{TN4}})
        var s$[m]_$[n] = vec4<f32>(0.0);
//# endfor
//# endfor
        for (var x0 = 0u; x0 < DK4; x0 += {{UX}}u) {
//# for xx in range({{UX}})
            {
                let x = x0 + $[xx]u;
//# for m in range({{TM}})
//# if {{RSWZ}}
                let qv$[m] = vec4<f32>(q_tile[(ty + $[m * {{WGY}}]u) * DK4 + (x ^ rswz$[m])]);
//# else
                let qv$[m] = vec4<f32>(q_tile[(ty + $[m * {{WGY}}]u) * DK4 + x]);
//# endif
//# endfor
//# for n in range({{TN4}})
//# for e in range(4)
                {
                    let kv = vec4<f32>(k_tile[krow$[n] + $[e]u * KS + (x ^ kswz$[n])]);
//# for m in range({{TM}})
                    s$[m]_$[n][$[e]] = dot_acc(qv$[m], kv, s$[m]_$[n][$[e]]);
//# endfor
                }
//# endfor
//# endfor
            }
//# endfor
        }

        // scale, mask, causal limit; this lane's row maxima
//# for m in range({{TM}})
        var mx$[m] = MASKED;
//# for n in range({{TN4}})
        {
            let jb = j0 + (tx + $[n * {{WGX}}]u) * 4u;
            var sv = s$[m]_$[n];
//# for e in range(4)
            sv[$[e]] = score(sv[$[e]], ok$[m], jb + $[e]u, lim$[m], mrow$[m]);
//# endfor
            s$[m]_$[n] = sv;
            mx$[m] = max(mx$[m], max(max(sv.x, sv.y), max(sv.z, sv.w)));
        }
//# endfor
//# endfor

        // 3. row maxima over the row's lanes
//# if {{SUBGROUPS}}
//# for m in range({{TM}})
        mx$[m] = lanes_max(mx$[m]);
//# endfor
//# else
//# for m in range({{TM}})
        red[(ty + $[m * {{WGY}}]u) * WGX + tx] = mx$[m];
//# endfor
        workgroupBarrier();  // (also: every lane is done reading k_tile)
//# for m in range({{TM}})
        for (var c = 0u; c < WGX; c++) {
            mx$[m] = max(mx$[m], red[(ty + $[m * {{WGY}}]u) * WGX + c]);
        }
//# endfor
//# endif
        // p = exp2(s - m_new); rescale what was accumulated
//# for m in range({{TM}})
        {
            let m_new = max(mrun$[m], mx$[m]);
            let corr = exp2(mrun$[m] - m_new);
            mrun$[m] = m_new;
            var lsum = 0.0;
//# for n in range({{TN4}})
            {
                let sv = s$[m]_$[n];
                let p = select(exp2(sv - vec4<f32>(m_new)), vec4<f32>(0.0), sv < vec4<f32>(IS_MASKED));
                s$[m]_$[n] = p;
                lsum += (p.x + p.y) + (p.z + p.w);
            }
//# endfor
            lrun$[m] = lrun$[m] * corr + lsum;
//# for u in range({{TD}})
            acc$[m]_$[u] *= corr;
//# endfor
        }
//# endfor

        // 4. p to workgroup memory, then p @ V
//# if {{ALIAS}} and {{SUBGROUPS}}
        workgroupBarrier();  // p overwrites k_tile: every lane must be done reading it
//# endif
//# for m in range({{TM}})
//# for n in range({{TN4}})
//# if {{RSWZ}}
        {{P_ARR}}[(ty + $[m * {{WGY}}]u) * PS + ((tx + $[n * {{WGX}}]u) ^ rswz$[m])] = s$[m]_$[n];
//# else
        {{P_ARR}}[(ty + $[m * {{WGY}}]u) * PS + tx + $[n * {{WGX}}]u] = s$[m]_$[n];
//# endif
//# endfor
//# endfor
        workgroupBarrier();
        let nk4 = (min(BK, kv_end - j0) + 3u) / 4u;
        for (var j4 = 0u; j4 < nk4; j4++) {
//# for m in range({{TM}})
//# if {{RSWZ}}
            let pv$[m] = {{P_ARR}}[(ty + $[m * {{WGY}}]u) * PS + (j4 ^ rswz$[m])];
//# else
            let pv$[m] = {{P_ARR}}[(ty + $[m * {{WGY}}]u) * PS + j4];
//# endif
//# endfor
//# for e in range(4)
//# for u in range({{TD}})
//# if {{DV4}} % {{WGX}} == 0
            let vv$[e]_$[u] = vec4<f32>(v_tile[(j4 * 4u + $[e]u) * VS + tx + $[u * {{WGX}}]u]);
//# else
            let vv$[e]_$[u] = vec4<f32>(v_tile[(j4 * 4u + $[e]u) * VS + min(tx + $[u * {{WGX}}]u, VS - 1u)]);
//# endif
//# endfor
//# for m in range({{TM}})
//# for u in range({{TD}})
            acc$[m]_$[u] = fma(vec4<f32>(pv$[m][$[e]]), vv$[e]_$[u], acc$[m]_$[u]);
//# endfor
//# endfor
//# endfor
        }
        workgroupBarrier();
    }

    // the row sums over the row's lanes, then out = acc / l (zeros where nothing was attended)
//# if {{SUBGROUPS}}
//# for m in range({{TM}})
    lrun$[m] = lanes_sum(lrun$[m]);
//# endfor
//# else
//# for m in range({{TM}})
    red[(ty + $[m * {{WGY}}]u) * WGX + tx] = lrun$[m];
//# endfor
    workgroupBarrier();
//# for m in range({{TM}})
    lrun$[m] = 0.0;
    for (var c = 0u; c < WGX; c++) {
        lrun$[m] += red[(ty + $[m * {{WGY}}]u) * WGX + c];
    }
//# endfor
//# endif
//# for m in range({{TM}})
    if (ok$[m]) {
        let inv = select(0.0, 1.0 / lrun$[m], lrun$[m] > 0.0);
        let ob = P.o_off + b * P.o_sb + h * P.o_sh + i32(i$[m]) * P.o_st;
//# for u in range({{TD}})
        if (tx + $[u * {{WGX}}]u < P.dv4) {
            store_o4(ob, tx + $[u * {{WGX}}]u, acc$[m]_$[u] * inv);
        }
//# endfor
    }
//# endfor
}
//# else
// ------------------------------------------------------------------------------ decode
const TPR: u32 = {{TPR}}u;  // lanes (all serve the one query row)
const KB: u32 = {{KB}}u;    // keys per tile
const CL: u32 = {{CL}}u;    // column lanes (vec4 columns of v are dealt over them)
const KG: u32 = {{KG}}u;    // key groups in the p @ V step: TPR / CL
const DK4: u32 = {{DK4}}u;  // head-dim bucket of q/k (vec4s)
const DC4: u32 = {{DC4}}u;  // vec4 accumulators per invocation
const TREE: bool = {{TREE}};

var<workgroup> q_row: array<vec4<T>, DK4>;
var<workgroup> s_tile: array<f32, KB>;
var<workgroup> pmax: array<f32, TPR>;
var<workgroup> red_acc: array<vec4<f32>, {{RED_LEN}}>;
var<workgroup> red_sum: array<f32, {{REDL_LEN}}>;

// the keys that exist: all Tk, or (DYN) those before the first query row's position + Tq
fn key_count() -> u32 {
//# if {{DYN}}
    return min(u32(max(kv_start[P.kv_off], 0)) + P.tq, P.tk);
//# else
    return P.tk;
//# endif
}

const LANES: u32 = TPR;

// query row i of head (b, h) (q_blocks == tq: one row per workgroup); c: this lane
fn attend(b: i32, h: i32, i: u32, c: u32) {
    let cl = c % CL;
    let g = c / CL;
    let tk = key_count();
    let shift = i32(tk) - i32(P.tq);
    var lim = tk;  // keys this row may see
    if (P.causal != 0u) {
        lim = u32(clamp(i32(i) + shift + 1, 0, i32(tk)));
    }
    let k_base = P.k_off + b * P.k_sb + h * P.k_sh;
    let v_base = P.v_off + b * P.v_sb + h * P.v_sh;
    let m_row = P.m_off + b * P.m_sb + h * P.m_sh + i32(i) * P.m_sq;

    for (var x = c; x < DK4; x += TPR) {
        var val = vec4<T>();
        if (x < P.d4) {
            val = load_q4(P.q_off + b * P.q_sb + h * P.q_sh + i32(i) * P.q_st, x);
        }
        q_row[x] = val;
    }
    workgroupBarrier();

    var m_run = MASKED;
    var l_run = 0.0;
    var acc: array<vec4<f32>, DC4>;

    for (var j0 = 0u; j0 < lim; j0 += KB) {
        // 1. scores of this lane's keys, and their max
        var pm = MASKED;
        for (var kk = c; kk < KB; kk += TPR) {
            let j = j0 + kk;
            var dot_qk = 0.0;
            if (j < lim) {
                let kr = k_base + i32(j) * P.k_st;
                for (var x = 0u; x < P.d4; x++) {
                    dot_qk = dot_acc(vec4<f32>(q_row[x]), vec4<f32>(load_k4(kr, x)), dot_qk);
                }
            }
            let s = score(dot_qk, true, j, lim, m_row);
            s_tile[kk] = s;
            pm = max(pm, s);
        }
        pmax[c] = pm;
        workgroupBarrier();

        // 2. the new running max; scores -> probabilities in place
        var m_new = m_run;
        if (TREE) {
            for (var span = TPR / 2u; span > 0u; span = span / 2u) {
                if (c < span) {
                    pmax[c] = max(pmax[c], pmax[c + span]);
                }
                workgroupBarrier();
            }
            m_new = max(m_new, pmax[0]);
        } else {
            for (var cc = 0u; cc < TPR; cc++) {
                m_new = max(m_new, pmax[cc]);
            }
        }
        for (var kk = c; kk < KB; kk += TPR) {
            let s = s_tile[kk];
            s_tile[kk] = select(exp2(s - m_new), 0.0, s < IS_MASKED);
        }
        workgroupBarrier();

        // 3. rescale what was accumulated, then add p @ V for this lane's keys and columns
        let corr = exp2(m_run - m_new);
        m_run = m_new;
        l_run = l_run * corr;
        for (var u = 0u; u < DC4; u++) {
            acc[u] = acc[u] * corr;
        }
        let nk = min(KB, lim - j0);
        for (var kk = g; kk < nk; kk += KG) {
            let p = s_tile[kk];
            if (p > 0.0) {
                l_run += p;
                let vr = v_base + i32(j0 + kk) * P.v_st;
                for (var u = 0u; u < DC4; u++) {
                    let x = cl + CL * u;
                    if (x < P.dv4) {
                        acc[u] += p * vec4<f32>(load_v4(vr, x));
                    }
                }
            }
        }
        workgroupBarrier();
    }

    // sum the key groups' partial results
    if (KG > 1u) {
        for (var u = 0u; u < DC4; u++) {
            red_acc[c * DC4 + u] = acc[u];
        }
        red_sum[c] = l_run;
        workgroupBarrier();
        if (g == 0u) {
            for (var gg = 1u; gg < KG; gg++) {
                let other = gg * CL + cl;
                for (var u = 0u; u < DC4; u++) {
                    acc[u] += red_acc[other * DC4 + u];
                }
                l_run += red_sum[other];
            }
        }
    }

    if (g == 0u) {
        let inv = select(0.0, 1.0 / l_run, l_run > 0.0);
        let ob = P.o_off + b * P.o_sb + h * P.o_sh + i32(i) * P.o_st;
        for (var u = 0u; u < DC4; u++) {
            let x = cl + CL * u;
            if (x < P.dv4) {
                store_o4(ob, x, acc[u] * inv);
            }
        }
    }
}
//# endif

// ------------------------------------------------------------------------------ entry point
// One workgroup per (batch, head, block of query rows): flat workgroup index w = wid.x + wid.y * nwg.x
// (grid_1d) < P.total = batch * heads * q_blocks; `attend` is the tile or the decode kernel above.
@compute @workgroup_size(LANES)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let w = wid.x + wid.y * nwg.x;
    if (w >= P.total) {
        return;
    }
    let bh = w / P.q_blocks;
    attend(i32(bh / P.heads), i32(bh % P.heads), w % P.q_blocks, lane);
}
