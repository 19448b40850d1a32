"""matmul and gemm, on ``accelkit.ops.matmul`` (tiled kernels on WebGPU, BLAS on the CPU).

matmul broadcasts batch dims (ranks 2 and up); gemm is ``alpha * A' @ B' + beta * C`` with optional
transposes and C broadcast to (M, N); with alpha = beta = 1 and C of shape (N,) the bias rides the
matmul's fused epilogue.
"""

from __future__ import annotations

import numpy as np

from ... import ops
from .. import primitives as prim
from ..errors import MLTypeError
from ..operand import FLOATS, broadcast, check_same_type, finite, flag, guard, operand, unidirectional

R = 8
LIMITS = {
    "matmul": {"a": (FLOATS, 2, R), "b": (FLOATS, 2, R), "output": (FLOATS, 2, R)},
    "gemm": {"a": (FLOATS, 2, 2), "b": (FLOATS, 2, 2), "c": (FLOATS, 0, 2), "output": (FLOATS, 2, 2)},
}


def matmul(self, a, b, *, label: str = ""):
    """``a @ b`` over the last two dims, batch dims broadcast."""
    a = self._arg(a, "matmul", "a")
    b = self._arg(b, "matmul", "b")
    guard(LIMITS, "matmul", "a", a)
    guard(LIMITS, "matmul", "b", b)
    check_same_type(b, a, "matmul", "b", "a")
    (m, k), (k2, n) = a._shape[-2:], b._shape[-2:]
    if k != k2:
        raise MLTypeError(f"matmul: inner dimensions differ: a {a.shape} @ b {b.shape}")
    batch = broadcast(a._shape[:-2], b._shape[:-2], "matmul batch dims")
    shape = batch + (m, n)

    def run(ta, tb):
        return matmul_rows(ta, tb)

    return self._op("matmul", (a, b), [(a.dtype, shape)], run, label)


def gemm(
    self,
    a,
    b,
    *,
    c=None,
    alpha: float = 1.0,
    beta: float = 1.0,
    a_transpose: bool = False,
    b_transpose: bool = False,
    label: str = "",
):
    """``alpha * A @ B + beta * C`` for 2-D A and B (A, B optionally transposed)."""
    a = self._arg(a, "gemm", "a")
    b = self._arg(b, "gemm", "b")
    alpha, beta = finite(alpha, "gemm", "alpha"), finite(beta, "gemm", "beta")
    at, bt = flag(a_transpose, "gemm", "a_transpose"), flag(b_transpose, "gemm", "b_transpose")
    guard(LIMITS, "gemm", "a", a)
    guard(LIMITS, "gemm", "b", b)
    check_same_type(b, a, "gemm", "b", "a")
    m, k = a._shape[::-1] if at else a._shape
    k2, n = b._shape[::-1] if bt else b._shape
    if k != k2:
        raise MLTypeError(
            f"gemm: inner dimensions differ: a {a.shape} (transposed={at}) @ b {b.shape} (transposed={bt})"
        )
    inputs = [a, b]
    if c is not None:
        c = operand(self, c, "gemm", "c")
        guard(LIMITS, "gemm", "c", c)
        check_same_type(c, a, "gemm", "c", "a")
        unidirectional(c._shape, (m, n), "gemm", "c")
        inputs.append(c)
    dt = a.dtype
    fused_bias = c is not None and alpha == 1.0 and beta == 1.0 and c._shape == (n,)

    def run(ta, tb, tc=None):
        ta = ta.T if at else ta
        tb = tb.T if bt else tb
        if fused_bias:
            return ops.matmul(ta, tb, bias=tc)
        y = ops.matmul(ta, tb)
        if tc is None:
            if alpha == 1.0:
                return y
            return prim.elementwise(
                [y],
                (m, n),
                dt.storage,
                lambda v: v * np.float32(alpha),
                "p.alpha * a",
                alpha=alpha,
                label="gemm_scale",
            )
        return prim.elementwise(
            [y, tc],
            (m, n),
            dt.storage,
            lambda v, w: np.float32(alpha) * v + np.float32(beta) * w,
            "p.alpha * a + p.beta * b",
            alpha=alpha,
            beta=beta,
            label="gemm_epilogue",
        )

    return self._op("gemm", tuple(inputs), [(dt, (m, n))], run, label)


def matmul_rows(ta, tb, bias=None, activation=None):
    """``ta @ tb`` (+ bias, activation); rows times one 2-D matrix go through ``accelkit.ops.linear``
    (its fast path: one kernel call, no batch bookkeeping)."""
    if tb.ndim == 2 and ta.ndim >= 2 and ta.is_contiguous and ta.dtype is tb.dtype:
        return ops.linear(ta, tb.T, bias, activation)
    return ops.matmul(ta, tb, bias=bias, activation=activation)


BUILDERS = {"matmul": matmul, "gemm": gemm}
