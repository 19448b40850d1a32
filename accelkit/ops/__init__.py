"""The op set: one function per op, checking shapes and dtypes, then dispatching to the tensors' backend.

Every op takes Tensors (numpy arrays and Python scalars are converted on the first tensor's
device), allocates its output, and calls the backend. Broadcasting follows numpy. Errors name the
shapes involved and what was expected.
"""

from __future__ import annotations

import builtins
import math
import numbers

import numpy as np

from ..errors import DeviceError, DTypeError, InputError, ShapeError
from ..tensor.dtype import DType, as_dtype, float16, float32, int32
from ..tensor.tensor import Tensor, tensor

ACTIVATIONS = (None, "gelu", "gelu_tanh", "relu", "tanh")

# ----------------------------------------------------------------------------------- helpers


def _device_of(*items):
    for x in items:
        if isinstance(x, Tensor):
            return x.device
    from ..hardware import device

    return device()


def _as_tensor(x, device, dtype: DType | None = None) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, numbers.Number) and not isinstance(x, bool):
        dt = dtype if dtype is not None else (int32 if isinstance(x, numbers.Integral) else float32)
        return tensor(np.asarray(x), dtype=dt, device=device)
    return tensor(x, dtype=dtype, device=device)


def _backend(*tensors):
    """The one backend all tensors live on; mixed devices or a lost device raise DeviceError."""
    first = tensors[0]
    be = first.storage.backend
    for t in tensors[1:]:
        if t is not None and t.storage.backend is not be:
            raise DeviceError(
                f"tensors are on different devices ({first.device.spec} and {t.device.spec}); "
                "move one with .to(device)"
            )
    be.check()
    if first.device._backend is not be:
        raise DeviceError(
            f"this tensor belongs to a lost {first.device.spec} device; recreate it on accelkit.device()"
        )
    return be


def _promote(a: DType, b: DType) -> DType:
    if a is b:
        return a
    if float32 in (a, b):
        return float32
    if float16 in (a, b):
        return float16
    return int32


def broadcast_shapes(*shapes, op: str = "broadcast") -> tuple:
    """numpy's broadcasting rule; mismatches raise ShapeError naming every shape."""
    ndim = builtins.max((len(s) for s in shapes), default=0)
    out = []
    for i in range(ndim):
        dims = {s[len(s) - ndim + i] for s in shapes if len(s) - ndim + i >= 0}
        dims.discard(1)
        if len(dims) > 1:
            raise ShapeError(f"{op}: shapes {' and '.join(str(tuple(s)) for s in shapes)} do not broadcast")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def _empty_like_shape(shape, dtype, device) -> Tensor:
    return Tensor.empty(shape, dtype, device)


def _axis(axis, ndim: int, op: str) -> int:
    if not isinstance(axis, numbers.Integral) or not -ndim <= axis < builtins.max(ndim, 1):
        raise ShapeError(f"{op}: axis {axis!r} is out of range for {ndim} dims")
    return int(axis) % builtins.max(ndim, 1)


# ----------------------------------------------------------------------------------- elementwise


def _unary(op: str, x, out_dtype: DType | None = None, alpha: float = 0.0) -> Tensor:
    x = _as_tensor(x, _device_of(x))
    dt = out_dtype or x.dtype
    if dt is int32 and op not in ("copy", "cast", "neg", "abs", "relu"):
        dt = float32
    be = _backend(x)
    out = _empty_like_shape(x.shape, dt, x.device)
    if out.size:
        be.unary(op, x, out, alpha)
    return out


def _float_unary(op: str):
    def fn(x) -> Tensor:
        return _unary(op, x)

    fn.__name__ = op
    fn.__doc__ = f"Elementwise {op} (float result; int32 input computes in float32)."
    return fn


exp = _float_unary("exp")
log = _float_unary("log")
sqrt = _float_unary("sqrt")
rsqrt = _float_unary("rsqrt")
tanh = _float_unary("tanh")
sigmoid = _float_unary("sigmoid")
erf = _float_unary("erf")
silu = _float_unary("silu")
sin = _float_unary("sin")
cos = _float_unary("cos")


def neg(x) -> Tensor:
    return _unary("neg", x)


def abs(x) -> Tensor:  # noqa: A001 - numpy's name
    return _unary("abs", x)


