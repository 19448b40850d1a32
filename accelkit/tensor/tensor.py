"""Storage (a refcounted device buffer) and Tensor (shape, dtype, strides and offset over a Storage).

Views (slicing with steps, reshape of contiguous data, permute/transpose, expand) share the
Storage and never copy; ``contiguous()`` copies only when needed. A Storage returns its buffer
to the backend exactly when the last tensor or view that uses it goes away.
"""

from __future__ import annotations

import math
import numbers
import operator
import threading
from typing import TYPE_CHECKING

import numpy as np

from ..backends.base import contiguous_strides, is_contiguous
from ..display import Displayable, tensor_html, tensor_summary
from ..errors import DTypeError, InputError, ShapeError
from .dtype import DType, as_dtype, dtype_for_array, narrow
from .host import _from_torch

if TYPE_CHECKING:  # pragma: no cover
    from ..hardware import Device


class Storage:
    """A device buffer of ``nbytes`` for elements of one dtype; freed when the last reference goes."""

    __slots__ = ("device", "backend", "handle", "nbytes", "dtype", "name", "digest", "_live", "__weakref__")

    def __init__(self, device: Device, nbytes: int, dtype: DType, *, exact: bool = False) -> None:
        self.device = device
        self.backend = device.runtime
        self.nbytes = int(nbytes)
        self.dtype = dtype
        self.name: str | None = None
        self.digest: str | None = None
        self._live = False
        self.handle = self.backend.alloc(self.nbytes, exact=exact)
        self._live = True

    @property
    def device_bytes(self) -> int:
        """What the device really holds for this storage (size-class rounded)."""
        return self.backend.buffer_bytes(self.handle)

    def free(self) -> None:
        if self._live:
            self._live = False
            try:
                self.backend.free(self.handle)
            except Exception:  # pragma: no cover - interpreter shutdown
                pass
            self.handle = None

    def __del__(self) -> None:
        self.free()


def _ints(values) -> tuple:
    """A tuple of Python ints (the common case, already such a tuple, costs one pass of type checks)."""
    if type(values) is tuple and all(type(v) is int for v in values):
        return values
    return tuple(int(v) for v in values)


