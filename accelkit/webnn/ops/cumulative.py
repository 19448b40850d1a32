"""cumulative_sum along one axis (options exclusive, reversed): the input viewed as (outer, n, inner)
and one pass per line (the cumsum kernel of ``kernels/webnn_reduce.wgsl``)."""

from __future__ import annotations

import math

from .. import primitives as prim
from ..operand import SUMMABLE, flag, guard
from ..operand import axis as check_axis

LIMITS = {"cumulative_sum": {"input": (SUMMABLE, 1, 8), "output": (SUMMABLE, 1, 8)}}


def cumulative_sum(
    self,
    input,
    axis,
    *,
    exclusive: bool = False,
    reversed: bool = False,  # noqa: A002
    label: str = "",
):
    """Running sums along ``axis``; exclusive leaves each element out of its own sum, reversed runs from the end."""
    op = "cumulative_sum"
    x = self._arg(input, op, "input")
    guard(LIMITS, op, "input", x)
    ax = check_axis(axis, x.rank, op)
    exc, rev = flag(exclusive, op, "exclusive"), flag(reversed, op, "reversed")
    outer, n, inner = math.prod(x._shape[:ax]), x._shape[ax], math.prod(x._shape[ax + 1 :])

    def run(t):
        return prim.cumsum_middle(t, outer, n, inner, exc, rev)

    return self._op(op, (x,), [(x.dtype, x._shape)], run, label)


BUILDERS = {"cumulative_sum": cumulative_sum}
