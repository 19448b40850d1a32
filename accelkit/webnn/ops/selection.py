"""where, clamp, arg_min, arg_max.

where and clamp are element-wise kernels (``kernels/webnn_elementwise.wgsl``); arg_min/arg_max view
the input as (outer, n, inner) around the axis and run the reduce kernel, which keeps the first
index of the extreme value.
"""

from __future__ import annotations

import math

import numpy as np

from .. import primitives as prim
from ..errors import MLTypeError
from ..operand import (
    ANY,
    BOOLEAN,
    DATA_TYPES,
    INT_RANGES,
    broadcast,
    check_same_type,
    check_type,
    flag,
    guard,
    number,
)
from ..operand import (
    axis as check_axis,
)

R = 8
LIMITS = {
    "where": {
        "condition": (BOOLEAN, 0, R),
        "true_value": (ANY, 0, R),
        "false_value": (ANY, 0, R),
        "output": (ANY, 0, R),
    },
    "clamp": {"input": (ANY, 0, R), "output": (ANY, 0, R)},
    "arg_min": {"input": (ANY, 1, R), "output": (("int32", "int64"), 0, R)},
    "arg_max": {"input": (ANY, 1, R), "output": (("int32", "int64"), 0, R)},
}


def where(self, condition, true_value, false_value, *, label: str = ""):
    """true_value where condition is non-zero, else false_value (all three broadcast)."""
    op = "where"
    c = self._arg(condition, op, "condition")
    t = self._arg(true_value, op, "true_value")
    f = self._arg(false_value, op, "false_value")
    guard(LIMITS, op, "condition", c)
    guard(LIMITS, op, "true_value", t)
    check_same_type(f, t, op, "false_value", "true_value")
    shape = broadcast(broadcast(c._shape, t._shape, op), f._shape, op)

    def run(tc, tt, tf):
        return prim.elementwise(
            [tc, tt, tf],
            shape,
            t.dtype.storage,
            lambda a, b, d: np.where(a != 0, b, d),
            "select(c, b, a != 0)",
            label=op,
        )

    return self._op(op, (c, t, f), [(t.dtype, shape)], run, label)


def clamp(self, input, *, min_value=None, max_value=None, label: str = ""):  # noqa: A002
    """Clamp into [min_value, max_value] (either bound optional)."""
    op = "clamp"
    x = self._arg(input, op, "input")
    guard(LIMITS, op, "input", x)
    dt = x.dtype
    lo = -math.inf if min_value is None else number(min_value, op, "min_value")
    hi = math.inf if max_value is None else number(max_value, op, "max_value")
    if math.isnan(lo) or math.isnan(hi):
        raise MLTypeError(f"{op}: min_value and max_value must not be NaN")
    if lo > hi:
        raise MLTypeError(f"{op}: min_value {lo} must not exceed max_value {hi}")
    unsigned = dt.name == "uint32"
    if dt.is_float:
        lo, hi = float(np.float32(lo)), float(np.float32(hi))
        expr, ilo, ihi = "select(clamp(a, p.alpha, p.beta), a, is_nan(a))", 0, 0
    else:  # bounds cast to the type's range, passed exactly as integer bits
        tlo, thi = INT_RANGES[dt.name]
        lo = int(min(max(math.ceil(lo) if math.isfinite(lo) else lo, tlo), thi))
        hi = int(max(min(math.floor(hi) if math.isfinite(hi) else hi, thi), tlo))
        ilo, ihi = lo & 0xFFFFFFFF, hi & 0xFFFFFFFF
        expr = (
            "clamp(a, p.ialpha, p.ibeta)"
            if unsigned
            else "clamp(a, bitcast<i32>(p.ialpha), bitcast<i32>(p.ibeta))"
        )

    def run(t):
        return prim.elementwise(
            [t],
            x._shape,
            dt.storage,
            lambda v: np.clip(v, lo, hi),
            expr,
            alpha=lo if dt.is_float else 0.0,
            beta=hi if dt.is_float else 0.0,
            ialpha=ilo,
            ibeta=ihi,
            unsigned=unsigned,
            label=op,
        )

    return self._op(op, (x,), [(dt, x._shape)], run, label)


def _arg(kind: str):
    op = f"arg_{kind}"

    def build(
        self,
        input,
        axis,
        *,
        keep_dimensions: bool = False,
        output_data_type: str = "int32",  # noqa: A002
        label: str = "",
    ):
        x = self._arg(input, op, "input")
        guard(LIMITS, op, "input", x)
        ax = check_axis(axis, x.rank, op)
        keep = flag(keep_dimensions, op, "keep_dimensions")
        if output_data_type not in ("int32", "int64"):
            raise MLTypeError(f"{op}: output_data_type must be 'int32' or 'int64', got {output_data_type!r}")
        out_dt = DATA_TYPES[output_data_type]
        check_type(x, ANY, op, "input")
        outer, n, inner = math.prod(x._shape[:ax]), x._shape[ax], math.prod(x._shape[ax + 1 :])
        shape = x._shape[:ax] + ((1,) if keep else ()) + x._shape[ax + 1 :]

        def run(t):
            return prim.reduce_middle("arg" + kind, t, outer, n, inner).reshape(shape)

        return self._op(op, (x,), [(out_dt, shape)], run, label)

    build.__name__ = op
    build.__doc__ = f"Index of the first {kind}imum along ``axis`` (int32)."
    return build


BUILDERS = {"where": where, "clamp": clamp, "arg_min": _arg("min"), "arg_max": _arg("max")}
BUILDERS["argmin"] = BUILDERS["arg_min"]
BUILDERS["argmax"] = BUILDERS["arg_max"]
