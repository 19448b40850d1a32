"""WebNN validation: every spec rule raises the spec's error kind (MLTypeError for bad arguments,
InvalidStateError for used-up builders and destroyed graphs/contexts), each also an AccelkitError,
with a message naming the op and the argument; nothing is half-built after an error. Plus dispatch,
tensor and interop rules, on the CPU and WebGPU devices."""

from __future__ import annotations

import numpy as np
import pytest
import webnn_reference
from webnn_reference import context

import accelkit as ak
from accelkit import webnn
from accelkit.webnn import InvalidStateError, MLTypeError

ctx = webnn_reference.ctx  # the fixture: one context per device
F32 = {"data_type": "float32"}


def d(shape, dt="float32"):
    return {"data_type": dt, "shape": list(shape)}


@pytest.fixture
def cpu_ctx():
    return context("cpu")


@pytest.fixture
def g(cpu_ctx):
    return webnn.MLGraphBuilder(cpu_ctx)


def test_error_kinds_are_accelkit_errors_and_builtins():
    assert issubclass(MLTypeError, ak.AccelkitError) and issubclass(MLTypeError, TypeError)
    assert issubclass(InvalidStateError, ak.AccelkitError) and issubclass(InvalidStateError, RuntimeError)
    assert issubclass(webnn.DataError, ValueError) and issubclass(webnn.OperationError, ak.AccelkitError)
    assert issubclass(webnn.NotSupportedError, ak.AccelkitError)


# ----------------------------------------------------------------------------------- inputs and constants


def test_input_rules(g):
    x = g.input("x", {"dataType": "float32", "shape": [2, 3]})  # the spec's spelling works too
    assert x.data_type == "float32" and x.dataType == "float32" and x.shape == [2, 3]
    with pytest.raises(MLTypeError, match="already exists"):
        g.input("x", d([2]))
    with pytest.raises(MLTypeError, match="non-empty"):
        g.input("", d([2]))
    with pytest.raises(MLTypeError, match="not a WebNN data type"):
        g.input("y", d([2], "float64"))
    assert g.input("i64", d([2], "int64")).data_type == "int64"  # held in int32 on the device
    with pytest.raises(MLTypeError, match="dimensions must be > 0"):
        g.input("y", d([2, 0]))
    with pytest.raises(MLTypeError, match="non-negative integers"):
        g.input("y", d([2, -1]))
    with pytest.raises(MLTypeError, match="needs 'shape'"):
        g.input("y", F32)
    with pytest.raises(MLTypeError, match="descriptor must be a dict"):
        g.input("y", [2, 3])
    with pytest.raises(MLTypeError, match="rank 9 exceeds"):
        g.input("y", d([1] * 9))


def test_constant_rules(g, cpu_ctx):
    c = g.constant(d([2, 2]), np.arange(4.0))
    assert c.shape == [2, 2]
    assert g.constant("int32", 7).shape == []
    assert g.constant(d([2], "int8"), bytes([1, 255])).data_type == "int8"
    with pytest.raises(MLTypeError, match="has 5 elements.*needs 4"):
        g.constant(d([2, 2]), np.arange(5.0))
    with pytest.raises(MLTypeError, match="buffer has 12 bytes.*needs 16"):
        g.constant(d([2, 2]), bytes(12))
    with pytest.raises(MLTypeError, match="needs a number"):
        g.constant("float32", "seven")
    t = cpu_ctx.create_tensor(d([2]))
    with pytest.raises(MLTypeError, match="create_constant_tensor"):
        g.constant(t)
    ct = cpu_ctx.create_constant_tensor(d([2]), [1.0, 2.0])
    assert g.constant(ct).shape == [2]


