"""The neural-network ops: ``gelu``, ``softmax``, ``layer_norm`` (optionally fused with a residual add),
``linear_layer_norm`` and ``scaled_dot_product_attention`` (one fused kernel where the backend has ``fused_attention``)."""

from __future__ import annotations

import math

import numpy as np

from ..errors import DTypeError, InputError, ShapeError
from ..tensor.dtype import float32, int32
from ..tensor.tensor import Tensor, tensor
from .dispatch import (
    as_tensor,
    axis_index,
    backend_of,
    broadcast_shapes,
    collapse_leading,
    device_of,
    promote,
)
from .elementwise import _unary, cast, copy_, fill_
from .linalg import _rows3, _weight_t3, linear


def gelu(x, approximate: str = "none") -> Tensor:
    """GELU: exact (erf) by default, or the tanh approximation with ``approximate="tanh"``."""
    if approximate not in ("none", "tanh"):
        raise InputError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return _unary("gelu" if approximate == "none" else "gelu_tanh", x)


def softmax(x, axis: int = -1) -> Tensor:
    """Softmax over ``axis`` (rows that are all -inf give zeros)."""
    x = as_tensor(x, device_of(x))
    if x.ndim == 0:
        raise ShapeError("softmax: needs at least 1 dim, got a 0-d tensor")
    if not x.dtype.is_float:
        x = cast(x, float32)
    axis = axis_index(axis, x.ndim, "softmax")
    if axis != x.ndim - 1:
        perm = [i for i in range(x.ndim) if i != axis] + [axis]
        inv = np.argsort(perm).tolist()
        return softmax(x.permute(*perm).contiguous(), -1).permute(*inv).contiguous()
    xc = x.contiguous()
    be = backend_of(xc)
    out = Tensor.empty(x.shape, x.dtype, x.device)
    if out.size:
        be.softmax(xc, out)
    return out


def layer_norm(x, weight=None, bias=None, eps: float = 1e-5, *, residual=None) -> Tensor:
    """Layer norm over the last dim; with ``residual`` it normalises ``x + residual`` in the same kernel."""
    dev = device_of(x)
    x = as_tensor(x, dev)
    if x.ndim == 0:
        raise ShapeError("layer_norm: needs at least 1 dim, got a 0-d tensor")
    if not x.dtype.is_float:
        raise DTypeError(f"layer_norm: needs a float tensor, got {x.dtype.name}")
    c = x.shape[-1]
    args = []
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None:
            t = as_tensor(t, dev, x.dtype)
            if t.shape != (c,):
                raise ShapeError(
                    f"layer_norm: {name} must have shape ({c},) for input {x.shape}, got {t.shape}"
                )
            if t.dtype is not x.dtype:
                t = cast(t, x.dtype)
            t = t.contiguous()
        args.append(t)
    if residual is not None:
        residual = as_tensor(residual, dev, x.dtype)
        if residual.shape != x.shape:
            raise ShapeError(f"layer_norm: residual shape {residual.shape} differs from input {x.shape}")
        if residual.dtype is not x.dtype:
            residual = cast(residual, x.dtype)
        residual = residual.contiguous()
    if eps < 0 or not math.isfinite(eps):
        raise InputError(f"layer_norm: eps must be a finite number >= 0, got {eps}")
    xc = x.contiguous()
    be = backend_of(xc, args[0], args[1], residual)
    out = Tensor.empty(x.shape, x.dtype, x.device)
    if out.size:
        be.layer_norm(xc, args[0], args[1], out, float(eps), residual)
    return out


def linear_layer_norm(x, weight, bias, residual, ln_weight, ln_bias, eps: float = 1e-5) -> Tensor:
    """``layer_norm(x @ weight.T + bias + residual)`` (BERT's output blocks): where the backend fuses them
    (``Backend.linear_layer_norm``: on WebGPU a split-K matmul whose partial sums the layer norm's kernel
    adds up, so the matmul's own reduction pass goes), in two kernels; otherwise ``linear`` and then
    ``layer_norm`` with the residual, as the two calls would compute it."""
    dev = device_of(x, weight)
    x, weight = as_tensor(x, dev), as_tensor(weight, dev)
    fast = _linear_layer_norm_fast(x, weight, bias, residual, ln_weight, ln_bias, eps)
    if fast is not None:
        return fast
    return layer_norm(linear(x, weight, bias), ln_weight, ln_bias, eps, residual=residual)


def _linear_layer_norm_fast(x, weight, bias, residual, ln_weight, ln_bias, eps) -> Tensor | None:
    """The fused call for dense operands of one float dtype, or None (then the two ops run)."""
    dt = x.dtype
    if not (dt.is_float and weight.ndim == 2 and weight.dtype is dt and x.ndim >= 1 and x.is_contiguous):
        return None
    n, k = weight.shape
    lead = x.shape[:-1]
    rows = math.prod(lead)
    if x.shape[-1] != k or not rows or not k or eps < 0 or not math.isfinite(eps):
        return None  # the two ops raise the errors, or do the empty work
    for t, shape in ((bias, (n,)), (residual, lead + (n,)), (ln_weight, (n,)), (ln_bias, (n,))):
        if t is None and shape == (n,):
            continue  # no bias, or a layer norm without weight or bias
        if not (isinstance(t, Tensor) and t.dtype is dt and tuple(t.shape) == shape and t.is_contiguous):
            return None
    be = backend_of(x, weight, bias, residual, ln_weight, ln_bias)
    if not be.fused_linear_layer_norm:
        return None
    out = Tensor.empty(lead + (n,), dt, x.device)
    a3, b3 = _rows3(x, rows, k), _weight_t3(weight)
    r3, o3 = _rows3(residual, rows, n), _rows3(out, rows, n)
    if not be.linear_layer_norm(a3, b3, bias, r3, ln_weight, ln_bias, o3, float(eps)):
        return None
    return out


