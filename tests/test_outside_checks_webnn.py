"""Outside checks for issue 12 (WebNN), written by a reviewer from the issue text and the spec:
the issue's own code block as written, positional arguments in spec order, every validation rule
(each error is the spec's kind *and* an ``ak.AccelkitError``, nothing half-built), interop without
a copy, and a few web-platform-tests conformance cases ported literally, on the cpu and webgpu
devices. The ULP helper here is this file's own, independent of the library's test helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import WEBGPU_SPECS, _no_webgpu

import accelkit as ak
from accelkit import webnn

DEVICES = ["cpu", pytest.param("webgpu", marks=pytest.mark.webgpu)]


@pytest.fixture(params=DEVICES)
def ctx(request):
    if request.param == "webgpu":
        if not WEBGPU_SPECS:
            _no_webgpu()
        return webnn.ml.create_context(device=WEBGPU_SPECS[0])
    return webnn.ml.create_context(device="cpu")


def ulps(actual, expected, dtype=np.float32) -> int:
    """Largest ULP distance after rounding ``expected`` to ``dtype`` (+0 == -0, NaN == NaN)."""
    dtype = np.dtype(dtype)
    uint = {4: np.uint32, 2: np.uint16}[dtype.itemsize]
    bits = dtype.itemsize * 8

    def key(x):
        b = np.asarray(x, dtype=np.float64).astype(dtype).view(uint).astype(np.int64)
        return np.where(b >> (bits - 1), -(b & ((1 << (bits - 1)) - 1)), b)

    a = np.asarray(actual)
    e = np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, (a.shape, e.shape)
    d = np.abs(key(a) - key(e))
    d = np.where(np.isnan(a.astype(np.float64)) & np.isnan(e), 0, d)
    return int(d.max()) if d.size else 0


def raises_spec(kind, what=""):
    """A context manager: the error is the spec's ``kind`` and an ``ak.AccelkitError``."""

    class _Check:
        def __enter__(self):
            return self

        def __exit__(self, et, ev, tb):
            assert et is not None, f"{what}: expected {kind.__name__}, nothing was raised"
            assert issubclass(et, kind), f"{what}: expected {kind.__name__}, got {et.__name__}: {ev}"
            assert isinstance(ev, ak.AccelkitError), f"{et.__name__} is not an AccelkitError"
            return True

    return _Check()


# ----------------------------------------------------------------------------------- the issue's block


def _gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def test_issue_code_block_as_written(ctx):
    rng = np.random.default_rng(12)
    a = rng.standard_normal((5, 7)).astype(np.float32)
    array = rng.standard_normal((7, 3)).astype(np.float32)
    bias = rng.standard_normal(3).astype(np.float32)
    g = webnn.MLGraphBuilder(ctx)
    x = g.input("x", {"dataType": "float32", "shape": [5, 7]})  # the spec's spelling
    w = g.constant({"data_type": "float32", "shape": [7, 3]}, array)
    b = g.constant({"dataType": "float32", "shape": [3]}, bias)
    y = g.layer_normalization(g.gelu(g.add(g.matmul(x, w), b)), axes=[1], epsilon=1e-5)
    graph = g.build({"y": y})
    tx = ctx.create_tensor({"data_type": "float32", "shape": [5, 7], "writable": True})
    ty = ctx.create_tensor({"dataType": "float32", "shape": [5, 3], "readable": True})
    ctx.write_tensor(tx, a)
    ctx.dispatch(graph, {"x": tx}, {"y": ty})
    out = ctx.read_tensor(ty)
    h = _gelu(a.astype(np.float64) @ array + bias)
    ref = (h - h.mean(1, keepdims=True)) / np.sqrt(h.var(1, keepdims=True) + 1e-5)
    assert out.dtype == np.float32 and out.shape == (5, 3)
    np.testing.assert_allclose(out, ref, atol=2e-4)
    np.testing.assert_allclose(ctx.compute(graph, {"x": a})["y"], out, atol=1e-6)
    limits = ctx.op_support_limits()
    assert "float32" in limits["matmul"]["a"]["data_types"]
    with raises_spec(webnn.InvalidStateError):  # a builder builds once
        g.build({"y": y})


