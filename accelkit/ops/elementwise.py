"""Elementwise ops: unary math, binary arithmetic with numpy broadcasting, casts, copies and fills."""

from __future__ import annotations

from ..errors import InputError, ShapeError
from ..tensor.dtype import DType, as_dtype, float32, int32
from ..tensor.tensor import Tensor
from .dispatch import as_tensor, backend_of, broadcast_shapes, device_of, promote


def _unary(op: str, x, out_dtype: DType | None = None, alpha: float = 0.0) -> Tensor:
    x = as_tensor(x, device_of(x))
    dt = out_dtype or x.dtype
    if dt is int32 and op not in ("copy", "cast", "neg", "abs", "relu"):
        dt = float32
    be = backend_of(x)
    out = Tensor.empty(x.shape, dt, x.device)
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


def scale(x, factor: float) -> Tensor:
    """x * factor for a Python float factor, in one kernel."""
    return _unary("scale", x, alpha=float(factor))


def copy(x) -> Tensor:
    """A dense (contiguous) copy."""
    return _unary("copy", x)


def cast(x, dtype) -> Tensor:
    """Convert to another dtype (float32 <-> float16 <-> int32; floats to int truncate toward zero)."""
    dtype = as_dtype(dtype)
    x = as_tensor(x, device_of(x))
    if dtype is x.dtype:
        return x
    return _unary("cast", x, out_dtype=dtype)


def copy_(dst: Tensor, src) -> Tensor:
    """Write ``src`` (broadcast to ``dst.shape``, converted to its dtype) into the view ``dst``, in place."""
    if not isinstance(dst, Tensor):
        raise InputError("copy_: destination must be a Tensor")
    src = as_tensor(src, dst.device, dtype=dst.dtype if not isinstance(src, Tensor) else None)
    broadcast_shapes(dst.shape, src.shape, op="copy_")
    if broadcast_shapes(dst.shape, src.shape) != dst.shape:
        raise ShapeError(f"copy_: cannot write shape {src.shape} into a view of shape {dst.shape}")
    be = backend_of(dst, src)
    if dst.size:
        be.unary("copy" if src.dtype is dst.dtype else "cast", src.expand(dst.shape), dst, 0.0)
    return dst


def fill_(dst: Tensor, value: float) -> Tensor:
    """Set every element of ``dst`` (which must be contiguous) to ``value``."""
    be = backend_of(dst)
    if dst.size:
        if dst.is_contiguous:
            be.fill(dst, float(value))
        else:
            copy_(dst, float(value))
    return dst


def _binary(op: str, a, b) -> Tensor:
    dev = device_of(a, b)
    hint = a.dtype if isinstance(a, Tensor) else (b.dtype if isinstance(b, Tensor) else None)
    if hint is not None and not hint.is_float:
        hint = None
    a = as_tensor(a, dev, hint if not isinstance(a, Tensor) else None)
    b = as_tensor(b, dev, hint if not isinstance(b, Tensor) else None)
    shape = broadcast_shapes(a.shape, b.shape, op=op)
    dt = promote(a.dtype, b.dtype)
    if op == "div" and dt is int32:
        dt = float32
    if a.dtype is not dt:
        a = cast(a, dt)
    if b.dtype is not dt and not (op == "div" and b.dtype is int32 and a.dtype is int32):
        b = cast(b, dt)
    be = backend_of(a, b)
    out = Tensor.empty(shape, dt, a.device)
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
