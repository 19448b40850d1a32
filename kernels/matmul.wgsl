// The matmul family: c = act(a @ b + bias) over a batch, accumulating in f32.
//
// Bindings (group 0):
//   0 a     (read)        (batch, M, K), any strides (batch stride may be 0)
//   1 b     (read)        (batch, K, N), any strides (a linear layer's weight.T has strides (.., 1, K))
//   2 bias  (read)        (N,) or a dummy buffer when HAS_BIAS is 0
//   3 c     (read_write)  the output (batch, M, N); element (m, n) at o_off + m*o_sm + n*o_sn
//   4 p     (uniform)     Params
// When the planner transposes the problem (out.T = b.T @ a.T, for N <= 8 < M), the logical a is
// read from binding 1 and b from binding 0 (A_SRC, B_SRC).
// Tensors are bound whole: element offsets and strides travel in Params, as u32 (a negative stride
// is its two's complement: u32 arithmetic wraps, so offset + i*stride still lands right). Where a
// binding holds vec4<T>, the planner has divided its offset and its non-contiguous strides by 4.
//
// Entry points, chosen by accelkit/backends/webgpu/matmul.py:
//   tiled     one workgroup per BM x BN tile of c (tiles in grouped order for cache reuse, flat
//             index over grid x/y); (BM/TM)*(BN/TN) invocations, each holding a TM x TN block of
//             accumulators in registers. A and B tiles go through workgroup memory, double
//             buffered; the next K-tile is loaded into registers while this one is multiplied.
//   gemv_dot  few rows (M <= 8) with b contiguous along K (a linear layer): 256 invocations =
//             COLS columns x LANES invocations striding along K; tree reduction in workgroup memory.
//   gemv_axpy few rows with b contiguous along N (or any strides): 256 invocations = 64 column
//             groups of 4 x KSPLIT slices of K; the slices are summed in workgroup memory.
// Grid z walks the batch (looping when the batch exceeds the per-dimension workgroup limit).
//
// Template: double-brace placeholders are filled by accelkit.backends.wgsl.render; `//# if EXPR`,
// `//# else`, `//# endif` keep or drop code, and `//# for i in range(N)` ... `//# endfor` repeat
// their body with `$[expr]` replaced, so the inner loops below reach the driver fully unrolled.

alias T = {{T}};

