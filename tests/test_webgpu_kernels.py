"""The WebGPU kernels of backends/webgpu/plans.py (elementwise, fill, softmax, layer norm, reductions, embedding).

Every op runs through the real stack (``ak.ops`` on ``ak.device("webgpu:0")``) and is compared with a
float64 numpy reference, and with the CPU backend where it defines the function (gelu's erf). The
inputs are picked to hit every kernel path: vec4 / dense / strided layouts, row kernels that cache or
stream, both reduction layouts, and the awkward cases (primes, 1, 0-size, -inf rows, ties, NaN,
huge |x|). Shapes repeat on purpose: a new shape costs nothing, a new pipeline costs a compile.
Without an adapter these skip, or fail under ACCELKIT_REQUIRE_WEBGPU=1 (conftest's ``webgpu``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import check_close
from hypothesis import given, settings
from hypothesis import strategies as st

import accelkit as ak
from accelkit.backends import cpu as cpu_backend
from accelkit.backends.webgpu import plans
from accelkit.backends.webgpu.wgsl import Caps, Layout, grid_1d
from accelkit.tensor import float16, float32, int32

pytestmark = pytest.mark.webgpu

_erf64 = np.vectorize(math.erf)
F16_RTOL = 2e-3  # relative to the largest reference magnitude


def _erf_approx(x):
    """The CPU backend's erf (the kernels use the same rational approximation), in float64."""
    return cpu_backend.erf(np.asarray(x, np.float64))


# numpy's own functions (the CPU backend's table) in float64, with true erf-based references for the
# ops that the backends approximate
UNARY_REF = {op: fn for op, fn in cpu_backend.UNARY.items() if op not in ("copy", "cast")}
UNARY_REF.update(
    sigmoid=lambda x: 1.0 / (1.0 + np.exp(-x)),
    gelu=lambda x: 0.5 * x * (1.0 + _erf64(x / math.sqrt(2.0))),
    gelu_tanh=lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
    erf=_erf64,
    silu=lambda x: x / (1.0 + np.exp(-x)),
)
POSITIVE = ("log", "sqrt", "rsqrt")


def _unary(op, t):
    if op == "gelu_tanh":
        return ak.ops.gelu(t, approximate="tanh")
    return getattr(ak.ops, op)(t)


@pytest.fixture
def gpu(webgpu):
    return webgpu


@pytest.fixture
def f16(gpu):
    if not gpu.supports_f16:
        pytest.skip("this adapter lacks shader-f16")
    return gpu


# ----------------------------------------------------------------------------------- unary


@pytest.mark.parametrize("op", sorted(UNARY_REF))
def test_unary_f32_matches_float64(gpu, rng, op):
    x = rng.uniform(-6, 6, size=(37, 53))  # prime sizes: the dense path with a ragged tail
    if op in POSITIVE:
        x = np.abs(x) + 0.01
    got = _unary(op, ak.tensor(x.astype(np.float32), device=gpu))
    check_close(got, UNARY_REF[op](x.astype(np.float32).astype(np.float64)), float32, what=op)


@pytest.mark.parametrize("op", ["exp", "gelu", "gelu_tanh", "sigmoid", "sin"])
def test_unary_f16(f16, rng, op):
    x = rng.uniform(-4, 4, size=(7, 64)).astype(np.float16)  # vec4 path
    got = _unary(op, ak.tensor(x, device=f16))
    assert got.dtype is float16
    check_close(got, UNARY_REF[op](x.astype(np.float64)), rtol=F16_RTOL, what=op)
    check_close(
        _unary(op, ak.tensor(x[:, 1:], device=f16)),
        UNARY_REF[op](x[:, 1:].astype(np.float64)),
        rtol=F16_RTOL,
        what=f"{op} strided",
    )


def test_gelu_matches_cpu_backend(gpu, rng):
    x = rng.uniform(-5, 5, size=(3, 1000)).astype(np.float32)
    cpu = ak.device("cpu")
    for op in ("gelu", "erf"):
        want = _unary(op, ak.tensor(x, device=cpu)).numpy()
        got = _unary(op, ak.tensor(x, device=gpu)).numpy()
        # a few ulp of erf, magnified by 1 + erf(x / sqrt 2) cancelling in gelu's tail (drivers fuse to fma)
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6, err_msg=op)
    # the shared rational approximation itself is close to the true erf
    np.testing.assert_allclose(_erf_approx(x), _erf64(x.astype(np.float64)), atol=2e-7)