def _normalize_shape(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if type(shape) is tuple and all(type(n) is int for n in shape):
        return shape
    try:  # operator.index: ints and numpy integers, never 2.5 (or 2.0) silently truncated
        out = tuple(operator.index(n) for n in shape)
    except TypeError:
        raise ShapeError(f"shape must be a sequence of ints, got {shape!r}") from None
    return out


def _axis(axis: int, ndim: int, what: str = "axis") -> int:
    if not isinstance(axis, numbers.Integral):
        raise ShapeError(f"{what} must be an int, got {axis!r}")
    if not -ndim <= axis < max(ndim, 1):
        raise ShapeError(f"{what} {axis} is out of range for a tensor of {ndim} dims")
    return axis % max(ndim, 1)


def _operator(op: str, reflected: bool = False):
    """A Tensor operator method calling ``ops.<op>(self, other)``, or ``ops.<op>(other, self)`` when reflected."""

    def method(self, other):
        from .. import ops  # tensor and ops are one layer; ops imports this module at its top

        fn = getattr(ops, op)
        return fn(other, self) if reflected else fn(self, other)

    return method


class Tensor(Displayable, text=tensor_summary, html=tensor_html):
    """An n-d array on a device: ``shape``, ``dtype``, ``strides`` and ``offset`` (in elements) over a Storage.

    >>> t = ak.tensor(np.arange(6.0).reshape(2, 3))
    >>> t.T.shape
    (3, 2)
    """

    __slots__ = ("storage", "shape", "strides", "offset", "dtype", "__weakref__")
    __array_priority__ = 1000

    def __init__(self, storage: Storage, shape: tuple, strides: tuple, offset: int, dtype: DType) -> None:
        self.storage = storage
        self.shape = _ints(shape)
        self.strides = _ints(strides)
        self.offset = offset if type(offset) is int else int(offset)
        self.dtype = dtype

    # ----------------------------------------------------------------------------- construction
    @classmethod
    def empty(cls, shape, dtype, device: Device, *, exact: bool = False) -> Tensor:
        dtype = as_dtype(dtype)
        shape = _normalize_shape(shape)
        if any(n < 0 for n in shape):
            raise ShapeError(f"negative dimension in shape {shape}")
        device.check_dtype(dtype)
        numel = math.prod(shape)
        storage = Storage(device, numel * dtype.itemsize, dtype, exact=exact)
        return cls(storage, shape, contiguous_strides(shape), 0, dtype)

    @classmethod
    def from_numpy(cls, array: np.ndarray, dtype=None, device: Device | None = None, *, exact: bool = False):
        from ..hardware import device as pick_device

        dev = pick_device(device)
        array = np.asarray(array)
        target = as_dtype(dtype) if dtype is not None else dtype_for_array(array)
        data = narrow(array, target)
        out = cls.empty(data.shape, target, dev, exact=exact)
        if data.size:
            out.storage.backend.write(out.storage.handle, 0, data)
        return out

    # ----------------------------------------------------------------------------- properties
    @property
    def device(self) -> Device:
        return self.storage.device

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    numel = size

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def is_contiguous(self) -> bool:
        return is_contiguous(self)

    def __len__(self) -> int:
        if not self.shape:
            raise ShapeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    # ----------------------------------------------------------------------------- host transfer
    def numpy(self) -> np.ndarray:
        """Copy the values to the host (submits and waits for pending device work)."""
        t = self if self.is_contiguous else self.contiguous()
        n = t.size
        if n == 0:
            return np.zeros(t.shape, dtype=t.dtype.np)
        backend = t.storage.backend
        raw = backend.read(t.storage.handle, t.offset * t.dtype.itemsize, n * t.dtype.itemsize)
        return np.frombuffer(raw, dtype=t.dtype.np, count=n).reshape(t.shape).copy()

    def __array__(self, dtype=None, copy=None):
        out = self.numpy()
        return out.astype(dtype) if dtype is not None else out

    def tolist(self):
        return self.numpy().tolist()

    def item(self):
        if self.size != 1:
            raise ShapeError(f"item() needs a tensor of one element, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def to(self, device=None, dtype=None) -> Tensor:
        """This tensor on another device and/or dtype (itself when nothing changes)."""
        from ..hardware import device as pick_device

        dev = pick_device(device) if device is not None else self.device
        t = self
        if dtype is not None and as_dtype(dtype) is not t.dtype:
            t = t.astype(dtype)
        if dev is t.device:
            return t
        return Tensor.from_numpy(t.numpy(), t.dtype, dev)

    def astype(self, dtype) -> Tensor:
        from .. import ops

        return ops.cast(self, dtype)

    def contiguous(self) -> Tensor:
        """Itself when dense row-major, else a dense copy."""
        if self.is_contiguous:
            return self
        from .. import ops

        return ops.copy(self)

    def clone(self) -> Tensor:
        from .. import ops

        return ops.copy(self)

    # ----------------------------------------------------------------------------- views
    def _view(self, shape, strides, offset) -> Tensor:
        return Tensor(self.storage, tuple(shape), tuple(strides), offset, self.dtype)

    def reshape(self, *shape) -> Tensor:
        """The same elements in ``shape`` (one dim may be -1): a view when the strides allow, else a copy."""
        shape = self._resolve_shape(shape, "reshape")
        strides = _reshape_strides(self.shape, self.strides, shape)
        if strides is None:
            return self.contiguous().reshape(*shape)
        return self._view(shape, strides, self.offset)

    def view(self, *shape) -> Tensor:
        """``reshape`` that never copies: ShapeError where the strides cannot express ``shape`` (as torch)."""
        shape = self._resolve_shape(shape, "view")
        strides = _reshape_strides(self.shape, self.strides, shape)
        if strides is None:
            raise ShapeError(
                f"view: a tensor of shape {self.shape} with strides {self.strides} cannot be viewed as "
                f"{shape} without a copy; use .reshape(...) (which copies) or .contiguous().view(...)"
            )
        return self._view(shape, strides, self.offset)

    def _resolve_shape(self, shape, what: str) -> tuple:
        """``shape`` as a tuple of ints with its -1 filled in; ShapeError when the element count differs."""
        shape = list(_normalize_shape(shape))
        if shape.count(-1) > 1:
            raise ShapeError(f"{what}: only one -1 allowed, got {tuple(shape)}")
        known = math.prod(n for n in shape if n != -1)
        if -1 in shape:
            if known == 0 or self.size % known:
                raise ShapeError(f"{what}: cannot reshape {self.shape} into {tuple(shape)}")
            shape[shape.index(-1)] = self.size // known
        if any(n < 0 for n in shape):
            raise ShapeError(f"{what}: negative dimension in {tuple(shape)}")
        if math.prod(shape) != self.size:
            raise ShapeError(
                f"{what}: cannot reshape {self.shape} ({self.size} elements) into {tuple(shape)} "
                f"({math.prod(shape)} elements)"
            )
        return tuple(shape)

    def flatten(self, start: int = 0, end: int = -1) -> Tensor:
        if self.ndim == 0:
            return self.reshape(1)
        start, end = _axis(start, self.ndim), _axis(end, self.ndim)
        shape = self.shape[:start] + (math.prod(self.shape[start : end + 1]),) + self.shape[end + 1 :]
        return self.reshape(shape)

    def permute(self, *dims) -> Tensor:
        dims = _normalize_shape(dims)
        if sorted(d % max(self.ndim, 1) for d in dims) != list(range(self.ndim)) or len(dims) != self.ndim:
            raise ShapeError(f"permute: {dims} is not a permutation of the {self.ndim} dims of {self.shape}")
        dims = [d % self.ndim for d in dims]
        return self._view([self.shape[d] for d in dims], [self.strides[d] for d in dims], self.offset)

    def transpose(self, a: int = -2, b: int = -1) -> Tensor:
        a, b = _axis(a, self.ndim), _axis(b, self.ndim)
        dims = list(range(self.ndim))
        dims[a], dims[b] = dims[b], dims[a]
        return self.permute(*dims)

    swapaxes = transpose

    @property
    def T(self) -> Tensor:  # noqa: N802 - numpy's name
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self) -> Tensor:  # noqa: N802 - numpy's name
        if self.ndim < 2:
            raise ShapeError(f"mT needs at least 2 dims, got shape {self.shape}")
        return self.transpose(-2, -1)

    def expand(self, *shape) -> Tensor:
        """Broadcast to ``shape`` as a view (stride 0 on the broadcast dims), like numpy.broadcast_to."""
        shape = _normalize_shape(shape)
        if len(shape) < self.ndim:
            raise ShapeError(f"expand: cannot broadcast {self.shape} to fewer dims {shape}")
        lead = len(shape) - self.ndim
        strides = [0] * lead
        out_shape = list(shape[:lead])
        for i, (n, s) in enumerate(zip(self.shape, self.strides)):
            want = shape[lead + i]
            if want == -1:
                want = n
            if n == want:
                strides.append(s)
            elif n == 1:
                strides.append(0)
            else:
                raise ShapeError(f"expand: cannot broadcast {self.shape} to {tuple(shape)}")
            out_shape.append(want)
        return self._view(out_shape, strides, self.offset)

    broadcast_to = expand

    def unsqueeze(self, dim: int) -> Tensor:
        dim = _axis(dim, self.ndim + 1, "dim")
        inner = self.strides[dim] * self.shape[dim] if dim < self.ndim else 1
        return self._view(
            self.shape[:dim] + (1,) + self.shape[dim:],
            self.strides[:dim] + (inner,) + self.strides[dim:],
            self.offset,
        )

    def squeeze(self, dim: int | None = None) -> Tensor:
        if dim is None:
            keep = [i for i, n in enumerate(self.shape) if n != 1]
        else:
            dim = _axis(dim, self.ndim, "dim")
            if self.shape[dim] != 1:
                raise ShapeError(f"squeeze: dim {dim} of {self.shape} has size {self.shape[dim]}, not 1")
            keep = [i for i in range(self.ndim) if i != dim]
        return self._view([self.shape[i] for i in keep], [self.strides[i] for i in keep], self.offset)

    def __getitem__(self, key) -> Tensor:
        if not isinstance(key, tuple):
            key = (key,)
        if any(isinstance(k, (Tensor, np.ndarray, list)) for k in key):
            raise ShapeError(
                "advanced (array) indexing is not supported on a Tensor; use basic slices, "
                "or accelkit.ops.embedding / take for gathers"
            )
        n_real = sum(1 for k in key if k is not None and k is not Ellipsis)
        if sum(1 for k in key if k is Ellipsis) > 1:
            raise ShapeError("an index can only have a single ellipsis ('...')")
        if n_real > self.ndim:
            raise ShapeError(
                f"too many indices ({n_real}) for a tensor of {self.ndim} dims (shape {self.shape})"
            )
        expanded = []
        for k in key:
            if k is Ellipsis:
                expanded.extend([slice(None)] * (self.ndim - n_real))
            else:
                expanded.append(k)
        expanded.extend([slice(None)] * (self.ndim - sum(1 for k in expanded if k is not None)))
        shape, strides, offset, axis = [], [], self.offset, 0
        for k in expanded:
            if k is None:
                shape.append(1)
                strides.append(0)
                continue
            n, s = self.shape[axis], self.strides[axis]
            if isinstance(k, slice):
                if k.step == 0:  # before k.indices(), which raises a plain ValueError for it
                    raise ShapeError("slice step cannot be zero")
                start, stop, step = k.indices(n)
                count = len(range(start, stop, step))
                shape.append(count)
                strides.append(s * step)
                if count:
                    offset += start * s
            elif isinstance(k, numbers.Integral) and not isinstance(k, bool):
                i = int(k)
                if not -n <= i < n:
                    raise ShapeError(f"index {i} is out of range for axis {axis} with size {n}")
                offset += (i % n) * s
            else:
                raise ShapeError(f"unsupported index {k!r}; expected ints, slices, None or ...")
            axis += 1
        return self._view(shape, strides, offset)

    def __setitem__(self, key, value) -> None:
        from .. import ops

        ops.copy_(self[key], value)

    # ----------------------------------------------------------------------------- arithmetic
    __add__, __radd__ = _operator("add"), _operator("add", reflected=True)
    __sub__, __rsub__ = _operator("sub"), _operator("sub", reflected=True)
    __mul__, __rmul__ = _operator("mul"), _operator("mul", reflected=True)
    __truediv__, __rtruediv__ = _operator("div"), _operator("div", reflected=True)
    __pow__, __rpow__ = _operator("pow"), _operator("pow", reflected=True)
    __matmul__, __rmatmul__ = _operator("matmul"), _operator("matmul", reflected=True)

    def __neg__(self):
        from .. import ops

        return ops.neg(self)

    def sum(self, axis=None, keepdims=False):
        from .. import ops

        return ops.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        from .. import ops

        return ops.mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        from .. import ops

        return ops.max(self, axis=axis, keepdims=keepdims)

    def argmax(self, axis=None, keepdims=False):
        from .. import ops

        return ops.argmax(self, axis=axis, keepdims=keepdims)

    def __bool__(self):
        if self.size != 1:
            raise ShapeError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.item())

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())


