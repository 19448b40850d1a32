// Fused scaled dot-product attention: out = softmax(q k^T * scale + mask [+ causal]) v, flash-attention
// style (online softmax with a running max and sum); the scores live only in workgroup memory, one tile at
// a time, and nothing of size Tq x Tk is ever written to global memory.
//
// Bindings (group 0), all rank-4 (B, H, T, D) with any element strides (offsets and strides in P):
//   @binding(0) q     array<{{T}}> read        (B, H, Tq, D)
//   @binding(1) k     array<{{T}}> read        (B, H, Tk, D)
//   @binding(2) v     array<{{T}}> read        (B, H, Tk, Dv)
//   @binding(3) mask  array<{{T}}> read        (B, H, Tq, Tk) additive, -inf = never attend; a dummy when P.has_mask == 0
//   @binding(4) out   array<{{T}}> read_write  (B, H, Tq, Dv)
//   @binding(5) P     uniform Params
//
// Workgroup layout: WG = QB * TPR invocations, flat over x and y (grid_1d). Workgroup w serves head
// bh = w / q_blocks and the QB query rows starting at QB * (w % q_blocks); invocation t is lane
// c = t % TPR of query row r = t / TPR. The key loop walks tiles of KB keys (under causal it stops after
// the last key the block's last row may see); per tile:
//   1. (STAGE) the K and V tiles are copied into workgroup memory (the "tile" shape; the "decode" shape,
//      QB = 1, reads K and V straight from global memory since no other row would reuse them);
//   2. each lane scores keys c, c + TPR, ... of its row into s_tile and leaves its partial max in pmax;
//   3. the row max is reduced (a loop over TPR partials, or a tree when TPR is large) and the row's lanes
//      turn their scores into p = exp(s - m) in place;
//   4. lanes accumulate p @ V in vec4 registers: column lane cl = c % CL owns the vec4 columns cl + CL*u,
//      key group g = c / CL takes keys g, g + KG, ... (KG > 1 only in the decode shape; the groups are
//      summed through workgroup memory once, after the last tile).
// Masked scores are MASKED (below every real score, which is clamped to >= FLOOR), so a row with nothing
// to attend keeps l == 0 and writes zeros; finite masks such as finfo.min stay finite as on the CPU.

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
    scale: f32,
    q_off: i32, q_sb: i32, q_sh: i32, q_st: i32, q_sd: i32,
    k_off: i32, k_sb: i32, k_sh: i32, k_st: i32, k_sd: i32,
    v_off: i32, v_sb: i32, v_sh: i32, v_st: i32, v_sd: i32,
    o_off: i32, o_sb: i32, o_sh: i32, o_st: i32, o_sd: i32,
    m_off: i32, m_sb: i32, m_sh: i32, m_sq: i32, m_sk: i32,
}

@group(0) @binding(0) var<storage, read> q: array<{{T}}>;
@group(0) @binding(1) var<storage, read> k: array<{{T}}>;
@group(0) @binding(2) var<storage, read> v: array<{{T}}>;
@group(0) @binding(3) var<storage, read> mask: array<{{T}}>;
@group(0) @binding(4) var<storage, read_write> out: array<{{T}}>;
@group(0) @binding(5) var<uniform> P: Params;

const QB: u32 = {{QB}}u;    // query rows per workgroup
const TPR: u32 = {{TPR}}u;  // lanes per query row
const WG: u32 = {{WG}}u;    // QB * TPR
const KB: u32 = {{KB}}u;    // keys per tile
const CL: u32 = {{CL}}u;    // column lanes (vec4 columns of v are dealt over them)
const KG: u32 = {{KG}}u;    // key groups in the p @ V step: TPR / CL
const DKS: u32 = {{DKS}}u;  // vec4 row stride of q_tile / k_tile (head-dim bucket + 1 against bank conflicts)
const DVS: u32 = {{DVS}}u;  // vec4 row stride of v_tile
const SKS: u32 = {{SKS}}u;  // row stride of s_tile (KB, + 1 when several rows share a workgroup)
const DC4: u32 = {{DC4}}u;  // vec4 accumulators per invocation
const STAGE: bool = {{STAGE}};
const TREE: bool = {{TREE}};
const MASKED: f32 = -3.4e38;
const FLOOR: f32 = -3.0e38;
const IS_MASKED: f32 = -3.2e38;
const NEG_INF_BITS: u32 = 0xff800000u;