def test_large_magnitudes_never_nan(gpu):
    x = np.array([-1e30, -1e4, -100.0, -30.0, -10.0, 0.0, 10.0, 30.0, 100.0, 1e4, 1e30], np.float32)
    t = ak.tensor(x, device=gpu)
    x64 = x.astype(np.float64)
    np.testing.assert_array_equal(ak.ops.tanh(t).numpy(), np.tanh(x64).astype(np.float32))
    with np.errstate(over="ignore"):
        for op in ("gelu_tanh", "gelu", "sigmoid", "silu"):
            got = _unary(op, t).numpy()
            assert not np.isnan(got).any(), (op, got)
            np.testing.assert_allclose(got, UNARY_REF[op](x64), rtol=1e-5, atol=1e-30, err_msg=op)
        got = ak.ops.exp(t).numpy()
        assert got[0] == 0 and got[-1] == np.inf


def test_unary_special_values(gpu):
    x = np.array([0.0, -0.0, -1.0, np.inf, -np.inf, np.nan], np.float32)
    t = ak.tensor(x, device=gpu)
    with np.errstate(all="ignore"):
        for op in ("tanh", "relu", "erf", "gelu", "gelu_tanh", "sigmoid", "exp", "sin"):
            got = _unary(op, t[5:]).numpy()
            assert np.isnan(got).all(), (op, got)  # NaN goes through every op, clamped or not
        check_close(ak.ops.log(t), np.log(x.astype(np.float64)), what="log")
        check_close(ak.ops.sqrt(t[3:5]), np.sqrt(x[3:5].astype(np.float64)), what="sqrt")
        check_close(ak.ops.sin(t[3:]), np.full(3, np.nan), what="sin of inf/nan")
    big = np.array([1000.0, -12345.5, 31415.9, 1e-30], np.float32)
    for op in ("sin", "cos"):
        check_close(
            getattr(ak.ops, op)(ak.tensor(big, device=gpu)),
            getattr(np, op)(big.astype(np.float64)),
            rtol=2e-6,
            what=f"{op} after range reduction",
        )


def test_unary_int32(gpu, rng):
    x = rng.integers(-1000, 1000, size=(5, 31)).astype(np.int32)
    t = ak.tensor(x, device=gpu)
    for op, ref in (("neg", -x), ("abs", np.abs(x)), ("relu", np.maximum(x, 0))):
        got = getattr(ak.ops, op)(t)
        assert got.dtype is int32
        check_close(got, ref, what=op)
    got = ak.ops.exp(ak.tensor(x % 7, device=gpu))  # int input, float op: f32 out
    assert got.dtype is float32
    check_close(got, np.exp((x % 7).astype(np.float64)), what="exp of int32")
    check_close(ak.ops.scale(t, 0.5), x * 0.5, what="scale of int32")
    check_close(ak.ops.copy(t.T), x.T, what="int32 transpose copy")


def test_scale(gpu, rng):
    x = rng.standard_normal((64, 3)).astype(np.float32)
    check_close(ak.ops.scale(ak.tensor(x, device=gpu), -0.125), x * -0.125)


@pytest.mark.parametrize(
    "src,dst",
    [
        ("float32", "int32"),
        ("float32", "float16"),
        ("float16", "float32"),
        ("float16", "int32"),
        ("int32", "float32"),
        ("int32", "float16"),
    ],
)
def test_cast(f16, src, dst):
    x = np.array([-3.7, -2.5, -1.2, -0.5, 0.0, 0.5, 1.5, 2.5, 3.99, 100.7, -250.25], np.float64)
    if src == "int32":
        x = np.trunc(x)
    xs = x.astype(src)
    got = ak.ops.cast(ak.tensor(xs, device=f16), dst)
    assert got.dtype.name == dst
    np.testing.assert_array_equal(got.numpy(), xs.astype(dst))  # float -> int truncates toward zero


