"""MLTensor: a device buffer a graph reads or writes, with the spec's readable/writable/constant flags.

It wraps an accelkit Tensor on the context's device (int8/uint8 data is held in int32), so
``ml_tensor.to_accelkit()`` and ``context.tensor_from(t)`` move between the two without a copy.
"""

from __future__ import annotations

from ..tensor.tensor import Tensor
from .operand import Described


class MLTensor(Described):
    """``data_type`` (``dataType``), ``shape``, ``readable``, ``writable``, ``constant``; ``destroy()``."""

    def __init__(
        self,
        context,
        dtype,
        shape: tuple,
        tensor: Tensor,
        *,
        readable: bool,
        writable: bool,
        constant: bool = False,
    ) -> None:
        self.context = context
        self.dtype = dtype
        self._shape = tuple(shape)
        self._tensor = tensor
        self.readable = readable
        self.writable = writable
        self.constant = constant
        self.destroyed = False

    def destroy(self) -> None:
        """Release the buffer (idempotent); using the tensor afterwards raises MLTypeError."""
        if self.destroyed:
            return
        self.destroyed = True
        self.context._tensor_destroyed(self)  # plans bound to its buffer let it go
        self._tensor = None

    def to_accelkit(self) -> Tensor:
        """The accelkit Tensor holding this MLTensor's data (the same buffer, no copy)."""
        from .errors import MLTypeError

        if self.destroyed:
            raise MLTypeError("to_accelkit: the MLTensor is destroyed")
        return self._tensor

    def __repr__(self) -> str:
        flags = [f for f in ("readable", "writable", "constant", "destroyed") if getattr(self, f)]
        return (
            f"<MLTensor {self.dtype.name}{list(self._shape)} on {self.context.device.spec} {' '.join(flags)}>"
        )
