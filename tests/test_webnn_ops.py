"""WebNN conformance: every builder op against a numpy float64 reference on the CPU and WebGPU
devices, checked with the web-platform-tests' tolerance rule (ULP distance per op, in the output's
own precision, float16 in f16 ULPs; ATOL where WPT uses it). Every graph goes through the full path:
create_tensor, write_tensor, dispatch, read_tensor."""

from __future__ import annotations

import math

import numpy as np
import pytest
import webnn_reference as ref
from webnn_reference import assert_conforms, run_graph

ctx = ref.ctx  # the fixture: one context per device

RNG = np.random.default_rng(1234)


def rand(*shape, lo=-1.0, hi=1.0, dtype=np.float32):
    return RNG.uniform(lo, hi, shape).astype(dtype)


def pos(*shape, dtype=np.float32):
    return rand(*shape, lo=0.1, hi=1.0, dtype=dtype)


def ints(*shape, lo=-20, hi=20, dtype=np.int32):
    return RNG.integers(lo, hi, shape).astype(dtype)


CASES = []


def case(name, inputs, build, reference, *, ulp=0, atol=None, constants=None, out_dtype=None):
    CASES.append(pytest.param(inputs, constants or {}, build, reference, ulp, atol, out_dtype, id=name))


def binary_case(name, op, fn, a, b, *, ulp=0):
    """Builder op ``op`` on inputs a and b against numpy's ``fn`` (a boolean result is WebNN's uint8)."""

    def reference(i):
        r = np.asarray(fn(i["a"], i["b"]))
        return r.astype(np.uint8) if r.dtype == bool else r

    case(name, {"a": a, "b": b}, lambda g, o: getattr(g, op)(o["a"], o["b"]), reference, ulp=ulp)


# ----------------------------------------------------------------------------------- element-wise binary
BINARY = {  # op: (numpy reference, ULP tolerance)
    "add": (np.add, 1),
    "sub": (np.subtract, 1),
    "mul": (np.multiply, 1),
    "div": (np.divide, 2),
    "max": (np.maximum, 0),
    "min": (np.minimum, 0),
}
A, B = rand(3, 5), rand(5)
for op, (fn, tol) in BINARY.items():
    binary_case(f"{op}-f32-broadcast", op, fn, A, B, ulp=tol)
    binary_case(f"{op}-f16", op, fn, A.astype(np.float16), B.reshape(1, 5).astype(np.float16), ulp=tol)
    if op != "div":  # int32 division truncates: its own case below
        binary_case(f"{op}-int32", op, fn, ints(2, 3), ints(2, 1))
case(
    "add-int8-wraps",
    {"a": np.array([100, -100, 5], np.int8), "b": np.array([100, -100, 7], np.int8)},
    lambda g, o: g.add(o["a"], o["b"]),
    lambda i: np.array([-56, 56, 12]),
)
case(
    "div-int32-truncates",
    {"a": np.array([7, -7, 9], np.int32), "b": np.array([2, 2, -4], np.int32)},
    lambda g, o: g.div(o["a"], o["b"]),
    lambda i: np.array([3, -3, -2]),
)
binary_case("pow-f32", "pow", np.power, pos(2, 3) * 2, rand(2, 3) * 2, ulp=32)
binary_case(
    "pow-negative-base-integer-exponent",
    "pow",
    np.power,
    np.array([-2, -3, -0.5], np.float32),
    np.array([2, 3, -1], np.float32),
    ulp=32,
)
binary_case("add-rank0-and-rank3", "add", np.add, np.array(1.5, np.float32), rand(2, 3, 5), ulp=1)

# ----------------------------------------------------------------------------------- comparisons and logical
COMPARISONS = {
    "equal": np.equal,
    "not_equal": np.not_equal,
    "greater": np.greater,
    "greater_or_equal": np.greater_equal,
    "lesser": np.less,
    "lesser_or_equal": np.less_equal,
}
CA = np.array([[1, 2, 3], [4, 5, 6]], np.float32)
CB = np.array([[1, 0, 3], [5, 5, 2]], np.float32)
# NaN, infinities, signed zeros and float16 subnormals against thresholds (NaN compares unequal to all)
CN = np.array([np.nan, 1.0, -0.0, np.inf, 2.0**-24, -np.inf, 5.0, np.nan], np.float32)
CM = np.array([1.0, np.nan, 0.0, np.inf, 0.0, 3.0, np.nan, np.nan], np.float32)
for op, fn in COMPARISONS.items():
    binary_case(f"{op}-f32", op, fn, CA, CB)
    binary_case(f"{op}-int32-broadcast", op, fn, CA.astype(np.int32), np.array([3], np.int32))
    for dt in (np.float32, np.float16):
        case(
            f"{op}-{np.dtype(dt).name}-nan-inf-zero-subnormal",
            {"a": CN.astype(dt), "b": CM.astype(dt)},
            lambda g, o, op=op: g.where(getattr(g, op)(o["a"], o["b"]), o["a"], o["b"]),
            lambda i, fn=fn: np.where(fn(i["a"], i["b"]), i["a"], i["b"]),
        )
LA = np.array([0, 1, 3, 0], np.uint8)
LB = np.array([0, 0, 1, 7], np.uint8)
for op, fn in (
    ("logical_and", np.logical_and),
    ("logical_or", np.logical_or),
    ("logical_xor", np.logical_xor),
):
    binary_case(op, op, fn, LA, LB)
case("logical_not", {"a": LA}, lambda g, o: g.logical_not(o["a"]), lambda i: (i["a"] == 0).astype(np.uint8))
SPECIAL = np.array([1.0, np.nan, np.inf, -np.inf, -2.0, 0.0], np.float32)
case("is_nan", {"a": SPECIAL}, lambda g, o: g.is_nan(o["a"]), lambda i: np.isnan(i["a"]).astype(np.uint8))
case(
    "is_infinite",
    {"a": SPECIAL},
    lambda g, o: g.is_infinite(o["a"]),
    lambda i: np.isinf(i["a"]).astype(np.uint8),
)

# ----------------------------------------------------------------------------------- element-wise unary
X = rand(3, 7, lo=-3, hi=3)
UNARY = {
    "abs": (np.abs, X, 0, None),
    "neg": (np.negative, X, 0, None),
    "ceil": (np.ceil, X, 0, None),
    "floor": (np.floor, X, 0, None),
    "sign": (np.sign, X, 0, None),
    "identity": (lambda v: v, X, 0, None),
    "round_even": (np.round, np.array([0.5, 1.5, 2.5, -0.5, -1.5, 1.2, -2.7], np.float32), 0, None),
    "sqrt": (np.sqrt, pos(3, 7) * 9, 1, None),
    "exp": (np.exp, X, 32, None),
    "log": (np.log, pos(3, 7) * 5, 0, 1 / 1024),
    "sin": (np.sin, X, 0, 1 / 1024),
    "cos": (np.cos, X, 0, 1 / 1024),
    "tan": (np.tan, rand(3, 7, lo=-1.2, hi=1.2), 0, 1 / 1024),
    "reciprocal": (np.reciprocal, pos(3, 7) * 4, 2, None),
    "erf": (ref.erf, X, 0, 1 / 1024),
}
for op, (fn, data, tol, atol) in UNARY.items():
    case(
        f"{op}-f32",
        {"x": data},
        lambda g, o, op=op: getattr(g, op)(o["x"]),
        lambda i, fn=fn: fn(i["x"]),
        ulp=tol,
        atol=atol,
    )