def test_copy_layouts(gpu, rng):
    """copy (contiguous()) of transposed, reversed, broadcast and rank-8 views: the strided path."""
    x = rng.standard_normal((6, 5, 4)).astype(np.float32)
    t = ak.tensor(x, device=gpu)
    check_close(t.permute(2, 0, 1).contiguous(), x.transpose(2, 0, 1))
    check_close(t[::-1, :, ::-2].contiguous(), x[::-1, :, ::-2])
    check_close(t[1:4, 2].contiguous(), x[1:4, 2])  # a dense view at an odd offset
    check_close(t[0, 0].expand(3, 4).contiguous(), np.broadcast_to(x[0, 0], (3, 4)))
    y = rng.standard_normal((2, 1, 3, 2, 2, 3, 1, 2)).astype(np.float32)
    perm = (7, 0, 5, 2, 4, 1, 3, 6)
    check_close(
        ak.ops.exp(ak.tensor(y, device=gpu).permute(*perm)), np.exp(y.astype(np.float64).transpose(perm))
    )
    one = ak.tensor(np.float32(2.5), device=gpu)
    check_close(ak.ops.neg(one), np.float64(-2.5))


def test_rows_mode_layouts(gpu, rng):
    """Long innermost dims take the rows mode (index math once per row), vec4 when everything is 4-aligned."""
    x = rng.standard_normal((3, 4, 5, 128)).astype(np.float32)
    t = ak.tensor(x, device=gpu)
    x64 = x.astype(np.float64)
    check_close(t.permute(0, 2, 1, 3).contiguous(), x.transpose(0, 2, 1, 3), what="head split, vec4")
    check_close(t[:, ::-1, 1:4].contiguous(), x[:, ::-1, 1:4], what="reversed rows, vec4")
    check_close(t[..., 1:].contiguous(), x[..., 1:], what="misaligned rows")
    m = rng.standard_normal((130, 140)).astype(np.float32)
    check_close(ak.tensor(m, device=gpu).T.contiguous(), m.T, what="transpose")
    bias = rng.standard_normal(128).astype(np.float32)
    check_close(t + ak.tensor(bias, device=gpu), x64 + bias, what="bias add, vec4")
    check_close(
        t[:, :, :, :127] * ak.tensor(bias[:127], device=gpu), x64[..., :127] * bias[:127], what="bias mul"
    )
    check_close(ak.ops.gelu(t.permute(1, 0, 2, 3)), UNARY_REF["gelu"](x64.transpose(1, 0, 2, 3)), what="gelu")
    out = ak.zeros(4, 3, 260, device=gpu)
    out[:, :, 2:130] = t[:, :, 0].permute(1, 0, 2)
    want = np.zeros((4, 3, 260))
    want[:, :, 2:130] = x[:, :, 0].transpose(1, 0, 2)
    check_close(out, want, what="strided out, misaligned")


def test_in_place_writes_into_views(gpu, rng):
    """copy_, __setitem__, pad and concat write through strided out views (with conversion)."""
    x = rng.standard_normal((5, 7)).astype(np.float32)
    base = np.zeros((6, 9), np.float32)
    t = ak.tensor(base, device=gpu)
    t[1:, 2:] = ak.tensor(x, device=gpu)
    base[1:, 2:] = x
    t[::2, 0] = 7.0
    base[::2, 0] = 7.0
    t[::-1, 1] = ak.tensor(np.arange(6), device=gpu)  # int32 -> float32 cast into a reversed view
    base[::-1, 1] = np.arange(6)
    check_close(t, base)
    check_close(
        ak.ops.pad(ak.tensor(x, device=gpu), [(1, 2), (0, 3)], value=-1.0),
        np.pad(x, [(1, 2), (0, 3)], constant_values=-1.0),
    )
    y = rng.standard_normal((5, 2)).astype(np.float32)
    check_close(
        ak.ops.concat([ak.tensor(x, device=gpu), ak.tensor(y, device=gpu)], axis=1),
        np.concatenate([x, y], axis=1),
    )


def test_overlapping_copy(gpu):
    t = ak.tensor(np.arange(10.0, dtype=np.float32), device=gpu)
    t[1:] = t[:-1]
    check_close(t, np.array([0, 0, 1, 2, 3, 4, 5, 6, 7, 8], np.float64))


