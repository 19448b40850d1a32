"""Activations: elu, gelu, hard_sigmoid, hard_swish, leaky_relu, linear, prelu, relu, sigmoid,
softmax, softplus, softsign, tanh.

Each is a numpy function (CPU) and a WGSL expression (``kernels/webnn_elementwise.wgsl``) over the
input ``a`` (and ``b``, prelu's slope), with the options in ``p.alpha``/``p.beta``; softmax is
``accelkit.ops.softmax`` (one fused kernel per row on WebGPU).
"""

from __future__ import annotations

import math

import numpy as np

from ... import ops
from .. import primitives as prim
from ..operand import FLOATS, SIGNED, broadcast, check_same_type, finite, guard
from ..operand import axis as check_axis
from .elementwise import _erf

R = 8


def _gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _sigmoid(x):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


# name: (allowed, option names with defaults, numpy fn(x, alpha, beta), WGSL float expr, WGSL int expr)
ACTIVATIONS = {
    "relu": (
        SIGNED,
        {},
        lambda x, al, be: np.maximum(x, 0),
        "select(max(a, 0.0), a, is_nan(a))",
        "max(a, 0)",
    ),
    "sigmoid": (FLOATS, {}, lambda x, al, be: _sigmoid(x), "1.0 / (1.0 + exp(-a))", None),
    "tanh": (FLOATS, {}, lambda x, al, be: np.tanh(x), "tanh_safe(a)", None),
    "gelu": (
        FLOATS,
        {},
        lambda x, al, be: _gelu(x),
        "gelu(a)",
        None,
    ),
    "softplus": (FLOATS, {}, lambda x, al, be: np.logaddexp(0.0, x.astype(np.float64)), "softplus(a)", None),
    "softsign": (FLOATS, {}, lambda x, al, be: x / (1.0 + np.abs(x)), "a / (1.0 + abs(a))", None),
    "hard_swish": (
        FLOATS,
        {},
        lambda x, al, be: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0,
        "a * clamp(a + 3.0, 0.0, 6.0) / 6.0",
        None,
    ),
    "elu": (
        FLOATS,
        {"alpha": 1.0},
        lambda x, al, be: np.where(x < 0, al * np.expm1(np.minimum(x, 0)), x),
        "select(a, p.alpha * expm1_safe(a), a < 0.0)",
        None,
    ),
    "leaky_relu": (
        FLOATS,
        {"alpha": 0.01},
        lambda x, al, be: np.where(x < 0, al * x, x),
        "select(a, p.alpha * a, a < 0.0)",
        None,
    ),
    "hard_sigmoid": (
        FLOATS,
        {"alpha": 0.2, "beta": 0.5},
        lambda x, al, be: np.clip(al * x + be, 0.0, 1.0),
        "clamp(p.alpha * a + p.beta, 0.0, 1.0)",
        None,
    ),
    "linear": (
        FLOATS,
        {"alpha": 1.0, "beta": 0.0},
        lambda x, al, be: al * x + be,
        "p.alpha * a + p.beta",
        None,
    ),
}

LIMITS = {n: {"input": (t, 0, R), "output": (t, 0, R)} for n, (t, *_r) in ACTIVATIONS.items()}
LIMITS["prelu"] = {"input": (SIGNED, 0, R), "slope": (SIGNED, 0, R), "output": (SIGNED, 0, R)}
LIMITS["softmax"] = {"input": (FLOATS, 1, R), "output": (FLOATS, 1, R)}


def _activation(name: str, np_fn, float_expr: str, int_expr: str | None, defaults: dict):
    def build(self, x, *, label: str = "", **options):
        x = self._arg(x, name, "input")
        unknown = set(options) - set(defaults)
        if unknown:
            from ..errors import MLTypeError

            raise MLTypeError(f"{name}: unknown option(s) {sorted(unknown)}; expected {sorted(defaults)}")
        values = {k: finite(options.get(k, d), name, k) for k, d in defaults.items()}
        guard(LIMITS, name, "input", x)
        alpha, beta = values.get("alpha", 0.0), values.get("beta", 0.0)
        expr = float_expr if x.dtype.is_float else int_expr
        shape, dt = x._shape, x.dtype

        def run(t):
            return prim.elementwise(
                [t],
                shape,
                dt.storage,
                lambda v: np_fn(v, np.float32(alpha), np.float32(beta)),
                expr,
                alpha=alpha,
                beta=beta,
                wrap=dt.wrap,
                label=name,
            )

        return self._op(name, (x,), [(dt, shape)], run, label)

    build.__name__ = name
    build.__doc__ = f"The {name} activation" + (f" (options {defaults})." if defaults else ".")
    return build


def prelu(self, x, slope, *, label: str = ""):
    """``x`` where x >= 0, else ``slope * x``; slope and x broadcast both ways."""
    x = self._arg(x, "prelu", "input")
    slope = self._arg(slope, "prelu", "slope")
    guard(LIMITS, "prelu", "input", x)
    check_same_type(slope, x, "prelu", "slope", "input")
    shape, dt = broadcast(slope._shape, x._shape, "prelu"), x.dtype
    expr = "select(a, b * a, a < 0.0)" if dt.is_float else "select(a, b * a, a < 0)"

    def run(tx, ts):
        return prim.elementwise(
            [tx, ts],
            shape,
            dt.storage,
            lambda a, b: np.where(a < 0, b * a, a),
            expr,
            wrap=dt.wrap,
            label="prelu",
        )

    return self._op("prelu", (x, slope), [(dt, shape)], run, label)


def softmax(self, x, axis, *, label: str = ""):
    """Softmax along ``axis`` (the spec's second positional argument)."""
    x = self._arg(x, "softmax", "input")
    guard(LIMITS, "softmax", "input", x)
    ax = check_axis(axis, x.rank, "softmax")

    def run(t):
        return ops.softmax(t, ax)

    out = self._op("softmax", (x,), [(x.dtype, x._shape)], run, label)
    out.node.attrs = {"axis": ax}
    return out


BUILDERS = {n: _activation(n, f, fe, ie, d) for n, (_t, d, f, fe, ie) in ACTIVATIONS.items()}
BUILDERS["prelu"] = prelu
BUILDERS["softmax"] = softmax