for op in ("abs", "neg", "sign"):
    case(
        f"{op}-int32",
        {"x": ints(2, 5)},
        lambda g, o, op=op: getattr(g, op)(o["x"]),
        lambda i, op=op: UNARY[op][0](i["x"]),
    )
case(
    "neg-int8-wraps",
    {"x": np.array([-128, 5, 127], np.int8)},
    lambda g, o: g.neg(o["x"]),
    lambda i: np.array([-128, -5, -127]),
)
case(
    "sqrt-f16",
    {"x": (pos(4, 5) * 9).astype(np.float16)},
    lambda g, o: g.sqrt(o["x"]),
    lambda i: np.sqrt(i["x"]),
    ulp=1,
)

# ----------------------------------------------------------------------------------- activations
XA = rand(4, 6, lo=-4, hi=4)
ACT = {
    "relu": (lambda v: np.maximum(v, 0), 0, {}),
    "sigmoid": (ref.sigmoid, 34, {}),
    "gelu": (ref.gelu, 18, {}),
    "softplus": (lambda v: np.logaddexp(0, v), 18, {}),
    "softsign": (lambda v: v / (1 + np.abs(v)), 3, {}),
    "hard_swish": (lambda v: v * np.clip(v + 3, 0, 6) / 6, 4, {}),
    "elu": (lambda v: np.where(v < 0, 0.7 * np.expm1(v), v), 18, {"alpha": 0.7}),
    "leaky_relu": (lambda v: np.where(v < 0, 0.05 * v, v), 1, {"alpha": 0.05}),
    "hard_sigmoid": (lambda v: np.clip(0.3 * v + 0.4, 0, 1), 2, {"alpha": 0.3, "beta": 0.4}),
    "linear": (lambda v: 1.5 * v + 0.25, 2, {"alpha": 1.5, "beta": 0.25}),
}
for op, (fn, tol, opts) in ACT.items():
    case(
        f"{op}-f32",
        {"x": XA},
        lambda g, o, op=op, opts=opts: getattr(g, op)(o["x"], **opts),
        lambda i, fn=fn: fn(i["x"]),
        ulp=tol,
    )
for op in ("relu", "sigmoid", "gelu", "elu", "hard_swish"):
    fn, tol, opts = ACT[op]
    case(
        f"{op}-f16",
        {"x": XA.astype(np.float16)},
        lambda g, o, op=op, opts=opts: getattr(g, op)(o["x"], **opts),
        lambda i, fn=fn: fn(i["x"]),
        ulp=max(tol, 2) if op != "relu" else 0,
    )
case("tanh-f32", {"x": XA}, lambda g, o: g.tanh(o["x"]), lambda i: np.tanh(i["x"]), atol=1 / 1024)
case("relu-int32", {"x": ints(3, 4)}, lambda g, o: g.relu(o["x"]), lambda i: np.maximum(i["x"], 0))
case(
    "prelu-slope-broadcasts-both-ways",
    {"x": rand(4, 1), "s": rand(3)},
    lambda g, o: g.prelu(o["x"], o["s"]),
    lambda i: np.where(i["x"] < 0, i["s"] * i["x"], i["x"]),
    ulp=1,
)
case(
    "prelu-broadcast-slope",
    {"x": XA, "s": rand(6)},
    lambda g, o: g.prelu(o["x"], o["s"]),
    lambda i: np.where(i["x"] < 0, i["s"] * i["x"], i["x"]),
    ulp=1,
)
for axis in (0, 1):
    case(
        f"softmax-axis{axis}",
        {"x": XA},
        lambda g, o, a=axis: g.softmax(o["x"], a),
        lambda i, a=axis: ref.softmax(i["x"], a),
        ulp=3 * XA.shape[axis] + 3,
    )
case(
    "softmax-f16-rank3",
    {"x": rand(2, 3, 5).astype(np.float16)},
    lambda g, o: g.softmax(o["x"], axis=2),
    lambda i: ref.softmax(i["x"], 2),
    ulp=3 * 5 + 3,
)

# ----------------------------------------------------------------------------------- matmul, gemm
case(
    "matmul-2d",
    {"a": pos(3, 4), "b": pos(4, 5)},
    lambda g, o: g.matmul(o["a"], o["b"]),
    lambda i: i["a"] @ i["b"],
    ulp=2 * 4,
)
case(
    "matmul-batch-broadcast",
    {"a": pos(2, 1, 3, 7), "b": pos(3, 7, 2)},
    lambda g, o: g.matmul(o["a"], o["b"]),
    lambda i: np.matmul(i["a"], i["b"]),
    ulp=2 * 7,
)
case(
    "matmul-f16",
    {"a": pos(3, 8).astype(np.float16), "b": pos(8, 5).astype(np.float16)},
    lambda g, o: g.matmul(o["a"], o["b"]),
    lambda i: i["a"] @ i["b"],
    ulp=2 * 8,
)
case(
    "gemm-c-alpha-beta",
    {"a": pos(3, 4), "b": pos(4, 5), "c": pos(3, 5)},
    lambda g, o: g.gemm(o["a"], o["b"], c=o["c"], alpha=0.5, beta=2.0),
    lambda i: 0.5 * i["a"] @ i["b"] + 2.0 * i["c"],
    ulp=2 * 4 + 3,
)
case(
    "gemm-transposes-bias",
    {"a": pos(4, 3), "b": pos(5, 4), "c": pos(5)},
    lambda g, o: g.gemm(o["a"], o["b"], c=o["c"], a_transpose=True, b_transpose=True),
    lambda i: i["a"].T @ i["b"].T + i["c"],
    ulp=2 * 4 + 1,
)
case(
    "gemm-scalar-c",
    {"a": pos(2, 3), "b": pos(3, 2), "c": np.array(0.5, np.float32)},
    lambda g, o: g.gemm(o["a"], o["b"], c=o["c"]),
    lambda i: i["a"] @ i["b"] + 0.5,
    ulp=2 * 3 + 1,
)

