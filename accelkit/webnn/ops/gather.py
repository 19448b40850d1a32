"""gather, gather_elements, gather_nd, scatter_elements, scatter_nd.

The indices are runtime values, so each op first works out, on the device, the flat input position
of every output (or update) element: a static part built at build time (the positions along the
other axes) plus each index, wrapped when negative and clamped into range, times its axis stride
(element-wise kernels); then one flat gather (``kernels/webnn_gather.wgsl``) or scatter
(the scatter kernel of the same file) moves the data. Out-of-range indices are clamped (never read or
written out of bounds); negative ones count from the end, as the spec allows.
"""

from __future__ import annotations

import math

import numpy as np

from .. import primitives as prim
from ..errors import MLTypeError
from ..operand import ANY, INDICES, check_rank, check_same_type, guard
from ..operand import axis as check_axis

R = 8
LIMITS = {
    "gather": {"input": (ANY, 1, R), "indices": (INDICES, 0, R), "output": (ANY, 0, R)},
    "gather_elements": {"input": (ANY, 1, R), "indices": (INDICES, 1, R), "output": (ANY, 1, R)},
    "gather_nd": {"input": (ANY, 1, R), "indices": (INDICES, 1, R), "output": (ANY, 0, R)},
    "scatter_elements": {
        "input": (ANY, 1, R),
        "indices": (INDICES, 1, R),
        "updates": (ANY, 1, R),
        "output": (ANY, 1, R),
    },
    "scatter_nd": {
        "input": (ANY, 1, R),
        "indices": (INDICES, 1, R),
        "updates": (ANY, 0, R),
        "output": (ANY, 1, R),
    },
}

_STEP_WGSL = "a + clamp(select(b, b + bitcast<i32>(p.ialpha), b < 0), 0, bitcast<i32>(p.ialpha) - 1) * bitcast<i32>(p.ibeta)"


def _step(acc, idx, shape, size: int, stride: int):
    """acc + wrap_clamp(idx, size) * stride, broadcast to ``shape`` (int32)."""

    def numpy_fn(a, b):
        return a + np.clip(np.where(b < 0, b + size, b), 0, size - 1) * stride

    return prim.elementwise(
        [acc, idx], shape, prim.int32, numpy_fn, _STEP_WGSL, ialpha=size, ibeta=stride, label="index"
    )


def _strides(shape) -> list:
    out, acc = [], 1
    for n in reversed(shape):
        out.append(acc)
        acc *= n
    return out[::-1]


def _operands(self, op, input, indices):
    x = self._arg(input, op, "input")
    i = self._arg(indices, op, "indices")
    guard(LIMITS, op, "input", x)
    guard(LIMITS, op, "indices", i)
    return x, i


def gather(self, input, indices, *, axis: int = 0, label: str = ""):  # noqa: A002
    """Slices of ``input`` along ``axis`` picked by ``indices``: in[:axis] + indices.shape + in[axis+1:]."""
    op = "gather"
    x, i = _operands(self, op, input, indices)
    ax = check_axis(axis, x.rank, op)
    outer, n, inner = math.prod(x._shape[:ax]), x._shape[ax], math.prod(x._shape[ax + 1 :])
    out_shape = x._shape[:ax] + i._shape + x._shape[ax + 1 :]
    full = (outer,) + i._shape + (inner,)
    base = (np.arange(outer)[:, None] * n * inner + np.arange(inner)[None, :]).reshape(
        (outer,) + (1,) * i.rank + (inner,)
    )
    base = prim.BuildConstant(base.astype(np.int32))

    def run(t, ti):
        flat = _step(base.on(t.device), ti.reshape((1,) + i._shape + (1,)), full, n, inner)
        return prim.gather_flat(t, flat, label=op).reshape(out_shape)

    return self._op(op, (x, i), [(x.dtype, out_shape)], run, label)


def _check_elements(op, x, i, ax):
    if i.rank != x.rank:
        raise MLTypeError(f"{op}: indices must have the input's rank {x.rank}, got shape {i.shape}")
    for d in range(x.rank):
        if d != ax and i._shape[d] != x._shape[d]:
            raise MLTypeError(
                f"{op}: indices shape {i.shape} must equal input shape {x.shape} except on axis {ax}"
            )


def gather_elements(self, input, indices, *, axis: int = 0, label: str = ""):  # noqa: A002
    """out[p] = input[p with p[axis] = indices[p]]; output shaped like ``indices``."""
    op = "gather_elements"
    x, i = _operands(self, op, input, indices)
    ax = check_axis(axis, x.rank, op)
    _check_elements(op, x, i, ax)
    stride = _strides(x._shape)[ax]
    strides = _strides(x._shape)
    grids = np.indices(i._shape, dtype=np.int64)
    base = prim.BuildConstant(sum(grids[d] * strides[d] for d in range(x.rank) if d != ax).astype(np.int32))
    n = x._shape[ax]

    def run(t, ti):
        flat = _step(base.on(t.device), ti, i._shape, n, stride)
        return prim.gather_flat(t, flat, label=op)

    return self._op(op, (x, i), [(x.dtype, i._shape)], run, label)