def relu(x) -> Tensor:
    return _unary("relu", x)


def gelu(x, approximate: str = "none") -> Tensor:
    """GELU: exact (erf) by default, or the tanh approximation with ``approximate="tanh"``."""
    if approximate not in ("none", "tanh"):
        raise InputError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return _unary("gelu" if approximate == "none" else "gelu_tanh", x)


def scale(x, factor: float) -> Tensor:
    """x * factor for a Python float factor, in one kernel."""
    return _unary("scale", x, alpha=float(factor))


def copy(x) -> Tensor:
    """A dense (contiguous) copy."""
    return _unary("copy", x)


def cast(x, dtype) -> Tensor:
    """Convert to another dtype (float32 <-> float16 <-> int32; floats to int truncate toward zero)."""
    dtype = as_dtype(dtype)
    x = _as_tensor(x, _device_of(x))
    if dtype is x.dtype:
        return x
    return _unary("cast", x, out_dtype=dtype)


def copy_(dst: Tensor, src) -> Tensor:
    """Write ``src`` (broadcast to ``dst.shape``, converted to its dtype) into the view ``dst``, in place."""
    if not isinstance(dst, Tensor):
        raise InputError("copy_: destination must be a Tensor")
    src = _as_tensor(src, dst.device, dtype=dst.dtype if not isinstance(src, Tensor) else None)
    broadcast_shapes(dst.shape, src.shape, op="copy_")
    if broadcast_shapes(dst.shape, src.shape) != dst.shape:
        raise ShapeError(f"copy_: cannot write shape {src.shape} into a view of shape {dst.shape}")
    be = _backend(dst, src)
    if dst.size:
        be.unary("copy" if src.dtype is dst.dtype else "cast", src.expand(dst.shape), dst, 0.0)
    return dst


def fill_(dst: Tensor, value: float) -> Tensor:
    """Set every element of ``dst`` (which must be contiguous) to ``value``."""
    be = _backend(dst)
    if dst.size:
        if dst.is_contiguous:
            be.fill(dst, float(value))
        else:
            copy_(dst, float(value))
    return dst


def _binary(op: str, a, b) -> Tensor:
    dev = _device_of(a, b)
    hint = a.dtype if isinstance(a, Tensor) else (b.dtype if isinstance(b, Tensor) else None)
    if hint is not None and not hint.is_float:
        hint = None
    a = _as_tensor(a, dev, hint if not isinstance(a, Tensor) else None)
    b = _as_tensor(b, dev, hint if not isinstance(b, Tensor) else None)
    shape = broadcast_shapes(a.shape, b.shape, op=op)
    dt = _promote(a.dtype, b.dtype)
    if op == "div" and dt is int32:
        dt = float32
    if a.dtype is not dt:
        a = cast(a, dt)
    if b.dtype is not dt and not (op == "div" and b.dtype is int32 and a.dtype is int32):
        b = cast(b, dt)
    be = _backend(a, b)
    out = _empty_like_shape(shape, dt, a.device)
    if out.size:
        be.binary(op, a.expand(shape), b.expand(shape), out)
    return out


def add(a, b) -> Tensor:
    return _binary("add", a, b)


def sub(a, b) -> Tensor:
    return _binary("sub", a, b)


def mul(a, b) -> Tensor:
    return _binary("mul", a, b)


def div(a, b) -> Tensor:
    return _binary("div", a, b)


def pow(a, b) -> Tensor:  # noqa: A001 - numpy's name
    return _binary("pow", a, b)


def maximum(a, b) -> Tensor:
    return _binary("maximum", a, b)


def minimum(a, b) -> Tensor:
    return _binary("minimum", a, b)


# ----------------------------------------------------------------------------------- matmul


def _merge_batch(t: Tensor, batch: tuple, rows: int, cols: int) -> Tensor:
    """View ``t`` (already expanded to batch + (rows, cols)) as (prod(batch), rows, cols), copying if needed."""
    if not batch:
        return t.unsqueeze(0)
    return _collapse_leading(t, len(batch))