# ----------------------------------------------------------------------------------- conv2d, conv_transpose2d
XC, WC = pos(1, 4, 5, 7), pos(6, 2, 3, 3)
case(
    "conv2d-pad-stride-dilation-groups-bias",
    {"x": XC, "w": WC, "b": pos(6)},
    lambda g, o: g.conv2d(
        o["x"], o["w"], padding=[1, 2, 0, 1], strides=[2, 1], dilations=[1, 2], groups=2, bias=o["b"]
    ),
    lambda i: ref.conv2d_nchw(i["x"], i["w"], (1, 2, 0, 1), (2, 1), (1, 2), 2) + i["b"][None, :, None, None],
    ulp=2 * 9 * 2 + 1,
)
case(
    "conv2d-nhwc-hwio",
    {"x": XC.transpose(0, 2, 3, 1).copy(), "w": pos(3, 3, 4, 5)},
    lambda g, o: g.conv2d(o["x"], o["w"], padding=[1, 1, 1, 1], input_layout="nhwc", filter_layout="hwio"),
    lambda i: ref.conv2d_nchw(
        i["x"].transpose(0, 3, 1, 2), i["w"].transpose(3, 2, 0, 1), (1, 1, 1, 1)
    ).transpose(0, 2, 3, 1),
    ulp=2 * 9 * 4,
)
case(
    "conv2d-ohwi",
    {"x": XC, "w": pos(3, 2, 2, 4)},
    lambda g, o: g.conv2d(o["x"], o["w"], filter_layout="ohwi"),
    lambda i: ref.conv2d_nchw(i["x"], i["w"].transpose(0, 3, 1, 2)),
    ulp=2 * 4 * 4,
)
case(
    "conv2d-ihwo-depthwise",
    {"x": XC, "w": pos(1, 3, 3, 4)},
    lambda g, o: g.conv2d(o["x"], o["w"], filter_layout="ihwo", groups=4, padding=[1, 1, 1, 1]),
    lambda i: ref.conv2d_nchw(i["x"], i["w"].transpose(3, 0, 1, 2), (1, 1, 1, 1), groups=4),
    ulp=2 * 9,
)
case(
    "conv2d-f16",
    {"x": XC.astype(np.float16), "w": WC[:, :, :2, :2].astype(np.float16).copy()},
    lambda g, o: g.conv2d(o["x"], o["w"], groups=2),
    lambda i: ref.conv2d_nchw(i["x"], i["w"], groups=2),
    ulp=2 * 4 * 2 + 2,
)
XT = pos(1, 4, 3, 4)
case(
    "conv_transpose2d-stride-pad-outpad-groups-bias",
    {"x": XT, "w": pos(4, 3, 3, 2), "b": pos(6)},
    lambda g, o: g.conv_transpose2d(
        o["x"], o["w"], strides=[2, 3], padding=[1, 0, 0, 1], output_padding=[1, 2], groups=2, bias=o["b"]
    ),
    lambda i: (
        ref.conv_transpose2d_nchw(i["x"], i["w"], (1, 0, 0, 1), (2, 3), (1, 1), (1, 2), 2)
        + i["b"][None, :, None, None]
    ),
    ulp=2 * 6 * 2 + 1,
)
case(
    "conv_transpose2d-dilation-nhwc-ohwi",
    {"x": XT.transpose(0, 2, 3, 1).copy(), "w": pos(2, 2, 2, 4)},
    lambda g, o: g.conv_transpose2d(
        o["x"], o["w"], dilations=[2, 1], input_layout="nhwc", filter_layout="ohwi"
    ),
    lambda i: ref.conv_transpose2d_nchw(
        i["x"].transpose(0, 3, 1, 2), i["w"].transpose(3, 0, 1, 2), dil=(2, 1)
    ).transpose(0, 2, 3, 1),
    ulp=2 * 4 * 4,
)
case(
    "conv_transpose2d-output-sizes",
    {"x": XT, "w": pos(4, 2, 3, 3)},
    lambda g, o: g.conv_transpose2d(
        o["x"], o["w"], strides=[2, 2], output_sizes=[8, 10], output_padding=[5, 5]
    ),
    lambda i: ref.conv_transpose2d_nchw(i["x"], i["w"], stride=(2, 2), out_pad=(1, 1)),
    ulp=2 * 9 * 4,
)

# ----------------------------------------------------------------------------------- pooling
XP = pos(2, 3, 6, 7)
for kind in ("average", "l2", "max"):
    tol = 0 if kind == "max" else 3 * 3 + 2
    case(
        f"{kind}_pool2d-pad-stride",
        {"x": XP},
        lambda g, o, k=kind: getattr(g, f"{k}_pool2d")(
            o["x"], window_dimensions=[3, 3], padding=[1, 1, 0, 1], strides=[2, 2]
        ),
        lambda i, k=kind: ref.pool2d_nchw(i["x"], k, (3, 3), (1, 1, 0, 1), (2, 2)),
        ulp=tol,
    )
    case(
        f"{kind}_pool2d-ceil-dilation-nhwc",
        {"x": XP.transpose(0, 2, 3, 1).copy()},
        lambda g, o, k=kind: getattr(g, f"{k}_pool2d")(
            o["x"],
            window_dimensions=[2, 2],
            strides=[2, 2],
            dilations=[1, 2],
            layout="nhwc",
            output_shape_rounding="ceil",
        ),
        lambda i, k=kind: ref.pool2d_nchw(
            i["x"].transpose(0, 3, 1, 2), k, (2, 2), stride=(2, 2), dil=(1, 2), ceil=True
        ).transpose(0, 2, 3, 1),
        ulp=0 if kind == "max" else 2 * 2 + 2,
    )
case(
    "average_pool2d-global-default-window",
    {"x": XP},
    lambda g, o: g.average_pool2d(o["x"]),
    lambda i: i["x"].mean(axis=(2, 3), keepdims=True),
    ulp=6 * 7 + 2,
)
case(
    "max_pool2d-int32",
    {"x": ints(1, 2, 4, 4)},
    lambda g, o: g.max_pool2d(o["x"], window_dimensions=[2, 2]),
    lambda i: ref.pool2d_nchw(i["x"], "max", (2, 2)),
)

# ----------------------------------------------------------------------------------- normalization
XN = rand(2, 3, 4, 5)
case(
    "batch_normalization-scale-bias",
    {"x": XN, "m": rand(3), "v": pos(3), "s": pos(3) / 4, "b": pos(3) + 2},
    lambda g, o: g.batch_normalization(o["x"], o["m"], o["v"], scale=o["s"], bias=o["b"], epsilon=1e-3),
    lambda i: (
        (i["x"] - i["m"][:, None, None]) / np.sqrt(i["v"][:, None, None] + 1e-3) * i["s"][:, None, None]
        + i["b"][:, None, None]
    ),
    ulp=6,
)
case(
    "batch_normalization-last-axis",
    {"x": XN, "m": rand(5), "v": pos(5)},
    lambda g, o: g.batch_normalization(o["x"], o["m"], o["v"], axis=3),
    lambda i: (i["x"] - i["m"]) / np.sqrt(i["v"] + 1e-5),
    ulp=6,
)
for layout in ("nchw", "nhwc"):
    xin = XN if layout == "nchw" else XN.transpose(0, 2, 3, 1).copy()
    sp = (2, 3) if layout == "nchw" else (1, 2)
    cax = 1 if layout == "nchw" else 3
    case(
        f"instance_normalization-{layout}",
        {"x": xin, "s": rand(3), "b": rand(3)},
        lambda g, o, ly=layout: g.instance_normalization(o["x"], scale=o["s"], bias=o["b"], layout=ly),
        lambda i, sp=sp, cax=cax: (
            ref.layer_norm(i["x"], sp) * np.expand_dims(i["s"], [d for d in range(4) if d != cax])
            + np.expand_dims(i["b"], [d for d in range(4) if d != cax])
        ),
        atol=1 / 1024,
    )