def test_operands_from_another_builder(g, cpu_ctx):
    other = webnn.MLGraphBuilder(cpu_ctx)
    y = other.input("y", d([2]))
    x = g.input("x", d([2]))
    with pytest.raises(MLTypeError, match="add: b was made by another MLGraphBuilder"):
        g.add(x, y)
    with pytest.raises(MLTypeError, match="relu: input must be an MLOperand"):
        g.relu(np.ones(2))
    with pytest.raises(MLTypeError, match="another MLGraphBuilder"):
        g.build({"y": other.relu(y)})


# ----------------------------------------------------------------------------------- build once, nothing half-built


def test_build_rules(g):
    x = g.input("x", d([2]))
    c = g.constant(d([2]), [1.0, 2.0])
    with pytest.raises(MLTypeError, match="non-empty dict"):
        g.build({})
    with pytest.raises(MLTypeError, match="graph input; pass it through identity"):
        g.build({"y": x})
    with pytest.raises(MLTypeError, match="graph constant"):
        g.build({"y": c})
    with pytest.raises(MLTypeError, match="non-empty strings"):
        g.build({"": g.relu(x)})
    assert not g.has_built  # failed builds leave the builder usable
    graph = g.build({"y": g.add(x, c)})
    assert isinstance(graph, webnn.MLGraph)
    with pytest.raises(InvalidStateError, match="already built"):
        g.build({"y": g.relu(x)} if False else {"z": x})
    with pytest.raises(InvalidStateError, match="already built"):
        g.relu(x)
    with pytest.raises(InvalidStateError, match="already built"):
        g.input("w", d([2]))
    with pytest.raises(InvalidStateError, match="already built"):
        g.constant("float32", 1.0)


def test_failed_op_leaves_nothing_behind(g, cpu_ctx):
    x = g.input("x", d([2, 3]))
    before = g._count
    with pytest.raises(MLTypeError):
        g.matmul(x, x)
    with pytest.raises(MLTypeError):
        g.conv2d(x, x)
    assert g._count == before
    graph = g.build({"y": g.relu(x)})
    assert [s.op for s in graph.steps] == ["relu"]
    out = cpu_ctx.compute(graph, {"x": -np.ones((2, 3))})
    np.testing.assert_array_equal(out["y"], np.zeros((2, 3)))


# ----------------------------------------------------------------------------------- per-op argument rules

