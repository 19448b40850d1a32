// The matmul family: c = act(a @ b + bias) + res over a batch, accumulating in f32.
//
// Bindings (group 0):
//   0 a     (read)        (batch, M, K), any strides (batch stride may be 0)
//   1 b     (read)        (batch, K, N), any strides (a linear layer's weight.T has strides (.., 1, K))
//   2 bias  (read)        (N,) or a dummy buffer when HAS_BIAS is 0
//   3 res   (read)        (batch, M, N), any strides, added after the activation (a residual
//                         connection), or a dummy buffer when HAS_RES is 0
//   4 c     (read_write)  the output (batch, M, N); element (m, n) at o_off + m*o_sm + n*o_sn; for a
//                         split-K tiled pass, the f32 partial sums (SPLIT, below)
//   5 p     (uniform)     Params
// When the planner transposes the problem (out.T = b.T @ a.T, for N <= 8 < M), the logical a is
// read from binding 1 and b from binding 0 (A_SRC, B_SRC).
// Tensors are bound whole: element offsets and strides travel in Params, as u32 (a negative stride
// is its two's complement: u32 arithmetic wraps, so offset + i*stride still lands right). Where a
// binding holds vec4<T>, the planner has divided its offset and its non-contiguous strides by 4.
//
// Entry points, chosen by accelkit/backends/webgpu/matmul.py:
//   tiled     one workgroup per BM x BN tile of c (tiles in grouped order for cache reuse, flat
//             index over grid x/y); WGX*WGY = (BN/TN)*(BM/TM) invocations, each holding a TM x TN
//             block of accumulators in registers. A and B tiles go through workgroup memory, double
//             buffered, stored as vec4 rows along M and N; an operand contiguous along K gets
//             there by A_MODE / B_MODE (vec4 loads stored as scalars, or 4x4 blocks transposed in
//             registers, UNION: one register set for both operands; see the prefetch comment). The
//             next K-tile is loaded into registers while this one is multiplied. Grid z walks batch x SPLITS:
//             with SPLIT, each z handles one k_chunk-long slice of K and writes raw f32 partial sums
//             (c: vec4<f32>, [split][batch][M][NP], NP = N rounded up to 4), summed by splitk_reduce.
//             C (the arithmetic type) f16: the products of one K-tile are summed in vec4<f16>
//             registers, then added into f32 accumulators (f32 accumulation at K-tile boundaries).
//   gemv_dot  few rows (M <= 8) with b contiguous along K (a linear layer): 256 invocations =
//             COLS columns x LANES invocations striding along K; tree reduction in workgroup memory.
//   gemv_axpy few rows with b contiguous along N (or any strides): 256 invocations = 64 column
//             groups of 4 x KSPLIT slices of K; the slices are summed in workgroup memory.
//   splitk_reduce  one invocation per 4 outputs: sums the SPLITS partials (binding 0: vec4<f32>,
//             [split][batch][M][NP]), then bias, activation, residual, and stores c.
// Grid z walks the batch (looping when the batch exceeds the per-dimension workgroup limit).
//
// Template: double-brace placeholders are filled by the wgsl renderer; `//# if EXPR`,
// `//# else`, `//# endif` keep or drop code, and `//# for i in range(N)` ... `//# endfor` repeat
// their body with `$[expr]` replaced, so the inner loops below reach the driver fully unrolled.

alias T = {{T}};
alias C = {{C}};