def test_positional_arguments_in_spec_order(ctx):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((2, 6)).astype(np.float32)
    g = webnn.MLGraphBuilder(ctx)
    x = g.input("x", {"data_type": "float32", "shape": [2, 6]})
    idx = g.constant({"data_type": "int32", "shape": [2]}, np.array([5, 0], np.int32))
    parts = g.split(x, [2, 4], axis=1)
    outs = {
        "softmax": g.softmax(x, 1),
        "reshape": g.reshape(x, [3, 4]),
        "slice": g.slice(x, [0, 1], [2, 3], strides=[1, 2]),
        "concat": g.concat([x, x], 0),
        "cast": g.cast(x, "int32"),
        "split0": g.identity(parts[0]),
        "split1": g.identity(parts[1]),
        "gather": g.gather(x, idx, axis=1),
        "sum": g.reduce_sum(x, axes=[1], keep_dimensions=True),
        "gemm": g.gemm(x, x, c=g.constant("float32", 1.5), alpha=2.0, b_transpose=True),
    }
    got = ctx.compute(g.build(outs), {"x": a})
    d = a.astype(np.float64)
    e = np.exp(d - d.max(1, keepdims=True))
    want = {
        "softmax": e / e.sum(1, keepdims=True),
        "reshape": d.reshape(3, 4),
        "slice": d[0:2, 1:4:2],  # sizes are the window, the output ceil(size / stride)
        "concat": np.concatenate([d, d], 0),
        "cast": np.trunc(a).astype(np.int32),
        "split0": d[:, :2],
        "split1": d[:, 2:],
        "gather": d[:, [5, 0]],
        "sum": d.sum(1, keepdims=True),
        "gemm": 2.0 * d @ d.T + 1.5,
    }
    for name, ref in want.items():
        assert got[name].shape == ref.shape, name
        if ref.dtype.kind == "i":
            np.testing.assert_array_equal(got[name], ref, err_msg=name)
        else:
            assert ulps(got[name], ref) <= 2 * 6 + 3 * 6 + 3, name  # the WPT budget of the worst op here


def test_conv2d_options_as_keyword_arguments(ctx):
    rng = np.random.default_rng(2)
    xa = rng.standard_normal((1, 5, 4, 2)).astype(np.float32)  # nhwc, awkward sizes
    wa = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)  # oihw
    ba = rng.standard_normal(3).astype(np.float32)
    g = webnn.MLGraphBuilder(ctx)
    x = g.input("x", {"data_type": "float32", "shape": list(xa.shape)})
    w = g.constant({"data_type": "float32", "shape": list(wa.shape)}, wa)
    b = g.constant({"data_type": "float32", "shape": [3]}, ba)
    y = g.conv2d(x, w, padding=[1, 0, 2, 1], strides=[2, 1], groups=1, input_layout="nhwc", bias=b)
    assert y.shape == [1, 2, 5, 3]  # h: (5 + 1 + 0 - 3) // 2 + 1, w: (4 + 2 + 1 - 3) + 1; nhwc out
    got = ctx.compute(g.build({"y": y}), {"x": xa})["y"]
    xp = np.pad(xa.astype(np.float64), ((0, 0), (1, 0), (2, 1), (0, 0)))
    ref = np.zeros((1, 2, 5, 3))
    for i in range(2):
        for j in range(5):
            patch = xp[0, 2 * i : 2 * i + 3, j : j + 3, :]  # h w c
            ref[0, i, j] = np.einsum("hwc,ochw->o", patch, wa) + ba
    np.testing.assert_allclose(got, ref, atol=1e-4)


# ----------------------------------------------------------------------------------- validation


def _fresh(ctx):
    g = webnn.MLGraphBuilder(ctx)
    return g, g.input("x", {"data_type": "float32", "shape": [2, 3]})


