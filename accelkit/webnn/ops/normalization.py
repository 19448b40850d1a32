"""batch_normalization, instance_normalization, layer_normalization.

layer_normalization moves its axes last and runs ``accelkit.ops.layer_norm`` (one fused kernel per
row on WebGPU, scale and bias in its epilogue); instance normalization computes the moments with the
reduce kernel over (outer, spatial, inner) views; batch normalization is element-wise.
"""

from __future__ import annotations

import numpy as np

from ... import ops
from ...tensor.dtype import float16, float32
from .. import primitives as prim
from ..errors import MLTypeError
from ..operand import FLOATS, check_same_type, choice, finite, guard, operand
from ..operand import axes as check_axes
from ..operand import axis as check_axis

R = 8
LIMITS = {
    "batch_normalization": {
        "input": (FLOATS, 1, R),
        "mean": (FLOATS, 1, 1),
        "variance": (FLOATS, 1, 1),
        "scale": (FLOATS, 1, 1),
        "bias": (FLOATS, 1, 1),
        "output": (FLOATS, 1, R),
    },
    "instance_normalization": {
        "input": (FLOATS, 4, 4),
        "scale": (FLOATS, 1, 1),
        "bias": (FLOATS, 1, 1),
        "output": (FLOATS, 4, 4),
    },
    "layer_normalization": {
        "input": (FLOATS, 0, R),
        "scale": (FLOATS, 0, R),
        "bias": (FLOATS, 0, R),
        "output": (FLOATS, 0, R),
    },
}


def _param(self, op, x, value, arg, shape):
    """An optional same-typed parameter operand of exactly ``shape``."""
    if value is None:
        return None
    p = operand(self, value, op, arg)
    check_same_type(p, x, op, arg, "input")
    if p._shape != tuple(shape):
        raise MLTypeError(f"{op}: {arg} must have shape {list(shape)}, got {p.shape}")
    return p


def _scale_bias(y, shape, st, scale, bias):
    """y * scale + bias with optional scale/bias tensors already shaped to broadcast."""
    if scale is not None and bias is not None:
        return prim.elementwise(
            [y, scale, bias], shape, st, lambda a, b, c: a * b + c, "a * b + c", label="scale_bias"
        )
    if scale is not None:
        return prim.elementwise([y, scale], shape, st, np.multiply, "a * b", label="scale")
    if bias is not None:
        return prim.elementwise([y, bias], shape, st, np.add, "a + b", label="bias")
    return y


def batch_normalization(
    self,
    input,
    mean,
    variance,
    *,
    scale=None,
    bias=None,
    axis: int = 1,  # noqa: A002
    epsilon: float = 1e-5,
    label: str = "",
):
    """(x - mean) / sqrt(variance + epsilon) * scale + bias, the 1-D operands along ``axis``."""
    op = "batch_normalization"
    x = self._arg(input, op, "input")
    guard(LIMITS, op, "input", x)
    ax = check_axis(axis, x.rank, op)
    eps = finite(epsilon, op, "epsilon")
    c = x._shape[ax]
    params = []
    for arg, value in (("mean", mean), ("variance", variance), ("scale", scale), ("bias", bias)):
        if value is None and arg in ("mean", "variance"):
            raise MLTypeError(f"{op}: {arg} is required")
        params.append(_param(self, op, x, value, arg, (c,)))
    shape, st = x._shape, x.dtype.storage
    bshape = (c,) + (1,) * (x.rank - 1 - ax)
    has_scale, has_bias = scale is not None, bias is not None

    def run(t, tm, tv, *rest):
        rest = list(rest)
        ts = rest.pop(0).reshape(bshape) if has_scale else None
        tb = rest.pop(0).reshape(bshape) if has_bias else None
        y = prim.elementwise(
            [t, tm.reshape(bshape), tv.reshape(bshape)],
            shape,
            st,
            lambda a, m, v: (a - m) / np.sqrt(v + np.float32(eps)),
            "(a - b) / sqrt(c + p.alpha)",
            alpha=eps,
            label="batch_norm",
        )
        return _scale_bias(y, shape, st, ts, tb)

    inputs = tuple(p for p in params if p is not None)
    return self._op(op, (x,) + inputs, [(x.dtype, shape)], run, label)