def _nd_positions(x_shape, i_shape, base, ti):
    """Flat positions for gather_nd/scatter_nd: batch (indices.shape[:-1]) x inner (input.shape[k:])."""
    k = i_shape[-1]
    batch = i_shape[:-1]
    inner = math.prod(x_shape[k:])
    strides = _strides(x_shape)
    full = batch + (inner,)
    acc = base.on(ti.device)
    for j in range(k):
        col = index_column(ti, j).reshape(batch + (1,))
        acc = _step(acc, col, full, x_shape[j], strides[j])
    if k == 0:
        acc = prim.elementwise([acc], full, prim.int32, lambda a: a, "a", label="index")
    return acc


def index_column(t, j: int):
    """indices[..., j] as a strided view (no copy)."""
    from ...tensor.tensor import Tensor as AkTensor

    return AkTensor(t.storage, t.shape[:-1], t.strides[:-1], t.offset + j * t.strides[-1], t.dtype)


def _check_nd(op, x, i):
    k = i._shape[-1]
    if k > x.rank:
        raise MLTypeError(f"{op}: indices' last dim {k} exceeds the input's rank {x.rank}")
    return k


def gather_nd(self, input, indices, *, label: str = ""):  # noqa: A002
    """Slices picked by k-tuples of indices (indices' last dim k): indices.shape[:-1] + input.shape[k:]."""
    op = "gather_nd"
    x, i = _operands(self, op, input, indices)
    k = _check_nd(op, x, i)
    out_shape = i._shape[:-1] + x._shape[k:]
    inner = math.prod(x._shape[k:])
    base = prim.BuildConstant(np.arange(inner, dtype=np.int32).reshape((1,) * (i.rank - 1) + (inner,)))

    def run(t, ti):
        flat = _nd_positions(x._shape, i._shape, base, ti)
        return prim.gather_flat(t, flat, label=op).reshape(out_shape)

    return self._op(op, (x, i), [(x.dtype, out_shape)], run, label)


def scatter_elements(self, input, indices, updates, *, axis: int = 0, label: str = ""):  # noqa: A002
    """A copy of ``input`` with out[p with p[axis] = indices[p]] = updates[p]."""
    op = "scatter_elements"
    x, i = _operands(self, op, input, indices)
    u = self._arg(updates, op, "updates")
    check_same_type(u, x, op, "updates", "input")
    ax = check_axis(axis, x.rank, op)
    _check_elements(op, x, i, ax)
    if u._shape != i._shape:
        raise MLTypeError(f"{op}: updates shape {u.shape} must equal indices shape {i.shape}")
    strides = _strides(x._shape)
    grids = np.indices(i._shape, dtype=np.int64)
    base = prim.BuildConstant(sum(grids[d] * strides[d] for d in range(x.rank) if d != ax).astype(np.int32))
    n, stride = x._shape[ax], strides[ax]

    def run(t, ti, tu):
        flat = _step(base.on(t.device), ti, i._shape, n, stride)
        return prim.scatter_flat(t, flat, tu, label=op)

    return self._op(op, (x, i, u), [(x.dtype, x._shape)], run, label)


def scatter_nd(self, input, indices, updates, *, label: str = ""):  # noqa: A002
    """A copy of ``input`` with the slices picked by k-tuples of ``indices`` replaced by ``updates``."""
    op = "scatter_nd"
    x, i = _operands(self, op, input, indices)
    u = self._arg(updates, op, "updates")
    check_same_type(u, x, op, "updates", "input")
    k = _check_nd(op, x, i)
    want = i._shape[:-1] + x._shape[k:]
    if u._shape != want:
        raise MLTypeError(
            f"{op}: updates must have shape {list(want)} (indices.shape[:-1] + input.shape[k:]), "
            f"got {u.shape}"
        )
    check_rank(u, 0, R, op, "updates")
    inner = math.prod(x._shape[k:])
    base = prim.BuildConstant(np.arange(inner, dtype=np.int32).reshape((1,) * (i.rank - 1) + (inner,)))

    def run(t, ti, tu):
        flat = _nd_positions(x._shape, i._shape, base, ti)
        return prim.scatter_flat(t, flat, tu, label=op)

    return self._op(op, (x, i, u), [(x.dtype, x._shape)], run, label)


BUILDERS = {
    "gather": gather,
    "gather_elements": gather_elements,
    "gather_nd": gather_nd,
    "scatter_elements": scatter_elements,
    "scatter_nd": scatter_nd,
}
