"""MLOperand, operand descriptors and data types, and the argument checks every op family shares.

A WebNN data type lives on the device in an accelkit storage dtype: float32 and float16 as
themselves, every integer type in int32. int8/uint8 results wrap into their range; uint32 is the
int32 bits read back unsigned (arithmetic wraps modulo 2**32 as it should); int64 and uint64 hold
values in the int32 range only: data outside it is refused with ``DataError`` when written, and
arithmetic wraps at 32 bits.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..tensor.dtype import DType, float16, float32, int32
from .errors import MLTypeError

SPEC_DATA_TYPES = ("float32", "float16", "int32", "uint32", "int64", "uint64", "int8", "uint8")


@dataclass(frozen=True)
class DataType:
    """One WebNN data type: its numpy type, the accelkit dtype it is stored as, its value range."""

    name: str
    np: np.dtype
    storage: DType

    @property
    def is_float(self) -> bool:
        return self.storage.is_float

    @property
    def itemsize(self) -> int:
        return self.np.itemsize

    @property
    def wrap(self) -> str | None:
        """int8/uint8 results are computed in int32 and wrapped into range."""
        return self.name if self.name in ("int8", "uint8") else None


DATA_TYPES = {
    "float32": DataType("float32", np.dtype(np.float32), float32),
    "float16": DataType("float16", np.dtype(np.float16), float16),
    "int32": DataType("int32", np.dtype(np.int32), int32),
    "uint32": DataType("uint32", np.dtype(np.uint32), int32),
    "int64": DataType("int64", np.dtype(np.int64), int32),
    "uint64": DataType("uint64", np.dtype(np.uint64), int32),
    "int8": DataType("int8", np.dtype(np.int8), int32),
    "uint8": DataType("uint8", np.dtype(np.uint8), int32),
}

#: the values each integer type can hold here (its storage is int32; uint32 keeps all 32 bits)
INT_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**31), 2**31 - 1),
    "uint64": (0, 2**31 - 1),
    "int8": (-128, 127),
    "uint8": (0, 255),
}

MAX_RANK = 8  # the WGSL kernels index up to 8 dims
MAX_DIM = 2**31 - 1


def data_type(name, what: str, supported=None) -> DataType:
    """The DataType called ``name``; spec names this context lacks and unknown names raise MLTypeError."""
    if isinstance(name, DataType):
        name = name.name
    if not isinstance(name, str) or name not in SPEC_DATA_TYPES:
        raise MLTypeError(
            f"{what}: data type {name!r} is not a WebNN data type; expected one of {SPEC_DATA_TYPES}"
        )
    ok = supported if supported is not None else tuple(DATA_TYPES)
    if name not in DATA_TYPES or name not in ok:
        raise MLTypeError(
            f"{what}: data type {name!r} is not supported by this context; supported: {tuple(ok)}"
        )
    return DATA_TYPES[name]


def dims(values, what: str, *, allow_zero: bool = False) -> tuple:
    """A sequence of unsigned ints (the spec's [EnforceRange] unsigned long), as a tuple."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise MLTypeError(f"{what}: expected a sequence of non-negative integers, got {values!r}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0 or v > MAX_DIM:
            if isinstance(v, float) and v.is_integer() and 0 <= v <= MAX_DIM:
                v = int(v)
            else:
                raise MLTypeError(f"{what}: expected non-negative integers, got {list(values)!r}")
        if v == 0 and not allow_zero:
            raise MLTypeError(f"{what}: dimensions must be > 0, got {list(values)!r}")
        out.append(int(v))
    return tuple(out)


def descriptor(desc, what: str, supported=None) -> tuple[DataType, tuple]:
    """Read an MLOperandDescriptor dict (``data_type`` or ``dataType``, ``shape``) -> (DataType, shape)."""
    if not isinstance(desc, dict):
        raise MLTypeError(f"{what}: descriptor must be a dict with 'data_type' and 'shape', got {desc!r}")
    if "data_type" in desc and "dataType" in desc and desc["data_type"] != desc["dataType"]:
        raise MLTypeError(f"{what}: descriptor gives both data_type and dataType, and they differ")
    name = desc.get("data_type", desc.get("dataType"))
    if name is None:
        raise MLTypeError(f"{what}: descriptor needs 'data_type' (or 'dataType')")
    if "shape" not in desc and "dimensions" not in desc:
        raise MLTypeError(f"{what}: descriptor needs 'shape'")
    dt = data_type(name, what, supported)
    shape = dims(desc.get("shape", desc.get("dimensions")), f"{what}: shape")
    if len(shape) > MAX_RANK:
        raise MLTypeError(f"{what}: rank {len(shape)} exceeds the supported maximum {MAX_RANK}")
    if math.prod(shape) > MAX_DIM:
        raise MLTypeError(f"{what}: element count {math.prod(shape)} exceeds {MAX_DIM}")
    return dt, shape


class Node:
    """One operator of a graph: its inputs, its outputs, and ``run(*tensors) -> tensor | tuple``."""

    __slots__ = ("op", "inputs", "outputs", "run", "label", "attrs")

    def __init__(self, op: str, inputs: tuple, run: Callable, label: str = "") -> None:
        self.op = op
        self.inputs = inputs
        self.outputs: list[MLOperand] = []
        self.run = run
        self.label = label
        self.attrs: dict = {}  # what the fusion pass needs to know (layer_normalization's axes, epsilon)


class Described:
    """``data_type`` (also the spec's ``dataType``) and ``shape`` from ``dtype`` and ``_shape``."""

    __slots__ = ()

    @property
    def data_type(self) -> str:
        return self.dtype.name

    dataType = data_type  # noqa: N815 - the spec's spelling

    @property
    def shape(self) -> list:
        return list(self._shape)


class MLOperand(Described):
    """A value in a graph under construction: a graph input, a constant, or an operator's output.

    ``data_type`` (also ``dataType``) and ``shape`` describe it; operands belong to the builder
    that made them and cannot be used with another.
    """

    __slots__ = ("builder", "dtype", "_shape", "node", "kind", "name", "value", "constant_tensor", "index")

    def __init__(self, builder, dtype: DataType, shape: tuple, *, kind: str = "output", node=None) -> None:
        self.builder = builder
        self.dtype = dtype
        self._shape = tuple(shape)
        self.kind = kind  # input | constant | output
        self.node = node
        self.name: str | None = None
        self.value: np.ndarray | None = None
        self.constant_tensor = None
        self.index = 0  # which output of its node

    @property
    def rank(self) -> int:
        return len(self._shape)

    def __repr__(self) -> str:
        what = f" {self.name!r}" if self.name else (f" <- {self.node.op}" if self.node else "")
        return f"<MLOperand {self.kind}{what} {self.dtype.name}{list(self._shape)}>"


# ----------------------------------------------------------------------------------- argument checks


def operand(builder, x, op: str, arg: str) -> MLOperand:
    """``x`` must be an MLOperand made by ``builder``."""
    if not isinstance(x, MLOperand):
        raise MLTypeError(f"{op}: {arg} must be an MLOperand, got {type(x).__name__}")
    if x.builder is not builder:
        raise MLTypeError(f"{op}: {arg} was made by another MLGraphBuilder")
    return x


def check_type(x: MLOperand, allowed, op: str, arg: str) -> None:
    if x.dtype.name not in allowed:
        raise MLTypeError(
            f"{op}: {arg} data type {x.dtype.name} is not allowed; expected one of {tuple(allowed)}"
        )


def check_same_type(x: MLOperand, ref: MLOperand, op: str, arg: str, ref_arg: str) -> None:
    if x.dtype is not ref.dtype:
        raise MLTypeError(
            f"{op}: {arg} data type {x.dtype.name} must equal {ref_arg}'s data type {ref.dtype.name}"
        )


def check_rank(x: MLOperand, lo: int, hi: int, op: str, arg: str) -> None:
    if not lo <= x.rank <= hi:
        want = str(lo) if lo == hi else f"{lo} to {hi}"
        raise MLTypeError(f"{op}: {arg} must have rank {want}, got shape {x.shape}")


def axis(value, rank: int, op: str, arg: str = "axis") -> int:
    """An unsigned axis in [0, rank)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < rank:
        raise MLTypeError(f"{op}: {arg} {value!r} must be an integer in [0, {rank}) for rank {rank}")
    return int(value)


def axes(values, rank: int, op: str, arg: str = "axes") -> tuple:
    """Unsigned axes in [0, rank), no duplicates."""
    got = dims(values, f"{op}: {arg}", allow_zero=True)
    for a in got:
        if a >= rank:
            raise MLTypeError(f"{op}: {arg} {list(got)} has an axis out of range for rank {rank}")
    if len(set(got)) != len(got):
        raise MLTypeError(f"{op}: {arg} {list(got)} has duplicate axes")
    return got


def number(value, op: str, arg: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise MLTypeError(f"{op}: {arg} must be a number, got {value!r}")
    return float(value)


def finite(value, op: str, arg: str) -> float:
    v = number(value, op, arg)
    if not math.isfinite(v):
        raise MLTypeError(f"{op}: {arg} must be finite, got {value!r}")
    return v


def flag(value, op: str, arg: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise MLTypeError(f"{op}: {arg} must be a bool, got {value!r}")
    return bool(value)


def choice(value, allowed: tuple, op: str, arg: str) -> str:
    if value not in allowed:
        raise MLTypeError(f"{op}: {arg} {value!r} is not one of {allowed}")
    return value


def broadcast(a: tuple, b: tuple, op: str) -> tuple:
    """Bidirectional (numpy) broadcasting of two shapes; mismatches raise MLTypeError."""
    n = max(len(a), len(b))
    pa, pb = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(pa, pb):
        if x != y and 1 not in (x, y):
            raise MLTypeError(f"{op}: shapes {list(a)} and {list(b)} are not broadcastable")
        out.append(max(x, y))
    return tuple(out)


def unidirectional(src: tuple, target: tuple, op: str, arg: str) -> None:
    """``src`` must broadcast to exactly ``target`` (the spec's unidirectional broadcasting)."""
    if len(src) > len(target):
        raise MLTypeError(f"{op}: {arg} shape {list(src)} has more dims than {list(target)}")
    for s, t in zip(reversed(src), reversed(target)):
        if s != t and s != 1:
            raise MLTypeError(f"{op}: {arg} shape {list(src)} does not broadcast to {list(target)}")


# data type sets of the spec's tensor-limits tables, restricted to what this implementation holds
ANY = ("float32", "float16", "int32", "uint32", "int64", "uint64", "int8", "uint8")
FLOATS = ("float32", "float16")
SIGNED = ("float32", "float16", "int32", "int64", "int8")
SUMMABLE = ("float32", "float16", "int32", "uint32", "int64", "uint64")
INDICES = ("int32", "uint32", "int64")
QUANTIZED = ("int8", "uint8", "uint32", "int32")
BOOLEAN = ("uint8",)


def guard(limits: dict, op: str, arg: str, x: MLOperand) -> None:
    """Check ``x`` against ``limits[op][arg]`` = (data types, min rank, max rank)."""
    types, lo, hi = limits[op][arg]
    check_type(x, types, op, arg)
    check_rank(x, lo, hi, op, arg)