def instance_normalization(
    self,
    input,
    *,
    scale=None,
    bias=None,
    epsilon: float = 1e-5,  # noqa: A002
    layout: str = "nchw",
    label: str = "",
):
    """Normalize each (batch, channel) over its spatial dims; scale and bias per channel."""
    op = "instance_normalization"
    x = self._arg(input, op, "input")
    guard(LIMITS, op, "input", x)
    choice(layout, ("nchw", "nhwc"), op, "layout")
    eps = finite(epsilon, op, "epsilon")
    n, c, h, w = x._shape if layout == "nchw" else (x._shape[0], x._shape[3], x._shape[1], x._shape[2])
    s = _param(self, op, x, scale, "scale", (c,))
    b = _param(self, op, x, bias, "bias", (c,))
    shape, st = x._shape, x.dtype.storage
    work = float32 if st is float16 else st
    outer, inner = (n * c, 1) if layout == "nchw" else (n, c)
    hw = h * w
    pshape = (1, c, 1, 1) if layout == "nchw" else (c,)

    def run(t, *rest):
        rest = list(rest)
        ts = rest.pop(0).reshape(pshape) if s is not None else None
        tb = rest.pop(0).reshape(pshape) if b is not None else None
        t3 = t.reshape(outer, hw, inner)
        if work is not st:  # float16 normalizes through float32 (squares of small values underflow float16)
            t3 = prim.elementwise([t3], t3.shape, work, lambda a: a, "a", label="widen")
        mean = prim.reduce_middle("sum", t3, outer, hw, inner).reshape(outer, 1, inner)
        d = prim.elementwise(
            [t3, mean],
            t3.shape,
            work,
            lambda a, m: a - m / np.float32(hw),
            "a - b / p.alpha",
            alpha=float(hw),
            label="center",
        )
        sq = prim.elementwise([d], d.shape, work, np.square, "a * a", label="square")
        var = prim.reduce_middle("sum", sq, outer, hw, inner).reshape(outer, 1, inner)
        y = prim.elementwise(
            [d, var],
            d.shape,
            work if (ts is not None or tb is not None) else st,
            lambda a, v: a / np.sqrt(v / np.float32(hw) + np.float32(eps)),
            "a / sqrt(b / p.alpha + p.beta)",
            alpha=float(hw),
            beta=eps,
            label="normalize",
        )
        return _scale_bias(y.reshape(shape), shape, st, ts, tb)

    inputs = (x,) + tuple(p for p in (s, b) if p is not None)
    return self._op(op, inputs, [(x.dtype, shape)], run, label)


def layer_normalization(
    self,
    input,
    *,
    scale=None,
    bias=None,
    axes=None,
    epsilon: float = 1e-5,  # noqa: A002
    label: str = "",
):
    """Normalize over ``axes`` (default all but the first); scale/bias shaped like those dims, in axes order."""
    op = "layer_normalization"
    x = self._arg(input, op, "input")
    guard(LIMITS, op, "input", x)
    ax = tuple(range(1, x.rank)) if axes is None else check_axes(axes, x.rank, op)
    eps = finite(epsilon, op, "epsilon")
    pshape = tuple(x._shape[a] for a in ax)
    s = _param(self, op, x, scale, "scale", pshape)
    b = _param(self, op, x, bias, "bias", pshape)
    kept = tuple(d for d in range(x.rank) if d not in ax)
    perm = kept + ax
    moved = tuple(x._shape[d] for d in perm)
    inverse = tuple(int(i) for i in np.argsort(perm))
    k = int(np.prod(pshape, dtype=np.int64))
    rows = int(np.prod([x._shape[d] for d in kept], dtype=np.int64))
    shape = x._shape

    def run(t, *rest):
        rest = list(rest)
        ts = rest.pop(0).reshape(k) if s is not None else None
        tb = rest.pop(0).reshape(k) if b is not None else None
        tm = t if perm == tuple(range(len(perm))) else t.permute(*perm).contiguous()
        y = ops.layer_norm(tm.reshape(rows, k), ts, tb, eps).reshape(moved)
        return y if perm == tuple(range(len(perm))) else y.permute(*inverse).contiguous().reshape(shape)

    inputs = (x,) + tuple(p for p in (s, b) if p is not None)
    out = self._op(op, inputs, [(x.dtype, shape)], run, label)
    out.node.attrs = {"axes": ax, "epsilon": eps, "scale": s, "bias": b}
    return out


BUILDERS = {
    "batch_normalization": batch_normalization,
    "instance_normalization": instance_normalization,
    "layer_normalization": layer_normalization,
}