def _reshape_strides(shape: tuple, strides: tuple, new_shape: tuple) -> tuple | None:
    """Strides that view ``shape``/``strides`` as ``new_shape`` without copying, or None (numpy's rule)."""
    if math.prod(shape) == 0:
        return contiguous_strides(new_shape)
    old = [(n, s) for n, s in zip(shape, strides) if n != 1]
    odims, ostrides = [n for n, _ in old], [s for _, s in old]
    new_shape = list(new_shape)
    nstrides = [0] * len(new_shape)
    oi, oj, ni, nj = 0, 1, 0, 1
    while ni < len(new_shape) and oi < len(odims):
        np_, op = new_shape[ni], odims[oi]
        while np_ != op:
            if np_ < op:
                np_ *= new_shape[nj]
                nj += 1
            else:
                op *= odims[oj]
                oj += 1
        for ok in range(oi, oj - 1):
            if ostrides[ok] != odims[ok + 1] * ostrides[ok + 1]:
                return None
        nstrides[nj - 1] = ostrides[oj - 1]
        for nk in range(nj - 1, ni, -1):
            nstrides[nk - 1] = nstrides[nk] * new_shape[nk]
        ni, nj, oi, oj = nj, nj + 1, oj, oj + 1
    last = nstrides[ni - 1] if ni >= 1 else 1
    for nk in range(ni, len(new_shape)):
        nstrides[nk] = last
    return tuple(nstrides)