BAD = {
    "add-types-differ": lambda g, o: g.add(o["f"], o["i"]),
    "add-not-broadcastable": lambda g, o: g.add(o["f"], o["f35"]),
    "logical_and-not-uint8": lambda g, o: g.logical_and(o["f"], o["f"]),
    "sqrt-int32": lambda g, o: g.sqrt(o["i"]),
    "relu-uint8": lambda g, o: g.relu(o["u8"]),
    "gelu-int32": lambda g, o: g.gelu(o["i"]),
    "elu-alpha-not-finite": lambda g, o: g.elu(o["f"], alpha=float("nan")),
    "leaky_relu-unknown-option": lambda g, o: g.leaky_relu(o["f"], beta=1.0),
    "prelu-slope-not-broadcastable": lambda g, o: g.prelu(o["f"], o["f35"]),
    "softmax-axis-out-of-range": lambda g, o: g.softmax(o["f"], 2),
    "softmax-rank0": lambda g, o: g.softmax(o["s"], 0),
    "matmul-inner-differs": lambda g, o: g.matmul(o["f"], o["f"]),
    "matmul-rank1": lambda g, o: g.matmul(o["v"], o["v"]),
    "matmul-int32": lambda g, o: g.matmul(o["i"], o["i"]),
    "gemm-rank3": lambda g, o: g.gemm(o["x4"], o["x4"]),
    "gemm-c-not-broadcastable": lambda g, o: g.gemm(o["f"], o["f32t"], c=o["f35"]),
    "gemm-transpose-not-bool": lambda g, o: g.gemm(o["f"], o["f32t"], a_transpose=1),
    "conv2d-rank3-input": lambda g, o: g.conv2d(o["f35"], o["w"]),
    "conv2d-channels-differ": lambda g, o: g.conv2d(o["x4"], o["w5"]),
    "conv2d-padding-length": lambda g, o: g.conv2d(o["x4"], o["w"], padding=[1, 1]),
    "conv2d-zero-stride": lambda g, o: g.conv2d(o["x4"], o["w"], strides=[0, 1]),
    "conv2d-zero-dilation": lambda g, o: g.conv2d(o["x4"], o["w"], dilations=[1, 0]),
    "conv2d-groups-zero": lambda g, o: g.conv2d(o["x4"], o["w"], groups=0),
    "conv2d-bias-shape": lambda g, o: g.conv2d(o["x4"], o["w"], bias=o["c2"]),
    "conv2d-kernel-too-big": lambda g, o: g.conv2d(o["x4"], o["wbig"]),
    "conv2d-bad-layout": lambda g, o: g.conv2d(o["x4"], o["w"], input_layout="nhcw"),
    "conv2d-bad-filter-layout": lambda g, o: g.conv2d(o["x4"], o["w"], filter_layout="iohw"),
    "conv_transpose2d-output-padding-too-big": lambda g, o: g.conv_transpose2d(
        o["x4"], o["wt"], output_padding=[1, 1]
    ),
    "conv_transpose2d-output-sizes-out-of-range": lambda g, o: g.conv_transpose2d(
        o["x4"], o["wt"], output_sizes=[99, 99]
    ),
    "max_pool2d-window-too-big": lambda g, o: g.max_pool2d(o["x4"], window_dimensions=[9, 9]),
    "average_pool2d-output-sizes-wrong": lambda g, o: g.average_pool2d(
        o["x4"], window_dimensions=[2, 2], output_sizes=[7, 7]
    ),
    "average_pool2d-int32": lambda g, o: g.average_pool2d(o["i4"]),
    "l2_pool2d-bad-rounding": lambda g, o: g.l2_pool2d(o["x4"], output_shape_rounding="round"),
    "batch_normalization-mean-shape": lambda g, o: g.batch_normalization(o["x4"], o["v"], o["c2"]),
    "batch_normalization-axis-out-of-range": lambda g, o: g.batch_normalization(
        o["x4"], o["c2"], o["c2"], axis=4
    ),
    "instance_normalization-rank2": lambda g, o: g.instance_normalization(o["f"]),
    "layer_normalization-scale-shape": lambda g, o: g.layer_normalization(o["f"], scale=o["c2"]),
    "layer_normalization-duplicate-axes": lambda g, o: g.layer_normalization(o["f"], axes=[1, 1]),
    "reduce_sum-axis-out-of-range": lambda g, o: g.reduce_sum(o["f"], axes=[2]),
    "reduce_mean-int32": lambda g, o: g.reduce_mean(o["i"]),
    "reduce_max-keep-not-bool": lambda g, o: g.reduce_max(o["f"], keep_dimensions="yes"),
    "arg_max-float-output": lambda g, o: g.arg_max(o["f"], 0, output_data_type="float32"),
    "arg_min-axis-out-of-range": lambda g, o: g.arg_min(o["f"], 3),
    "gather-float-indices": lambda g, o: g.gather(o["f"], o["f"]),
    "gather-axis-out-of-range": lambda g, o: g.gather(o["f"], o["i"], axis=2),
    "gather_elements-rank-differs": lambda g, o: g.gather_elements(o["f"], o["iv"]),
    "gather_nd-index-too-long": lambda g, o: g.gather_nd(o["f"], o["i3"]),
    "scatter_elements-updates-shape": lambda g, o: g.scatter_elements(o["f"], o["i"], o["f35"]),
    "scatter_nd-updates-shape": lambda g, o: g.scatter_nd(o["f"], o["i"], o["f35"]),
    "reshape-count-differs": lambda g, o: g.reshape(o["f"], [4, 2]),
    "transpose-bad-permutation": lambda g, o: g.transpose(o["f"], permutation=[0, 0]),
    "slice-out-of-range": lambda g, o: g.slice(o["f"], [1, 0], [2, 3]),
    "slice-length-differs": lambda g, o: g.slice(o["f"], [0], [1]),
    "split-not-dividing": lambda g, o: g.split(o["f"], 2, axis=1),
    "split-sizes-sum": lambda g, o: g.split(o["f"], [1, 1], axis=1),
    "concat-shapes-differ": lambda g, o: g.concat([o["f"], o["f35"]], 0),
    "concat-types-differ": lambda g, o: g.concat([o["f"], o["i"]], 0),
    "concat-empty": lambda g, o: g.concat([], 0),
    "expand-incompatible": lambda g, o: g.expand(o["f"], [2, 4]),
    "expand-to-smaller-dims": lambda g, o: g.expand(o["f"], [1, 3]),
    "expand-to-lower-rank": lambda g, o: g.expand(o["f"], [3]),
    "max_pool2d-output-sizes-mixed-rounding": lambda g, o: g.max_pool2d(
        o["x4"], window_dimensions=[2, 2], strides=[3, 3], output_sizes=[1, 2]
    ),
    "tile-length-differs": lambda g, o: g.tile(o["f"], [2]),
    "pad-reflection-too-big": lambda g, o: g.pad(o["f"], [2, 0], [0, 0], mode="reflection"),
    "pad-bad-mode": lambda g, o: g.pad(o["f"], [1, 0], [0, 0], mode="wrap"),
    "reverse-duplicate-axes": lambda g, o: g.reverse(o["f"], axes=[0, 0]),
    "triangular-rank1": lambda g, o: g.triangular(o["v"]),
    "where-condition-float": lambda g, o: g.where(o["f"], o["f"], o["f"]),
    "where-values-differ": lambda g, o: g.where(o["u8"], o["f"], o["i"]),
    "clamp-min-above-max": lambda g, o: g.clamp(o["f"], min_value=2, max_value=1),
    "cast-unknown-type": lambda g, o: g.cast(o["f"], "bfloat16"),
    "quantize_linear-scale-shape": lambda g, o: g.quantize_linear(o["f"], o["f35"], o["u8"]),
    "dequantize_linear-zero-point-type": lambda g, o: g.dequantize_linear(o["u8"], o["f"], o["i"]),
    "cumulative_sum-uint8": lambda g, o: g.cumulative_sum(o["u8"], 0),
    "resample2d-duplicate-axes": lambda g, o: g.resample2d(o["x4"], axes=[2, 2]),
    "resample2d-axis-out-of-range": lambda g, o: g.resample2d(o["x4"], axes=[2, 4]),
    "resample2d-negative-scale": lambda g, o: g.resample2d(o["x4"], scales=[-1.0, 2.0]),
    "relu-label-not-string": lambda g, o: g.relu(o["f"], label=3),
}