def test_builder_rules_leave_nothing_half_built(ctx):
    g, x = _fresh(ctx)
    other, ox = _fresh(ctx)
    bad_calls = [
        lambda: g.input("x", {"data_type": "int32", "shape": [4]}),  # duplicate name, other descriptor
        lambda: g.constant({"data_type": "float32", "shape": [2, 2]}, np.zeros(5, np.float32)),
        lambda: g.constant({"data_type": "float32", "shape": [2, 2]}, b"\0" * 12),
        lambda: g.constant({"data_type": "int32", "shape": [2]}, ["1", "2"]),
        lambda: g.add(x, ox),  # operand of another builder
        lambda: g.add(ox, x),
        lambda: g.concat([x, ox], 0),
        lambda: g.where(g.cast(x, "uint8"), x, ox),
        lambda: g.softmax(x, 2),
        lambda: g.reshape(x, [4]),
        lambda: g.slice(x, [0, 2], [2, 2]),
        lambda: g.gemm(x, x),  # inner sizes 3 != 2
        lambda: g.conv2d(x, x),
        lambda: g.relu(x, alpha=1.0),
        lambda: g.reduce_sum(x, axes=[0, 0]),
        lambda: g.transpose(x, permutation=[0, 0]),
        lambda: g.input("z", {"data_type": "float32", "shape": [2, 0]}),
        lambda: g.input("z", {"data_type": "bfloat16", "shape": [2]}),
    ]
    for i, call in enumerate(bad_calls):
        before = (g._count, dict(g._inputs))
        with raises_spec(TypeError, f"builder case {i}"):
            call()
        after = (g._count, dict(g._inputs))
        # "z" may not have been added, and no operator may have been counted beyond the ones that
        # succeeded before the failing call inside the lambda (the cast in the ``where`` case)
        assert set(after[1]) == set(before[1]), f"call {i} left an input behind"
        assert after[0] - before[0] <= 1, f"call {i} left operators behind"
    with raises_spec(TypeError):
        other.build({"y": g.relu(x)})  # an output of another builder
    graph = g.build({"y": g.relu(x)})  # the builder still works after all that
    out = ctx.compute(graph, {"x": -np.arange(6, dtype=np.float32).reshape(2, 3)})["y"]
    np.testing.assert_array_equal(out, np.zeros((2, 3), np.float32))
    with raises_spec(webnn.InvalidStateError):
        g.build({"y": g.relu(x)})
    with raises_spec(webnn.InvalidStateError):
        g.input("late", {"data_type": "float32", "shape": [1]})


def test_dispatch_rules(ctx):
    g, x = _fresh(ctx)
    graph = g.build({"y": g.sigmoid(x), "z": g.reduce_max(x, axes=[1])})

    def T(shape, dt="float32", **flags):
        return ctx.create_tensor({"data_type": dt, "shape": shape, **flags})

    tx, ty, tz = T([2, 3], writable=True), T([2, 3], readable=True), T([2], readable=True)
    bad = [
        ({}, {"y": ty, "z": tz}),  # missing input
        ({"x": tx}, {"y": ty}),  # missing output
        ({"x": tx, "extra": T([2, 3])}, {"y": ty, "z": tz}),
        ({"x": tx}, {"y": ty, "z": tz, "extra": T([2])}),
        ({"x": T([3, 2])}, {"y": ty, "z": tz}),  # shape mismatch
        ({"x": T([2, 3], "float16" if "float16" in ctx._data_types else "int32")}, {"y": ty, "z": tz}),
        ({"x": tx}, {"y": ty, "z": T([2, 1])}),
        ({"x": tx}, {"y": tx, "z": tz}),  # an input also as an output
        ({"x": np.zeros((2, 3), np.float32)}, {"y": ty, "z": tz}),
        (
            {"x": tx},
            {
                "y": ty,
                "z": webnn.ml.create_context(device="cpu").create_tensor(
                    {"data_type": "float32", "shape": [2]}
                ),
            },
        ),
    ]
    for i, (ins, outs) in enumerate(bad):
        with raises_spec(TypeError, f"dispatch case {i}"):
            ctx.dispatch(graph, ins, outs)
    ctx.write_tensor(tx, np.array([[0, 1, 2], [-3, 4, -5]], np.float32))
    ctx.dispatch(graph, {"x": tx}, {"y": ty, "z": tz})  # still fine after every refusal
    np.testing.assert_array_equal(ctx.read_tensor(tz), [2, 4])
    with raises_spec(TypeError):
        ctx.read_tensor(tx)  # not readable
    with raises_spec(TypeError):
        ctx.write_tensor(ty, np.zeros(6, np.float32))  # not writable
    with raises_spec(TypeError):
        ctx.write_tensor(tx, np.zeros(7, np.float32))
    with raises_spec(TypeError):
        ctx.read_tensor(ty, bytes(24))  # a read-only out buffer
    with raises_spec(TypeError):
        ctx.read_tensor(ty, [0.0] * 6)  # not a buffer at all
    buf = bytearray(24)
    ctx.read_tensor(ty, buf)
    np.testing.assert_allclose(np.frombuffer(buf, np.float32), ctx.read_tensor(ty).ravel())
    with raises_spec(TypeError):  # compute: a 2-D array of the wrong shape is not silently reshaped
        ctx.compute(graph, {"x": np.zeros((3, 2), np.float32)})
    assert ctx.compute(graph, {"x": np.zeros(6, np.float32)})["y"].shape == (2, 3)  # a flat buffer is fine