struct Params {
    M: u32, N: u32, K: u32, batch: u32,
    a_off: u32, a_sb: u32, a_sm: u32, a_sk: u32,
    b_off: u32, b_sb: u32, b_sk: u32, b_sn: u32,
    o_off: u32, o_sb: u32, o_sm: u32, o_sn: u32,
    bias_off: u32, bias_sm: u32, bias_sn: u32, tiles_n: u32,
    tiles_m: u32, group_m: u32, splits: u32, k_chunk: u32,
    r_off: u32, r_sb: u32, r_sm: u32, r_sn: u32,
    part_ss: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<storage, read> in0: array<{{ELEM0}}>;
@group(0) @binding(1) var<storage, read> in1: array<{{ELEM1}}>;
@group(0) @binding(2) var<storage, read> bias: array<T>;
@group(0) @binding(3) var<storage, read> res: array<T>;
@group(0) @binding(4) var<storage, read_write> c: array<{{O_ELEM}}>;
@group(0) @binding(5) var<uniform> p: Params;

// ------------------------------------------------------------------------------ epilogue
// erf_approx (the CPU backend's rational approximation) and tanh_safe, NaN kept, from float_math.wgsl
//# include float_math

fn act(x: f32) -> f32 {
//# if {{ACT}} == 1
    return 0.5 * x * (1.0 + erf_approx(x * 0.7071067811865476));
//# elif {{ACT}} == 2
    return 0.5 * x * (1.0 + tanh_safe(0.7978845608028654 * (x + 0.044715 * x * x * x)));
//# elif {{ACT}} == 3
    return select(max(x, 0.0), x, is_nan(x));
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
fn load_a4(base: u32, m: u32, k: u32) -> vec4<C> {
    if (m < p.M && k < p.K) {
        return vec4<C>({{A_SRC}}[base + m * p.a_sm + (k >> 2u)]);
    }
    return vec4<C>(0.0);
}
//# elif {{A_VEC}}
fn load_a4(base: u32, m: u32, k: u32) -> vec4<C> {
    if (m < p.M && k < p.K) {
        return vec4<C>({{A_SRC}}[base + k * p.a_sk + (m >> 2u)]);
    }
    return vec4<C>(0.0);
}
//# else
fn load_a1(base: u32, m: u32, k: u32) -> C {
    if (m < p.M && k < p.K) {
        return C({{A_SRC}}[base + m * p.a_sm + k * p.a_sk]);
    }
    return C(0.0);
}

fn load_a4(base: u32, m: u32, k: u32) -> vec4<C> {
//# if {{A_K}}
    return vec4<C>(load_a1(base, m, k), load_a1(base, m, k + 1u), load_a1(base, m, k + 2u), load_a1(base, m, k + 3u));
//# else
    return vec4<C>(load_a1(base, m, k), load_a1(base, m + 1u, k), load_a1(base, m + 2u, k), load_a1(base, m + 3u, k));
//# endif
}
//# endif

// load_b4(base, k, n): four consecutive elements of b along its contiguous dim (K when B_K, else N).
//# if {{B_K}} and {{B_VEC}}
fn load_b4(base: u32, k: u32, n: u32) -> vec4<C> {
    if (k < p.K && n < p.N) {
        return vec4<C>({{B_SRC}}[base + n * p.b_sn + (k >> 2u)]);
    }
    return vec4<C>(0.0);
}
//# elif {{B_VEC}}
fn load_b4(base: u32, k: u32, n: u32) -> vec4<C> {
    if (k < p.K && n < p.N) {
        return vec4<C>({{B_SRC}}[base + k * p.b_sk + (n >> 2u)]);
    }
    return vec4<C>(0.0);
}
//# else
fn load_b1(base: u32, k: u32, n: u32) -> C {
    if (k < p.K && n < p.N) {
        return C({{B_SRC}}[base + k * p.b_sk + n * p.b_sn]);
    }
    return C(0.0);
}

fn load_b4(base: u32, k: u32, n: u32) -> vec4<C> {
//# if {{B_K}}
    return vec4<C>(load_b1(base, k, n), load_b1(base, k + 1u, n), load_b1(base, k + 2u, n), load_b1(base, k + 3u, n));
//# else
    return vec4<C>(load_b1(base, k, n), load_b1(base, k, n + 1u), load_b1(base, k, n + 2u), load_b1(base, k, n + 3u));
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


//# if {{HAS_RES}}
fn res_at(bi: u32, m: u32, n: u32) -> f32 {
    return f32(res[p.r_off + bi * p.r_sb + m * p.r_sm + n * p.r_sn]);
}
//# else
fn res_at(bi: u32, m: u32, n: u32) -> f32 {
    return 0.0;
}
//# endif

// the whole epilogue of one output element: bias, activation, residual
fn finish(acc: f32, bi: u32, m: u32, n: u32) -> T {
    return T(act(acc + bias_at(m, n)) + res_at(bi, m, n));
}

//# if {{ENTRY}} == 0
// ------------------------------------------------------------------------------ tiled
const BM: u32 = {{BM}}u;
const BN: u32 = {{BN}}u;
const BK: u32 = {{BK}}u;
const WGX: u32 = {{WGX}}u;               // BN / TN: invocations along N
const WGY: u32 = {{WGY}}u;               // BM / TM: invocations along M
const THREADS: u32 = {{THREADS}}u;
// load units per K-tile: a 4x4 block (four vec4 loads along K, transposed in registers) for an
// operand contiguous along K, one vec4 along M (N) otherwise
const A_UNITS: u32 = {{A_UNITS}}u;
const B_UNITS: u32 = {{B_UNITS}}u;
const B_SHIFT: u32 = {{B_SHIFT}}u;       // B's units start at this invocation, so idle A lanes load B

// Workgroup memory: [buffer][k][m/4] and [buffer][k][n/4], vec4s of 4 rows (columns) of one k,
// each k-row padded by one vec4 (banks). (A thread-major layout, one padded row per invocation row
// so that the inner loop's loads have constant offsets, ran 20% slower at 4096^3 on the H200:
// benchmarks/RESULTS.md.)
const AROW: u32 = BM / 4u + 1u;
const BROW: u32 = BN / 4u + 1u;
var<workgroup> As: array<vec4<C>, 2u * BK * AROW>;
var<workgroup> Bs: array<vec4<C>, 2u * BK * BROW>;

fn put_a(buf: u32, k: u32, m4: u32, v: vec4<C>) {
    As[(buf * BK + k) * AROW + m4] = v;
}

fn put_a1(buf: u32, k: u32, row: u32, v: C) {
    As[(buf * BK + k) * AROW + row / 4u][row % 4u] = v;
}

fn put_b(buf: u32, k: u32, n4: u32, v: vec4<C>) {
    Bs[(buf * BK + k) * BROW + n4] = v;
}

fn put_b1(buf: u32, k: u32, col: u32, v: C) {
    Bs[(buf * BK + k) * BROW + col / 4u][col % 4u] = v;
}

// K-tiles of split-K slice z % splits (the last slice may be short, or empty when K is small)
fn slice_tiles(z: u32) -> u32 {
    let kbeg = (z % p.splits) * p.k_chunk;
    let kend = min(p.K, kbeg + p.k_chunk);
    return select(0u, (kend - kbeg + BK - 1u) / BK, kend > kbeg);
}

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
//# if {{B_SHIFT}}
    let ub = (tid + B_SHIFT) % THREADS;
//# else
    let ub = tid;
//# endif

    // Nothing but the loop counters may stay live across the K loop beside the accumulators and the
    // prefetch registers: on the H200 a kernel holding its split-K slice bounds (z, kbeg) there ran
    // 22% slower at 4096^3 (registers are what bounds two 256-invocation workgroups per
    // multiprocessor). So without split-K the loop walks the batch over all of K, and with it the
    // slice's first k is recomputed from z where it is used.
//# if {{SPLIT}}
    for (var z = wid.z; z < p.batch * p.splits; z += nwg.z) {
        let bi = z / p.splits;
        let ntiles = slice_tiles(z);
//# else
    let ntiles = (p.K + BK - 1u) / BK;
    for (var bi = wid.z; bi < p.batch; bi += nwg.z) {
//# endif
        let abase = p.a_off + bi * p.a_sb;
        let bbase = p.b_off + bi * p.b_sb;
//# for i in range({{TM4}})
//# for r in range(4)
//# for j in range({{TN4}})
        var tot$[i]_$[r]_$[j] = vec4<f32>(0.0);
//# endfor
//# endfor
//# endfor

        // prefetch registers, per invocation and K-tile. Operand modes (A_MODE, B_MODE):
        //   0  contiguous along M (N): one vec4 per unit, stored whole
        //   1  contiguous along K: one vec4 along K per unit, stored as four scalars
        //   2  contiguous along K: a 4x4 block per unit (four vec4 loads along K), transposed in
        //      registers and stored as four vec4s
        // UNION (both mode 2, A_UNITS + B_UNITS <= THREADS): each invocation loads one unit of A
        // or of B into the same four registers, so the prefetch costs what one operand's would.
//# if {{UNION}}
//# for q in range(4)
        var pr$[q] = vec4<C>(0.0);
//# endfor
//# else
//# for l in range({{A_LOADS}})
//# for q in range({{A_REGS}})
        var pa$[l]_$[q] = vec4<C>(0.0);
//# endfor
//# endfor
//# for l in range({{B_LOADS}})
//# for q in range({{B_REGS}})
        var pb$[l]_$[q] = vec4<C>(0.0);
//# endfor
//# endfor
//# endif

        for (var t = 0u; t <= ntiles; t++) {
            // 1. store the K-tile loaded last round into buffer (t - 1) % 2 (none before the first load)
            if (t > 0u) {
                let buf = (t - 1u) & 1u;
//# if {{UNION}}
                if (tid < A_UNITS) {
                    let m4 = tid / (BK / 4u);
                    let kq = (tid % (BK / 4u)) * 4u;
//# for q, c in ((0, "x"), (1, "y"), (2, "z"), (3, "w"))
                    put_a(buf, kq + $[q]u, m4, vec4<C>(pr0.$[c], pr1.$[c], pr2.$[c], pr3.$[c]));
//# endfor
                } else if (tid < A_UNITS + B_UNITS) {
                    let s = tid - A_UNITS;
                    let n4 = s / (BK / 4u);
                    let kq = (s % (BK / 4u)) * 4u;
//# for q, c in ((0, "x"), (1, "y"), (2, "z"), (3, "w"))
                    put_b(buf, kq + $[q]u, n4, vec4<C>(pr0.$[c], pr1.$[c], pr2.$[c], pr3.$[c]));
//# endfor
                }
//# else
//# for l in range({{A_LOADS}})
                {
                    let s = tid + $[l]u * THREADS;
                    if (A_UNITS % THREADS == 0u || s < A_UNITS) {
//# if {{A_MODE}} == 2
                        let m4 = s / (BK / 4u);
                        let kq = (s % (BK / 4u)) * 4u;
//# for q, c in ((0, "x"), (1, "y"), (2, "z"), (3, "w"))
                        put_a(buf, kq + $[q]u, m4, vec4<C>(pa$[l]_0.$[c], pa$[l]_1.$[c], pa$[l]_2.$[c], pa$[l]_3.$[c]));
//# endfor
//# elif {{A_MODE}} == 1
                        let row = s / (BK / 4u);
                        let kq = (s % (BK / 4u)) * 4u;
//# for q, c in ((0, "x"), (1, "y"), (2, "z"), (3, "w"))
                        put_a1(buf, kq + $[q]u, row, pa$[l]_0.$[c]);
//# endfor
//# else
                        put_a(buf, s / (BM / 4u), s % (BM / 4u), pa$[l]_0);
//# endif
                    }
                }
//# endfor
//# for l in range({{B_LOADS}})
                {
                    let s = ub + $[l]u * THREADS;
                    if (B_UNITS % THREADS == 0u || s < B_UNITS) {
//# if {{B_MODE}} == 2
                        let n4 = s / (BK / 4u);
                        let kq = (s % (BK / 4u)) * 4u;
//# for q, c in ((0, "x"), (1, "y"), (2, "z"), (3, "w"))
                        put_b(buf, kq + $[q]u, n4, vec4<C>(pb$[l]_0.$[c], pb$[l]_1.$[c], pb$[l]_2.$[c], pb$[l]_3.$[c]));
//# endfor
//# elif {{B_MODE}} == 1
                        let col = s / (BK / 4u);
                        let kq = (s % (BK / 4u)) * 4u;
//# for q, c in ((0, "x"), (1, "y"), (2, "z"), (3, "w"))
                        put_b1(buf, kq + $[q]u, col, pb$[l]_0.$[c]);
//# endfor
//# else
                        put_b(buf, s / (BN / 4u), s % (BN / 4u), pb$[l]_0);
//# endif
                    }
                }
//# endfor
//# endif
            }
            workgroupBarrier();
            // 2. fetch K-tile t into registers (its loads fly while tile t - 1 is multiplied)
            if (t < ntiles) {
//# if {{SPLIT}}
                let k0 = (z % p.splits) * p.k_chunk + t * BK;
//# else
                let k0 = t * BK;
//# endif
//# if {{UNION}}
                if (tid < A_UNITS) {
                    let m = m0 + (tid / (BK / 4u)) * 4u;
                    let k = k0 + (tid % (BK / 4u)) * 4u;
//# for q in range(4)
                    pr$[q] = load_a4(abase, m + $[q]u, k);
//# endfor
                } else if (tid < A_UNITS + B_UNITS) {
                    let s = tid - A_UNITS;
                    let n = n0 + (s / (BK / 4u)) * 4u;
                    let k = k0 + (s % (BK / 4u)) * 4u;
//# for q in range(4)
                    pr$[q] = load_b4(bbase, k, n + $[q]u);
//# endfor
                }
//# else
//# for l in range({{A_LOADS}})
                {
                    let s = tid + $[l]u * THREADS;
                    if (A_UNITS % THREADS == 0u || s < A_UNITS) {
//# if {{A_MODE}} == 2
                        let m = m0 + (s / (BK / 4u)) * 4u;
                        let k = k0 + (s % (BK / 4u)) * 4u;
//# for q in range(4)
                        pa$[l]_$[q] = load_a4(abase, m + $[q]u, k);
//# endfor
//# elif {{A_MODE}} == 1
                        pa$[l]_0 = load_a4(abase, m0 + s / (BK / 4u), k0 + (s % (BK / 4u)) * 4u);
//# else
                        pa$[l]_0 = load_a4(abase, m0 + (s % (BM / 4u)) * 4u, k0 + s / (BM / 4u));
//# endif
                    }
                }
//# endfor
//# for l in range({{B_LOADS}})
                {
                    let s = ub + $[l]u * THREADS;
                    if (B_UNITS % THREADS == 0u || s < B_UNITS) {
//# if {{B_MODE}} == 2
                        let n = n0 + (s / (BK / 4u)) * 4u;
                        let k = k0 + (s % (BK / 4u)) * 4u;
//# for q in range(4)
                        pb$[l]_$[q] = load_b4(bbase, k, n + $[q]u);
//# endfor
//# elif {{B_MODE}} == 1
                        pb$[l]_0 = load_b4(bbase, k0 + (s % (BK / 4u)) * 4u, n0 + s / (BK / 4u));
//# else
                        pb$[l]_0 = load_b4(bbase, k0 + s / (BN / 4u), n0 + (s % (BN / 4u)) * 4u);
//# endif
                    }
                }
//# endfor
//# endif
            }
            // 3. multiply K-tile t - 1 from workgroup memory
            if (t > 0u) {
                let sa = ((t - 1u) & 1u) * BK * AROW + ty;
                let sb = ((t - 1u) & 1u) * BK * BROW + tx;
//# if {{BLOCK_ACC}}
//# for i in range({{TM4}})
//# for r in range(4)
//# for j in range({{TN4}})
                var acc$[i]_$[r]_$[j] = vec4<C>(0.0);
//# endfor
//# endfor
//# endfor
//# endif
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
//# if {{BLOCK_ACC}}
                acc$[i]_$[r]_$[j] = fma(vec4<C>(a$[kk]_$[i][$[r]]), b$[kk]_$[j], acc$[i]_$[r]_$[j]);
//# else
                tot$[i]_$[r]_$[j] = fma(vec4<f32>(a$[kk]_$[i][$[r]]), b$[kk]_$[j], tot$[i]_$[r]_$[j]);
//# endif
//# endfor
//# endfor
//# endfor
//# endfor
//# if {{BLOCK_ACC}}
//# for i in range({{TM4}})
//# for r in range(4)
//# for j in range({{TN4}})
                tot$[i]_$[r]_$[j] += vec4<f32>(acc$[i]_$[r]_$[j]);
//# endfor
//# endfor
//# endfor
//# endif
            }
        }

        // epilogue: invocation (tx, ty) owns rows (i*WGY + ty)*4 + r and columns (j*WGX + tx)*4 .. +3
//# for j in range({{TN4}})
        let col$[j] = n0 + ($[j]u * WGX + tx) * 4u;
//# endfor
//# if {{SPLIT}}
        // raw partial sums: [split][batch][M][NP] with o_sb = M * NP, o_sm = NP (in elements)
        let obase = p.o_off + (z % p.splits) * p.part_ss + (z / p.splits) * p.o_sb;
//# for i in range({{TM4}})
//# for r in range(4)
        {
            let m = m0 + ($[i]u * WGY + ty) * 4u + $[r]u;
            if (m < p.M) {
//# for j in range({{TN4}})
                if (col$[j] < p.N) {
                    c[(obase + m * p.o_sm + col$[j]) >> 2u] = tot$[i]_$[r]_$[j];
                }
//# endfor
            }
        }
//# endfor
//# endfor
//# else
        let obase = p.o_off + bi * p.o_sb;
//# for j in range({{TN4}})
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
                    var v = act4(tot$[i]_$[r]_$[j] + bias$[j]);
//# if {{HAS_RES}}
                    let cl = min(col$[j], p.N - 1u);
                    v += vec4<f32>(res_at(bi, m, cl), res_at(bi, m, min(cl + 1u, p.N - 1u)),
                                   res_at(bi, m, min(cl + 2u, p.N - 1u)), res_at(bi, m, min(cl + 3u, p.N - 1u)));
//# endif
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
//# endif
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
                c[obase + $[m]u * p.o_sm + n * p.o_sn] = finish(red[$[m * 256]u + tid], bi, $[m]u, n);
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
                    c[row + (n + e) * p.o_sn] = finish(v[e], bi, $[m]u, n + e);
                }
            }
        }
        workgroupBarrier();
//# endfor
    }
}
//# endif