@pytest.mark.parametrize(("name", "call"), list(BAD.items()), ids=list(BAD))
def test_bad_arguments_raise_type_error_naming_the_op(g, name, call):
    o = {
        "f": g.input("f", d([2, 3])),
        "i": g.input("i", d([2, 3], "int32")),
        "u8": g.input("u8", d([2, 3], "uint8")),
        "f35": g.input("f35", d([3, 5])),
        "f32t": g.input("f32t", d([3, 2])),
        "v": g.input("v", d([3])),
        "c2": g.input("c2", d([2])),
        "s": g.input("s", d([])),
        "iv": g.input("iv", d([3], "int32")),
        "i3": g.input("i3", d([2, 3], "int32")),
        "x4": g.input("x4", d([1, 2, 4, 4])),
        "i4": g.input("i4", d([1, 2, 4, 4], "int32")),
        "w": g.input("w", d([3, 2, 3, 3])),
        "w5": g.input("w5", d([3, 5, 3, 3])),
        "wbig": g.input("wbig", d([3, 2, 5, 5])),
        "wt": g.input("wt", d([2, 3, 3, 3])),
    }
    before = g._count
    with pytest.raises(MLTypeError) as info:
        call(g, o)
    assert g._count == before  # nothing added
    op = name.split("-")[0]
    assert str(info.value).startswith(op + ":"), f"message should start with the op name {op!r}: {info.value}"