def test_zero_size(gpu):
    e = ak.tensor(np.zeros((0, 5), np.float32), device=gpu)
    assert ak.ops.exp(e).shape == (0, 5)
    assert (e + e).shape == (0, 5)
    assert ak.ops.softmax(e).shape == (0, 5)
    assert ak.ops.layer_norm(e).shape == (0, 5)
    assert ak.ops.sum(e, axis=0).numpy().tolist() == [0.0] * 5
    assert ak.ops.embedding(np.zeros(0, np.int64), ak.tensor(np.ones((3, 4)), device=gpu)).shape == (0, 4)


# ----------------------------------------------------------------------------------- binary

BINARY_REF = cpu_backend.BINARY  # numpy's functions, applied here in float64


@pytest.mark.parametrize("op", sorted(BINARY_REF))
def test_binary_f32_layouts(gpu, rng, op):
    a = rng.uniform(0.5, 3, size=(37, 53)).astype(np.float32)
    b = rng.uniform(-2, 2, size=(37, 53)).astype(np.float32)
    if op == "div":
        b = np.where(np.abs(b) < 0.1, 1.0, b).astype(np.float32)
    ta, tb = ak.tensor(a, device=gpu), ak.tensor(b, device=gpu)
    fn, ref = getattr(ak.ops, op), BINARY_REF[op]
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    check_close(fn(ta, tb), ref(a64, b64), what="dense")
    check_close(fn(ta[:, :52], tb[:, 1:]), ref(a64[:, :52], b64[:, 1:]), what="strided")
    check_close(fn(ta[:, :1], tb[:1, :]), ref(a64[:, :1], b64[:1, :]), what="broadcast both")
    check_close(fn(ta[::-1], tb.T.T), ref(a64[::-1], b64), what="reversed")
    check_close(
        fn(ta[:32, :48], tb[:32, :48].contiguous()), ref(a64[:32, :48], b64[:32, :48]), what="strided 2"
    )
    c, d = ta[:4, :].contiguous().reshape(4, 53), tb.reshape(-1)[:212].reshape(4, 53)
    check_close(fn(c, d), ref(a64[:4], b64.reshape(-1)[:212].reshape(4, 53)), what="dense again")
    e, f = ta.reshape(-1)[: 64 * 4].reshape(16, 16), tb.reshape(-1)[8 : 8 + 256].reshape(16, 16)
    check_close(
        fn(e, f),
        ref(a64.reshape(-1)[:256].reshape(16, 16), b64.reshape(-1)[8:264].reshape(16, 16)),
        what="vec4",
    )


def test_binary_scalar_and_pow_edge_cases(gpu):
    a = np.array([-2.0, -2.0, -8.0, 0.0, 0.0, 2.0, 1.0, 3.0, -1.5, np.nan, 2.0, np.nan], np.float32)
    b = np.array([3.0, 2.0, 1 / 3, 0.0, -1.0, 0.5, np.nan, -2.0, 1.0e9, 0.0, np.nan, 2.0], np.float32)
    with np.errstate(all="ignore"):
        want = np.power(a.astype(np.float64), b.astype(np.float64))
    got = ak.ops.pow(ak.tensor(a, device=gpu), ak.tensor(b, device=gpu)).numpy()
    check_close(got, want, rtol=1e-5)
    t = ak.tensor(np.array([1.0, 2.0, 3.0], np.float32), device=gpu)
    check_close(2.0**t, 2.0 ** np.array([1.0, 2.0, 3.0]))
    check_close(t - 1, np.array([0.0, 1.0, 2.0]))
    check_close(1 / t, 1 / np.array([1.0, 2.0, 3.0]))
    n = ak.tensor(np.array([np.nan, 1.0, -np.inf], np.float32), device=gpu)
    check_close(ak.ops.maximum(n, t), np.array([np.nan, 2.0, 3.0]), what="maximum propagates NaN")
    check_close(ak.ops.minimum(t, n), np.array([np.nan, 1.0, -np.inf]), what="minimum propagates NaN")