case(
    "layer_normalization-default-axes",
    {"x": XN},
    lambda g, o: g.layer_normalization(o["x"]),
    lambda i: ref.layer_norm(i["x"], (1, 2, 3)),
    atol=1 / 1024,
)
case(
    "layer_normalization-axes-scale-bias",
    {"x": XN, "s": rand(5, 3), "b": rand(5, 3)},
    lambda g, o: g.layer_normalization(o["x"], axes=[3, 1], scale=o["s"], bias=o["b"], epsilon=1e-3),
    lambda i: (
        ref.layer_norm(i["x"], (1, 3), eps=1e-3) * i["s"].T[None, :, None, :] + i["b"].T[None, :, None, :]
    ),
    atol=1 / 1024,
)
case(
    "layer_normalization-f16",
    {"x": XN.astype(np.float16)},
    lambda g, o: g.layer_normalization(o["x"], axes=[3]),
    lambda i: ref.layer_norm(i["x"], (3,)),
    atol=1 / 512,
)

# ----------------------------------------------------------------------------------- reductions
XR = pos(3, 4, 5)
RED = {
    "reduce_sum": (lambda v, a, k: v.sum(axis=a, keepdims=k), lambda n: n),
    "reduce_mean": (lambda v, a, k: v.mean(axis=a, keepdims=k), lambda n: n + 2),
    "reduce_max": (lambda v, a, k: v.max(axis=a, keepdims=k), lambda n: 0),
    "reduce_min": (lambda v, a, k: v.min(axis=a, keepdims=k), lambda n: 0),
    "reduce_product": (lambda v, a, k: v.prod(axis=a, keepdims=k), lambda n: n),
    "reduce_l1": (lambda v, a, k: np.abs(v).sum(axis=a, keepdims=k), lambda n: n),
    "reduce_l2": (lambda v, a, k: np.sqrt((v * v).sum(axis=a, keepdims=k)), lambda n: 2 * n + 1),
    "reduce_log_sum": (lambda v, a, k: np.log(v.sum(axis=a, keepdims=k)), lambda n: n + 18),
    "reduce_log_sum_exp": (lambda v, a, k: np.log(np.exp(v).sum(axis=a, keepdims=k)), lambda n: 2 * n + 18),
    "reduce_sum_square": (lambda v, a, k: (v * v).sum(axis=a, keepdims=k), lambda n: 2 * n),
}
for op, (fn, tol) in RED.items():
    case(
        f"{op}-axes-0-2-keep",
        {"x": XR},
        lambda g, o, op=op: getattr(g, op)(o["x"], axes=[0, 2], keep_dimensions=True),
        lambda i, fn=fn: fn(i["x"], (0, 2), True),
        ulp=tol(15),
    )
    case(
        f"{op}-all",
        {"x": XR},
        lambda g, o, op=op: getattr(g, op)(o["x"]),
        lambda i, fn=fn: fn(i["x"], None, False),
        ulp=tol(60),
    )
case(
    "reduce_l1-empty-axes-is-elementwise",
    {"x": rand(2, 3)},
    lambda g, o: g.reduce_l1(o["x"], axes=[]),
    lambda i: np.abs(i["x"]),
)
case(
    "reduce_sum-int32",
    {"x": ints(3, 4)},
    lambda g, o: g.reduce_sum(o["x"], axes=[1]),
    lambda i: i["x"].sum(1),
)
case(
    "reduce_max-int8",
    {"x": ints(3, 4, lo=-128, hi=127, dtype=np.int8)},
    lambda g, o: g.reduce_max(o["x"], axes=[0]),
    lambda i: i["x"].max(0),
)
case(
    "reduce_l2-f16-squares-beyond-f16-range",
    {"x": np.full((4,), 300.0, np.float16)},
    lambda g, o: g.reduce_l2(o["x"]),
    lambda i: np.sqrt((i["x"] ** 2).sum()),
    ulp=9,
)
case(
    "reduce_log_sum-f16-sum-beyond-f16-range",
    {"x": np.full((4,), 65504, np.float16)},
    lambda g, o: g.reduce_log_sum(o["x"]),
    lambda i: np.log(i["x"].sum()),
    ulp=4 + 18,
)
case(
    "reduce_sum-f16",
    {"x": XR.astype(np.float16)},
    lambda g, o: g.reduce_sum(o["x"], axes=[1]),
    lambda i: i["x"].sum(1),
    ulp=4,
)
XARG = np.array([[3, 1, 4, 1, 5], [9, 2, 6, 5, 3], [5, 8, 9, 7, 9]], np.float32)
for op, fn in (("arg_min", np.argmin), ("arg_max", np.argmax)):
    case(
        f"{op}-axis1",
        {"x": XARG},
        lambda g, o, op=op: getattr(g, op)(o["x"], 1),
        lambda i, fn=fn: fn(i["x"], 1),
    )
    case(
        f"{op}-axis0-keep-int32",
        {"x": XARG.astype(np.int32)},
        lambda g, o, op=op: getattr(g, op)(o["x"], 0, keep_dimensions=True),
        lambda i, fn=fn: fn(i["x"], 0)[None, :],
    )

# ----------------------------------------------------------------------------------- gather and scatter
XG = rand(4, 5, 3)
case(
    "gather-axis0-negative",
    {"x": XG, "i": np.array([[3, -1], [0, 2]], np.int32)},
    lambda g, o: g.gather(o["x"], o["i"]),
    lambda i: i["x"][np.where(i["i"] < 0, i["i"] + 4, i["i"])],
)
case(
    "gather-axis1-scalar-index",
    {"x": XG, "i": np.array(2, np.int32)},
    lambda g, o: g.gather(o["x"], o["i"], axis=1),
    lambda i: i["x"][:, 2],
)
case(
    "gather-int64-indices",
    {"x": rand(5, 2), "i": np.array([4, -5, 1], np.int64)},
    lambda g, o: g.gather(o["x"], o["i"]),
    lambda i: i["x"][[4, 0, 1]],
)
case(
    "cast-f32-to-int64-and-uint32",
    {"x": np.array([3.7, -2.5, 100.0], np.float32)},
    lambda g, o: {"a": g.cast(o["x"], "int64"), "b": g.cast(g.abs(o["x"]), "uint32")},
    lambda i: {"a": np.array([3, -2, 100]), "b": np.array([3, 2, 100])},
)
case(
    "gather-int32-data",
    {"x": ints(6), "i": np.array([5, 0, 5], np.int32)},
    lambda g, o: g.gather(o["x"], o["i"]),
    lambda i: i["x"][[5, 0, 5]],
)
GI = np.array([[0, 2, 1], [1, 0, -1]], np.int32)
case(
    "gather_elements-axis0",
    {"x": rand(3, 3), "i": GI},
    lambda g, o: g.gather_elements(o["x"], o["i"]),
    lambda i: np.take_along_axis(i["x"], np.where(i["i"] < 0, i["i"] + 3, i["i"]), 0),
)
case(
    "gather_elements-axis1",
    {"x": rand(2, 4), "i": np.array([[3, 0], [1, 1]], np.int32)},
    lambda g, o: g.gather_elements(o["x"], o["i"], axis=1),
    lambda i: np.take_along_axis(i["x"], i["i"], 1),
)
case(
    "gather_nd-slices",
    {"x": XG, "i": np.array([[1, 2], [3, 0], [0, 4]], np.int32)},
    lambda g, o: g.gather_nd(o["x"], o["i"]),
    lambda i: i["x"][[1, 3, 0], [2, 0, 4]],
)
case(
    "gather_nd-elements",
    {"x": XG, "i": np.array([[1, 2, 0], [3, 4, 2]], np.int32)},
    lambda g, o: g.gather_nd(o["x"], o["i"]),
    lambda i: i["x"][[1, 3], [2, 4], [0, 2]],
)