# ----------------------------------------------------------------------------------- tensors and dispatch


def _graph(c):
    g = webnn.MLGraphBuilder(c)
    x = g.input("x", d([2, 3]))
    return g.build({"y": g.mul(x, x)})


def test_dispatch_rules(ctx):
    graph = _graph(ctx)
    tx = ctx.create_tensor({**d([2, 3]), "writable": True})
    ty = ctx.create_tensor({**d([2, 3]), "readable": True})
    ctx.write_tensor(tx, np.full((2, 3), 3.0))
    ctx.dispatch(graph, {"x": tx}, {"y": ty})
    np.testing.assert_array_equal(ctx.read_tensor(ty), np.full((2, 3), 9.0, np.float32))
    with pytest.raises(MLTypeError, match="missing \\['x'\\]"):
        ctx.dispatch(graph, {}, {"y": ty})
    with pytest.raises(MLTypeError, match="unexpected \\['z'\\]"):
        ctx.dispatch(graph, {"x": tx, "z": ctx.create_tensor(d([2, 3]))}, {"y": ty})
    with pytest.raises(MLTypeError, match="expects float32\\[2, 3\\]"):
        ctx.dispatch(graph, {"x": ctx.create_tensor(d([3, 2]))}, {"y": ty})
    with pytest.raises(MLTypeError, match="expects float32"):
        ctx.dispatch(graph, {"x": ctx.create_tensor(d([2, 3], "int32"))}, {"y": ty})
    with pytest.raises(MLTypeError, match="same MLTensor is given twice"):
        ctx.dispatch(graph, {"x": tx}, {"y": tx})
    other = context("cpu" if ctx.device.backend_name != "cpu" else "cpu")
    if other is not ctx:
        with pytest.raises(MLTypeError, match="another MLContext"):
            ctx.dispatch(_graph(other), {"x": tx}, {"y": ty})
    foreign = webnn.ml.create_context(device="cpu")
    with pytest.raises(MLTypeError, match="another MLContext"):
        ctx.dispatch(graph, {"x": foreign.create_tensor(d([2, 3]))}, {"y": ty})
    with pytest.raises(MLTypeError, match="another MLContext"):
        foreign.dispatch(graph, {"x": tx}, {"y": ty})
    ct = ctx.create_constant_tensor(d([2, 3]), np.zeros(6))
    with pytest.raises(MLTypeError, match="constant MLTensor"):
        ctx.dispatch(graph, {"x": ct}, {"y": ty})
    dead = ctx.create_tensor(d([2, 3]))
    dead.destroy()
    dead.destroy()  # idempotent
    with pytest.raises(MLTypeError, match="destroyed"):
        ctx.dispatch(graph, {"x": dead}, {"y": ty})
    graph.destroy()
    with pytest.raises(InvalidStateError, match="MLGraph is destroyed"):
        ctx.dispatch(graph, {"x": tx}, {"y": ty})


def test_tensor_read_write_rules(ctx):
    t = ctx.create_tensor(d([2, 2]))
    assert not t.readable and not t.writable
    with pytest.raises(MLTypeError, match="readable=True"):
        ctx.read_tensor(t)
    with pytest.raises(MLTypeError, match="writable=True"):
        ctx.write_tensor(t, np.zeros(4))
    rw = ctx.create_tensor({**d([2, 2], "int8"), "readable": True, "writable": True})
    np.testing.assert_array_equal(ctx.read_tensor(rw), np.zeros((2, 2), np.int8))  # zero-filled
    with pytest.raises(MLTypeError, match="has 3 elements"):
        ctx.write_tensor(rw, [1, 2, 3])
    ctx.write_tensor(rw, np.array([1, -2, 3, -4]))
    got = ctx.read_tensor(rw)
    assert got.dtype == np.int8 and got.tolist() == [[1, -2], [3, -4]]
    out = np.empty(4, np.int8)
    ctx.read_tensor(rw, out)
    assert out.tolist() == [1, -2, 3, -4]
    with pytest.raises(MLTypeError, match="out has 3 bytes"):
        ctx.read_tensor(rw, np.empty(3, np.int8))
    rw.destroy()
    with pytest.raises(MLTypeError, match="destroyed"):
        ctx.read_tensor(rw)


