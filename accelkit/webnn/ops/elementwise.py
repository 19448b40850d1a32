"""Element-wise ops: binary arithmetic, comparisons, logical ops, unary math, is_nan / is_infinite.

Each op is a row: its numpy function (CPU backend) and its WGSL expression over ``a`` and ``b``
(WebGPU, ``kernels/webnn_elementwise.wgsl``), for float (f32 compute) and integer (i32) inputs.
Binary ops broadcast both ways (numpy's rule); comparisons and logical ops give uint8 0/1.
"""

from __future__ import annotations

import math

import numpy as np

from .. import primitives as prim
from ..operand import (
    ANY,
    BOOLEAN,
    DATA_TYPES,
    FLOATS,
    SIGNED,
    broadcast,
    check_same_type,
    guard,
)

R = 8  # max rank


def _int_div(a, b):
    with np.errstate(all="ignore"):
        q = np.trunc(a.astype(np.float64) / np.where(b == 0, 1, b))
    return np.where(b == 0, a, q)


def _pow(a, b):
    return (
        np.power(a.astype(np.float64), b).astype(a.dtype)
        if a.dtype.kind == "f"
        else np.power(a.astype(np.float64), b.astype(np.float64)).round()
    )


# name: (numpy fn, WGSL float expr, WGSL int expr)
BINARY = {
    "add": (np.add, "a + b", "a + b"),
    "sub": (np.subtract, "a - b", "a - b"),
    "mul": (np.multiply, "a * b", "a * b"),
    "div": (
        lambda a, b: np.divide(a, b) if a.dtype.kind == "f" else _int_div(a, b),
        "a / b",
        "select(a / b, a, b == 0)",
    ),
    "max": (np.maximum, "max(a, b)", "max(a, b)"),
    "min": (np.minimum, "min(a, b)", "min(a, b)"),
    "pow": (_pow, "pow_safe(a, b)", "i32(round(pow_safe(f32(a), f32(b))))"),
}

COMPARE = {
    "equal": (np.equal, "=="),
    "not_equal": (np.not_equal, "!="),
    "greater": (np.greater, ">"),
    "greater_or_equal": (np.greater_equal, ">="),
    "lesser": (np.less, "<"),
    "lesser_or_equal": (np.less_equal, "<="),
}

LOGICAL = {
    "logical_and": (np.logical_and, "(a != 0) && (b != 0)"),
    "logical_or": (np.logical_or, "(a != 0) || (b != 0)"),
    "logical_xor": (np.logical_xor, "(a != 0) != (b != 0)"),
}


def _erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x.astype(np.float64)) if x.size else x


# name: (allowed types, numpy fn, WGSL float expr, WGSL int expr or None)
UNARY = {
    "abs": (SIGNED, np.abs, "abs(a)", "abs(a)"),
    "neg": (SIGNED, np.negative, "-a", "-a"),
    "sign": (SIGNED, np.sign, "sign(a)", "sign(a)"),
    "identity": (ANY, lambda a: a, "a", "a"),
    "ceil": (FLOATS, np.ceil, "ceil(a)", None),
    "floor": (FLOATS, np.floor, "floor(a)", None),
    "round_even": (FLOATS, np.round, "round(a)", None),
    "cos": (FLOATS, np.cos, "cos(a)", None),
    "sin": (FLOATS, np.sin, "sin(a)", None),
    "tan": (FLOATS, np.tan, "tan(a)", None),
    "exp": (FLOATS, np.exp, "exp(a)", None),
    "log": (FLOATS, np.log, "log(a)", None),
    "sqrt": (FLOATS, np.sqrt, "sqrt(a)", None),
    "reciprocal": (FLOATS, np.reciprocal, "1.0 / a", None),
    "erf": (FLOATS, _erf, "erf_approx(a)", None),
}

LIMITS = {}
for _n in BINARY:
    LIMITS[_n] = {"a": (ANY, 0, R), "b": (ANY, 0, R), "output": (ANY, 0, R)}
for _n in COMPARE:
    LIMITS[_n] = {"a": (ANY, 0, R), "b": (ANY, 0, R), "output": (BOOLEAN, 0, R)}