def _scatter_elements(x, idx, upd, axis):
    out = x.copy()
    np.put_along_axis(out, idx, upd, axis)
    return out


case(
    "scatter_elements-axis1",
    {"x": rand(3, 4), "i": np.array([[3, 1], [0, 2], [1, 0]], np.int32), "u": rand(3, 2)},
    lambda g, o: g.scatter_elements(o["x"], o["i"], o["u"], axis=1),
    lambda i: _scatter_elements(i["x"], i["i"], i["u"], 1),
)


def _scatter_nd(x, idx, upd):
    out = x.copy()
    for j, ix in enumerate(idx.reshape(-1, idx.shape[-1])):
        out[tuple(ix)] = upd.reshape((-1,) + x.shape[idx.shape[-1] :])[j]
    return out


case(
    "scatter_nd-rows",
    {"x": rand(4, 3), "i": np.array([[2], [0]], np.int32), "u": rand(2, 3)},
    lambda g, o: g.scatter_nd(o["x"], o["i"], o["u"]),
    lambda i: _scatter_nd(i["x"], i["i"], i["u"]),
)
case(
    "scatter_nd-elements",
    {"x": rand(2, 3), "i": np.array([[1, 2], [0, 0]], np.int32), "u": rand(2)},
    lambda g, o: g.scatter_nd(o["x"], o["i"], o["u"]),
    lambda i: _scatter_nd(i["x"], i["i"], i["u"]),
)

# ----------------------------------------------------------------------------------- shape ops
XS = rand(2, 3, 5)
case("reshape", {"x": XS}, lambda g, o: g.reshape(o["x"], [5, 6]), lambda i: i["x"].reshape(5, 6))
case("transpose-default", {"x": XS}, lambda g, o: g.transpose(o["x"]), lambda i: i["x"].transpose())
case(
    "transpose-permutation",
    {"x": XS},
    lambda g, o: g.transpose(o["x"], permutation=[1, 2, 0]),
    lambda i: i["x"].transpose(1, 2, 0),
)
case(
    "slice-strides",
    {"x": XS},
    lambda g, o: g.slice(o["x"], [0, 1, 1], [2, 2, 4], strides=[1, 1, 2]),
    lambda i: i["x"][0:2, 1:3, 1:5:2],
)
case(
    "expand",
    {"x": rand(3, 1)},
    lambda g, o: g.expand(o["x"], [2, 3, 4]),
    lambda i: np.broadcast_to(i["x"], (2, 3, 4)),
)
case("tile", {"x": rand(2, 3)}, lambda g, o: g.tile(o["x"], [2, 3]), lambda i: np.tile(i["x"], (2, 3)))
case(
    "concat-axis1",
    {"a": rand(2, 1, 3), "b": rand(2, 4, 3), "c": rand(2, 2, 3)},
    lambda g, o: g.concat([o["a"], o["b"], o["c"]], 1),
    lambda i: np.concatenate([i["a"], i["b"], i["c"]], 1),
)
case(
    "split-equal",
    {"x": XS},
    lambda g, o: dict(zip("abc", g.split(o["x"], 3, axis=1))),
    lambda i: dict(zip("abc", np.split(i["x"], 3, axis=1))),
)
case(
    "split-sizes",
    {"x": XS},
    lambda g, o: dict(zip("ab", g.split(o["x"], [1, 4], axis=2))),
    lambda i: {"a": i["x"][:, :, :1], "b": i["x"][:, :, 1:]},
)
for mode, npmode in (("constant", "constant"), ("edge", "edge"), ("reflection", "reflect")):
    case(
        f"pad-{mode}",
        {"x": rand(3, 4)},
        lambda g, o, m=mode: g.pad(o["x"], [1, 2], [2, 1], mode=m, value=9.0),
        lambda i, m=npmode: np.pad(
            i["x"], ((1, 2), (2, 1)), mode=m, **({"constant_values": 9.0} if m == "constant" else {})
        ),
    )
case("reverse-axes", {"x": XS}, lambda g, o: g.reverse(o["x"], axes=[0, 2]), lambda i: i["x"][::-1, :, ::-1])
for upper in (True, False):
    for diag in (-1, 0, 2):
        case(
            f"triangular-{'upper' if upper else 'lower'}{diag}",
            {"x": rand(2, 4, 5)},
            lambda g, o, u=upper, d=diag: g.triangular(o["x"], upper=u, diagonal=d),
            lambda i, u=upper, d=diag: np.triu(i["x"], d) if u else np.tril(i["x"], d),
        )
case(
    "transpose-int8",
    {"x": ints(2, 3, lo=-128, hi=127, dtype=np.int8)},
    lambda g, o: g.transpose(o["x"]),
    lambda i: i["x"].T,
)

