"""Reductions over one axis or all: ``sum``, ``mean``, ``max``, ``min``, ``argmax``."""

from __future__ import annotations

import builtins
import math

from ..backends.base import Backend
from ..errors import ShapeError
from ..tensor.dtype import float32, int32
from ..tensor.tensor import Tensor
from .dispatch import as_tensor, axis_index, backend_of, device_of
from .elementwise import fill_


def _reduce(op: str, x, axis, keepdims: bool) -> Tensor:
    x = as_tensor(x, device_of(x))
    if axis is None:
        flat = x.reshape(-1) if x.ndim else x.reshape(1)
        r = _reduce(op, flat, 0, False)
        return r.reshape((1,) * x.ndim) if keepdims else r
    axis = axis_index(axis, builtins.max(x.ndim, 1), op)
    scalar = x.ndim == 0  # a 0-d input reduces to 0-d, keepdims or not (as torch)
    if scalar:
        x = x.reshape(1)
    n = x.shape[axis]
    if n == 0 and op in ("max", "min", "argmax"):
        raise ShapeError(f"{op}: cannot reduce over an empty axis {axis} of shape {x.shape}")
    outer = math.prod(x.shape[:axis])
    inner = math.prod(x.shape[axis + 1 :])
    out_dtype = int32 if op == "argmax" else (float32 if op == "mean" and not x.dtype.is_float else x.dtype)
    xc = x.contiguous()
    be = backend_of(xc)
    out = Tensor.empty((outer, inner), out_dtype, x.device)
    if out.size:
        if n == 0:
            fill_(out, 0.0 if op == "sum" else float("nan"))
        elif _split_reduce_pays(be, op, x.dtype, outer, n, inner):
            _reduce_in_two_passes(be, op, xc.reshape(n, inner), out.reshape(inner))
        else:
            be.reduce(op, xc.reshape(outer, n, inner), out)
    shape = () if scalar else x.shape[:axis] + ((1,) if keepdims else ()) + x.shape[axis + 1 :]
    return out.reshape(shape)


#: chunk length of the first pass when one long axis is reduced to a few outputs on the GPU
SPLIT_REDUCE_CHUNK = 4096


def _split_reduce_pays(be: Backend, op: str, dtype, outer: int, n: int, inner: int) -> bool:
    """The reduce kernel gives each output one workgroup: a whole tensor reduced to a handful of
    values would run on a handful of workgroups. Split such axes in two passes on the GPU."""
    return (
        be.split_long_reductions
        and op in ("sum", "mean", "max", "min")
        and dtype.name == "float32"  # f16 partial sums could overflow where a f16 mean would not
        and outer == 1
        and inner <= 64
        and n >= 16 * SPLIT_REDUCE_CHUNK
    )


def _reduce_in_two_passes(be: Backend, op: str, x: Tensor, out: Tensor) -> None:
    """Reduce the contiguous (n, inner) ``x`` over axis 0 into ``out`` (inner,): chunks of
    SPLIT_REDUCE_CHUNK rows in parallel first (plus the remainder), then the partial results."""
    n, inner = x.shape
    c = SPLIT_REDUCE_CHUNK
    k, r = divmod(n, c)
    first = "sum" if op == "mean" else op
    partial = Tensor.empty((k + (1 if r else 0), inner), x.dtype, x.device)
    head = Tensor(x.storage, (k, c, inner), (c * inner, inner, 1), x.offset, x.dtype)
    be.reduce(first, head, partial[:k].reshape(k, inner))
    if r:
        tail = Tensor(x.storage, (1, r, inner), (r * inner, inner, 1), x.offset + k * c * inner, x.dtype)
        be.reduce(first, tail, partial[k:].reshape(1, inner))
    total = Tensor.empty((1, inner), x.dtype, x.device)
    be.reduce(first, partial.reshape(1, partial.shape[0], inner), total)
    if op == "mean":
        be.unary("scale", total, out.reshape(1, inner), 1.0 / n)
    else:
        be.unary("copy", total, out.reshape(1, inner), 0.0)


def sum(x, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001 - numpy's name
    return _reduce("sum", x, axis, keepdims)


def mean(x, axis=None, keepdims: bool = False) -> Tensor:
    return _reduce("mean", x, axis, keepdims)


def max(x, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001 - numpy's name
    return _reduce("max", x, axis, keepdims)


def min(x, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001 - numpy's name
    return _reduce("min", x, axis, keepdims)


def argmax(x, axis=None, keepdims: bool = False) -> Tensor:
    """Index of the first maximum along ``axis`` (int32)."""
    return _reduce("argmax", x, axis, keepdims)