//# if {{ENTRY}} == 3
// ------------------------------------------------------------------------------ splitk_reduce
@compute @workgroup_size(256)
fn splitk_reduce(@builtin(local_invocation_index) tid: u32,
                 @builtin(workgroup_id) wid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
    // in0: the partial sums, vec4<f32> [split][batch][M][NP]; tiles_n = NP / 4; part_ss in vec4s
    let i = (wid.x + wid.y * nwg.x) * 256u + tid;
    let per_b = p.M * p.tiles_n;
    if (i >= p.batch * per_b) {
        return;
    }
    let bi = i / per_b;
    let m = (i % per_b) / p.tiles_n;
    let n = (i % p.tiles_n) * 4u;
    // RSPLITS (= p.splits) is fixed in the source, so the slices' loads are issued together rather than one
    // per loop trip (a loop over a runtime count waited out each load's latency in turn: 9.5 us for 16
    // slices of 128 x 768 on the H200); the sum keeps the slices' order
//# for s in range({{RSPLITS}})
    let s$[s] = in0[$[s]u * p.part_ss + i];
//# endfor
    var s = s0;
//# for s in range(1, {{RSPLITS}})
    s += s$[s];
//# endfor
    let obase = p.o_off + bi * p.o_sb + m * p.o_sm;
//# if {{O_VEC}}
    if (n + 3u < p.N) {
        c[(obase + n) >> 2u] = vec4<T>(finish(s.x, bi, m, n), finish(s.y, bi, m, n + 1u),
                                       finish(s.z, bi, m, n + 2u), finish(s.w, bi, m, n + 3u));
        return;
    }
//# else
    for (var e = 0u; e < 4u; e++) {
        if (n + e < p.N) {
            c[obase + (n + e) * p.o_sn] = finish(s[e], bi, m, n + e);
        }
    }
//# endif
}
//# endif