def matmul(a, b, *, bias=None, activation: str | None = None) -> Tensor:
    """Matrix product with numpy semantics (1-D promotion, broadcast batch dims), optional fused epilogue.

    ``bias`` (shape (N,)) is added and ``activation`` ("gelu", "gelu_tanh", "relu", "tanh") applied
    in the same kernel. Either operand may be a transposed view; nothing is copied for it.
    """
    dev = _device_of(a, b)
    a, b = _as_tensor(a, dev), _as_tensor(b, dev)
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
    dt = _promote(a.dtype, b.dtype)
    if dt is int32:
        dt = float32
    if a2.dtype is not dt:
        a2 = cast(a2, dt)
    if b2.dtype is not dt:
        b2 = cast(b2, dt)
    if bias is not None:
        bias = _as_tensor(bias, dev, dt)
        if bias.shape != (n,):
            raise ShapeError(f"matmul: bias must have shape ({n},) for output width {n}, got {bias.shape}")
        if bias.dtype is not dt:
            bias = cast(bias, dt)
        bias = bias.contiguous()
    be = _backend(a2, b2, bias)
    out = _empty_like_shape(batch + (m, n), dt, a.device)
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


def linear(x, weight, bias=None, activation: str | None = None) -> Tensor:
    """``x @ weight.T + bias`` with Hugging Face's weight layout (out_features, in_features), fused epilogue."""
    dev = _device_of(x, weight)
    x, weight = _as_tensor(x, dev), _as_tensor(weight, dev)
    if weight.ndim != 2:
        raise ShapeError(f"linear: weight must be 2-D (out_features, in_features), got {weight.shape}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ShapeError(
            f"linear: input's last dim must equal in_features {weight.shape[1]}: input {x.shape}, weight {weight.shape}"
        )
    lead = x.shape[:-1]
    rows = math.prod(lead)
    fast = _linear_fast(x, weight, bias, activation, lead, rows)
    if fast is not None:
        return fast
    x2 = x.reshape(rows, x.shape[-1]) if x.ndim != 2 else x
    y = matmul(x2, weight.T, bias=bias, activation=activation)
    return y.reshape(lead + (weight.shape[0],))


def _linear_fast(x: Tensor, weight: Tensor, bias, activation, lead: tuple, rows: int) -> Tensor | None:
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
    be = _backend(x, weight, bias)
    out = Tensor.empty(lead + (n,), dt, x.device)
    ws = weight.strides
    a3 = Tensor(x.storage, (1, rows, k), (0, k, 1), x.offset, dt)
    b3 = Tensor(weight.storage, (1, k, n), (0, ws[1], ws[0]), weight.offset, dt)
    o3 = Tensor(out.storage, (1, rows, n), (0, n, 1), 0, dt)
    be.matmul(a3, b3, o3, bias, activation)
    return out


# ----------------------------------------------------------------------------------- normalisation


def softmax(x, axis: int = -1) -> Tensor:
    """Softmax over ``axis`` (rows that are all -inf give zeros)."""
    x = _as_tensor(x, _device_of(x))
    if x.ndim == 0:
        raise ShapeError("softmax: needs at least 1 dim, got a 0-d tensor")
    if not x.dtype.is_float:
        x = cast(x, float32)
    axis = _axis(axis, x.ndim, "softmax")
    if axis != x.ndim - 1:
        perm = [i for i in range(x.ndim) if i != axis] + [axis]
        inv = np.argsort(perm).tolist()
        return softmax(x.permute(*perm).contiguous(), -1).permute(*inv).contiguous()
    xc = x.contiguous()
    be = _backend(xc)
    out = _empty_like_shape(x.shape, x.dtype, x.device)
    if out.size:
        be.softmax(xc, out)
    return out


def layer_norm(x, weight=None, bias=None, eps: float = 1e-5, *, residual=None) -> Tensor:
    """Layer norm over the last dim; with ``residual`` it normalises ``x + residual`` in the same kernel."""
    dev = _device_of(x)
    x = _as_tensor(x, dev)
    if x.ndim == 0:
        raise ShapeError("layer_norm: needs at least 1 dim, got a 0-d tensor")
    if not x.dtype.is_float:
        raise DTypeError(f"layer_norm: needs a float tensor, got {x.dtype.name}")
    c = x.shape[-1]
    args = []
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None:
            t = _as_tensor(t, dev, x.dtype)
            if t.shape != (c,):
                raise ShapeError(
                    f"layer_norm: {name} must have shape ({c},) for input {x.shape}, got {t.shape}"
                )
            if t.dtype is not x.dtype:
                t = cast(t, x.dtype)
            t = t.contiguous()
        args.append(t)
    if residual is not None:
        residual = _as_tensor(residual, dev, x.dtype)
        if residual.shape != x.shape:
            raise ShapeError(f"layer_norm: residual shape {residual.shape} differs from input {x.shape}")
        if residual.dtype is not x.dtype:
            residual = cast(residual, x.dtype)
        residual = residual.contiguous()
    if eps < 0 or not math.isfinite(eps):
        raise InputError(f"layer_norm: eps must be a finite number >= 0, got {eps}")
    xc = x.contiguous()
    be = _backend(xc, args[0], args[1], residual)
    out = _empty_like_shape(x.shape, x.dtype, x.device)
    if out.size:
        be.layer_norm(xc, args[0], args[1], out, float(eps), residual)
    return out