def test_wide_integers_live_in_int32(ctx):
    g = webnn.MLGraphBuilder(ctx)
    x = g.input("x", d([3], "int64"))
    u = g.input("u", d([2], "uint32"))
    graph = g.build(
        {"y": g.add(x, g.constant(d([3], "int64"), [1, 2, 3])), "v": g.sub(u, g.constant("uint32", 1))}
    )
    out = ctx.compute(graph, {"x": np.array([5, -7, 2**31 - 2]), "u": np.array([0, 4000000000], np.uint32)})
    assert out["y"].dtype == np.int64 and out["y"].tolist() == [6, -5, 2**31 + 1 - 2**32]  # wraps at 32 bits
    assert out["v"].dtype == np.uint32 and out["v"].tolist() == [2**32 - 1, 3999999999]  # modulo 2**32
    with pytest.raises(webnn.DataError, match="int64 values must lie in"):
        g2 = webnn.MLGraphBuilder(ctx)
        g2.constant(d([1], "int64"), [2**40])
    t = ctx.create_tensor({**d([1], "int64"), "writable": True})
    with pytest.raises(webnn.DataError, match="int32"):
        ctx.write_tensor(t, np.array([-(2**33)]))


def test_destroyed_context(cpu_ctx):
    c = webnn.ml.create_context(device="cpu")
    g = webnn.MLGraphBuilder(c)
    x = g.input("x", d([2]))
    graph = _graph(c)
    c.destroy()
    c.destroy()  # idempotent
    assert c.lost == {"message": "destroy() was called"}
    with pytest.raises(InvalidStateError, match="lost"):
        c.create_tensor(d([2]))
    with pytest.raises(InvalidStateError, match="lost"):
        g.relu(x)
    with pytest.raises(InvalidStateError, match="lost"):
        c.dispatch(graph, {}, {})
    with pytest.raises(InvalidStateError, match="lost"):
        webnn.MLGraphBuilder(c).input("x", d([2]))


def test_context_options():
    assert webnn.ml.create_context(device="cpu").device.backend_name == "cpu"
    assert webnn.ml.create_context(power_preference="low-power").device.backend_name == "cpu"
    assert (
        webnn.ml.create_context({"powerPreference": "high-performance"}).power_preference
        == "high-performance"
    )
    with pytest.raises(MLTypeError, match="power_preference"):
        webnn.ml.create_context(power_preference="fast")
    with pytest.raises(webnn.NotSupportedError, match="no context"):
        webnn.ml.create_context(device="tpu")
    assert webnn.ml.createContext is not None


def test_op_support_limits(ctx):
    limits = ctx.op_support_limits()
    assert limits["preferred_input_layout"] == "nchw"
    assert limits["input"]["rank_range"] == {"min": 0, "max": 8}
    assert limits["unsupported_data_types"] == []
    assert limits["gather"]["indices"]["data_types"] == ["int32", "uint32", "int64"]
    assert limits["conv2d"]["input"]["data_types"] == [
        t for t in ("float32", "float16") if t in ctx._data_types
    ]
    assert limits["equal"]["output"]["data_types"] == ["uint8"]
    assert limits["softmax"]["input"]["rank_range"]["min"] == 1
    from accelkit.webnn.ops import BUILDERS

    for op in BUILDERS:
        assert op in limits or op in ("argmin", "argmax"), op
    f16 = ctx.device.supports_f16
    assert ("float16" in limits["add"]["a"]["data_types"]) == f16