# ----------------------------------------------------------------------------------- where, clamp, cast, quantize
case(
    "where-broadcast",
    {"c": np.array([1, 0, 7], np.uint8), "t": rand(2, 3), "f": rand(1)},
    lambda g, o: g.where(o["c"], o["t"], o["f"]),
    lambda i: np.where(i["c"] != 0, i["t"], i["f"]),
)
case(
    "clamp-min-max",
    {"x": XA},
    lambda g, o: g.clamp(o["x"], min_value=-1.0, max_value=0.5),
    lambda i: np.clip(i["x"], -1, 0.5),
)
case(
    "clamp-min-only-int32",
    {"x": ints(3, 3)},
    lambda g, o: g.clamp(o["x"], min_value=-3),
    lambda i: np.maximum(i["x"], -3),
)
case(
    "clamp-uint32-full-range",
    {"x": np.array([4294967295, 127, 5, 0], np.uint32)},
    lambda g, o: g.clamp(o["x"], min_value=5, max_value=4294967290),
    lambda i: np.array([4294967290, 127, 5, 5]),
)
case(
    "clamp-nan-passes-infinite-bounds",
    {"x": np.array([np.nan, np.inf, -np.inf, 2.0], np.float32)},
    lambda g, o: {"a": g.clamp(o["x"], min_value=float("inf")), "b": g.clamp(o["x"], max_value=1.0)},
    lambda i: {"a": np.array([np.nan, np.inf, np.inf, np.inf]), "b": np.array([np.nan, 1.0, -np.inf, 1.0])},
)
case(
    "greater-uint32-compares-unsigned",
    {"a": np.array([4000000000, 1], np.uint32), "b": np.array([1, 4000000000], np.uint32)},
    lambda g, o: g.greater(o["a"], o["b"]),
    lambda i: np.array([1, 0]),
)
case(
    "cast-f32-to-int32-truncates",
    {"x": np.array([1.7, -1.7, 2.5, -0.2], np.float32)},
    lambda g, o: g.cast(o["x"], "int32"),
    lambda i: np.trunc(i["x"]),
)
case("cast-int32-to-f16", {"x": ints(2, 3)}, lambda g, o: g.cast(o["x"], "float16"), lambda i: i["x"])
case(
    "cast-f32-to-uint8",
    {"x": np.array([3.9, 200.0, 0.0], np.float32)},
    lambda g, o: g.cast(o["x"], "uint8"),
    lambda i: np.array([3, 200, 0]),
)
case(
    "cast-int32-to-int8-wraps",
    {"x": np.array([127, 128, -129], np.int32)},
    lambda g, o: g.cast(o["x"], "int8"),
    lambda i: np.array([127, -128, 127]),
)
QX = rand(2, 4, lo=-3, hi=3)
case(
    "quantize_linear-uint8-blockwise",
    {"x": QX, "s": np.array([[0.05, 0.1]], np.float32), "z": np.array([[128, 120]], np.uint8)},
    lambda g, o: g.quantize_linear(o["x"], o["s"], o["z"]),
    lambda i: np.clip(
        np.round(i["x"] / np.repeat(i["s"], [2, 2], 1).repeat(2, 0)[:2] + np.repeat(i["z"], [2, 2], 1)),
        0,
        255,
    ),
)
case(
    "quantize_linear-int8-saturates",
    {
        "x": np.array([[-50.0, 0.26, 50.0]], np.float32),
        "s": np.array([[0.1]], np.float32),
        "z": np.array([[0]], np.int8),
    },
    lambda g, o: g.quantize_linear(o["x"], o["s"], o["z"]),
    lambda i: np.array([[-128, 3, 127]]),
)
case(
    "dequantize_linear-int8",
    {
        "x": ints(2, 3, lo=-128, hi=127, dtype=np.int8),
        "s": np.array([[0.5], [0.25]], np.float32),
        "z": np.array([[3], [-2]], np.int8),
    },
    lambda g, o: g.dequantize_linear(o["x"], o["s"], o["z"]),
    lambda i: (i["x"] - i["z"]) * i["s"],
    ulp=1,
)

# ----------------------------------------------------------------------------------- cumulative sum, resample
XQ = pos(3, 6)
for exclusive in (False, True):
    for rev in (False, True):

        def _cs(v, e=exclusive, r=rev):
            v = v[:, ::-1] if r else v
            c = np.cumsum(v, 1)
            c = np.concatenate([np.zeros_like(c[:, :1]), c[:, :-1]], 1) if e else c
            return c[:, ::-1] if r else c

        case(
            f"cumulative_sum-exclusive{int(exclusive)}-reversed{int(rev)}",
            {"x": XQ},
            lambda g, o, e=exclusive, r=rev: g.cumulative_sum(o["x"], 1, exclusive=e, reversed=r),
            lambda i, f=_cs: f(i["x"]),
            ulp=6,
        )
case(
    "cumulative_sum-int32-axis0",
    {"x": ints(4, 3)},
    lambda g, o: g.cumulative_sum(o["x"], 0),
    lambda i: np.cumsum(i["x"], 0),
)
XZ = pos(1, 2, 3, 4)


def _nearest(n_out, n_in, scale):
    src = np.clip((np.arange(n_out) + 0.5) / scale - 0.5, 0, n_in - 1)
    return np.ceil(src - 0.5).astype(int)


case(
    "resample2d-nearest-scales",
    {"x": XZ},
    lambda g, o: g.resample2d(o["x"], scales=[2.0, 1.5]),
    lambda i: i["x"][:, :, _nearest(6, 3, 2.0)][:, :, :, _nearest(6, 4, 1.5)],
)


