"""Matrix products: ``matmul`` (numpy semantics, fused bias + activation epilogue) and ``linear``."""

from __future__ import annotations

import math

from ..errors import InputError, ShapeError
from ..tensor.dtype import float32, int32
from ..tensor.tensor import Tensor
from .dispatch import as_tensor, backend_of, broadcast_shapes, collapse_leading, device_of, promote
from .elementwise import _unary, add, cast, fill_

ACTIVATIONS = (None, "gelu", "gelu_tanh", "relu", "tanh")


def _merge_batch(t: Tensor, batch: tuple, rows: int, cols: int) -> Tensor:
    """View ``t`` (already expanded to batch + (rows, cols)) as (prod(batch), rows, cols), copying if needed."""
    if not batch:
        return t.unsqueeze(0)
    return collapse_leading(t, len(batch))


def matmul(a, b, *, bias=None, activation: str | None = None) -> Tensor:
    """Matrix product with numpy semantics (1-D promotion, broadcast batch dims), optional fused epilogue.

    ``bias`` (shape (N,)) is added and ``activation`` ("gelu", "gelu_tanh", "relu", "tanh") applied
    in the same kernel. Either operand may be a transposed view; nothing is copied for it.
    """
    dev = device_of(a, b)
    a, b = as_tensor(a, dev), as_tensor(b, dev)
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul: operands must have at least 1 dim, got {a.shape} @ {b.shape}")
    if activation not in ACTIVATIONS:
        raise InputError(f"matmul: unknown activation {activation!r}; expected one of {ACTIVATIONS[1:]}")
    a2 = a.unsqueeze(0) if a.ndim == 1 else a
    b2 = b.unsqueeze(-1) if b.ndim == 1 else b
    m, k = a2.shape[-2:]
    k2, n = b2.shape[-2:]
    if k != k2:
        raise ShapeError(f"matmul: inner dimensions differ: {a.shape} @ {b.shape}")
    batch = broadcast_shapes(a2.shape[:-2], b2.shape[:-2], op=f"matmul batch dims of {a.shape} @ {b.shape}")
    dt = promote(a.dtype, b.dtype)
    if dt is int32:
        dt = float32
    if a2.dtype is not dt:
        a2 = cast(a2, dt)
    if b2.dtype is not dt:
        b2 = cast(b2, dt)
    if bias is not None:
        bias = as_tensor(bias, dev, dt)
        if bias.shape != (n,):
            raise ShapeError(f"matmul: bias must have shape ({n},) for output width {n}, got {bias.shape}")
        if bias.dtype is not dt:
            bias = cast(bias, dt)
        bias = bias.contiguous()
    be = backend_of(a2, b2, bias)
    out = Tensor.empty(batch + (m, n), dt, a.device)
    if out.size:
        a3 = _merge_batch(a2.expand(batch + (m, k)), batch, m, k)
        b3 = _merge_batch(b2.expand(batch + (k, n)), batch, k, n)
        out3 = out.reshape(math.prod(batch), m, n)
        if k == 0:
            fill_(out3, 0.0)
            if bias is not None or activation is not None:
                out3 = _epilogue_only(out3, bias, activation)
                return out3.reshape(out.shape)
        else:
            be.matmul(a3, b3, out3, bias, activation)
    if a.ndim == 1 and b.ndim == 1:
        return out.reshape(())
    if a.ndim == 1:
        return out.squeeze(-2)
    if b.ndim == 1:
        return out.squeeze(-1)
    return out


def _epilogue_only(x: Tensor, bias, activation) -> Tensor:
    if bias is not None:
        x = add(x, bias)
    if activation is not None:
        x = _unary(activation, x)
    return x


def linear(x, weight, bias=None, activation: str | None = None, residual=None) -> Tensor:
    """``activation(x @ weight.T + bias) + residual`` with Hugging Face's weight layout (out_features,
    in_features), in one kernel where the backend can (``residual`` has the output's shape)."""
    dev = device_of(x, weight)
    x, weight = as_tensor(x, dev), as_tensor(weight, dev)
    if weight.ndim != 2:
        raise ShapeError(f"linear: weight must be 2-D (out_features, in_features), got {weight.shape}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ShapeError(
            f"linear: input's last dim must equal in_features {weight.shape[1]}: input {x.shape}, weight {weight.shape}"
        )
    lead = x.shape[:-1]
    rows = math.prod(lead)
    if residual is not None:
        residual = as_tensor(residual, dev)
        if tuple(residual.shape) != lead + (weight.shape[0],):
            raise ShapeError(
                f"linear: residual must have the output's shape {lead + (weight.shape[0],)}, got {residual.shape}"
            )
    fast = _linear_fast(x, weight, bias, activation, lead, rows, residual)
    if fast is not None:
        return fast
    x2 = x.reshape(rows, x.shape[-1]) if x.ndim != 2 else x
    y = matmul(x2, weight.T, bias=bias, activation=activation).reshape(lead + (weight.shape[0],))
    return y if residual is None else add(y, residual)


def _linear_fast(
    x: Tensor, weight: Tensor, bias, activation, lead: tuple, rows: int, residual=None
) -> Tensor | None:
    """The common case (same float dtype, rows of x dense, bias a dense (N,) tensor) straight to the
    backend with (1, rows, K) / (1, K, N) views: the same kernel call as the general path, with
    less host work per layer. None when the general path is needed."""
    dt = x.dtype
    k, n = weight.shape[1], weight.shape[0]
    if not dt.is_float or weight.dtype is not dt or activation not in ACTIVATIONS or not rows or not k:
        return None
    if not x.is_contiguous:
        return None
    if bias is not None and not (
        isinstance(bias, Tensor) and bias.dtype is dt and bias.shape == (n,) and bias.is_contiguous
    ):
        return None
    if residual is not None and not (residual.dtype is dt and residual.is_contiguous):
        return None
    be = backend_of(x, weight, bias, residual)
    out = Tensor.empty(lead + (n,), dt, x.device)
    a3, b3, o3 = _rows3(x, rows, k), _weight_t3(weight), _rows3(out, rows, n)
    if residual is None:
        be.matmul(a3, b3, o3, bias, activation)
    else:
        be.matmul(a3, b3, o3, bias, activation, residual=_rows3(residual, rows, n))
    return out


def _rows3(t: Tensor, rows: int, cols: int) -> Tensor:
    """A dense tensor of ``rows`` x ``cols`` elements as the (1, rows, cols) view a backend's matmul takes."""
    return Tensor(t.storage, (1, rows, cols), (0, cols, 1), t.offset, t.dtype)


def _weight_t3(weight: Tensor) -> Tensor:
    """A linear layer's (N, K) weight as the (1, K, N) view of its transpose (no copy)."""
    n, k = weight.shape
    ws = weight.strides
    return Tensor(weight.storage, (1, k, n), (0, ws[1], ws[0]), weight.offset, weight.dtype)
