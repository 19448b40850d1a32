"""Reductions: reduce_sum, reduce_mean, reduce_max, reduce_min, reduce_product, reduce_l1, reduce_l2,
reduce_log_sum, reduce_log_sum_exp, reduce_sum_square; and arg_min / arg_max live in selection.py.

``axes`` (default: every axis; ``[]``: none, the element-wise part alone) are moved last, the tensor
is viewed as (kept, reduced) and reduced in one pass (``kernels/webnn_reduce.wgsl``); a pre-map
(abs, square, exp(x - max)) and a post-map (mean's division, sqrt, log) are element-wise kernels.
"""

from __future__ import annotations

import math

import numpy as np

from ...tensor.dtype import float16, float32
from .. import primitives as prim
from ..operand import ANY, FLOATS, SUMMABLE, flag, guard
from ..operand import axes as check_axes

R = 8
# name: (allowed data types, pre-map (numpy, WGSL) or None, reduction, post-map (numpy fn(v, n), WGSL) or None)
REDUCTIONS = {
    "reduce_sum": (SUMMABLE, None, "sum", None),
    "reduce_mean": (FLOATS, None, "sum", (lambda v, n: v / n, "a / p.alpha")),
    "reduce_max": (ANY, None, "max", None),
    "reduce_min": (ANY, None, "min", None),
    "reduce_product": (SUMMABLE, None, "prod", None),
    "reduce_l1": (SUMMABLE, (np.abs, "abs(a)"), "sum", None),
    "reduce_l2": (FLOATS, (np.square, "a * a"), "sum", (lambda v, n: np.sqrt(v), "sqrt(a)")),
    "reduce_log_sum": (FLOATS, None, "sum", (lambda v, n: np.log(v), "log(a)")),
    "reduce_sum_square": (SUMMABLE, (np.square, "a * a"), "sum", None),
    "reduce_log_sum_exp": (FLOATS, None, "sum", None),  # max-shifted, below
}
LIMITS = {n: {"input": (t, 0, R), "output": (t, 0, R)} for n, (t, *_r) in REDUCTIONS.items()}


def reduction_plan(shape: tuple, axes: tuple, keep: bool):
    """(permutation moving ``axes`` last, outer, n, output shape)."""
    kept = [d for d in range(len(shape)) if d not in axes]
    perm = tuple(kept) + tuple(axes)
    outer = math.prod(shape[d] for d in kept)
    n = math.prod(shape[d] for d in axes)
    out = (
        tuple(1 if d in axes else shape[d] for d in range(len(shape)))
        if keep
        else tuple(shape[d] for d in kept)
    )
    return perm, outer, n, out


def moved_last(t, perm: tuple):
    return t if perm == tuple(range(len(perm))) else t.permute(*perm).contiguous()


def _reduction(name: str):
    types, pre, kind, post = REDUCTIONS[name]

    def build(self, input, *, axes=None, keep_dimensions: bool = False, label: str = ""):  # noqa: A002
        x = self._arg(input, name, "input")
        guard(LIMITS, name, "input", x)
        ax = tuple(range(x.rank)) if axes is None else check_axes(axes, x.rank, name)
        keep = flag(keep_dimensions, name, "keep_dimensions")
        perm, outer, n, out_shape = reduction_plan(x._shape, ax, keep)
        dt = x.dtype
        st = dt.storage

        # float16 reduces through float32 intermediates (x * x overflows float16 long before the result)
        work = float32 if st is float16 else st

        def run(t):
            t = moved_last(t, perm).reshape(outer, n)
            if name == "reduce_log_sum_exp":
                m = prim.reduce_middle("max", t, outer, n, 1)
                finite = "select(0.0, a, !is_inf(a) && !is_nan(a))"
                m = prim.elementwise(
                    [m], m.shape, work, lambda v: np.where(np.isfinite(v), v, 0), finite, label="max"
                )
                e = prim.elementwise(
                    [t, m], t.shape, work, lambda a, b: np.exp(a - b), "exp(a - b)", label="exp"
                )
                s = prim.reduce_middle("sum", e, outer, n, 1, work)
                y = prim.elementwise(
                    [s, m], s.shape, st, lambda a, b: np.log(a) + b, "log(a) + b", label="log_add"
                )
                return y.reshape(out_shape)
            if pre is not None:
                t = prim.elementwise([t], t.shape, work, pre[0], pre[1], wrap=dt.wrap, label=name + "_pre")
            y = prim.reduce_middle(kind, t, outer, n, 1, work if post is not None else None)
            if post is not None:
                post_fn = post[0]
                y = prim.elementwise(
                    [y], y.shape, st, lambda v: post_fn(v, np.float32(n)), post[1], alpha=float(n), label=name
                )
            elif dt.wrap or y.dtype is not st:
                y = prim.elementwise([y], y.shape, st, lambda v: v, "a", wrap=dt.wrap, label="wrap")
            return y.reshape(out_shape)

        return self._op(name, (x,), [(dt, out_shape)], run, label)

    build.__name__ = name
    build.__doc__ = f"{name} over ``axes`` (default all), keeping them as size 1 with keep_dimensions=True."
    return build


BUILDERS = {n: _reduction(n) for n in REDUCTIONS}