def scaled_dot_product_attention(
    q,
    k,
    v,
    attn_mask=None,
    is_causal: bool = False,
    scale: float | None = None,
    *,
    out: Tensor | None = None,
    kv_start=None,
) -> Tensor:
    """softmax(q @ k^T * scale + mask) @ v over (..., T, D) tensors, as one fused kernel on WebGPU.

    ``attn_mask`` is additive (float, broadcastable to (..., Tq, Tk)) or boolean (True = attend).
    ``is_causal`` lets query i see keys j <= i + (Tk - Tq) (equal to torch for Tq == Tk, and right
    for a KV cache). The score matrix is never written to memory on WebGPU. Rows with nothing to
    attend to give zeros. q, k, v may be strided views (e.g. heads split out of a fused projection),
    and ``out`` a preallocated (strided) view to write into, e.g. ``y.permute(0, 2, 1, 3)`` of a
    (B, T, H, D) tensor, so merging the heads back needs no copy.

    ``kv_start`` (an int32 Tensor; its first element p is read on the device) places q's rows at key
    positions p, p + 1, ...: k and v are a fixed-size cache of which only the first p + Tq keys exist
    (causal: row i sees keys j <= p + i). The shapes stay the same at every decoding step, so one
    compiled plan serves them all.
    """
    dev = device_of(q, k, v)
    q, k, v = as_tensor(q, dev), as_tensor(k, dev), as_tensor(v, dev)
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ShapeError(f"attention: q, k, v need at least 2 dims, got {q.shape}, {k.shape}, {v.shape}")
    tq, d = q.shape[-2:]
    tk, dk = k.shape[-2:]
    tv, dv = v.shape[-2:]
    if d != dk:
        raise ShapeError(f"attention: q and k head dims differ: q {q.shape}, k {k.shape}")
    if tk != tv:
        raise ShapeError(f"attention: k and v lengths differ: k {k.shape}, v {v.shape}")
    batch = broadcast_shapes(
        q.shape[:-2],
        k.shape[:-2],
        v.shape[:-2],
        op=f"attention batch dims of q {q.shape}, k {k.shape}, v {v.shape}",
    )
    dt = promote(promote(q.dtype, k.dtype), v.dtype)
    if dt is int32:
        raise DTypeError("attention: q, k, v must be float tensors")
    q, k, v = (cast(t, dt) if t.dtype is not dt else t for t in (q, k, v))
    if scale is None:
        scale = 1.0 / math.sqrt(d) if d else 1.0
    mask = None
    if attn_mask is not None:
        if isinstance(attn_mask, Tensor):
            mask = attn_mask
        else:
            arr = np.asarray(attn_mask)
            if arr.dtype.kind in "iu":  # most likely a 1/0 padding mask, which is not additive
                raise DTypeError(f"attention: attn_mask must be float (additive) or bool, got {arr.dtype}")
            if arr.dtype == np.bool_:
                arr = np.where(arr, 0.0, -np.inf).astype(np.float32)
            mask = tensor(arr, dtype=dt, device=dev)
        if mask.dtype is int32:
            raise DTypeError("attention: attn_mask must be float (additive) or bool, got int32")
        if mask.dtype is not dt:
            mask = cast(mask, dt)
        try:
            full = broadcast_shapes(mask.shape, batch + (tq, tk))
        except ShapeError:
            full = None
        if full != batch + (tq, tk):
            raise ShapeError(
                f"attention: mask of shape {mask.shape} does not broadcast to scores of shape {batch + (tq, tk)}"
            )
    if kv_start is not None:
        from .shape import device_index

        kv_start = device_index(kv_start, dev, "attention")
    be = backend_of(q, k, v, mask, kv_start)
    if out is None:
        out = Tensor.empty(batch + (tq, dv), dt, q.device)
    elif out.shape != batch + (tq, dv) or out.dtype is not dt:
        raise ShapeError(
            f"attention: out must be {dt.name} of shape {batch + (tq, dv)}, got {out.dtype.name} {out.shape}"
        )
    else:
        backend_of(q, out)
    if out.size == 0:
        return out
    if tk == 0:
        return fill_(out, 0.0)

    # bring everything to rank 4 (B, H, T, D) views
    def four(t: Tensor, rows: int, cols: int) -> Tensor:
        t = t.expand(batch + (rows, cols))
        while t.ndim < 4:
            t = t.unsqueeze(0)
        return collapse_leading(t, t.ndim - 3) if t.ndim > 4 else t

    q4, k4, v4 = four(q, tq, d), four(k, tk, d), four(v, tk, dv)
    m4 = four(mask, tq, tk) if mask is not None else None
    out4 = four(out, tq, dv)
    if out4.storage is out.storage:
        be.attention(q4, k4, v4, m4, out4, float(scale), bool(is_causal), kv_start)
    else:  # an out= view whose batch dims cannot merge: compute densely, then write into the view
        tmp = Tensor.empty(out.shape, dt, q.device)
        be.attention(q4, k4, v4, m4, four(tmp, tq, dv), float(scale), bool(is_causal), kv_start)
        copy_(out, tmp)
    return out


attention = scaled_dot_product_attention
