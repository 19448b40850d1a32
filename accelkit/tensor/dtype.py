"""The dtypes a Tensor can hold: float32, float16 and int32 (int64 input is narrowed with a range check)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DTypeError


@dataclass(frozen=True)
class DType:
    """One element type: its name, numpy dtype, WGSL scalar type and size in bytes."""

    name: str
    np: np.dtype
    wgsl: str
    itemsize: int
    is_float: bool

    def __repr__(self) -> str:
        return f"accelkit.{self.name}"

    def __str__(self) -> str:
        return self.name


float32 = DType("float32", np.dtype(np.float32), "f32", 4, True)
float16 = DType("float16", np.dtype(np.float16), "f16", 2, True)
int32 = DType("int32", np.dtype(np.int32), "i32", 4, False)

DTYPES = {d.name: d for d in (float32, float16, int32)}
_ALIASES = {"f32": float32, "f16": float16, "i32": int32, "half": float16, "float": float32, "int": int32}


def as_dtype(value) -> DType:
    """Turn a DType, its name, or a numpy dtype into a DType; anything else raises DTypeError."""
    if isinstance(value, DType):
        return value
    if isinstance(value, str):
        found = DTYPES.get(value) or _ALIASES.get(value)
        if found is not None:
            return found
    try:
        npd = np.dtype(value)
    except TypeError:
        npd = None
    if npd is not None:
        if npd == np.float32 or npd == np.float64:
            return float32
        if npd == np.float16:
            return float16
        if npd.kind in "iub":
            return int32
    raise DTypeError(f"unsupported dtype {value!r}; expected one of float32, float16, int32")


def dtype_for_array(array: np.ndarray) -> DType:
    """The DType an array becomes by default: floats -> float32 (float16 stays), ints/bools -> int32."""
    kind = array.dtype.kind
    if array.dtype == np.float16:
        return float16
    if kind == "f":
        return float32
    if kind in "iub":
        return int32
    raise DTypeError(f"cannot make a tensor from an array of dtype {array.dtype}; expected a number array")


def narrow(array: np.ndarray, dtype: DType) -> np.ndarray:
    """Convert an array to dtype's numpy type; int64/uint32 values that do not fit int32 raise DTypeError."""
    wide = array.dtype.itemsize > 4 or (array.dtype.kind == "u" and array.dtype.itemsize == 4)
    if dtype is int32 and array.dtype.kind in "iu" and wide and array.size:
        lo, hi = int(array.min()), int(array.max())
        info = np.iinfo(np.int32)
        if lo < info.min or hi > info.max:
            raise DTypeError(
                f"integer values in [{lo}, {hi}] do not fit int32 (range [{info.min}, {info.max}])"
            )
    if dtype.is_float and array.dtype.kind not in "fiub":
        raise DTypeError(f"cannot convert an array of dtype {array.dtype} to {dtype.name}")
    # reshape: ascontiguousarray turns a 0-d array into a 1-d one
    return np.ascontiguousarray(array, dtype=dtype.np).reshape(array.shape)