var<workgroup> q_tile: array<vec4<{{T}}>, {{Q_LEN}}>;
var<workgroup> k_tile: array<vec4<{{T}}>, {{K_LEN}}>;
var<workgroup> v_tile: array<vec4<{{T}}>, {{V_LEN}}>;
var<workgroup> s_tile: array<f32, {{S_LEN}}>;
var<workgroup> pmax: array<f32, {{WG}}>;
var<workgroup> red_acc: array<vec4<f32>, {{RED_LEN}}>;
var<workgroup> red_sum: array<f32, {{REDL_LEN}}>;

// Elements 4x .. 4x+3 of a row starting at element `base` (zeros past the head dim).
fn q_vec(base: i32, x: u32) -> vec4<{{T}}> {
    var r = vec4<{{T}}>();
    for (var i = 0u; i < 4u; i++) {
        let d = x * 4u + i;
        if (d < P.d) {
            r[i] = q[u32(base + i32(d) * P.q_sd)];
        }
    }
    return r;
}

fn k_vec(base: i32, x: u32) -> vec4<{{T}}> {
    var r = vec4<{{T}}>();
    for (var i = 0u; i < 4u; i++) {
        let d = x * 4u + i;
        if (d < P.d) {
            r[i] = k[u32(base + i32(d) * P.k_sd)];
        }
    }
    return r;
}

fn v_vec(base: i32, x: u32) -> vec4<{{T}}> {
    var r = vec4<{{T}}>();
    for (var i = 0u; i < 4u; i++) {
        let d = x * 4u + i;
        if (d < P.dv) {
            r[i] = v[u32(base + i32(d) * P.v_sd)];
        }
    }
    return r;
}