for _n in LOGICAL:
    LIMITS[_n] = {"a": (BOOLEAN, 0, R), "b": (BOOLEAN, 0, R), "output": (BOOLEAN, 0, R)}
LIMITS["logical_not"] = {"a": (BOOLEAN, 0, R), "output": (BOOLEAN, 0, R)}
LIMITS["is_nan"] = {"a": (ANY, 0, R), "output": (BOOLEAN, 0, R)}
LIMITS["is_infinite"] = {"a": (ANY, 0, R), "output": (BOOLEAN, 0, R)}
for _n, (_types, *_rest) in UNARY.items():
    LIMITS[_n] = {"input": (_types, 0, R), "output": (_types, 0, R)}

UINT8 = DATA_TYPES["uint8"]


def _binary_op(name: str, out_bool: bool, np_fn, float_expr: str, int_expr: str):
    def build(self, a, b, *, label: str = ""):
        a = self._arg(a, name, "a")
        b = self._arg(b, name, "b")
        guard(LIMITS, name, "a", a)
        check_same_type(b, a, name, "b", "a")
        shape = broadcast(a._shape, b._shape, name)
        dt = UINT8 if out_bool else a.dtype
        expr = float_expr if a.dtype.is_float else int_expr
        wrap = None if out_bool else a.dtype.wrap

        unsigned = a.dtype.name == "uint32"

        def run(ta, tb):
            return prim.elementwise(
                [ta, tb],
                shape,
                dt.storage,
                np_fn,
                expr,
                wrap=wrap,
                unsigned=unsigned,
                unsigned_out=unsigned and not out_bool,
                label=name,
            )

        return self._op(name, (a, b), [(dt, shape)], run, label)

    build.__name__ = name
    build.__doc__ = f"Element-wise {name}(a, b) with bidirectional broadcasting."
    return build


def _unary_op(name: str, out_bool: bool, np_fn, float_expr: str, int_expr: str | None, arg: str = "input"):
    def build(self, x, *, label: str = ""):
        x = self._arg(x, name, arg)
        guard(LIMITS, name, arg, x)
        dt = UINT8 if out_bool else x.dtype
        expr = float_expr if x.dtype.is_float else int_expr
        wrap = None if out_bool else x.dtype.wrap
        shape = x._shape

        def run(t):
            return prim.elementwise([t], shape, dt.storage, np_fn, expr, wrap=wrap, label=name)

        return self._op(name, (x,), [(dt, shape)], run, label)

    build.__name__ = name
    build.__doc__ = f"Element-wise {name}."
    return build


BUILDERS = {}
for _n, (_f, _fe, _ie) in BINARY.items():
    BUILDERS[_n] = _binary_op(_n, False, _f, _fe, _ie)
for _n, (_f, _sym) in COMPARE.items():
    # NaN compares unequal to everything, tested on the bits: drivers may fold float compares as if
    # NaN never occurs
    _nan = "(is_nan(a) || is_nan(b))"
    _fe = f"select(0, 1, {_nan} || a != b)" if _sym == "!=" else f"select(0, 1, !{_nan} && a {_sym} b)"
    BUILDERS[_n] = _binary_op(_n, True, _f, _fe, f"select(0, 1, a {_sym} b)")
for _n, (_f, _e) in LOGICAL.items():
    BUILDERS[_n] = _binary_op(_n, True, _f, f"select(0, 1, {_e})", f"select(0, 1, {_e})")
BUILDERS["logical_not"] = _unary_op("logical_not", True, np.logical_not, "", "select(0, 1, a == 0)", "a")
BUILDERS["is_nan"] = _unary_op("is_nan", True, np.isnan, "select(0, 1, is_nan(a))", "0", "a")
BUILDERS["is_infinite"] = _unary_op("is_infinite", True, np.isinf, "select(0, 1, is_inf(a))", "0", "a")
for _n, (_types, _f, _fe, _ie) in UNARY.items():
    BUILDERS[_n] = _unary_op(_n, False, _f, _fe, _ie)
