"""Reading safetensors files through a memory map, with a clear WeightsError for every corruption.

The format: 8 bytes little-endian header length N, N bytes of JSON header
(`{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`), then the
data section; offsets are relative to the start of the data section. The header is parsed and
checked here (not by the `safetensors` package) so that each fault names the file and what is
wrong with it.

    with SafetensorsFile("model.safetensors") as f:
        w = f.array("embeddings.word_embeddings.weight")   # zero-copy view for f32/f16
"""

from __future__ import annotations

import hashlib
import json
import math
import mmap
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from accelkit.errors import WeightsError

# File dtype -> numpy dtype of the stored bytes (little-endian). BF16 is stored as raw uint16
# and widened to float32 on request (numpy has no bfloat16).
NUMPY_DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"),
    "U32": np.dtype("<u4"),
    "U16": np.dtype("<u2"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}

MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors package's own limit
MAX_INDEX = 2**63 - 1  # dimensions, element counts and offsets must fit an int64
_MAX_DIGITS = len(str(2**64))  # longer integers in a header are refused before conversion


class _HeaderError(ValueError):
    """A header fault found while parsing (internal: becomes a WeightsError naming the file)."""


@dataclass(frozen=True)
class TensorInfo:
    """One tensor's header entry. `offsets` are (begin, end) relative to the data section."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    offsets: tuple[int, int]

    @property
    def numpy_dtype(self) -> np.dtype:
        """The dtype `array()` returns by default (float32 for BF16)."""
        return np.dtype(np.float32) if self.dtype == "BF16" else NUMPY_DTYPES[self.dtype]


def bf16_to_f32(bits: np.ndarray) -> np.ndarray:
    """Widen bfloat16 stored as uint16 to float32 (exact: bf16 is the top half of an f32)."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


class SafetensorsFile:
    """A memory-mapped safetensors file. Raises WeightsError naming the file for any corruption."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._mmap: mmap.mmap | None = None
        try:
            size = self.path.stat().st_size
        except OSError as e:
            raise WeightsError(f"{self.path}: cannot read safetensors file: {e.strerror or e}") from e
        if size < 8:
            raise WeightsError(
                f"{self.path}: not a safetensors file: {size} bytes, shorter than the 8-byte header length"
            )
        with open(self.path, "rb") as fh:
            self.stat = os.fstat(fh.fileno())  # of the file mapped (the path may be replaced later)
            size = self.stat.st_size
            header_len = int.from_bytes(fh.read(8), "little")
            if header_len > size - 8:
                raise WeightsError(
                    f"{self.path}: header length {header_len} is larger than the file "
                    f"({size} bytes); the file is truncated or not safetensors"
                )
            if header_len > MAX_HEADER_BYTES:
                raise WeightsError(
                    f"{self.path}: header length {header_len} exceeds {MAX_HEADER_BYTES} bytes"
                )
            header_bytes = fh.read(header_len)
            self.data_start = 8 + header_len
            self._tensors, self.metadata = _parse_header(self.path, header_bytes, size - self.data_start)
            if size > 0:
                self._mmap = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)

    # -- header -------------------------------------------------------------------------------
    def keys(self) -> list[str]:
        """Tensor names in file order."""
        return list(self._tensors)

    def __iter__(self):
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    def __contains__(self, name: object) -> bool:
        return name in self._tensors

    def info(self, name: str) -> TensorInfo:
        try:
            return self._tensors[name]
        except KeyError:
            raise WeightsError(
                f"{self.path}: no tensor named {name!r} ({len(self._tensors)} tensors)"
            ) from None

    @property
    def nbytes(self) -> int:
        """Bytes of tensor data in the file."""
        return sum(t.nbytes for t in self._tensors.values())

    # -- data ---------------------------------------------------------------------------------
    def raw(self, name: str) -> np.ndarray:
        """The tensor's stored bytes as a read-only uint8 view of the map (no copy)."""
        info = self.info(name)
        if self._mmap is None:
            raise WeightsError(f"{self.path}: file is closed")
        if info.nbytes == 0:
            return np.empty(0, dtype=np.uint8)
        return np.frombuffer(
            self._mmap, dtype=np.uint8, count=info.nbytes, offset=self.data_start + info.offsets[0]
        )

    def array(self, name: str, dtype: np.dtype | str | type | None = None) -> np.ndarray:
        """The tensor as numpy. A zero-copy read-only view when `dtype` is the stored dtype (or None);
        converted otherwise. BF16 is widened to float32 (exactly) unless dtype says otherwise."""
        info = self.info(name)
        stored = NUMPY_DTYPES[info.dtype]
        view = self.raw(name).view(stored).reshape(info.shape)
        if info.dtype == "BF16":
            view = bf16_to_f32(view)
        if dtype is None or np.dtype(dtype) == view.dtype:
            return view
        return view.astype(dtype)

    def buffer(self) -> memoryview:
        """The whole mapped file, read-only (what every array of this file is a view of)."""
        if self._mmap is None:
            raise WeightsError(f"{self.path}: file is closed")
        return memoryview(self._mmap)

    def sha256(self, name: str) -> str:
        """sha256 hex digest of the tensor's stored bytes."""
        return hashlib.sha256(self.raw(name)).hexdigest()

    # -- lifetime -----------------------------------------------------------------------------
    def close(self) -> None:
        """Release the map. Arrays still alive keep it open until they are dropped."""
        mm, self._mmap = self._mmap, None
        if mm is not None:
            try:
                mm.close()
            except BufferError:
                pass  # views exported to numpy arrays are still alive; the map closes with them

    def __enter__(self) -> SafetensorsFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SafetensorsFile({str(self.path)!r}, tensors={len(self)}, nbytes={self.nbytes})"