# ----------------------------------------------------------------------------------- reductions


def _reduce(op: str, x, axis, keepdims: bool) -> Tensor:
    x = _as_tensor(x, _device_of(x))
    if axis is None:
        flat = x.reshape(-1) if x.ndim else x.reshape(1)
        r = _reduce(op, flat, 0, False)
        return r.reshape((1,) * x.ndim) if keepdims else r
    axis = _axis(axis, builtins.max(x.ndim, 1), op)
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
    be = _backend(xc)
    out = _empty_like_shape((outer, inner), out_dtype, x.device)
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


def _split_reduce_pays(be, op: str, dtype, outer: int, n: int, inner: int) -> bool:
    """The reduce kernel gives each output one workgroup: a whole tensor reduced to a handful of
    values would run on a handful of workgroups. Split such axes in two passes on the GPU."""
    return (
        be.name == "webgpu"
        and op in ("sum", "mean", "max", "min")
        and dtype.name == "float32"  # f16 partial sums could overflow where a f16 mean would not
        and outer == 1
        and inner <= 64
        and n >= 16 * SPLIT_REDUCE_CHUNK
    )


def _reduce_in_two_passes(be, op: str, x: Tensor, out: Tensor) -> None:
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


# ----------------------------------------------------------------------------------- gather/concat


def embedding(ids, table) -> Tensor:
    """Rows of ``table`` (V, D) picked by integer ``ids`` (any shape) -> ids.shape + (D,).

    Host arrays are range-checked (InputError for ids outside [0, V)); ids already on the device
    are clamped by the kernel.
    """
    table = _as_tensor(table, _device_of(table))
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
    be = _backend(idc, tab)
    out = _empty_like_shape(ids.shape + (table.shape[1],), table.dtype, table.device)
    if out.size:
        be.embedding(idc.reshape(-1), tab, out.reshape(-1, table.shape[1]))
    return out


def take(table, ids, axis: int = 0) -> Tensor:
    """Rows of ``table`` along axis 0 (an alias of embedding for 2-D tables)."""
    if axis != 0:
        raise ShapeError("take: only axis=0 is supported")
    return embedding(ids, table)


def concat(tensors, axis: int = 0) -> Tensor:
    """Join tensors along ``axis``; every other dim must match."""
    tensors = list(tensors)
    if not tensors:
        raise ShapeError("concat: needs at least one tensor")
    dev = _device_of(*tensors)
    tensors = [_as_tensor(t, dev) for t in tensors]
    first = tensors[0]
    axis = _axis(axis, first.ndim, "concat")
    dt = first.dtype
    for t in tensors[1:]:
        if t.ndim != first.ndim or any(t.shape[i] != first.shape[i] for i in range(first.ndim) if i != axis):
            raise ShapeError(f"concat: shapes {[tuple(x.shape) for x in tensors]} differ outside axis {axis}")
        dt = _promote(dt, t.dtype)
    shape = list(first.shape)
    shape[axis] = builtins.sum(t.shape[axis] for t in tensors)
    _backend(*tensors)
    out = _empty_like_shape(tuple(shape), dt, first.device)
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
    tensors = list(tensors)
    if not tensors:
        raise ShapeError("stack: needs at least one tensor")
    dev = _device_of(*tensors)
    tensors = [_as_tensor(t, dev) for t in tensors]
    axis = _axis(axis, tensors[0].ndim + 1, "stack")
    if any(t.shape != tensors[0].shape for t in tensors):
        shapes = [tuple(t.shape) for t in tensors]
        raise ShapeError(f"stack: every tensor must have the same shape, got {shapes}")
    return concat([t.unsqueeze(axis) for t in tensors], axis)