def test_destroyed_tensor_graph_and_context(ctx):
    g, x = _fresh(ctx)
    graph = g.build({"y": g.neg(x)})
    tx = ctx.create_tensor({"data_type": "float32", "shape": [2, 3], "writable": True, "readable": True})
    ty = ctx.create_tensor({"data_type": "float32", "shape": [2, 3], "readable": True})
    tx.destroy()
    tx.destroy()  # idempotent
    for call in (
        lambda: ctx.dispatch(graph, {"x": tx}, {"y": ty}),
        lambda: ctx.read_tensor(tx),
        lambda: ctx.write_tensor(tx, np.zeros(6)),
        lambda: tx.to_accelkit(),
    ):
        with raises_spec(TypeError):
            call()
    graph.destroy()
    tx2 = ctx.create_tensor({"data_type": "float32", "shape": [2, 3], "writable": True})
    with raises_spec(webnn.InvalidStateError):
        ctx.dispatch(graph, {"x": tx2}, {"y": ty})
    with raises_spec(webnn.InvalidStateError):
        ctx.compute(graph, {"x": np.zeros((2, 3))})
    g2, x2 = _fresh(ctx)
    ctx.destroy()
    for call in (
        lambda: webnn.MLGraphBuilder(ctx),  # the spec: a lost context makes no builder
        lambda: g2.relu(x2),
        lambda: ctx.create_tensor({"data_type": "float32", "shape": [1]}),
        lambda: ctx.read_tensor(ty),
        lambda: ctx.write_tensor(tx2, np.zeros(6)),
        lambda: ctx.tensor_from(ak.zeros((2,), device=ctx.device)),
    ):
        with raises_spec(webnn.InvalidStateError):
            call()


# ----------------------------------------------------------------------------------- interop


def test_interop_shares_the_buffer(ctx):
    t = ak.tensor(np.arange(6, dtype=np.float32).reshape(2, 3), device=ctx.device)
    mt = ctx.tensor_from(t)
    assert mt.to_accelkit() is t and mt.shape == [2, 3] and mt.data_type == "float32"
    ctx.write_tensor(mt, np.full(6, 7.0, np.float32))  # written through the MLTensor ...
    np.testing.assert_array_equal(t.numpy(), np.full((2, 3), 7.0))  # ... seen by the accelkit Tensor
    g, x = _fresh(ctx)
    graph = g.build({"y": g.mul(x, x)})
    out = ak.zeros((2, 3), device=ctx.device)
    ctx.dispatch(graph, {"x": mt}, {"y": ctx.tensor_from(out)})  # a graph writes into an ak.Tensor
    np.testing.assert_array_equal(out.numpy(), np.full((2, 3), 49.0))
    other = "cpu" if ctx.device.backend_name != "cpu" else None
    if other:
        with raises_spec(TypeError):
            ctx.tensor_from(ak.zeros((2, 3), device=other))
    with raises_spec(TypeError):
        ctx.tensor_from(np.zeros((2, 3), np.float32))


# ----------------------------------------------------------------------------------- WPT cases, literally

