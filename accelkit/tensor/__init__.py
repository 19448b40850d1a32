"""Tensors: dtypes, refcounted storages, and strided views over them."""

from .dtype import DTYPES, DType, as_dtype, float16, float32, int32
from .host import host_array
from .tensor import Storage, Tensor, arange, empty, full, ones, tensor, zeros

__all__ = [
    "DTYPES",
    "DType",
    "Storage",
    "Tensor",
    "arange",
    "as_dtype",
    "empty",
    "float16",
    "float32",
    "full",
    "host_array",
    "int32",
    "ones",
    "tensor",
    "zeros",
]
