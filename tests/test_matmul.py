"""The matmul kernel family (kernels/matmul.wgsl) and its planner, against numpy in float64.

Every variant (tiled at each tile config, each load scheme, split-K, f16 arithmetic; gemv_dot,
gemv_axpy) and every epilogue (bias, activations, residual) is forced through ``plan_matmul`` on
real device tensors, with awkward shapes (primes, 1, non-multiples of the tile, split-K with more
slices than K has tiles), transposed and broadcast views, and float16. The planner's own choices
are checked through ``ak.ops.matmul``/``linear`` on the CPU and WebGPU backends.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import accelkit as ak
from accelkit.backends.cpu import gelu as cpu_gelu
from accelkit.backends.cpu import gelu_tanh as cpu_gelu_tanh
from accelkit.backends.webgpu import matmul as wm
from accelkit.backends.webgpu.wgsl import Caps, Layout, expand_directives
from accelkit.tensor import Tensor, float16, float32

ACT64 = {
    None: lambda x: x,
    "gelu": lambda x: cpu_gelu(x),  # the library's erf approximation, in float64
    "gelu_tanh": lambda x: cpu_gelu_tanh(x),
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
}


def rel_err(got, want) -> float:
    return float(np.linalg.norm(np.asarray(got, np.float64) - want) / max(np.linalg.norm(want), 1e-30))


def operand(rng, dev, batch, rows, cols, dtype, *, transposed=False, broadcast=False):
    """A (batch, rows, cols) device view and its float64 value; transposed = stored (cols, rows); broadcast = stride-0 batch."""
    value = rng.standard_normal((1 if broadcast else batch, rows, cols)).astype(dtype.np)
    stored = np.ascontiguousarray(np.swapaxes(value, -1, -2)) if transposed else value
    t = ak.tensor(stored, device=dev, dtype=dtype)
    if transposed:
        t = t.transpose(-1, -2)
    if broadcast:
        t = t.expand((batch, rows, cols))
        value = np.broadcast_to(value, (batch, rows, cols))
    return t, value.astype(np.float64)


def run_plan(dev, a, b, bias, activation, residual=None, **force):
    """Plan with ``force`` (variant=..., tile=...), launch on ``dev``, return (out as float64, plan)."""
    be = dev.backend
    batch, m, _ = a.shape
    n = b.shape[2]
    out = Tensor.empty((batch, m, n), a.dtype, dev)
    be.write(out.storage.handle, 0, np.full(batch * m * n, np.nan, dtype=a.dtype.np))  # poison
    plan = wm.plan_matmul(be.caps, a, b, out, bias, activation, residual=residual, **force)
    handles = [None if t is None else t.storage.handle for t in (a, b, bias, residual, out)]
    wm.launch_matmul(be, plan, *handles)
    return out.numpy().astype(np.float64), plan


def check_variant(
    dev,
    rng,
    shape,
    *,
    dtype=float32,
    a_t=False,
    b_t=False,
    bcast=False,
    bias=True,
    act=None,
    res=False,
    **force,
):
    batch, m, n, k = shape
    a, a64 = operand(rng, dev, batch, m, k, dtype, transposed=a_t, broadcast=bcast)
    b, b64 = operand(rng, dev, batch, k, n, dtype, transposed=b_t)
    want = a64 @ b64
    bias_t = None
    if bias:
        bv = rng.standard_normal(n).astype(dtype.np)
        bias_t = ak.tensor(bv, device=dev, dtype=dtype)
        want = want + bv.astype(np.float64)
    want = ACT64[act](want)
    res_t = None
    if res:  # a residual stored transposed: any strides
        res_t, r64 = operand(rng, dev, batch, m, n, dtype, transposed=True)
        want = want + r64
    got, plan = run_plan(dev, a, b, bias_t, act, res_t, **force)
    assert np.isfinite(got).all(), f"{plan.label}: unwritten (NaN) outputs"
    tol = 2e-3 if dtype is float16 else 1e-5
    err = rel_err(got, want)
    assert err < tol, f"{plan.label}: relative error {err:.2e} >= {tol}"
    return plan


# ----------------------------------------------------------------------------- every variant, on WebGPU
TILED_CASES = [
    # (batch, M, N, K), a transposed, b transposed, broadcast batch, activation
    ((1, 131, 67, 37), False, False, False, "gelu"),
    ((2, 67, 131, 40), False, True, True, "gelu_tanh"),  # b = weight.T (linear), vec4 along K
    ((1, 96, 64, 64), True, False, False, "relu"),  # a transposed view, vec4 along M
    ((1, 33, 29, 1), True, True, False, "tanh"),  # K = 1
    ((3, 9, 130, 19), False, False, True, None),
]


@pytest.mark.webgpu
@pytest.mark.parametrize("tile", list(wm.TILES))
@pytest.mark.parametrize("case", TILED_CASES, ids=lambda c: "x".join(map(str, c[0])))
def test_tiled_every_tile(webgpu, rng, tile, case):
    if not wm._fits(webgpu.backend.caps, wm.TILES[tile]):
        pytest.skip(f"tile {tile} does not fit this adapter's workgroup limits")
    shape, a_t, b_t, bcast, act = case
    plan = check_variant(
        webgpu, rng, shape, a_t=a_t, b_t=b_t, bcast=bcast, act=act, variant="tiled", tile=tile
    )
    assert plan.extra["variant"] == "tiled"


@pytest.mark.webgpu
@pytest.mark.parametrize("loads", ["b", "u", "m"])
@pytest.mark.parametrize(
    "shape,a_t,b_t,tile",
    [
        ((1, 131, 67, 40), False, True, "64x64k16"),  # both operands along K: "u" shares registers
        ((2, 67, 131, 37), False, False, "32x32"),  # K not a multiple of 4, b row-major
        ((1, 33, 70, 64), True, True, "32x64k16"),  # a along M, b along K
        ((1, 130, 99, 48), False, True, "128x64k16"),  # A and B blocks outnumber 128 invocations: no union
    ],
)
def test_tiled_load_schemes(webgpu, rng, loads, shape, a_t, b_t, tile):
    plan = check_variant(
        webgpu, rng, shape, a_t=a_t, b_t=b_t, act="gelu", res=True, variant="tiled", tile=tile, loads=loads
    )
    assert plan.extra["variant"] == "tiled"


@pytest.mark.webgpu
@pytest.mark.parametrize(
    "shape,b_t,tile,split",
    [
        ((1, 67, 45, 3), False, "32x32", 4),  # K < split: empty slices add zeros
        ((2, 37, 29, 40), True, "64x64k16", 3),  # K not a multiple of the tile depth
        ((1, 1, 131, 257), True, "32x32", 16),  # M = 1, the most slices
        ((3, 61, 53, 199), False, "32x64k16", 5),  # primes everywhere, a batch
        ((1, 131, 101, 257), True, "128x64k16", 3),  # 128 invocations of 8x8
    ],
)
def test_split_k(webgpu, rng, shape, b_t, tile, split):
    plan = check_variant(
        webgpu, rng, shape, b_t=b_t, act="gelu", res=True, variant="tiled", tile=tile, split=split
    )
    scratch, reduce = plan.extra["splitk"]
    assert f"split{split}" in plan.label and reduce.entry_point == "splitk_reduce"
    assert scratch >= split * shape[0] * shape[1] * shape[2] * 4


@pytest.mark.webgpu
@pytest.mark.parametrize(
    "shape,force",
    [
        ((1, 1, 1, 1), {"variant": "gemv_dot"}),
        ((2, 5, 61, 131), {"variant": "gemv_dot"}),
        ((1, 7, 257, 33), {"variant": "gemv_axpy"}),
        ((1, 97, 3, 30), {}),  # planned transposed: the residual's strides swap too
        ((1, 67, 45, 37), {"variant": "tiled", "tile": "32x32"}),
    ],
)
def test_residual_epilogue(webgpu, rng, shape, force):
    check_variant(webgpu, rng, shape, b_t=True, act="gelu_tanh", res=True, **force)


@pytest.mark.webgpu
@pytest.mark.parametrize(
    "shape,b_t,force",
    [
        ((1, 131, 67, 37), True, {"tile": "64x64k16"}),
        ((1, 70, 45, 300), False, {"tile": "32x32", "split": 3}),
        ((2, 33, 40, 64), True, {"tile": "32x64k16", "loads": "u"}),
    ],
)
def test_float16_arithmetic(webgpu, rng, shape, b_t, force):
    """f16 products summed per K-tile in f16, then into f32: within 2e-3 of float64."""
    if not webgpu.supports_f16:
        pytest.skip("adapter lacks shader-f16")
    plan = check_variant(
        webgpu,
        rng,
        shape,
        dtype=float16,
        b_t=b_t,
        act="gelu",
        res=True,
        variant="tiled",
        compute="f16",
        **force,
    )
    assert " f16 " in plan.extra["config"] + " "


@pytest.mark.webgpu
@pytest.mark.parametrize(
    "shape,a_t,b_t,bias,act",
    [
        ((1, 1, 1, 1), False, False, True, None),
        ((1, 1, 97, 128), False, True, True, "gelu"),  # one decoder token, vec4 weight rows
        ((2, 5, 61, 131), False, True, False, "relu"),  # K not a multiple of 4: scalar path
        ((1, 8, 40, 2100), True, True, True, None),  # a transposed, long K (32 lanes)
        ((1, 3, 7, 9), False, False, False, "tanh"),
    ],
)
def test_gemv_dot(webgpu, rng, shape, a_t, b_t, bias, act):
    plan = check_variant(webgpu, rng, shape, a_t=a_t, b_t=b_t, bias=bias, act=act, variant="gemv_dot")
    assert plan.extra["variant"] == "gemv_dot"


@pytest.mark.webgpu
@pytest.mark.parametrize(
    "shape,a_t,b_t,act",
    [
        ((1, 1, 300, 64), False, False, "gelu"),  # vec4 along N
        ((1, 7, 257, 33), True, False, None),  # N not a multiple of 4: scalar loads
        ((2, 2, 1100, 20), False, True, "gelu_tanh"),  # any strides
    ],
)
def test_gemv_axpy(webgpu, rng, shape, a_t, b_t, act):
    plan = check_variant(webgpu, rng, shape, a_t=a_t, b_t=b_t, act=act, variant="gemv_axpy")
    assert plan.extra["variant"] == "gemv_axpy"


@pytest.mark.webgpu
@pytest.mark.parametrize("shape", [(1, 97, 1, 30), (2, 300, 5, 64), (1, 20, 3, 7)])
def test_few_columns_are_planned_transposed(webgpu, rng, shape):
    """N <= 8 < M: out.T = b.T @ a.T through the gemv kernels; the bias then runs along the rows."""
    plan = check_variant(webgpu, rng, shape, b_t=True)
    assert plan.extra["variant"].startswith("gemv")


@pytest.mark.webgpu
@pytest.mark.parametrize(
    "shape,b_t,force",
    [
        ((1, 70, 45, 36), True, {"variant": "tiled", "tile": "64x64"}),
        ((1, 129, 131, 64), False, {"variant": "tiled", "tile": "128x128"}),
        ((1, 2, 300, 40), True, {"variant": "gemv_dot"}),
        ((1, 3, 300, 40), False, {"variant": "gemv_axpy"}),
    ],
)
def test_float16_accumulates_in_float32(webgpu, rng, shape, b_t, force):
    if not webgpu.supports_f16:
        pytest.skip("adapter lacks shader-f16")
    check_variant(webgpu, rng, shape, dtype=float16, b_t=b_t, act="gelu", **force)


@pytest.mark.webgpu
def test_offsets_and_negative_strides(webgpu, rng):
    """Views that start mid-buffer or run backwards: offsets and two's-complement strides in Params."""
    base = rng.standard_normal((40, 50)).astype(np.float32)
    t = ak.tensor(base, device=webgpu)
    a = t[3:20, 1:31]  # offset, row stride 50
    b = ak.tensor(base[::-1].copy(), device=webgpu)[::-1][5:35, 2:25]  # negative row stride
    want = base[3:20, 1:31].astype(np.float64) @ base[5:35, 2:25].astype(np.float64)
    for force in ({"variant": "tiled", "tile": "32x32"}, {}):
        got, plan = run_plan(webgpu, a.unsqueeze(0), b.unsqueeze(0), None, None, **force)
        assert rel_err(got[0], want) < 1e-5, plan.label


