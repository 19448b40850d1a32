"""The W3C WebNN API on accelkit's devices: build a graph once, dispatch it many times.

>>> from accelkit import webnn
>>> ctx = webnn.ml.create_context(device="cpu")
>>> g = webnn.MLGraphBuilder(ctx)
>>> x = g.input("x", {"data_type": "float32", "shape": [2, 3]})
>>> graph = g.build({"y": g.relu(x)})
>>> ctx.compute(graph, {"x": np.ones((2, 3))})["y"].shape
(2, 3)

Names follow the spec in Python spelling (snake_case methods, options and descriptor keys;
``dataType`` is accepted too). Errors are the spec's kinds (``MLTypeError`` for bad arguments,
``InvalidStateError``, ``OperationError``, ``NotSupportedError``, ``DataError``), each also an
``accelkit.AccelkitError``.
"""

from __future__ import annotations

from .builder import MLGraphBuilder
from .context import ML, MLContext, ml
from .errors import DataError, InvalidStateError, MLTypeError, NotSupportedError, OperationError
from .graph import MLGraph
from .operand import MLOperand
from .tensor import MLTensor

__all__ = [
    "ML",
    "DataError",
    "InvalidStateError",
    "MLContext",
    "MLGraph",
    "MLGraphBuilder",
    "MLOperand",
    "MLTensor",
    "MLTypeError",
    "NotSupportedError",
    "OperationError",
    "ml",
]