def test_binary_int32(gpu, rng):
    a = rng.integers(-50, 50, size=(11, 12)).astype(np.int32)
    b = rng.integers(1, 9, size=(11, 12)).astype(np.int32)
    ta, tb = ak.tensor(a, device=gpu), ak.tensor(b, device=gpu)
    for op in ("add", "sub", "mul", "maximum", "minimum"):
        got = getattr(ak.ops, op)(ta, tb)
        assert got.dtype is int32
        check_close(got, BINARY_REF[op](a, b), what=op)
    check_close(
        ak.ops.pow(ta[:, :5], ak.tensor(b[:, :5] % 4, device=gpu)),
        np.power(a[:, :5], b[:, :5] % 4),
        what="int pow",
    )
    q = ak.ops.div(ta, tb)
    assert q.dtype is float32
    check_close(q, a / b, what="int32 / int32 -> f32")
    check_close(ak.ops.div(ta.T, tb[:1].expand(11, 12).T), (a / b[:1]).T, what="strided int div")


@pytest.mark.parametrize("op", ["add", "mul", "div", "pow", "maximum"])
def test_binary_f16(f16, rng, op):
    a = rng.uniform(0.5, 2, size=(9, 16)).astype(np.float16)
    b = rng.uniform(0.5, 2, size=(16,)).astype(np.float16)
    got = getattr(ak.ops, op)(ak.tensor(a, device=f16), ak.tensor(b, device=f16))
    assert got.dtype is float16
    check_close(got, BINARY_REF[op](a.astype(np.float64), b.astype(np.float64)), rtol=F16_RTOL, what=op)
    got = getattr(ak.ops, op)(ak.tensor(a, device=f16), ak.tensor(a, device=f16))  # vec4 path
    check_close(got, BINARY_REF[op](a.astype(np.float64), a.astype(np.float64)), rtol=F16_RTOL, what=op)


# ----------------------------------------------------------------------------------- fill


def test_fill(gpu):
    check_close(ak.zeros(3, 5, device=gpu), np.zeros((3, 5)))
    check_close(ak.full((7,), -2.5, device=gpu), np.full(7, -2.5))
    i = ak.full((9,), 2.7, dtype="int32", device=gpu)
    assert i.dtype is int32
    check_close(i, np.full(9, 2))
    check_close(ak.full((4,), -2.7, dtype="int32", device=gpu), np.full(4, -2))
    t = ak.zeros(3, 10, device=gpu)
    ak.ops.fill_(t[1], 4.0)  # a contiguous view at offset 10
    ak.ops.fill_(t[2, 3:8], np.inf)  # at offset 23, length 5
    want = np.zeros((3, 10))
    want[1] = 4.0
    want[2, 3:8] = np.inf
    check_close(t, want)


def test_fill_f16(f16):
    t = ak.full((2, 6), 1.0 / 3.0, dtype="float16", device=f16)
    np.testing.assert_array_equal(t.numpy(), np.full((2, 6), 1.0 / 3.0, np.float16))
    np.testing.assert_array_equal(ak.full((5,), 1e6, dtype="float16", device=f16).numpy(), np.full(5, np.inf))


# ----------------------------------------------------------------------------------- softmax


def _softmax64(x):
    x = np.asarray(x, np.float64)
    m = x.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(x - m)
    s = e.sum(axis=-1, keepdims=True)
    return np.where(s > 0, e / np.where(s > 0, s, 1.0), 0.0)