@compute @workgroup_size({{WG}})
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let w = wid.x + wid.y * nwg.x;
    if (w >= P.total) {
        return;
    }
    let bh = w / P.q_blocks;
    let q0 = (w % P.q_blocks) * QB;
    let b = i32(bh / P.heads);
    let h = i32(bh % P.heads);
    let r = t / TPR;
    let c = t % TPR;
    let cl = c % CL;
    let g = c / CL;
    let i = q0 + r;
    let row_ok = i < P.tq;
    let shift = i32(P.tk) - i32(P.tq);  // causal: query i sees keys j <= i + shift

    // keys this block needs at all (kv_end) and this row may see (lim)
    var kv_end = P.tk;
    var lim = P.tk;
    if (P.causal != 0u) {
        let last = i32(min(P.tq, q0 + QB)) - 1;
        kv_end = u32(clamp(last + shift + 1, 0, i32(P.tk)));
        lim = u32(clamp(i32(i) + shift + 1, 0, i32(P.tk)));
    }

    let q_base = P.q_off + b * P.q_sb + h * P.q_sh;
    let k_base = P.k_off + b * P.k_sb + h * P.k_sh;
    let v_base = P.v_off + b * P.v_sb + h * P.v_sh;
    let m_row = P.m_off + b * P.m_sb + h * P.m_sh + i32(i) * P.m_sq;

    for (var e = t; e < QB * P.d4; e += WG) {
        let rr = e / P.d4;
        let x = e - rr * P.d4;
        var val = vec4<{{T}}>();
        if (q0 + rr < P.tq) {
            val = q_vec(q_base + i32(q0 + rr) * P.q_st, x);
        }
        q_tile[rr * DKS + x] = val;
    }
    workgroupBarrier();

    var m_run = MASKED;
    var l_run = 0.0;
    var acc: array<vec4<f32>, {{DC4}}>;

    for (var j0 = 0u; j0 < kv_end; j0 += KB) {
        // 1. stage the K and V tiles (rows past kv_end are zeros)
        if (STAGE) {
            for (var e = t; e < KB * P.d4; e += WG) {
                let rr = e / P.d4;
                let x = e - rr * P.d4;
                var val = vec4<{{T}}>();
                if (j0 + rr < kv_end) {
                    val = k_vec(k_base + i32(j0 + rr) * P.k_st, x);
                }
                k_tile[rr * DKS + x] = val;
            }
            for (var e = t; e < KB * P.dv4; e += WG) {
                let rr = e / P.dv4;
                let x = e - rr * P.dv4;
                var val = vec4<{{T}}>();
                if (j0 + rr < kv_end) {
                    val = v_vec(v_base + i32(j0 + rr) * P.v_st, x);
                }
                v_tile[rr * DVS + x] = val;
            }
            workgroupBarrier();
        }

        // 2. scores of this lane's keys, and their max
        var pm = MASKED;
        for (var kk = c; kk < KB; kk += TPR) {
            let j = j0 + kk;
            var s = MASKED;
            if (row_ok && j < lim) {
                var acc_dot = 0.0;
                for (var x = 0u; x < P.d4; x++) {
                    var kv: vec4<{{T}}>;
                    if (STAGE) {
                        kv = k_tile[kk * DKS + x];
                    } else {
                        kv = k_vec(k_base + i32(j) * P.k_st, x);
                    }
                    acc_dot += dot(vec4<f32>(q_tile[r * DKS + x]), vec4<f32>(kv));
                }
                s = acc_dot * P.scale;
                if (P.has_mask != 0u) {
                    let mv = f32(mask[u32(m_row + i32(j) * P.m_sk)]);
                    if (bitcast<u32>(mv) == NEG_INF_BITS) {
                        s = MASKED;
                    } else {
                        s = max(s + mv, FLOOR);
                    }
                } else {
                    s = max(s, FLOOR);
                }
            }
            s_tile[r * SKS + kk] = s;
            pm = max(pm, s);
        }
        pmax[t] = pm;
        workgroupBarrier();

        // 3. the row's new running max; scores -> probabilities in place
        var m_new = m_run;
        if (TREE) {
            for (var span = TPR / 2u; span > 0u; span = span / 2u) {
                if (c < span) {
                    pmax[t] = max(pmax[t], pmax[t + span]);
                }
                workgroupBarrier();
            }
            m_new = max(m_new, pmax[r * TPR]);
        } else {
            for (var cc = 0u; cc < TPR; cc++) {
                m_new = max(m_new, pmax[r * TPR + cc]);
            }
        }
        for (var kk = c; kk < KB; kk += TPR) {
            let s = s_tile[r * SKS + kk];
            s_tile[r * SKS + kk] = select(exp(max(s - m_new, -1.0e4)), 0.0, s < IS_MASKED);
        }
        workgroupBarrier();

        // 4. rescale what was accumulated, then add p @ V for this lane's keys and columns
        let corr = exp(max(m_run - m_new, -1.0e4));
        m_run = m_new;
        l_run = l_run * corr;
        for (var u = 0u; u < DC4; u++) {
            acc[u] = acc[u] * corr;
        }
        for (var kk = g; kk < KB; kk += KG) {
            let p = s_tile[r * SKS + kk];
            if (p > 0.0) {
                l_run += p;
                for (var u = 0u; u < DC4; u++) {
                    let x = cl + CL * u;
                    if (x < P.dv4) {
                        var vv: vec4<{{T}}>;
                        if (STAGE) {
                            vv = v_tile[kk * DVS + x];
                        } else {
                            vv = v_vec(v_base + i32(j0 + kk) * P.v_st, x);
                        }
                        acc[u] += p * vec4<f32>(vv);
                    }
                }
            }
        }
        workgroupBarrier();
    }

    // sum the key groups' partial results (decode shape)
    if (KG > 1u) {
        for (var u = 0u; u < DC4; u++) {
            red_acc[t * DC4 + u] = acc[u];
        }
        red_sum[t] = l_run;
        workgroupBarrier();
        if (g == 0u) {
            for (var gg = 1u; gg < KG; gg++) {
                let other = r * TPR + gg * CL + cl;
                for (var u = 0u; u < DC4; u++) {
                    acc[u] += red_acc[other * DC4 + u];
                }
                l_run += red_sum[other];
            }
        }
    }

    if (row_ok && g == 0u) {
        let inv = select(0.0, 1.0 / l_run, l_run > 0.0);
        let o_base = P.o_off + b * P.o_sb + h * P.o_sh + i32(i) * P.o_st;
        for (var u = 0u; u < DC4; u++) {
            let x = cl + CL * u;
            for (var e = 0u; e < 4u; e++) {
                let d = x * 4u + e;
                if (x < P.dv4 && d < P.dv) {
                    out[u32(o_base + i32(d) * P.o_sd)] = {{T}}(acc[u][e] * inv);
                }
            }
        }
    }
}
