"""The op set: one function per op, checking shapes and dtypes, then dispatching to the tensors' backend.

Every op takes Tensors (numpy arrays and Python scalars are converted on the first tensor's
device), allocates its output, and calls the backend (``backends.base.Backend``). Broadcasting
follows numpy. Errors name the shapes involved and what was expected.

Owns, one module per family (this file only re-exports):

- ``dispatch``: argument conversion, dtype promotion, broadcasting, finding the one backend
- ``elementwise``: unary math, binary arithmetic, ``cast``, ``copy``, ``copy_``, ``fill_``
- ``linalg``: ``matmul`` (fused bias + activation), ``linear``
- ``conv``: ``conv1d``, ``conv2d`` (views + one matmul)
- ``nn``: ``gelu``, ``softmax``, ``layer_norm``, ``linear_layer_norm``, ``scaled_dot_product_attention``
- ``reduce``: ``sum``, ``mean``, ``max``, ``min``, ``argmax``
- ``shape``: ``embedding``/``take``, ``concat``/``stack``, ``pad``, ``update_slice_``

May import: errors, backends (the protocol, for types), tensor (one layer with ops), and
``hardware.device`` for the default device.
"""

from .conv import conv1d, conv2d
from .dispatch import broadcast_shapes
from .elementwise import (
    abs,
    add,
    cast,
    copy,
    copy_,
    cos,
    div,
    erf,
    exp,
    fill_,
    log,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    relu,
    rsqrt,
    scale,
    sigmoid,
    silu,
    sin,
    sqrt,
    sub,
    tanh,
)
from .linalg import linear, matmul
from .nn import attention, gelu, layer_norm, linear_layer_norm, scaled_dot_product_attention, softmax
from .reduce import argmax, max, mean, min, sum
from .shape import cat, concat, embedding, pad, stack, take, update_slice_

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
    "linear_layer_norm",
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
    "update_slice_",
    "tanh",
]