# ----------------------------------------------------------------------------- through ak.ops, every backend
@pytest.mark.parametrize(
    "m,n,k",
    [(1, 1, 1), (1, 384, 384), (3, 1536, 37), (17, 29, 1), (64, 128, 96), (131, 67, 130), (5, 2, 300)],
)
def test_linear_matches_numpy(dev, rng, assert_close, m, n, k):
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((n, k)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    out = ak.ops.linear(
        ak.tensor(x, device=dev), ak.tensor(w, device=dev), ak.tensor(b, device=dev), activation="gelu"
    )
    assert_close(
        out, cpu_gelu(x.astype(np.float64) @ w.T.astype(np.float64) + b), k=k, what=f"linear {m}x{n}x{k}"
    )


@pytest.mark.parametrize("act", ["gelu", "gelu_tanh", "tanh", "relu"])
@pytest.mark.parametrize("m,n,k", [(1, 29, 13), (37, 41, 43)])  # a gemv and a tiled kernel
def test_activation_keeps_nan(dev, rng, act, m, n, k):
    """A NaN in an input row stays NaN through the fused epilogue's activation (gelu's erf and tanh used to
    clamp it to +-4 / +-10 first), on every backend; the other rows stay finite."""
    x = rng.standard_normal((m, k)).astype(np.float32)
    x[m // 2, k // 3] = np.nan
    w = rng.standard_normal((n, k)).astype(np.float32)
    out = ak.ops.linear(ak.tensor(x, device=dev), ak.tensor(w, device=dev), activation=act).numpy()
    assert np.isnan(out[m // 2]).all(), f"{act}: a NaN row came out as {out[m // 2][:4]}"
    assert np.isfinite(np.delete(out, m // 2, axis=0)).all()


@pytest.mark.parametrize("m,n,k", [(1, 29, 13), (3, 5, 7), (131, 67, 130)])
@pytest.mark.parametrize("layout", ["dense", "strided", "numpy"])
def test_linear_residual(dev, rng, assert_close, m, n, k, layout):
    """ops.linear(..., residual=r): in the matmul epilogue (dense r) or as a separate add (any other r)."""
    x = rng.standard_normal((2, m, k)).astype(np.float32)
    w = rng.standard_normal((n, k)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    r = rng.standard_normal((2, m, n)).astype(np.float32)
    if layout == "dense":
        res = ak.tensor(r, device=dev)
    elif layout == "strided":  # a transposed view: not dense, the general path
        res = ak.tensor(np.ascontiguousarray(r.transpose(0, 2, 1)), device=dev).transpose(-1, -2)
    else:
        res = r
    out = ak.ops.linear(
        ak.tensor(x, device=dev), ak.tensor(w, device=dev), ak.tensor(b, device=dev), "gelu", residual=res
    )
    want = cpu_gelu(x.astype(np.float64) @ w.T.astype(np.float64) + b) + r
    assert_close(out, want, k=k, what=f"linear + residual {m}x{n}x{k} ({layout})")
    with pytest.raises(ak.ShapeError, match="residual"):
        ak.ops.linear(ak.tensor(x, device=dev), ak.tensor(w, device=dev), residual=r[:, :, :1])


@pytest.mark.webgpu
def test_webgpu_agrees_with_cpu_backend(webgpu, cpu, rng, assert_close):
    a = rng.standard_normal((3, 45, 70)).astype(np.float32)
    b = rng.standard_normal((70, 33)).astype(np.float32)
    bias = rng.standard_normal(33).astype(np.float32)
    outs = [
        ak.ops.matmul(
            ak.tensor(a, device=d),
            ak.tensor(b, device=d),
            bias=ak.tensor(bias, device=d),
            activation="gelu_tanh",
        ).numpy()
        for d in (webgpu, cpu)
    ]
    assert_close(outs[0], outs[1].astype(np.float64), k=70)


@given(
    batch=st.integers(1, 3),
    m=st.integers(1, 70),
    n=st.integers(1, 70),
    k=st.integers(1, 70),
    a_t=st.booleans(),
    b_t=st.booleans(),
)
def test_matmul_property(webgpu, batch, m, n, k, a_t, b_t):
    rng = np.random.default_rng(batch * 1_000_003 + m * 10_007 + n * 101 + k)
    a, a64 = operand(rng, webgpu, batch, m, k, float32, transposed=a_t)
    b, b64 = operand(rng, webgpu, batch, k, n, float32, transposed=b_t)
    got = ak.ops.matmul(a, b).numpy()
    assert rel_err(got, a64 @ b64) < 1e-5


# ----------------------------------------------------------------------------- the planner (no device)
def lay(shape, strides=None, dtype=float32, offset=0):
    if strides is None:
        return Layout.contiguous(dtype, shape, offset)
    return Layout(dtype, tuple(shape), tuple(strides), offset)


CAPS = Caps(f16=True, max_workgroup_storage=49152, max_invocations=1024, max_workgroup_size_x=1024)


def test_key_is_free_of_shapes():
    # shapes choose a tile config (part of the key) but never appear in it themselves
    p1 = wm.plan_matmul(CAPS, lay((1, 4096, 256)), lay((1, 256, 4096)), lay((1, 4096, 4096)), None, None)
    p2 = wm.plan_matmul(CAPS, lay((2, 3001, 520)), lay((2, 520, 1996)), lay((2, 3001, 1996)), None, None)
    assert p1.key == p2.key and p1.params != p2.params
    assert p2.flops == 2 * 2 * 3001 * 1996 * 520
    assert "2x3001x1996x520" in p2.label
    assert not any(v in (3001, 1996, 520) for _, v in p2.key[1:])


def test_linear_weight_layout_reads_along_k():
    # b = weight.T for weight (N, K) row-major: strides (.., 1, K)
    n, k = 768, 3072
    p = wm.plan_matmul(CAPS, lay((1, 256, k)), lay((1, k, n), (0, 1, k)), lay((1, 256, n)), lay((n,)), "gelu")
    assert p.extra["variant"] == "tiled" and "ak4bk4" in p.extra["config"]
    p = wm.plan_matmul(CAPS, lay((1, 1, k)), lay((1, k, n), (0, 1, k)), lay((1, 1, n)), lay((n,)), None)
    assert p.extra["variant"] == "gemv_dot" and "a4b4" in p.extra["config"]


def test_misaligned_views_fall_back_to_scalar_loads():
    p = wm.plan_matmul(
        CAPS, lay((1, 64, 64), (0, 65, 1), offset=1), lay((1, 64, 64)), lay((1, 64, 64)), None, None
    )
    assert "ak1bn4" in p.extra["config"]


def test_big_problems_get_big_tiles_and_small_ones_split_k():
    big = wm.plan_matmul(CAPS, lay((1, 4096, 4096)), lay((1, 4096, 4096)), lay((1, 4096, 4096)), None, None)
    assert "128x128" in big.extra["config"] and "splitk" not in big.extra
    # BERT-base at batch 1: 128 rows; too few 128x128 tiles, so 64x64 tiles and split-K
    n, k = 768, 3072
    p = wm.plan_matmul(CAPS, lay((1, 128, k)), lay((1, k, n), (0, 1, k)), lay((1, 128, n)), lay((n,)), None)
    assert "64x64x16" in p.extra["config"] and "split16" in p.extra["config"]
    assert p.extra["splitk"][1].extra["variant"] == "splitk_reduce"
    small = wm.plan_matmul(CAPS, lay((1, 128, 128)), lay((1, 128, 128)), lay((1, 128, 128)), None, None)
    assert "split" not in small.extra["config"]  # K = 128: one slice


def test_software_adapters_never_split():
    soft = Caps(max_workgroup_storage=32768, is_software=True)
    p = wm.plan_matmul(soft, lay((1, 128, 3072)), lay((1, 3072, 768)), lay((1, 128, 768)), None, None)
    assert "splitk" not in p.extra


def test_split_and_compute_are_checked():
    a, b, o = lay((1, 9, 9)), lay((1, 9, 9)), lay((1, 9, 9))
    with pytest.raises(ak.KernelError, match="split"):
        wm.plan_matmul(CAPS, a, b, o, None, None, variant="tiled", split=0)
    with pytest.raises(ak.KernelError, match="split-K is for the tiled"):
        wm.plan_matmul(CAPS, lay((1, 1, 9)), b, lay((1, 1, 9)), None, None, variant="gemv_dot", split=2)
    with pytest.raises(ak.KernelError, match="compute"):
        wm.plan_matmul(CAPS, a, b, o, None, None, compute="f16")  # float32 operands
    with pytest.raises(ak.KernelError, match="loads"):
        wm.plan_matmul(CAPS, a, b, o, None, None, variant="tiled", loads="x")
    with pytest.raises(ak.ShapeError, match="residual"):
        wm.plan_matmul(CAPS, a, b, o, None, None, residual=lay((1, 9, 8)))


def test_tiles_respect_workgroup_storage():
    tiny = Caps(max_workgroup_storage=9000)
    tile = wm.pick_tile(tiny, 1, 4096, 4096)
    assert tile.storage_bytes <= 9000
    assert wm.pick_tile(Caps(max_workgroup_storage=32768), 1, 4096, 4096) is wm.TILES["128x128"]
    assert wm.pick_tile(CAPS, 1, 4096, 4096) is wm.TILES["128x128k16"]
    assert wm.pick_tile(CAPS, 1, 4096, 4096, itemsize=2) is wm.TILES["128x128k32"]  # f16 halves the storage
    with pytest.raises(ak.KernelError, match="workgroup memory"):
        wm.plan_matmul(
            tiny, lay((1, 9, 9)), lay((1, 9, 9)), lay((1, 9, 9)), None, None, variant="tiled", tile="128x128"
        )
    with pytest.raises(ak.KernelError, match="workgroup memory"):  # 128x128k32 fits only in f16
        wm.plan_matmul(CAPS, lay((1, 9, 9)), lay((1, 9, 9)), lay((1, 9, 9)), None, None, tile="128x128k32")


def test_float16_needs_the_feature():
    with pytest.raises(ak.DTypeError):
        wm.plan_matmul(
            Caps(f16=False),
            lay((1, 4, 4), dtype=float16),
            lay((1, 4, 4), dtype=float16),
            lay((1, 4, 4), dtype=float16),
            None,
            None,
        )


def test_template_directives_if_and_for():
    text = "a\n//# if 1 == 2\nno\n//# elif 1\nyes $[2 * 3]\n//# else\nno\n//# endif\n//# for i in range(3)\nx$[i]\n//# endfor\n"
    assert expand_directives(text) == "a\nyes 6\nx0\nx1\nx2\n"


def test_every_epilogue_matches_the_cpu_backend_functions():
    # the WGSL erf is the CPU backend's rational approximation: spot-check the constant table exists
    src = wm.plan_matmul(CAPS, lay((1, 9, 9)), lay((1, 9, 9)), lay((1, 9, 9)), None, "gelu").source
    assert "2.72614225801306e-10" in src and "1.42647390514189e-02" in src
    assert math.isclose(float(cpu_gelu(np.float32(1.0))), 0.8413447, rel_tol=1e-6)


# ----------------------------------------------------------------------------- float16 models
REFERENCES = Path(__file__).parent / "fixtures" / "references"


@pytest.mark.webgpu
def test_float16_models_stay_within_2e3_of_the_float32_references(webgpu):
    """The tiny models loaded as float16 (default matmul arithmetic) against transformers' float32 outputs."""
    if not webgpu.supports_f16:
        pytest.skip("adapter lacks shader-f16")
    with np.load(REFERENCES / "tiny-random-bert.npz") as r:
        out = ak.load("tiny-random-bert", device=webgpu, dtype="float16")(
            r["input_ids"], r["attention_mask"], r["token_type_ids"]
        )
        assert rel_err(out.last_hidden_state.numpy(), r["last_hidden_state"]) < 2e-3
        assert rel_err(out.logits.numpy(), r["logits"]) < 2e-3
    with np.load(REFERENCES / "tiny-random-vit.npz") as r:
        out = ak.load("tiny-random-vit", device=webgpu, dtype="float16")(r["pixel_values"])
        assert rel_err(out.last_hidden_state.numpy(), r["last_hidden_state"]) < 2e-3
        assert rel_err(out.logits.numpy(), r["logits"]) < 2e-3
    with np.load(REFERENCES / "tiny-random-whisper.npz") as r:
        out = ak.load("tiny-random-whisper", device=webgpu, dtype="float16")(
            r["input_features"], r["decoder_input_ids"]
        )
        assert rel_err(out.encoder_last_hidden_state.numpy(), r["encoder_last_hidden_state"]) < 2e-3
        assert rel_err(out.logits.numpy(), r["logits"]) < 2e-3