@pytest.mark.parametrize("n", [1, 7, 33, 257, 1024, 5000, 20001])  # cached (scalar, vec4) and streamed
def test_softmax(gpu, rng, n):
    x = (rng.standard_normal((6, n)) * 4).astype(np.float32)
    x[1] = -np.inf  # a row with nothing in it gives zeros
    x[2, : (n + 1) // 2] = -np.inf
    x[3] += 1e4  # large values: only the max subtraction keeps this finite
    x[4, -1] = 80.0  # one dominant entry
    got = ak.ops.softmax(ak.tensor(x, device=gpu))
    check_close(got, _softmax64(x), float32)
    assert np.all(got.numpy()[1] == 0)


def test_softmax_axis_and_f16(f16, rng):
    x = rng.standard_normal((3, 257, 4)).astype(np.float32)
    got = ak.ops.softmax(ak.tensor(x, device=f16), axis=1)
    check_close(got, np.moveaxis(_softmax64(np.moveaxis(x, 1, -1)), -1, 1))
    h = x[0].T.astype(np.float16)
    check_close(ak.ops.softmax(ak.tensor(h, device=f16)), _softmax64(h), rtol=F16_RTOL)
    h = (x[:, :64, 0] * 8).astype(np.float16)  # vec4 rows
    check_close(ak.ops.softmax(ak.tensor(h, device=f16)), _softmax64(h), rtol=F16_RTOL)


# ----------------------------------------------------------------------------------- layer norm


def _layer_norm64(x, w=None, b=None, eps=1e-5, residual=None):
    v = np.asarray(x, np.float64) + (0 if residual is None else residual)
    y = (v - v.mean(-1, keepdims=True)) / np.sqrt(v.var(-1, keepdims=True) + eps)
    return y * (1 if w is None else w) + (0 if b is None else b)


@pytest.mark.parametrize("n", [1, 7, 128, 384, 3001, 9001])  # cached (scalar, vec4) and streamed
def test_layer_norm(gpu, rng, n):
    x = (rng.standard_normal((5, n)) * 3 + 1000.0).astype(np.float32)  # a large mean tests the two passes
    r = rng.standard_normal((5, n)).astype(np.float32)
    w = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    t = ak.tensor(x, device=gpu)
    dev = {"device": gpu}
    tw, tb, tr = ak.tensor(w, **dev), ak.tensor(b, **dev), ak.tensor(r, **dev)
    check_close(ak.ops.layer_norm(t), _layer_norm64(x), rtol=1e-5, what="plain")
    check_close(
        ak.ops.layer_norm(t, tw, tb, eps=1e-6), _layer_norm64(x, w, b, eps=1e-6), rtol=1e-5, what="w+b"
    )
    check_close(
        ak.ops.layer_norm(t, tw, None, residual=tr),
        _layer_norm64(x, w, residual=r),
        rtol=1e-5,
        what="residual, weight only",
    )
    check_close(
        ak.ops.layer_norm(t, None, tb, residual=tr),
        _layer_norm64(x, b=b, residual=r),
        rtol=1e-5,
        what="residual, bias only",
    )


def test_layer_norm_strided_input_and_f16(f16, rng):
    x = rng.standard_normal((128, 6)).astype(np.float32)
    w = rng.standard_normal(128).astype(np.float32)
    check_close(
        ak.ops.layer_norm(ak.tensor(x, device=f16).T, ak.tensor(w, device=f16)),
        _layer_norm64(x.T, w),
        rtol=1e-5,
    )
    h = x.T.astype(np.float16)
    got = ak.ops.layer_norm(ak.tensor(h, device=f16), ak.tensor(w.astype(np.float16), device=f16))
    assert got.dtype is float16
    check_close(got, _layer_norm64(h, w.astype(np.float16)), rtol=F16_RTOL)


# ----------------------------------------------------------------------------------- reductions

REDUCE_REF = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min, "argmax": np.argmax}


@pytest.mark.parametrize("op", sorted(REDUCE_REF))
def test_reduce_f32(gpu, rng, op):
    x = rng.standard_normal((3, 1001, 2)).astype(np.float32)
    t = ak.tensor(x, device=gpu)
    fn, ref = getattr(ak.ops, op), REDUCE_REF[op]
    x64 = x.astype(np.float64)
    check_close(fn(t, axis=1), ref(x64, axis=1), k=1001, what="columns, inner 2")
    check_close(fn(t, axis=0), ref(x64, axis=0), k=3, what="columns, inner 2002")
    check_close(fn(t, axis=2), ref(x64, axis=2), what="rows of 2")
    check_close(fn(t, axis=None), ref(x64, axis=None), k=6006, what="one row of 6006")
    check_close(fn(t[0].T, axis=1), ref(x64[0].T, axis=1), k=1001, what="rows of 1001")
    check_close(
        fn(t[:, :70, 0], axis=0, keepdims=True),
        ref(x64[:, :70, 0], axis=0, keepdims=True),
        what="columns, inner 70",
    )
    check_close(fn(t[:, :5], axis=1), ref(x64[:, :5], axis=1), what="columns, n 5")


def test_reduce_sum_is_precise(gpu, rng):
    x = (rng.standard_normal(200_003) + 100.0).astype(np.float32)
    got = ak.ops.sum(ak.tensor(x, device=gpu)).item()
    want = x.astype(np.float64).sum()
    assert abs(got - want) <= 2e-7 * abs(want), (got, want)
    assert abs(ak.ops.mean(ak.tensor(x, device=gpu)).item() - want / x.size) <= 2e-7 * want / x.size