def pad(x, pads, value: float = 0.0) -> Tensor:
    """Constant padding; ``pads`` is ((before, after), ...) for the last len(pads) dims."""
    x = _as_tensor(x, _device_of(x))
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


# ----------------------------------------------------------------------------------- convolutions


def conv1d(x, weight, bias=None, stride: int = 1, padding: int = 0, activation: str | None = None) -> Tensor:
    """1-D convolution (B, C_in, L) * (C_out, C_in, k) -> (B, C_out, L_out), as unfold view + one matmul."""
    dev = _device_of(x, weight)
    x, weight = _as_tensor(x, dev), _as_tensor(weight, dev)
    if x.ndim != 3 or weight.ndim != 3:
        raise ShapeError(
            f"conv1d: expected input (B, C_in, L) and weight (C_out, C_in, k), got {x.shape}, {weight.shape}"
        )
    bsz, cin, length = x.shape
    cout, cin_w, k = weight.shape
    if cin != cin_w:
        raise ShapeError(
            f"conv1d: input has {cin} channels but weight expects {cin_w}: {x.shape}, {weight.shape}"
        )
    if stride < 1 or padding < 0:
        raise ShapeError(
            f"conv1d: stride must be >= 1 and padding >= 0, got stride={stride}, padding={padding}"
        )
    lp = length + 2 * padding
    lout = (lp - k) // stride + 1
    if lout <= 0:
        raise ShapeError(f"conv1d: input length {length} (padded {lp}) is shorter than the kernel {k}")
    xp = pad(x, [(padding, padding)]) if padding else x.contiguous()
    # unfold: (B, L_out, C_in, k) view over the padded input, then one dense copy and one matmul
    s = xp.strides
    cols = Tensor(xp.storage, (bsz, lout, cin, k), (s[0], stride * s[2], s[1], s[2]), xp.offset, xp.dtype)
    cols = cols.contiguous().reshape(bsz * lout, cin * k)
    y = linear(cols, weight.reshape(cout, cin * k), bias, activation)  # (B*L_out, C_out)
    return y.reshape(bsz, lout, cout).permute(0, 2, 1)


def conv2d(x, weight, bias=None, stride=1, padding=0) -> Tensor:
    """2-D convolution (B, C, H, W) * (C_out, C, kh, kw) -> (B, C_out, H_out, W_out) via im2col views + matmul.

    ViT's patchify (kernel = stride = patch, no padding) needs no padding copy.
    """
    dev = _device_of(x, weight)
    x, weight = _as_tensor(x, dev), _as_tensor(weight, dev)
    if x.ndim != 4 or weight.ndim != 4:
        raise ShapeError(
            f"conv2d: expected input (B, C, H, W) and weight (C_out, C, kh, kw), got {x.shape}, {weight.shape}"
        )
    sh, sw = (stride, stride) if isinstance(stride, int) else tuple(stride)
    ph, pw = (padding, padding) if isinstance(padding, int) else tuple(padding)
    bsz, c, h, w = x.shape
    cout, cw, kh, kw = weight.shape
    if c != cw:
        raise ShapeError(f"conv2d: input has {c} channels but weight expects {cw}: {x.shape}, {weight.shape}")
    if sh < 1 or sw < 1 or ph < 0 or pw < 0:
        raise ShapeError(f"conv2d: bad stride {stride!r} or padding {padding!r}")
    xp = pad(x, [(ph, ph), (pw, pw)]) if (ph or pw) else x.contiguous()
    hp, wp = h + 2 * ph, w + 2 * pw
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    if ho <= 0 or wo <= 0:
        raise ShapeError(f"conv2d: input {x.shape} (padded {hp}x{wp}) is smaller than the kernel {kh}x{kw}")
    s = xp.strides
    cols = Tensor(
        xp.storage,
        (bsz, ho, wo, c, kh, kw),
        (s[0], sh * s[2], sw * s[3], s[1], s[2], s[3]),
        xp.offset,
        xp.dtype,
    )
    cols = cols.contiguous().reshape(bsz * ho * wo, c * kh * kw)
    y = linear(cols, weight.reshape(cout, c * kh * kw), bias)  # (B*Ho*Wo, C_out)
    return y.reshape(bsz, ho, wo, cout).permute(0, 3, 1, 2)