def _bilinear(x, oh, ow):
    n, c, h, w = x.shape
    ys = np.clip((np.arange(oh) + 0.5) * h / oh - 0.5, 0, h - 1)
    xs = np.clip((np.arange(ow) + 0.5) * w / ow - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    a, b = x[:, :, y0][:, :, :, x0], x[:, :, y0][:, :, :, x1]
    c_, d = x[:, :, y1][:, :, :, x0], x[:, :, y1][:, :, :, x1]
    return a * (1 - fy) * (1 - fx) + b * (1 - fy) * fx + c_ * fy * (1 - fx) + d * fy * fx


case(
    "resample2d-linear-sizes",
    {"x": XZ},
    lambda g, o: g.resample2d(o["x"], mode="linear", sizes=[5, 7]),
    lambda i: _bilinear(i["x"], 5, 7),
    ulp=84,
)

# ----------------------------------------------------------------------------------- graphs of several ops
W1, B1 = pos(7, 3), pos(3)
case(
    "graph-matmul-add-gelu-layer_norm (summed tolerances)",
    {"x": pos(5, 7)},
    lambda g, o: g.layer_normalization(g.gelu(g.add(g.matmul(o["x"], o["w"]), o["b"])), axes=[1]),
    lambda i: ref.layer_norm(ref.gelu(i["x"] @ i["w"] + i["b"]), (1,)),
    atol=1 / 1024,
    constants={"w": W1, "b": B1},
)
case(
    "graph-shared-input-two-outputs",
    {"x": rand(4, 4)},
    lambda g, o: {"s": g.sigmoid(o["x"]), "t": g.mul(g.relu(o["x"]), g.relu(o["x"]))},
    lambda i: {"s": ref.sigmoid(i["x"]), "t": np.maximum(i["x"], 0) ** 2},
    ulp=34 + 1,
)


# ----------------------------------------------------------------------------------- the test


@pytest.mark.parametrize(("inputs", "constants", "build", "reference", "ulp", "atol", "out_dtype"), CASES)
def test_op_conforms(ctx, inputs, constants, build, reference, ulp, atol, out_dtype):
    if any(a.dtype == np.float16 for a in inputs.values()) and "float16" not in ctx._data_types:
        pytest.skip("this device has no shader-f16")
    got = run_graph(ctx, build, inputs, constants)
    wide = {
        n: a.astype(np.float64 if a.dtype.kind == "f" else np.int64)
        for n, a in {**inputs, **constants}.items()
    }
    expected = reference(wide)
    if not isinstance(expected, dict):
        expected = {"out": expected}
    for name, want in expected.items():
        out = got[name]
        assert_conforms(
            out, np.asarray(want, np.float64), out.dtype, ulp=ulp, atol=atol, what=f"{name} {out.dtype}"
        )


def test_every_builder_op_has_a_conformance_case():
    from accelkit.webnn.ops import BUILDERS

    names = " ".join(p.id for p in CASES)
    missing = [op for op in BUILDERS if op not in ("argmin", "argmax") and op not in names]
    assert not missing, f"ops without a conformance case: {missing}"


def test_tolerance_rule_catches_a_one_ulp_error():
    x = np.float32(1.0)
    assert ref.ulp_distance(np.nextafter(x, np.float32(2)), 1.0, np.float32) == 1
    assert ref.ulp_distance(np.float16(-0.0), 0.0, np.float16) == 0
    with pytest.raises(AssertionError):
        assert_conforms(np.array([np.nextafter(x, np.float32(2))]), np.array([1.0]), np.float32, ulp=0)
    assert (
        math.isnan(float(np.float32(np.nan)))
        and ref.ulp_distance(np.float32(np.nan), np.nan, np.float32) == 0
    )


def test_neighbours_fuse_into_one_kernel_and_stay_conformant(ctx):
    """matmul -> add(bias) -> gelu becomes one matmul with an epilogue; add -> layer_norm one fused kernel."""
    from accelkit import webnn

    x, w, b, r = pos(5, 7), pos(7, 6), pos(6), rand(5, 6)
    g = webnn.MLGraphBuilder(ctx)
    gx = g.input("x", ref.desc(x))
    gr = g.input("r", ref.desc(r))
    h = g.gelu(g.add(g.matmul(gx, g.constant(ref.desc(w), w)), g.constant(ref.desc(b), b)))
    y = g.layer_normalization(g.add(h, gr), axes=[1])
    graph = g.build({"y": y})
    assert [s.op for s in graph.steps] == ["matmul+add+gelu", "add+layer_normalization"]
    got = ctx.compute(graph, {"x": x, "r": r})["y"]
    want = ref.layer_norm(ref.gelu(x.astype(np.float64) @ w + b) + r, (1,))
    assert_conforms(got, want, np.float32, atol=1 / 1024)


def test_a_value_read_elsewhere_is_not_fused_away(ctx):
    from accelkit import webnn

    x, w, b = pos(3, 4), pos(4, 2), pos(2)
    g = webnn.MLGraphBuilder(ctx)
    gx = g.input("x", ref.desc(x))
    m = g.matmul(gx, g.constant(ref.desc(w), w))
    graph = g.build({"m": g.identity(m), "y": g.add(m, g.constant(ref.desc(b), b))})
    assert "matmul" in [s.op for s in graph.steps]
    out = ctx.compute(graph, {"x": x})
    assert_conforms(out["m"], x.astype(np.float64) @ w, np.float32, ulp=8)
    assert_conforms(out["y"], x.astype(np.float64) @ w + b, np.float32, ulp=9)


def test_attention_pattern_runs_as_one_fused_kernel(ctx):
    """matmul(q, transpose(k)) * scale + mask -> softmax -> matmul(., v) becomes one attention step."""
    from accelkit import webnn

    q, k, v = rand(1, 2, 5, 4), rand(1, 2, 6, 4), rand(1, 2, 6, 3)
    mask = np.where(np.arange(6) < 4, 0.0, -1e9).astype(np.float32).reshape(1, 1, 1, 6)
    g = webnn.MLGraphBuilder(ctx)
    gq, gk, gv = (g.input(n, ref.desc(a)) for n, a in (("q", q), ("k", k), ("v", v)))
    scores = g.mul(g.matmul(gq, g.transpose(gk, permutation=[0, 1, 3, 2])), g.constant("float32", 0.5))
    scores = g.add(scores, g.constant(ref.desc(mask), mask))
    graph = g.build({"o": g.matmul(g.softmax(scores, 3), gv)})
    assert [s.op for s in graph.steps] == ["attention"]
    got = ctx.compute(graph, {"q": q, "k": k, "v": v})["o"]
    p = ref.softmax(0.5 * q.astype(np.float64) @ np.swapaxes(k, -1, -2) + mask, 3)
    assert_conforms(got, p @ v, np.float32, atol=1e-5)


def test_projections_of_one_input_become_one_matmul_and_stay_conformant(ctx):
    """q/k/v-style matmul(+bias) of one input by constants of one inner size run as ONE matmul against
    the concatenated constants; each result is a column view (then reshaped and transposed as views),
    and every value is within matmul's tolerance. A matmul of another input, or one whose weight is
    not a build-time constant, stays apart."""
    from accelkit import webnn

    x, other = pos(2, 5, 7), pos(2, 5, 7)  # positive: the ULP rule has no cancellation to forgive
    ws, bs = [pos(7, n) for n in (6, 6, 3)], [pos(n) for n in (6, 6, 3)]
    wo = pos(7, 4)
    g = webnn.MLGraphBuilder(ctx)
    gx, go = g.input("x", ref.desc(x)), g.input("o", ref.desc(other))
    gw = g.input("w", ref.desc(wo))  # a weight given at dispatch: not merged
    outs = {}
    for i, (w, b) in enumerate(zip(ws, bs)):
        h = g.add(g.matmul(gx, g.constant(ref.desc(w), w)), g.constant(ref.desc(b), b))
        outs[f"p{i}"] = g.transpose(g.reshape(h, [2, 5, w.shape[1] // 3, 3]), permutation=[0, 2, 1, 3])
    outs["q"] = g.matmul(go, g.constant(ref.desc(ws[0]), ws[0]))  # another input
    outs["r"] = g.matmul(gx, gw)
    graph = g.build({n: g.identity(v) for n, v in outs.items()})
    ops_run = [s.op for s in graph.steps]
    assert ops_run.count("matmul+add x3 (one input)") == 1 and ops_run.count("matmul") == 2
    got = ctx.compute(graph, {"x": x, "o": other, "w": wo})
    for i, (w, b) in enumerate(zip(ws, bs)):
        want = (x.astype(np.float64) @ w + b).reshape(2, 5, w.shape[1] // 3, 3).transpose(0, 2, 1, 3)
        assert_conforms(got[f"p{i}"], want, np.float32, ulp=2 * 7 + 1)
    assert_conforms(got["q"], other.astype(np.float64) @ ws[0], np.float32, ulp=2 * 7)
    assert_conforms(got["r"], x.astype(np.float64) @ wo, np.float32, ulp=2 * 7)


def test_attention_writes_heads_into_the_transposed_layout(ctx):
    """attention -> transpose(0, 2, 1, 3) -> reshape (B, T, H*D) is one kernel writing (B, T, H, D);
    the reshape is then a view, not a copy."""
    from accelkit import webnn

    q, k, v = rand(2, 3, 5, 4), rand(2, 3, 6, 4), rand(2, 3, 6, 4)
    g = webnn.MLGraphBuilder(ctx)
    gq, gk, gv = (g.input(n, ref.desc(a)) for n, a in (("q", q), ("k", k), ("v", v)))
    scores = g.mul(g.matmul(gq, g.transpose(gk, permutation=[0, 1, 3, 2])), g.constant("float32", 0.5))
    heads = g.matmul(g.softmax(scores, 3), gv)
    graph = g.build({"o": g.reshape(g.transpose(heads, permutation=[0, 2, 1, 3]), [2, 5, 12])})
    assert [s.op for s in graph.steps] == ["attention+transpose", "reshape"]
    got = ctx.compute(graph, {"q": q, "k": k, "v": v})["o"]
    p = ref.softmax(0.5 * q.astype(np.float64) @ np.swapaxes(k, -1, -2), 3)
    assert_conforms(got, (p @ v).transpose(0, 2, 1, 3).reshape(2, 5, 12), np.float32, atol=1e-5)


# the web-platform-tests' half-pixel nearest cases: (input, shape, options, expected, output shape)
NEAREST_HALF_PIXEL = [
    ([10, 20, 30], [1, 1, 1, 3], {"scales": [1, 1.5]}, [10, 20, 20, 30], [1, 1, 1, 4]),
    ([10, 20, 30, 40], [1, 1, 1, 4], {"scales": [1, 0.75]}, [10, 20, 40], [1, 1, 1, 3]),
    ([10, 20, 30, 40, 50], [1, 1, 1, 5], {"sizes": [1, 2]}, [20, 40], [1, 1, 1, 2]),
    ([10, 20], [1, 1, 1, 2], {"sizes": [1, 3]}, [10, 10, 20], [1, 1, 1, 3]),
    ([10, 20, 30], [1, 1, 1, 3], {"sizes": [1, 1]}, [20], [1, 1, 1, 1]),
    ([10], [1, 1, 1, 1], {"sizes": [1, 4]}, [10, 10, 10, 10], [1, 1, 1, 4]),
    (
        list(range(1, 13)),
        [1, 2, 3, 2],
        {"axes": [1, 2], "sizes": [3, 4], "scales": [99, 99]},
        [1, 2, 3, 4, 3, 4, 5, 6, 1, 2, 3, 4, 3, 4, 5, 6, 7, 8, 9, 10, 9, 10, 11, 12],
        [1, 3, 4, 2],
    ),
    (
        list(range(1, 13)),
        [1, 2, 3, 2],
        {"axes": [3, 2], "sizes": [3, 4]},
        [1, 1, 2, 3, 3, 4, 3, 3, 4, 5, 5, 6, 7, 7, 8, 9, 9, 10, 9, 9, 10, 11, 11, 12],
        [1, 2, 4, 3],
    ),
]


@pytest.mark.parametrize(("data", "shape", "options", "expected", "out_shape"), NEAREST_HALF_PIXEL)
def test_resample2d_nearest_half_pixel(ctx, data, shape, options, expected, out_shape):
    x = np.array(data, np.float32).reshape(shape)
    got = run_graph(ctx, lambda g, o: g.resample2d(o["x"], **options), {"x": x})["out"]
    np.testing.assert_array_equal(got, np.array(expected, np.float32).reshape(out_shape))


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("affine", [False, True])
def test_instance_normalization_zero_epsilon_on_tiny_values(ctx, dtype, affine):
    """float16 subnormal inputs with epsilon 0 normalize to exactly +-1 (their squares underflow float16)."""
    if dtype == np.float16 and "float16" not in ctx._data_types:
        pytest.skip("this device has no shader-f16")
    unit = 2.0**-24
    x = np.array([unit, -unit, unit, -unit, 2 * unit, -2 * unit, 2 * unit, -2 * unit], dtype).reshape(
        1, 2, 2, 2
    )
    consts = {"s": np.array([0.5, 2], dtype), "b": np.array([0.25, -0.5], dtype)} if affine else {}

    def build(g, o):
        return g.instance_normalization(
            o["x"], epsilon=0, **({"scale": o["s"], "bias": o["b"]} if affine else {})
        )

    got = run_graph(ctx, build, {"x": x}, consts)["out"].reshape(-1)
    want = [0.75, -0.25, 0.75, -0.25, 1.5, -2.5, 1.5, -2.5] if affine else [1, -1, 1, -1, 1, -1, 1, -1]
    np.testing.assert_array_equal(got, np.array(want, dtype))


# ----------------------------------------------------------------------------------- property-based shapes


def _shapes(draw, rank_max: int = 4):
    from hypothesis import strategies as st

    rank = draw(st.integers(0, rank_max))
    shape = tuple(draw(st.integers(1, 5)) for _ in range(rank))
    other = tuple(1 if draw(st.booleans()) else n for n in shape[draw(st.integers(0, rank)) :])
    return shape, other


def test_hypothesis_broadcast_binary_reduce_gather(ctx, n_examples):
    """Random shapes (rank 0-4, dims 1-5, broadcasting both ways, random reduction axes and gather
    indices) through one graph each, against numpy float64 with the WPT tolerances."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from accelkit import webnn

    @settings(max_examples=n_examples(ctx.device))
    @given(st.data())
    def check(data):
        shape, other = _shapes(data.draw)
        a = RNG.uniform(0.5, 2.0, shape).astype(np.float32)
        b = RNG.uniform(0.5, 2.0, other).astype(np.float32)
        g = webnn.MLGraphBuilder(ctx)
        ga, gb = g.input("a", ref.desc(a)), g.input("b", ref.desc(b))
        s = g.mul(g.add(ga, gb), gb)
        outs = {"s": s}
        full = np.broadcast_shapes(shape, other)
        want = {"s": (a.astype(np.float64) + b) * b}
        if full:
            axes = sorted(data.draw(st.sets(st.integers(0, len(full) - 1))))
            keep = data.draw(st.booleans())
            outs["r"] = g.reduce_sum(s, axes=axes, keep_dimensions=keep)
            want["r"] = want["s"].sum(axis=tuple(axes), keepdims=keep)
            axis = data.draw(st.integers(0, len(full) - 1))
            n = full[axis]
            idx = np.array(data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=4)), np.int32)
            outs["g"] = g.gather(s, g.constant(ref.desc(idx), idx), axis=axis)
            want["g"] = np.take(want["s"], np.where(idx < 0, idx + n, idx), axis=axis)
        got = ctx.compute(g.build(outs), {"a": a, "b": b})
        assert_conforms(got["s"], want["s"], np.float32, ulp=2)
        if "r" in got:
            count = int(np.prod([full[i] for i in axes])) if axes else 1
            assert_conforms(got["r"], want["r"], np.float32, ulp=2 + count)
            assert_conforms(got["g"], want["g"], np.float32, ulp=2)

    check()