def test_argmax_ties_nan_and_inf(gpu):
    x = np.array(
        [[1, 3, 3, 2, 3], [5, 5, 5, 5, 5], [-np.inf] * 5, [0, np.nan, 7, np.nan, 1], [-1, -2, -3, -4, -1]],
        np.float32,
    )
    t = ak.tensor(x, device=gpu)
    check_close(ak.ops.argmax(t, axis=1), np.array([1, 0, 0, 1, 0]))
    check_close(ak.ops.argmax(t.T, axis=0), np.array([1, 0, 0, 1, 0]))
    ties = np.zeros((3, 700), np.float32)
    ties[1, [650, 3, 400]] = 2.0
    check_close(ak.ops.argmax(ak.tensor(ties, device=gpu), axis=1), np.array([0, 3, 0]))
    long = np.zeros(40_000, np.float32)
    long[[39_999, 17, 20_000]] = 5.0  # one long row: 1024 lanes, the first of the tied maxima wins
    check_close(ak.ops.argmax(ak.tensor(long, device=gpu)), np.int32(17))
    check_close(ak.ops.max(t, axis=1), np.array([3, 5, -np.inf, np.nan, -1]))
    check_close(ak.ops.min(t, axis=1), np.array([1, 5, -np.inf, np.nan, -4]))
    check_close(ak.ops.sum(t[:3], axis=1), np.array([12, 25, -np.inf]))


def test_reduce_int32_and_f16(f16, rng):
    x = rng.integers(-1000, 1000, size=(4, 300, 3)).astype(np.int32)
    t = ak.tensor(x, device=f16)
    for op in ("sum", "max", "min", "argmax"):
        got = getattr(ak.ops, op)(t, axis=1)
        assert got.dtype is int32
        check_close(got, REDUCE_REF[op](x, axis=1), what=f"int32 {op}")
    assert ak.ops.mean(t, axis=1).dtype is float32
    check_close(ak.ops.mean(t, axis=1), x.mean(axis=1), what="int32 mean")
    big = np.full((1, 3), 2**30, np.int32)
    check_close(ak.ops.sum(ak.tensor(big, device=f16)), big.sum(dtype=np.int32), what="wraps like int32")
    h = rng.standard_normal((6, 300)).astype(np.float16)
    for op in ("sum", "mean", "max", "argmax"):
        got = getattr(ak.ops, op)(ak.tensor(h, device=f16), axis=1)
        check_close(got, REDUCE_REF[op](h.astype(np.float64), axis=1), rtol=F16_RTOL, what=f"f16 {op}")


# ----------------------------------------------------------------------------------- embedding


@pytest.mark.parametrize("d", [12, 7])  # vec4 rows, scalar rows
def test_embedding(gpu, rng, d):
    table = rng.standard_normal((50, d)).astype(np.float32)
    ids = rng.integers(0, 50, size=(3, 11))
    tt = ak.tensor(table, device=gpu)
    check_close(ak.ops.embedding(ids, tt), table[ids])
    check_close(ak.ops.embedding(ids[0] % 49, tt[1:]), table[1:][ids[0] % 49], what="table at an offset")
    dev_ids = ak.tensor(np.array([-5, 0, 49, 1000, 7], np.int32), device=gpu)  # clamped on the device
    check_close(ak.ops.embedding(dev_ids, tt), table[[0, 0, 49, 49, 7]])


def test_embedding_f16(f16, rng):
    table = rng.standard_normal((30, 8)).astype(np.float16)
    ids = np.array([29, 0, 4, 4])
    np.testing.assert_array_equal(ak.ops.embedding(ids, ak.tensor(table, device=f16)).numpy(), table[ids])


# ----------------------------------------------------------------------------------- property


@st.composite
def strided_views(draw):
    """A random shape (rank 1-4, sizes 1-6) and a view into a larger base: permuted, stepped, reversed."""
    rank = draw(st.integers(1, 4))
    shape = tuple(draw(st.integers(1, 6)) for _ in range(rank))
    steps = tuple(draw(st.sampled_from([1, 2, -1, -2])) for _ in range(rank))
    perm = tuple(draw(st.permutations(range(rank))))
    return shape, steps, perm