# ----------------------------------------------------------------------------------- attention


def scaled_dot_product_attention(
    q, k, v, attn_mask=None, is_causal: bool = False, scale: float | None = None, *, out: Tensor | None = None
) -> Tensor:
    """softmax(q @ k^T * scale + mask) @ v over (..., T, D) tensors, as one fused kernel on WebGPU.

    ``attn_mask`` is additive (float, broadcastable to (..., Tq, Tk)) or boolean (True = attend).
    ``is_causal`` lets query i see keys j <= i + (Tk - Tq) (equal to torch for Tq == Tk, and right
    for a KV cache). The score matrix is never written to memory on WebGPU. Rows with nothing to
    attend to give zeros. q, k, v may be strided views (e.g. heads split out of a fused projection),
    and ``out`` a preallocated (strided) view to write into, e.g. ``y.permute(0, 2, 1, 3)`` of a
    (B, T, H, D) tensor, so merging the heads back needs no copy.
    """
    dev = _device_of(q, k, v)
    q, k, v = _as_tensor(q, dev), _as_tensor(k, dev), _as_tensor(v, dev)
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
    dt = _promote(_promote(q.dtype, k.dtype), v.dtype)
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
    be = _backend(q, k, v, mask)
    if out is None:
        out = _empty_like_shape(batch + (tq, dv), dt, q.device)
    elif out.shape != batch + (tq, dv) or out.dtype is not dt:
        raise ShapeError(
            f"attention: out must be {dt.name} of shape {batch + (tq, dv)}, got {out.dtype.name} {out.shape}"
        )
    else:
        _backend(q, out)
    if out.size == 0:
        return out
    if tk == 0:
        return fill_(out, 0.0)

    # bring everything to rank 4 (B, H, T, D) views
    def four(t: Tensor, rows: int, cols: int) -> Tensor:
        t = t.expand(batch + (rows, cols))
        while t.ndim < 4:
            t = t.unsqueeze(0)
        return _collapse_leading(t, t.ndim - 3) if t.ndim > 4 else t

    q4, k4, v4 = four(q, tq, d), four(k, tk, d), four(v, tk, dv)
    m4 = four(mask, tq, tk) if mask is not None else None
    out4 = four(out, tq, dv)
    if out4.storage is out.storage:
        be.attention(q4, k4, v4, m4, out4, float(scale), bool(is_causal))
    else:  # an out= view whose batch dims cannot merge: compute densely, then write into the view
        tmp = _empty_like_shape(out.shape, dt, q.device)
        be.attention(q4, k4, v4, m4, four(tmp, tq, dv), float(scale), bool(is_causal))
        copy_(out, tmp)
    return out


def _collapse_leading(t: Tensor, count: int) -> Tensor:
    """Merge the first ``count`` dims into one, as a view when their strides allow, else via a copy."""
    shape, strides = t.shape[:count], t.strides[:count]
    dims = [(n, s) for n, s in zip(shape, strides) if n != 1]
    if all(s == 0 for _, s in dims):
        stride = 0
    elif all(dims[i][1] == dims[i + 1][1] * dims[i + 1][0] for i in range(len(dims) - 1)):
        stride = dims[-1][1]
    else:
        t = t.contiguous()
        return t.reshape((math.prod(shape),) + t.shape[count:])
    return Tensor(
        t.storage, (math.prod(shape),) + t.shape[count:], (stride,) + t.strides[count:], t.offset, t.dtype
    )


attention = scaled_dot_product_attention


__all__ = [
    "abs",
    "add",
    "argmax",
    "attention",
    "broadcast_shapes",
    "cast",
    "cat",
    "concat",
    "conv1d",
    "conv2d",
    "copy",
    "copy_",
    "cos",
    "div",
    "embedding",
    "erf",
    "exp",
    "fill_",
    "gelu",
    "layer_norm",
    "linear",
    "log",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "mul",
    "neg",
    "pad",
    "pow",
    "relu",
    "rsqrt",
    "scale",
    "scaled_dot_product_attention",
    "sigmoid",
    "silu",
    "sin",
    "softmax",
    "sqrt",
    "stack",
    "sub",
    "sum",
    "take",
    "tanh",
]
