"""cast, quantize_linear, dequantize_linear.

cast converts between every supported data type (floats to integers truncate toward zero and
saturate to int32, then wrap into int8/uint8). quantize_linear is
saturate(round_even(x / scale) + zero_point) into the zero point's type, dequantize_linear
(x - zero_point) * scale; scale and zero_point have the input's rank and each dim either equal to or
dividing the input's (block-wise), expanded to the input's shape by one gather.
"""

from __future__ import annotations

import numpy as np

from .. import primitives as prim
from ..errors import MLTypeError
from ..operand import ANY, FLOATS, QUANTIZED, check_same_type, check_type, guard
from ..operand import data_type as parse_data_type

R = 8
LIMITS = {
    "cast": {"input": (ANY, 0, R), "output": (ANY, 0, R)},
    "quantize_linear": {
        "input": (FLOATS, 0, R),
        "scale": (FLOATS, 0, R),
        "zero_point": (QUANTIZED, 0, R),
        "output": (QUANTIZED, 0, R),
    },
    "dequantize_linear": {
        "input": (QUANTIZED, 0, R),
        "scale": (FLOATS, 0, R),
        "zero_point": (QUANTIZED, 0, R),
        "output": (FLOATS, 0, R),
    },
}
RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int32": (-(2**31), 2**31 - 1), "uint32": (0, 2**31 - 1)}


def cast(self, input, data_type, *, label: str = ""):  # noqa: A002
    """``input`` converted to ``data_type`` (the spec's second positional argument)."""
    x = self._arg(input, "cast", "input")
    guard(LIMITS, "cast", "input", x)
    dt = parse_data_type(data_type, "cast: data_type", self.context._data_types)
    src = x.dtype

    if dt.is_float:
        expr = "f32(a)"
    elif src.is_float:
        expr = "i32(clamp(trunc(a), -2147483648.0, 2147483520.0))"
    else:
        expr = "a"

    def run(t):
        return prim.elementwise([t], x._shape, dt.storage, lambda v: v, expr, wrap=dt.wrap, label="cast")

    return self._op("cast", (x,), [(dt, x._shape)], run, label)


def _block_index(op: str, x_shape: tuple, p_shape: tuple, arg: str) -> np.ndarray | None:
    """Flat positions in a block-wise ``arg`` for every input element (None when shapes are equal)."""
    if len(p_shape) != len(x_shape):
        # the spec allows fewer dims only by broadcasting rules; accept those as unidirectional broadcast
        if len(p_shape) > len(x_shape):
            raise MLTypeError(
                f"{op}: {arg} shape {list(p_shape)} has more dims than the input {list(x_shape)}"
            )
        p_shape = (1,) * (len(x_shape) - len(p_shape)) + tuple(p_shape)
    for s, q in zip(x_shape, p_shape):
        if s % q:
            raise MLTypeError(
                f"{op}: {arg} shape {list(p_shape)} must divide the input shape {list(x_shape)}"
            )
    if tuple(p_shape) == tuple(x_shape):
        return None
    coords = np.indices(x_shape) if x_shape else np.zeros((0,), np.int64)
    strides, acc = [], 1
    for q in reversed(p_shape):
        strides.append(acc)
        acc *= q
    strides = strides[::-1]
    flat = sum((coords[d] // (x_shape[d] // p_shape[d])) * strides[d] for d in range(len(x_shape)))
    return np.asarray(flat, np.int32)


def _expander(op, x_shape, p_shape, arg):
    index = _block_index(op, x_shape, p_shape, arg)
    if index is None:
        return lambda t: t
    const = prim.BuildConstant(index)
    return lambda t: prim.gather_flat(t, const.on(t.device), label=f"{op}_{arg}")


def _qdq_operands(self, op: str, input, scale, zero_point, scale_types, zero_point_types):  # noqa: A002
    """The three operands of quantize/dequantize_linear, checked, and the expanders of the last two."""
    x = self._arg(input, op, "input")
    s = self._arg(scale, op, "scale")
    z = self._arg(zero_point, op, "zero_point")
    guard(LIMITS, op, "input", x)
    check_type(s, scale_types, op, "scale")
    check_type(z, zero_point_types, op, "zero_point")
    if s._shape != z._shape:
        raise MLTypeError(f"{op}: scale shape {s.shape} and zero_point shape {z.shape} must be equal")
    return (
        x,
        s,
        z,
        _expander(op, x._shape, s._shape, "scale"),
        _expander(op, x._shape, z._shape, "zero_point"),
    )


def quantize_linear(self, input, scale, zero_point, *, label: str = ""):  # noqa: A002
    """saturate(round_even(input / scale) + zero_point), in zero_point's data type."""
    op = "quantize_linear"
    x, s, z, ex_s, ex_z = _qdq_operands(self, op, input, scale, zero_point, FLOATS, QUANTIZED)
    check_same_type(s, x, op, "scale", "input")
    dt = z.dtype
    lo, hi = RANGES[dt.name]

    def numpy_fn(a, b, c):
        return np.clip(np.round(a / b) + c, lo, hi)

    expr = f"i32(clamp(round(a / b) + f32(c), {float(lo)}, {float(min(hi, 2147483520))}))"

    def run(tx, ts, tz):
        return prim.elementwise([tx, ex_s(ts), ex_z(tz)], x._shape, dt.storage, numpy_fn, expr, label=op)

    return self._op(op, (x, s, z), [(dt, x._shape)], run, label)


def dequantize_linear(self, input, scale, zero_point, *, label: str = ""):  # noqa: A002
    """(input - zero_point) * scale, in scale's data type."""
    op = "dequantize_linear"
    x, s, z, ex_s, ex_z = _qdq_operands(self, op, input, scale, zero_point, FLOATS, QUANTIZED)
    check_same_type(z, x, op, "zero_point", "input")
    dt = s.dtype

    def run(tx, ts, tz):
        return prim.elementwise(
            [tx, ex_s(ts), ex_z(tz)],
            x._shape,
            dt.storage,
            lambda a, b, c: (a.astype(np.float32) - c) * b,
            "f32(a - c) * b",
            label=op,
        )

    return self._op(op, (x, s, z), [(dt, x._shape)], run, label)


BUILDERS = {"cast": cast, "quantize_linear": quantize_linear, "dequantize_linear": dequantize_linear}
