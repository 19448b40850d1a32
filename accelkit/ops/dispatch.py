"""What every op does first: turn its arguments into tensors on one device, promote dtypes, broadcast, find the backend.

The op modules call these; ``backend_of`` is the only place an op reaches the device's backend
(``Device.runtime``), and it raises DeviceError for mixed or lost devices.
"""

from __future__ import annotations

import builtins
import math
import numbers

import numpy as np

from ..backends.base import Backend
from ..errors import DeviceError, ShapeError
from ..tensor.dtype import DType, float16, float32, int32
from ..tensor.tensor import Tensor, tensor


def device_of(*items):
    """The device of the first Tensor among ``items``, else the default device."""
    for x in items:
        if isinstance(x, Tensor):
            return x.device
    from ..hardware import device

    return device()


def as_tensor(x, device, dtype: DType | None = None) -> Tensor:
    """``x`` itself if a Tensor, else a new tensor of it on ``device`` (Python scalars: int32 / float32)."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, numbers.Number) and not isinstance(x, bool):
        dt = dtype if dtype is not None else (int32 if isinstance(x, numbers.Integral) else float32)
        return tensor(np.asarray(x), dtype=dt, device=device)
    return tensor(x, dtype=dtype, device=device)


def backend_of(*tensors) -> Backend:
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
    if not first.device.is_open or first.device.runtime is not be:
        raise DeviceError(
            f"this tensor belongs to a lost {first.device.spec} device; recreate it on accelkit.device()"
        )
    return be


def promote(a: DType, b: DType) -> DType:
    """The dtype two operands compute in: float32 > float16 > int32."""
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


def axis_index(axis, ndim: int, op: str) -> int:
    """``axis`` as an index in [0, ndim); ShapeError naming ``op`` when out of range."""
    if not isinstance(axis, numbers.Integral) or not -ndim <= axis < builtins.max(ndim, 1):
        raise ShapeError(f"{op}: axis {axis!r} is out of range for {ndim} dims")
    return int(axis) % builtins.max(ndim, 1)


def collapse_leading(t: Tensor, count: int) -> Tensor:
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