def _parse_header(path: Path, header_bytes: bytes, data_size: int) -> tuple[dict[str, TensorInfo], dict]:
    """Parse and check a header; returns (tensors in file order, metadata)."""
    try:
        text = header_bytes.decode("utf-8")
    except UnicodeDecodeError as e:
        raise WeightsError(
            f"{path}: header is not UTF-8 text (byte {e.start}); not a safetensors file"
        ) from e
    try:
        header = json.loads(text, object_pairs_hook=_unique_keys, parse_int=_bounded_int)
    except _HeaderError as e:
        raise WeightsError(f"{path}: header {e}; refused (not a valid safetensors file)") from None
    except RecursionError:
        raise WeightsError(
            f"{path}: header is nested too deeply to parse; a safetensors header is at most two levels deep"
        ) from None
    except json.JSONDecodeError as e:
        raise WeightsError(
            f"{path}: header is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from e
    except ValueError as e:  # anything else the parser refuses (numbers it cannot convert)
        raise WeightsError(f"{path}: header is not valid JSON: {e}") from None
    if not isinstance(header, dict):
        raise WeightsError(f"{path}: header is JSON {type(header).__name__}, expected an object")

    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        raise WeightsError(f"{path}: __metadata__ is {type(metadata).__name__}, expected an object")

    tensors: dict[str, TensorInfo] = {}
    for name, entry in header.items():
        where = f"{path}: tensor {name!r}"
        if not isinstance(entry, dict):
            raise WeightsError(f"{where}: header entry is {type(entry).__name__}, expected an object")
        missing = [k for k in ("dtype", "shape", "data_offsets") if k not in entry]
        if missing:
            raise WeightsError(f"{where}: header entry lacks {', '.join(missing)}")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(dtype, str) or dtype not in NUMPY_DTYPES:
            raise WeightsError(f"{where}: unknown dtype {dtype!r}; supported: {', '.join(NUMPY_DTYPES)}")
        if not isinstance(shape, list) or not all(_is_index(d) for d in shape):
            raise WeightsError(f"{where}: shape {shape!r} is not a list of non-negative integers")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_index(o) for o in offsets)):
            raise WeightsError(f"{where}: data_offsets {offsets!r} is not [begin, end]")
        if _too_many_elements(shape):
            raise WeightsError(
                f"{where}: shape {shape!r} has more elements than a 64-bit count can hold (the product overflows)"
            )
        begin, end = offsets
        if begin > end:
            raise WeightsError(f"{where}: data_offsets [{begin}, {end}] out of range (begin after end)")
        nbytes = math.prod(shape) * NUMPY_DTYPES[dtype].itemsize
        if end - begin != nbytes:
            raise WeightsError(
                f"{where}: data_offsets [{begin}, {end}] span {end - begin} bytes, but shape {tuple(shape)} "
                f"of {dtype} needs {nbytes}"
            )
        if end > data_size:
            raise WeightsError(
                f"{where}: data ends at byte {end} of the data section, but the file holds only "
                f"{data_size} bytes of data; the file is truncated"
            )
        tensors[name] = TensorInfo(name, dtype, tuple(shape), nbytes, (begin, end))

    previous: TensorInfo | None = None
    for info in sorted(tensors.values(), key=lambda t: t.offsets):
        if previous is not None and info.nbytes and info.offsets[0] < previous.offsets[1]:
            raise WeightsError(
                f"{path}: tensors {previous.name!r} {list(previous.offsets)} and {info.name!r} "
                f"{list(info.offsets)} overlap"
            )
        if info.nbytes:
            previous = info
    return tensors, metadata


def _is_index(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= MAX_INDEX


def _too_many_elements(shape: list[int]) -> bool:
    """Whether the product of the non-zero dimensions exceeds an int64 (numpy could not reshape)."""
    count = 1
    for d in shape:
        count *= d or 1
        if count > MAX_INDEX:
            return True
    return False


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """json object hook: refuse a key given twice (json.loads would keep the last silently)."""
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _HeaderError(f"names {key!r} twice")
        out[key] = value
    return out


def _bounded_int(digits: str) -> int:
    """json int hook: refuse integers too long for a 64-bit size before converting them."""
    if len(digits.lstrip("-")) > _MAX_DIGITS:
        raise _HeaderError(f"holds a {len(digits)}-digit integer, larger than any 64-bit size or offset")
    return int(digits)