def test_interop_without_copy(ctx):
    t = ak.tensor(np.arange(6.0, dtype=np.float32).reshape(2, 3), device=ctx.device)
    mt = ctx.tensor_from(t)
    assert mt.to_accelkit() is t and mt.shape == [2, 3] and mt.data_type == "float32"
    out = ak.tensor(np.zeros((2, 3), np.float32), device=ctx.device)
    graph = _graph(ctx)
    ctx.dispatch(graph, {"x": mt}, {"y": ctx.tensor_from(out)})
    np.testing.assert_array_equal(out.numpy(), np.arange(6.0).reshape(2, 3) ** 2)  # written in place
    with pytest.raises(MLTypeError, match="contiguous"):
        ctx.tensor_from(t.T)
    elsewhere = "cpu" if ctx.device.backend_name != "cpu" else None
    if elsewhere:
        with pytest.raises(MLTypeError, match="this context on"):
            ctx.tensor_from(ak.tensor(np.zeros(2, np.float32), device="cpu"))
    with pytest.raises(MLTypeError, match="accelkit Tensor"):
        ctx.tensor_from(np.zeros(2))


def test_compute_and_graph_run(ctx):
    graph = _graph(ctx)
    out = ctx.compute(graph, {"x": np.full((2, 3), 2.0)})
    np.testing.assert_array_equal(out["y"], np.full((2, 3), 4.0, np.float32))
    with pytest.raises(MLTypeError, match="exactly \\['x'\\]"):
        ctx.compute(graph, {"z": np.zeros((2, 3))})
    res = graph.run(
        {"x": ak.tensor(np.ones((2, 3), np.float32), device=ctx.device)}
    )  # one function of Tensors
    assert isinstance(res["y"], ak.Tensor) and res["y"].device is ctx.device
    assert graph.input_descriptors == {"x": d([2, 3])}


def test_camel_case_aliases(g):
    x = g.input("x", d([1, 2, 4, 4]))
    assert g.averagePool2d(x).shape == [1, 2, 1, 1]
    assert g.layerNormalization(x).shape == [1, 2, 4, 4]
    assert g.reduceL1(x, axes=[1]).shape == [1, 4, 4]
    assert g.isNaN(x).data_type == "uint8"
    assert g.gatherND == g.gather_nd and g.convTranspose2d == g.conv_transpose2d


def test_spec_spellings_of_options(g):
    x = g.input("x", d([1, 2, 4, 4]))
    assert g.reduce_sum(x, {"axes": [1], "keepDimensions": True}).shape == [1, 1, 4, 4]
    assert g.reduceSum(x, axes=[2], keepDimensions=False).shape == [1, 2, 4]
    assert g.averagePool2d(x, {"windowDimensions": [2, 2], "strides": [2, 2]}).shape == [1, 2, 2, 2]
    assert g.clamp(x, minValue=0.0).shape == [1, 2, 4, 4]
    with pytest.raises(MLTypeError, match="reduce_sum: .*unexpected keyword argument 'axis'"):
        g.reduce_sum(x, axis=[1])
    with pytest.raises(MLTypeError, match="softmax: missing a required argument: 'axis'"):
        g.softmax(x)


def test_build_puts_op_data_on_the_device(ctx):
    """Index maps and masks an op works out at build time are uploaded by build(), not by the first dispatch."""
    from accelkit.webnn.graph import _build_constants

    g = webnn.MLGraphBuilder(ctx)
    x = g.input("x", d([1, 2, 4, 4]))
    y = g.max_pool2d(g.pad(x, [0, 0, 1, 1], [0, 0, 1, 1], mode="edge"), window_dimensions=[3, 3])
    consts = _build_constants(y.node.run, []) + _build_constants(y.node.inputs[0].node.run, [])
    assert len(consts) == 3 and all(c._tensor is None for c in consts)
    g.build({"y": y})
    assert all(c._tensor is not None and c._tensor.device is ctx.device for c in consts)