_default_lock = threading.Lock()


def tensor(data, dtype=None, device=None) -> Tensor:
    """Make a Tensor from a numpy array, nested lists, a scalar, or another Tensor (copied to ``device``)."""
    if isinstance(data, Tensor):
        return data.to(device, dtype=dtype)
    if dtype is not None and not isinstance(dtype, (DType, str, np.dtype, type)):
        raise DTypeError(f"unsupported dtype {dtype!r}")
    if type(data).__module__.startswith("torch") and hasattr(data, "detach"):
        data = _from_torch(data)  # detached: a tensor that requires grad is accepted
    try:
        array = np.asarray(data)
    except (ValueError, TypeError) as exc:
        raise DTypeError(f"cannot make a tensor from {type(data).__name__}: {exc}") from None
    if array.dtype == object:
        raise ShapeError(
            f"cannot make a tensor from ragged or non-numeric data of type {type(data).__name__}"
        )
    return Tensor.from_numpy(array, dtype, device)


def _filled(shape, value, dtype, device) -> Tensor:
    from .. import ops
    from ..hardware import device as pick_device

    if isinstance(value, (str, bytes)) or not isinstance(value, (numbers.Real, np.bool_)):
        raise DTypeError(f"fill value must be a real number, got {value!r:.40} ({type(value).__name__})")

    t = Tensor.empty(shape, as_dtype(dtype or "float32"), pick_device(device))
    ops.fill_(t, value)
    return t