struct Params {
    M: u32, N: u32, K: u32, batch: u32,
    a_off: u32, a_sb: u32, a_sm: u32, a_sk: u32,
    b_off: u32, b_sb: u32, b_sk: u32, b_sn: u32,
    o_off: u32, o_sb: u32, o_sm: u32, o_sn: u32,
    bias_off: u32, bias_sm: u32, bias_sn: u32, tiles_n: u32,
    tiles_m: u32, group_m: u32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(0) var<storage, read> in0: array<{{ELEM0}}>;
@group(0) @binding(1) var<storage, read> in1: array<{{ELEM1}}>;
@group(0) @binding(2) var<storage, read> bias: array<T>;
@group(0) @binding(3) var<storage, read_write> c: array<{{O_ELEM}}>;
@group(0) @binding(4) var<uniform> p: Params;

// ------------------------------------------------------------------------------ epilogue
// erf as x * P(x^2) / Q(x^2) on [-4, 4] (the rational approximation of accelkit/backends/cpu.py).
fn erf_approx(x_in: f32) -> f32 {
    let x = clamp(x_in, -4.0, 4.0);
    let x2 = x * x;
    var num = -2.72614225801306e-10;
    num = num * x2 + 2.77068142495902e-08;
    num = num * x2 - 2.10102402082508e-06;
    num = num * x2 - 5.69250639462346e-05;
    num = num * x2 - 7.34990630326855e-04;
    num = num * x2 - 2.95459980854025e-03;
    num = num * x2 - 1.60960333262415e-02;
    var den = -1.45660718464996e-05;
    den = den * x2 - 2.13374055278905e-04;
    den = den * x2 - 1.68282697438203e-03;
    den = den * x2 - 7.37332916720468e-03;
    den = den * x2 - 1.42647390514189e-02;
    return x * num / den;
}

// tanh saturates to +-1 in f32 beyond |x| = 10; clamping keeps every driver's tanh finite.
fn tanh_safe(x: f32) -> f32 {
    return tanh(clamp(x, -10.0, 10.0));
}

fn act(x: f32) -> f32 {
//# if {{ACT}} == 1
    return 0.5 * x * (1.0 + erf_approx(x * 0.7071067811865476));
//# elif {{ACT}} == 2
    return 0.5 * x * (1.0 + tanh_safe(0.7978845608028654 * (x + 0.044715 * x * x * x)));
//# elif {{ACT}} == 3
    return max(x, 0.0);
//# elif {{ACT}} == 4
    return tanh_safe(x);
//# else
    return x;
//# endif
}

fn act4(v: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(act(v.x), act(v.y), act(v.z), act(v.w));
}

// ------------------------------------------------------------------------------ loads
// load_a4(base, m, k): four consecutive elements of a along its contiguous dim (K when A_K, else
// M), zero outside the matrix; base is the batch's element (or vec4) offset.
//# if {{A_K}} and {{A_VEC}}
fn load_a4(base: u32, m: u32, k: u32) -> vec4<f32> {
    if (m < p.M && k < p.K) {
        return vec4<f32>({{A_SRC}}[base + m * p.a_sm + (k >> 2u)]);
    }
    return vec4<f32>(0.0);
}
//# elif {{A_VEC}}
fn load_a4(base: u32, m: u32, k: u32) -> vec4<f32> {
    if (m < p.M && k < p.K) {
        return vec4<f32>({{A_SRC}}[base + k * p.a_sk + (m >> 2u)]);
    }
    return vec4<f32>(0.0);
}
//# else
fn load_a1(base: u32, m: u32, k: u32) -> f32 {
    if (m < p.M && k < p.K) {
        return f32({{A_SRC}}[base + m * p.a_sm + k * p.a_sk]);
    }
    return 0.0;
}

fn load_a4(base: u32, m: u32, k: u32) -> vec4<f32> {
//# if {{A_K}}
    return vec4<f32>(load_a1(base, m, k), load_a1(base, m, k + 1u), load_a1(base, m, k + 2u), load_a1(base, m, k + 3u));
//# else
    return vec4<f32>(load_a1(base, m, k), load_a1(base, m + 1u, k), load_a1(base, m + 2u, k), load_a1(base, m + 3u, k));
//# endif
}
//# endif

// load_b4(base, k, n): four consecutive elements of b along its contiguous dim (K when B_K, else N).
//# if {{B_K}} and {{B_VEC}}
fn load_b4(base: u32, k: u32, n: u32) -> vec4<f32> {
    if (k < p.K && n < p.N) {
        return vec4<f32>({{B_SRC}}[base + n * p.b_sn + (k >> 2u)]);
    }
    return vec4<f32>(0.0);
}
//# elif {{B_VEC}}
fn load_b4(base: u32, k: u32, n: u32) -> vec4<f32> {
    if (k < p.K && n < p.N) {
        return vec4<f32>({{B_SRC}}[base + k * p.b_sk + (n >> 2u)]);
    }
    return vec4<f32>(0.0);
}
//# else
fn load_b1(base: u32, k: u32, n: u32) -> f32 {
    if (k < p.K && n < p.N) {
        return f32({{B_SRC}}[base + k * p.b_sk + n * p.b_sn]);
    }
    return 0.0;
}

fn load_b4(base: u32, k: u32, n: u32) -> vec4<f32> {
//# if {{B_K}}
    return vec4<f32>(load_b1(base, k, n), load_b1(base, k + 1u, n), load_b1(base, k + 2u, n), load_b1(base, k + 3u, n));
//# else
    return vec4<f32>(load_b1(base, k, n), load_b1(base, k, n + 1u), load_b1(base, k, n + 2u), load_b1(base, k, n + 3u));
//# endif
}
//# endif

//# if {{HAS_BIAS}}
fn bias_at(m: u32, n: u32) -> f32 {
    return f32(bias[p.bias_off + m * p.bias_sm + n * p.bias_sn]);
}
//# else
fn bias_at(m: u32, n: u32) -> f32 {
    return 0.0;
}
//# endif

//# if {{ENTRY}} == 0
// ------------------------------------------------------------------------------ tiled
const BM: u32 = {{BM}}u;
const BN: u32 = {{BN}}u;
const BK: u32 = {{BK}}u;
const WGX: u32 = {{WGX}}u;               // BN / TN: invocations along N
const WGY: u32 = {{WGY}}u;               // BM / TM: invocations along M
const THREADS: u32 = {{THREADS}}u;
const AROW: u32 = BM / 4u + 1u;          // one k-row of the A tile in vec4s, padded by one (banks)
const BROW: u32 = BN / 4u + 1u;
const A_SLOTS: u32 = BM * BK / 4u;       // vec4 loads per A tile
const B_SLOTS: u32 = BK * BN / 4u;

// [buffer][k][m/4] and [buffer][k][n/4]
var<workgroup> As: array<vec4<f32>, {{AS_LEN}}>;
var<workgroup> Bs: array<vec4<f32>, {{BS_LEN}}>;

@compute @workgroup_size({{THREADS}})
fn tiled(@builtin(local_invocation_index) tid: u32,
         @builtin(workgroup_id) wid: vec3<u32>,
         @builtin(num_workgroups) nwg: vec3<u32>) {
    // grouped tile order: group_m rows of tiles sweep across N together, so their B tiles stay in cache
    let tile = wid.x + wid.y * nwg.x;
    if (tile >= p.tiles_m * p.tiles_n) {
        return;
    }
    let per_group = p.group_m * p.tiles_n;
    let first_m = (tile / per_group) * p.group_m;
    let rows_here = min(p.tiles_m - first_m, p.group_m);
    let in_group = tile % per_group;
    let m0 = (first_m + in_group % rows_here) * BM;
    let n0 = (in_group / rows_here) * BN;
    let tx = tid % WGX;
    let ty = tid / WGX;
    let ntiles = (p.K + BK - 1u) / BK;

    for (var bi = wid.z; bi < p.batch; bi += nwg.z) {
        let abase = p.a_off + bi * p.a_sb;
        let bbase = p.b_off + bi * p.b_sb;
//# for i in range({{TM4}})
//# for r in range(4)
//# for j in range({{TN4}})
        var acc$[i]_$[r]_$[j] = vec4<f32>(0.0);
//# endfor
//# endfor
//# endfor

        // prefetch registers: A_LOADS + B_LOADS vec4s per invocation and K-tile
//# for l in range({{A_LOADS}})
        var pa$[l]: vec4<f32>;
//# endfor
//# for l in range({{B_LOADS}})
        var pb$[l]: vec4<f32>;
//# endfor

        for (var t = 0u; t <= ntiles; t++) {
            // 1. store the K-tile loaded last round into buffer t % 2 (none before the first load)
            if (t > 0u) {
                let sa = ((t - 1u) & 1u) * BK * AROW;
                let sb = ((t - 1u) & 1u) * BK * BROW;
//# for l in range({{A_LOADS}})
                {
                    let s = tid + $[l]u * THREADS;
                    if (A_SLOTS % THREADS == 0u || s < A_SLOTS) {
//# if {{A_K}}
                        let row = s / (BK / 4u);
                        let kq = (s % (BK / 4u)) * 4u;
                        As[sa + (kq + 0u) * AROW + row / 4u][row % 4u] = pa$[l].x;
                        As[sa + (kq + 1u) * AROW + row / 4u][row % 4u] = pa$[l].y;
                        As[sa + (kq + 2u) * AROW + row / 4u][row % 4u] = pa$[l].z;
                        As[sa + (kq + 3u) * AROW + row / 4u][row % 4u] = pa$[l].w;
//# else
                        As[sa + (s / (BM / 4u)) * AROW + s % (BM / 4u)] = pa$[l];
//# endif
                    }
                }
//# endfor
//# for l in range({{B_LOADS}})
                {
                    let s = tid + $[l]u * THREADS;
                    if (B_SLOTS % THREADS == 0u || s < B_SLOTS) {
//# if {{B_K}}
                        let col = s / (BK / 4u);
                        let kq = (s % (BK / 4u)) * 4u;
                        Bs[sb + (kq + 0u) * BROW + col / 4u][col % 4u] = pb$[l].x;
                        Bs[sb + (kq + 1u) * BROW + col / 4u][col % 4u] = pb$[l].y;
                        Bs[sb + (kq + 2u) * BROW + col / 4u][col % 4u] = pb$[l].z;
                        Bs[sb + (kq + 3u) * BROW + col / 4u][col % 4u] = pb$[l].w;
//# else
                        Bs[sb + (s / (BN / 4u)) * BROW + s % (BN / 4u)] = pb$[l];
//# endif
                    }
                }
//# endfor
            }
            workgroupBarrier();
            // 2. fetch K-tile t into registers (its loads fly while tile t - 1 is multiplied)
            if (t < ntiles) {
                let k0 = t * BK;
//# for l in range({{A_LOADS}})
                {
                    let s = tid + $[l]u * THREADS;
//# if {{A_K}}
                    pa$[l] = load_a4(abase, m0 + s / (BK / 4u), k0 + (s % (BK / 4u)) * 4u);
//# else
                    pa$[l] = load_a4(abase, m0 + (s % (BM / 4u)) * 4u, k0 + s / (BM / 4u));
//# endif
                }
//# endfor
//# for l in range({{B_LOADS}})
                {
                    let s = tid + $[l]u * THREADS;
//# if {{B_K}}
                    pb$[l] = load_b4(bbase, k0 + (s % (BK / 4u)) * 4u, n0 + s / (BK / 4u));
//# else
                    pb$[l] = load_b4(bbase, k0 + s / (BN / 4u), n0 + (s % (BN / 4u)) * 4u);
//# endif
                }
//# endfor
            }
            // 3. multiply K-tile t - 1 from workgroup memory
            if (t > 0u) {
                let sa = ((t - 1u) & 1u) * BK * AROW + ty;
                let sb = ((t - 1u) & 1u) * BK * BROW + tx;
//# for kk in range({{BK}})
//# for i in range({{TM4}})
                let a$[kk]_$[i] = As[sa + $[kk * ({{BM}} // 4 + 1) + i * {{WGY}}]u];
//# endfor
//# for j in range({{TN4}})
                let b$[kk]_$[j] = Bs[sb + $[kk * ({{BN}} // 4 + 1) + j * {{WGX}}]u];
//# endfor
//# for i in range({{TM4}})
//# for r in range(4)
//# for j in range({{TN4}})
                acc$[i]_$[r]_$[j] = fma(vec4<f32>(a$[kk]_$[i][$[r]]), b$[kk]_$[j], acc$[i]_$[r]_$[j]);
//# endfor
//# endfor
//# endfor
//# endfor
            }
        }

        // epilogue: + bias, activation, store; invocation (tx, ty) owns rows (i*WGY + ty)*4 + r and
        // columns (j*WGX + tx)*4 .. +3
        let obase = p.o_off + bi * p.o_sb;
//# for j in range({{TN4}})
        let col$[j] = n0 + ($[j]u * WGX + tx) * 4u;
        let bias$[j] = vec4<f32>(bias_at(0u, min(col$[j], p.N - 1u)), bias_at(0u, min(col$[j] + 1u, p.N - 1u)),
                                 bias_at(0u, min(col$[j] + 2u, p.N - 1u)), bias_at(0u, min(col$[j] + 3u, p.N - 1u)));
//# endfor
//# for i in range({{TM4}})
//# for r in range(4)
        {
            let m = m0 + ($[i]u * WGY + ty) * 4u + $[r]u;
            if (m < p.M) {
//# for j in range({{TN4}})
                {
                    let v = act4(acc$[i]_$[r]_$[j] + bias$[j]);
//# if {{O_VEC}}
                    if (col$[j] < p.N) {
                        c[(obase + m * p.o_sm + col$[j]) >> 2u] = vec4<T>(v);
                    }
//# else
                    let row = obase + m * p.o_sm + col$[j] * p.o_sn;
                    if (col$[j] < p.N) { c[row] = T(v.x); }
                    if (col$[j] + 1u < p.N) { c[row + p.o_sn] = T(v.y); }
                    if (col$[j] + 2u < p.N) { c[row + 2u * p.o_sn] = T(v.z); }
                    if (col$[j] + 3u < p.N) { c[row + 3u * p.o_sn] = T(v.w); }
//# endif
                }
//# endfor
            }
        }
//# endfor
//# endfor
    }
}
//# endif

//# if {{ENTRY}} == 1
// ------------------------------------------------------------------------------ gemv_dot
const MR: u32 = {{MR}}u;                 // rows handled per workgroup (>= M; extra rows are clamped)
const LANES: u32 = {{LANES}}u;           // invocations along K per column
const COLS: u32 = 256u / LANES;          // columns per workgroup

var<workgroup> red: array<f32, {{RED_LEN}}>;   // [row][invocation]

@compute @workgroup_size(256)
fn gemv_dot(@builtin(local_invocation_index) tid: u32,
            @builtin(workgroup_id) wid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
    let group = wid.x + wid.y * nwg.x;
    if (group >= p.tiles_n) {
        return;
    }
    let lane = tid % LANES;
    let n = group * COLS + tid / LANES;
    let nn = min(n, p.N - 1u);
//# for m in range({{MR}})
    let m$[m] = min($[m]u, p.M - 1u);
//# endfor
    for (var bi = wid.z; bi < p.batch; bi += nwg.z) {
        let abase = p.a_off + bi * p.a_sb;
        let bbase = p.b_off + bi * p.b_sb;
//# for m in range({{MR}})
        var acc$[m] = 0.0;
//# endfor
//# if {{K4}}
        for (var k = lane * 4u; k < p.K; k += LANES * 4u) {
            let w = load_b4(bbase, k, nn);
//# for m in range({{MR}})
            acc$[m] += dot(load_a4(abase, m$[m], k), w);
//# endfor
        }
//# else
        for (var k = lane; k < p.K; k += LANES) {
            let w = load_b1(bbase, k, nn);
//# for m in range({{MR}})
            acc$[m] = fma(load_a1(abase, m$[m], k), w, acc$[m]);
//# endfor
        }
//# endif
//# for m in range({{MR}})
        red[$[m * 256]u + tid] = acc$[m];
//# endfor
        workgroupBarrier();
//# for s in [x for x in (128, 64, 32, 16, 8, 4, 2, 1) if x < {{LANES}}]
        if (lane < $[s]u) {
//# for m in range({{MR}})
            red[$[m * 256]u + tid] += red[$[m * 256]u + tid + $[s]u];
//# endfor
        }
        workgroupBarrier();
//# endfor
        if (lane == 0u && n < p.N) {
            let obase = p.o_off + bi * p.o_sb;
//# for m in range({{MR}})
            if ($[m]u < p.M) {
                c[obase + $[m]u * p.o_sm + n * p.o_sn] = T(act(red[$[m * 256]u + tid] + bias_at($[m]u, n)));
            }
//# endfor
        }
        workgroupBarrier();
    }
}
//# endif

//# if {{ENTRY}} == 2
// ------------------------------------------------------------------------------ gemv_axpy
const MR: u32 = {{MR}}u;
const KSPLIT: u32 = {{KSPLIT}}u;         // slices of K per column group
const CGROUPS: u32 = 256u / KSPLIT;      // column groups (of 4 columns) per workgroup

var<workgroup> red: array<vec4<f32>, 256>;   // [slice][column group], one row at a time

@compute @workgroup_size(256)
fn gemv_axpy(@builtin(local_invocation_index) tid: u32,
             @builtin(workgroup_id) wid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
    let group = wid.x + wid.y * nwg.x;
    if (group >= p.tiles_n) {
        return;
    }
    let cg = tid % CGROUPS;
    let slice = tid / CGROUPS;
    let n = (group * CGROUPS + cg) * 4u;
//# for m in range({{MR}})
    let m$[m] = min($[m]u, p.M - 1u);
//# endfor
    for (var bi = wid.z; bi < p.batch; bi += nwg.z) {
        let abase = p.a_off + bi * p.a_sb;
        let bbase = p.b_off + bi * p.b_sb;
//# for m in range({{MR}})
        var acc$[m] = vec4<f32>(0.0);
//# endfor
        for (var k = slice; k < p.K; k += KSPLIT) {
            let w = load_b4(bbase, k, n);
//# for m in range({{MR}})
            acc$[m] = fma(vec4<f32>(load_a1(abase, m$[m], k)), w, acc$[m]);
//# endfor
        }
        // sum the KSPLIT slices of each row in workgroup memory, one row at a time
        let obase = p.o_off + bi * p.o_sb;
//# for m in range({{MR}})
        red[tid] = acc$[m];
        workgroupBarrier();
        if (slice == 0u && $[m]u < p.M) {
            var v = red[cg];
            for (var s = 1u; s < KSPLIT; s++) {
                v += red[s * CGROUPS + cg];
            }
            let row = obase + $[m]u * p.o_sm;
            for (var e = 0u; e < 4u; e++) {
                if (n + e < p.N) {
                    c[row + (n + e) * p.o_sn] = T(act(v[e] + bias_at($[m]u, n + e)));
                }
            }
        }
        workgroupBarrier();
//# endfor
    }
}
//# endif