# webnn/conformance_tests/triangular.https.any.js: one input, four of its cases (tolerance: 0 ULP)
TRI_IN = [
    84.9194564819336, -86.21631622314453, 50.38116455078125, -98.47772216796875, -94.51172637939453,
    -21.42218589782715, 24.678754806518555, -50.355342864990234, -37.015724182128906, 97.25071716308594,
    73.36241149902344, -75.12358856201172, 41.64348602294922, 58.862911224365234, -29.916187286376953,
    67.48285675048828, 42.132598876953125, -70.27587127685547, 20.88446617126465, 71.37139892578125,
    -84.96932220458984, -88.97057342529297, 77.58269500732422, 91.03327178955078,
]  # fmt: skip
TRI_CASES = [
    ([4, 6], {}, [1,1,1,1,1,1, 0,1,1,1,1,1, 0,0,1,1,1,1, 0,0,0,1,1,1]),
    ([2, 3, 4], {}, [1,1,1,1, 0,1,1,1, 0,0,1,1, 1,1,1,1, 0,1,1,1, 0,0,1,1]),
    ([2, 2, 2, 3], {"upper": False}, [1,0,0, 1,1,0] * 4),
    ([2, 2, 2, 3], {"diagonal": 1}, [0,1,1, 0,0,1] * 4),
]  # fmt: skip


@pytest.mark.parametrize("shape,options,keep", TRI_CASES)
def test_wpt_triangular(ctx, shape, options, keep):
    g = webnn.MLGraphBuilder(ctx)
    x = g.input("triangularInput", {"dataType": "float32", "shape": shape})
    graph = g.build({"triangularOutput": g.triangular(x, **options)})
    got = ctx.compute(graph, {"triangularInput": np.array(TRI_IN, np.float32)})["triangularOutput"]
    want = np.where(np.array(keep, bool), np.array(TRI_IN, np.float32), 0).reshape(shape)
    assert ulps(got, want) == 0


# webnn/conformance_tests/cast_rounding.https.any.js: float32 -> float16 -> float32 keeps the
# narrowing (ties to even, subnormals, signed underflow, overflow), exactly, zero sign included
CAST_VECTORS = [
    (
        [1.0003, -1.0003, 1.0007, -1.0007, 1.00048828125, -1.00048828125, 1.00146484375, -1.00146484375,
         2049, -2049, 2051, -2051],
        [1, -1, 1.0009765625, -1.0009765625, 1, -1, 1.001953125, -1.001953125, 2048, -2048, 2052, -2052],
    ),
    (
        [2**-24, -(2**-24), 2**-25, -(2**-25), 3 * 2**-25, -3 * 2**-25, 5 * 2**-25, -5 * 2**-25,
         1023 * 2**-24, -1023 * 2**-24, 2047 * 2**-25, -2047 * 2**-25, 0.0, -0.0],
        [2**-24, -(2**-24), 0.0, -0.0, 2**-23, -(2**-23), 2**-23, -(2**-23), 1023 * 2**-24,
         -1023 * 2**-24, 2**-14, -(2**-14), 0.0, -0.0],
    ),
    (
        [65504, -65504, 65519, -65519, 65520, -65520, 65536, -65536, math.inf, -math.inf, math.nan],
        [65504, -65504, 65504, -65504, math.inf, -math.inf, math.inf, -math.inf, math.inf, -math.inf,
         math.nan],
    ),
]  # fmt: skip


@pytest.mark.parametrize("vector", range(len(CAST_VECTORS)))
@pytest.mark.parametrize("constant", [False, True])
def test_wpt_cast_rounding_through_float16(ctx, vector, constant):
    if "float16" not in ctx._data_types:
        assert "float16" in ctx.op_support_limits()["unsupported_data_types"]
        pytest.skip("this adapter has no shader-f16 (and op_support_limits says so)")
    values, expected = CAST_VECTORS[vector]
    data = np.array(values, np.float32)
    g = webnn.MLGraphBuilder(ctx)
    desc = {"dataType": "float32", "shape": [len(values)]}
    x = g.constant(desc, data) if constant else g.input("input", desc)
    narrowed = g.cast(x, "float16")
    graph = g.build({"narrowed": narrowed, "widened": g.cast(narrowed, "float32")})
    got = ctx.compute(graph, {} if constant else {"input": data})
    for name in ("narrowed", "widened"):
        out = got[name].astype(np.float64)
        for i, want in enumerate(expected):
            if math.isnan(want):
                assert math.isnan(out[i]), f"{name}[{i}] is NaN"
            else:
                assert out[i] == want and math.copysign(1, out[i]) == math.copysign(1, want), (
                    f"{name}[{i}]: {values[i]!r} -> {out[i]!r}, want {want!r}"
                )