@settings(max_examples=12)
@given(view=strided_views(), seed=st.integers(0, 2**16))
def test_strided_views_property(webgpu, view, seed):
    shape, steps, perm = view
    rng = np.random.default_rng(seed)
    base = rng.standard_normal(tuple(n * abs(s) for n, s in zip(shape, steps))).astype(np.float32)
    index = tuple(slice(None, None, s) for s in steps)
    want = base[index].transpose(perm)
    t = ak.tensor(base, device=webgpu)[index].permute(*perm)
    check_close(t.contiguous(), want.astype(np.float64), what="copy")
    other = rng.standard_normal(want.shape[-1:]).astype(np.float32)
    check_close(t * ak.tensor(other, device=webgpu), want.astype(np.float64) * other, what="mul")


# ----------------------------------------------------------------------------------- planners (no device)


def test_keys_ignore_shapes_and_labels_read_well():
    caps = Caps()
    a = Layout.contiguous(float32, (1024, 3072))
    b = Layout.contiguous(float32, (16, 48))
    pa, pb = plans.plan_unary(caps, "gelu", a, a), plans.plan_unary(caps, "gelu", b, b)
    assert pa.key == pb.key and pa.source == pb.source and pa.params != pb.params
    assert pa.label == "gelu[1024x3072] f32"
    assert pa.flops > 0 and pa.bytes_moved == 1024 * 3072 * 8
    s = plans.plan_softmax(caps, Layout.contiguous(float16, (8, 100)), Layout.contiguous(float16, (8, 100)))
    assert s.label == "softmax[8x100] f16" and "enable f16;" in s.source
    r = plans.plan_reduce(
        caps, "argmax", Layout.contiguous(float32, (2, 9, 1)), Layout.contiguous(int32, (2, 1))
    )
    assert r.label == "argmax[2x9x1] f32"


def test_grid_spreads_over_y_when_x_is_full(gpu, rng):
    """With a tiny per-dimension limit the grid needs wid.y: the kernels must recover the flat index."""
    be = gpu.backend
    caps = Caps(f16=be.caps.f16, max_workgroups_per_dim=3)
    x = rng.standard_normal(20_000).astype(np.float32)
    t = ak.tensor(x, device=gpu)
    out = ak.empty(20_000, device=gpu)
    plan = plans.plan_unary(caps, "neg", t[1:], out[1:])  # dense path, 20 workgroups
    assert plan.workgroups[1] > 1 and plan.workgroups == grid_1d(20, 3)
    be.launch(plan, [t.storage.handle, out.storage.handle])
    np.testing.assert_array_equal(out.numpy()[1:], -x[1:])
    rows = rng.standard_normal((37, 5)).astype(np.float32)
    tr, o = ak.tensor(rows, device=gpu), ak.empty(37, 5, device=gpu)
    be.launch(plans.plan_softmax(caps, tr, o), [tr.storage.handle, o.storage.handle])
    check_close(o, _softmax64(rows))


@pytest.mark.parametrize("n", [96, 700])
def test_row_kernels_without_subgroups(gpu, rng, n):
    """Devices without the subgroup feature reduce rows through workgroup memory only."""
    be = gpu.backend
    caps = Caps(f16=be.caps.f16, subgroups=False)
    x = rng.standard_normal((9, n)).astype(np.float32) + 3
    tx, o = ak.tensor(x, device=gpu), ak.empty(9, n, device=gpu)
    be.launch(plans.plan_softmax(caps, tx, o), [tx.storage.handle, o.storage.handle])
    check_close(o, _softmax64(x))
    o2 = ak.empty(9, n, device=gpu)
    plan = plans.plan_layer_norm(caps, tx, None, None, o2, 1e-5, tx)
    be.launch(plan, [tx.storage.handle, tx.storage.handle, None, None, o2.storage.handle])
    check_close(o2, _layer_norm64(x, residual=x), rtol=1e-5)


def test_coalesce():
    assert plans.coalesce((2, 3, 4), (12, 4, 1), (0, 0, 1)) == ((6, 4), [(4, 1), (0, 1)])
    assert plans.coalesce((1, 1), (5, 1)) == ((1,), [(1,)])
    assert plans.coalesce((3, 1, 5), (5, 99, 1)) == ((15,), [(1,)])
    assert plans.coalesce((4, 3), (-3, -1)) == ((12,), [(-1,)])