def zeros(*shape, dtype=None, device=None) -> Tensor:
    return _filled(_normalize_shape(shape), 0.0, dtype, device)


def ones(*shape, dtype=None, device=None) -> Tensor:
    return _filled(_normalize_shape(shape), 1.0, dtype, device)


def full(shape, value, dtype=None, device=None) -> Tensor:
    return _filled(_normalize_shape((shape,) if isinstance(shape, int) else shape), value, dtype, device)


def empty(*shape, dtype=None, device=None) -> Tensor:
    from ..hardware import device as pick_device

    return Tensor.empty(_normalize_shape(shape), as_dtype(dtype or "float32"), pick_device(device))


def arange(start, stop=None, step=1, dtype=None, device=None) -> Tensor:
    """Evenly spaced values in [start, stop) as numpy's ``arange``; a zero step or a non-number raises InputError."""
    for name, value in (("start", start), ("stop", stop), ("step", step)):
        if value is not None and (
            isinstance(value, (str, bytes)) or not isinstance(value, (numbers.Real, np.bool_))
        ):
            raise InputError(f"arange: {name} must be a real number, got {value!r:.40}")
    if step == 0:
        raise InputError("arange: step must not be zero")
    values = np.arange(start, stop, step) if stop is not None else np.arange(start)
    return tensor(values, dtype=dtype, device=device)
