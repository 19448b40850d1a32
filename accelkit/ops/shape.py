"""Ops that move elements without arithmetic: gathers (``embedding``, ``take``), ``concat``/``stack``, ``pad``,
and ``update_slice_`` (a write at an offset held on the device)."""

from __future__ import annotations

import builtins

import numpy as np

from ..errors import DTypeError, InputError, ShapeError
from ..tensor.dtype import int32
from ..tensor.tensor import Tensor, tensor
from .dispatch import as_tensor, axis_index, backend_of, device_of, promote
from .elementwise import copy_, fill_


def embedding(ids, table) -> Tensor:
    """Rows of ``table`` (V, D) picked by integer ``ids`` (any shape) -> ids.shape + (D,).

    Host arrays are range-checked (InputError for ids outside [0, V)); ids already on the device
    are clamped by the kernel.
    """
    table = as_tensor(table, device_of(table))
    if table.ndim != 2:
        raise ShapeError(f"embedding: table must be 2-D (num_embeddings, dim), got {table.shape}")
    vocab = table.shape[0]
    if not isinstance(ids, Tensor):
        arr = np.asarray(ids)
        if arr.dtype.kind not in "iu":
            raise DTypeError(f"embedding: ids must be integers, got {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() >= vocab):
            bad = arr[(arr < 0) | (arr >= vocab)]
            raise InputError(
                f"embedding: ids must be in [0, {vocab}); got {bad.size} out of range, e.g. {int(bad.flat[0])}"
            )
        ids = tensor(arr, dtype=int32, device=table.device)
    if ids.dtype is not int32:
        raise DTypeError(f"embedding: ids must be int32, got {ids.dtype.name}")
    idc = ids.contiguous()
    tab = table.contiguous()
    be = backend_of(idc, tab)
    out = Tensor.empty(ids.shape + (table.shape[1],), table.dtype, table.device)
    if out.size:
        be.embedding(idc.reshape(-1), tab, out.reshape(-1, table.shape[1]))
    return out


def device_index(start, dev, what: str) -> Tensor:
    """An int32 Tensor of at least one element on ``dev`` whose first element is an offset read on the device."""
    start = as_tensor(start, dev, int32)
    if start.dtype is not int32:
        raise DTypeError(f"{what}: the offset tensor must be int32, got {start.dtype.name}")
    if start.size == 0:
        raise ShapeError(f"{what}: the offset tensor is empty; its first element is the offset")
    return start


def update_slice_(dst: Tensor, src, start, axis: int = 0) -> Tensor:
    """In place: ``dst[..., p : p + n, ...] = src`` along ``axis`` where p is ``start``'s first element, read
    on the device (clamped to [0, dst.shape[axis] - n]), as XLA's dynamic_update_slice along one axis.

    ``start`` is an int32 Tensor (a host int is uploaded): because the offset is data, not a shape, one
    compiled plan serves every offset (a decoder writing each step's keys into a fixed-size KV cache).
    Returns ``dst``.
    """
    if not isinstance(dst, Tensor):
        raise InputError(
            f"update_slice_: dst must be a Tensor (it is written in place), got {type(dst).__name__}"
        )
    dev = dst.device
    src = as_tensor(src, dev, dst.dtype)
    axis = axis_index(axis, dst.ndim, "update_slice_")
    if src.ndim != dst.ndim or any(a != b for i, (a, b) in enumerate(zip(src.shape, dst.shape)) if i != axis):
        raise ShapeError(
            f"update_slice_: src {src.shape} must match dst {dst.shape} in every dim but axis {axis}"
        )
    if src.shape[axis] > dst.shape[axis]:
        raise ShapeError(f"update_slice_: src {src.shape} is longer than dst {dst.shape} along axis {axis}")
    if src.dtype is not dst.dtype:
        from .elementwise import cast

        src = cast(src, dst.dtype)
    start = device_index(start, dev, "update_slice_")
    be = backend_of(dst, src, start)
    if src.size:
        be.update_slice(dst, src, start, axis)
    return dst


def take(table, ids, axis: int = 0) -> Tensor:
    """Rows of ``table`` along axis 0 (an alias of embedding for 2-D tables)."""
    if axis != 0:
        raise ShapeError("take: only axis=0 is supported")
    return embedding(ids, table)


def _on_one_device(tensors, op: str) -> list[Tensor]:
    """The tensors of a join (at least one) as Tensors on their common device."""
    tensors = list(tensors)
    if not tensors:
        raise ShapeError(f"{op}: needs at least one tensor")
    dev = device_of(*tensors)
    return [as_tensor(t, dev) for t in tensors]


def concat(tensors, axis: int = 0) -> Tensor:
    """Join tensors along ``axis``; every other dim must match."""
    tensors = _on_one_device(tensors, "concat")
    first = tensors[0]
    axis = axis_index(axis, first.ndim, "concat")
    dt = first.dtype
    for t in tensors[1:]:
        if t.ndim != first.ndim or any(t.shape[i] != first.shape[i] for i in range(first.ndim) if i != axis):
            raise ShapeError(f"concat: shapes {[tuple(x.shape) for x in tensors]} differ outside axis {axis}")
        dt = promote(dt, t.dtype)
    shape = list(first.shape)
    shape[axis] = builtins.sum(t.shape[axis] for t in tensors)
    backend_of(*tensors)
    out = Tensor.empty(tuple(shape), dt, first.device)
    at = 0
    for t in tensors:
        n = t.shape[axis]
        if n:
            index = [slice(None)] * first.ndim
            index[axis] = slice(at, at + n)
            copy_(out[tuple(index)], t)
        at += n
    return out


cat = concat


def stack(tensors, axis: int = 0) -> Tensor:
    """Join same-shaped tensors along a new axis ``axis``."""
    tensors = _on_one_device(tensors, "stack")
    axis = axis_index(axis, tensors[0].ndim + 1, "stack")
    if any(t.shape != tensors[0].shape for t in tensors):
        shapes = [tuple(t.shape) for t in tensors]
        raise ShapeError(f"stack: every tensor must have the same shape, got {shapes}")
    return concat([t.unsqueeze(axis) for t in tensors], axis)


def pad(x, pads, value: float = 0.0) -> Tensor:
    """Constant padding; ``pads`` is ((before, after), ...) for the last len(pads) dims."""
    x = as_tensor(x, device_of(x))
    pads = [tuple(p) for p in pads]
    if len(pads) > x.ndim:
        raise ShapeError(f"pad: {len(pads)} pad pairs for a tensor of {x.ndim} dims")
    lead = x.ndim - len(pads)
    shape = list(x.shape)
    for i, (lo, hi) in enumerate(pads):
        if lo < 0 or hi < 0:
            raise ShapeError(f"pad: negative padding {pads[i]}")
        shape[lead + i] += lo + hi
    out = Tensor.empty(tuple(shape), x.dtype, x.device)
    fill_(out, value)
    index = [slice(None)] * lead + [slice(lo, lo + x.shape[lead + i]) for i, (lo, _) in enumerate(pads)]
    if x.size:
        copy_(out[tuple(index)], x)
    return out
