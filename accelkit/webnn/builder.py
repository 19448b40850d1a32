"""MLGraphBuilder: make inputs and constants, add operators, ``build()`` once into an MLGraph.

Every operator method (``add``, ``conv2d``, ``layer_normalization`` ...) lives in its family's file
under ``ops/``, with its argument checks, output-shape inference and execution; they are attached
to this class under their snake_case names (and the spec's camelCase names as aliases).

>>> g = MLGraphBuilder(ctx)
>>> x = g.input("x", {"data_type": "float32", "shape": [2, 3]})
>>> graph = g.build({"y": g.relu(x)})
"""

from __future__ import annotations

import functools
import inspect
import numbers
import re

import numpy as np

from .errors import DataError, InvalidStateError, MLTypeError, OperationError
from .operand import DATA_TYPES, INT_RANGES, MLOperand, Node, data_type, descriptor, operand
from .ops import BUILDERS


class MLGraphBuilder:
    """Builds one graph on ``context``; after ``build()`` (or once the context is lost) it refuses more work."""

    def __init__(self, context) -> None:
        from .context import MLContext

        if not isinstance(context, MLContext):
            raise MLTypeError(f"MLGraphBuilder: context must be an MLContext, got {type(context).__name__}")
        context._check("MLGraphBuilder")  # the spec: a lost context makes no builders
        self.context = context
        self.has_built = False
        self._inputs: dict[str, MLOperand] = {}
        self._count = 0

    # ------------------------------------------------------------------------------ state
    def _check(self, what: str) -> None:
        if self.has_built:
            raise InvalidStateError(
                f"{what}: this MLGraphBuilder has already built its graph; make a new one"
            )
        if self.context.lost is not None:
            raise InvalidStateError(f"{what}: the MLContext is lost ({self.context.lost['message']})")

    def _arg(self, x, op: str, arg: str) -> MLOperand:
        """The can-build check, then: ``x`` is an operand of this builder."""
        self._check(op)
        return operand(self, x, op, arg)

    def _op(self, op: str, inputs: tuple, outputs: list, run, label: str = ""):
        """Add an operator; ``outputs`` is [(DataType, shape)]; returns its operand (or list of them)."""
        self._check(op)
        if not isinstance(label, str):
            raise MLTypeError(f"{op}: label must be a string, got {label!r}")
        node = Node(op, tuple(inputs), run, label)
        for i, (dt, shape) in enumerate(outputs):
            out = MLOperand(self, dt, tuple(shape), kind="output", node=node)
            out.index = i
            node.outputs.append(out)
        self._count += 1
        return node.outputs[0] if len(outputs) == 1 else list(node.outputs)

    # ------------------------------------------------------------------------------ inputs & constants
    def input(self, name: str, descriptor_: dict) -> MLOperand:
        """A named graph input described by ``{"data_type": ..., "shape": [...]}``."""
        self._check("input")
        if not isinstance(name, str) or not name:
            raise MLTypeError(f"input: name must be a non-empty string, got {name!r}")
        if name in self._inputs:
            raise MLTypeError(f"input: an input named {name!r} already exists in this builder")
        dt, shape = descriptor(descriptor_, f"input {name!r}", self.context._data_types)
        x = MLOperand(self, dt, shape, kind="input")
        x.name = name
        self._inputs[name] = x
        return x

    def constant(self, desc_or_type, value=None) -> MLOperand:
        """A constant: ``constant(descriptor, buffer)``, ``constant(data_type, number)`` or ``constant(ml_tensor)``.

        The buffer is a numpy array (or list) with the descriptor's element count, or bytes-like
        data of exactly its byte length; it is copied now.
        """
        from .tensor import MLTensor

        self._check("constant")
        if isinstance(desc_or_type, MLTensor):
            t = desc_or_type
            if t.context is not self.context:
                raise MLTypeError("constant: the MLTensor belongs to another MLContext")
            if t.destroyed:
                raise MLTypeError("constant: the MLTensor is destroyed")
            if not t.constant:
                raise MLTypeError("constant: the MLTensor was not made by create_constant_tensor()")
            x = MLOperand(self, t.dtype, tuple(t._shape), kind="constant")
            x.constant_tensor = t
            return x
        if isinstance(desc_or_type, (str, type(DATA_TYPES["float32"]))) and not isinstance(
            desc_or_type, dict
        ):
            dt = data_type(desc_or_type, "constant", self.context._data_types)
            if isinstance(value, bool) or not isinstance(value, numbers.Number):
                raise MLTypeError(f"constant: a scalar constant needs a number value, got {value!r}")
            x = MLOperand(self, dt, (), kind="constant")
            x.value = cast_values(np.asarray(value), dt)
            return x
        dt, shape = descriptor(desc_or_type, "constant", self.context._data_types)
        x = MLOperand(self, dt, shape, kind="constant")
        x.value = buffer_values(value, dt, shape, "constant")
        return x

    # ------------------------------------------------------------------------------ build
    def build(self, outputs: dict):
        """Compile the graph that computes ``outputs`` ({name: operand}); a builder builds once."""
        from .graph import compile_graph

        self._check("build")
        if not isinstance(outputs, dict) or not outputs:
            raise MLTypeError("build: outputs must be a non-empty dict {name: MLOperand}")
        for name, x in outputs.items():
            if not isinstance(name, str) or not name:
                raise MLTypeError(f"build: output names must be non-empty strings, got {name!r}")
            operand(self, x, "build", f"output {name!r}")
            if x.kind != "output":
                raise MLTypeError(
                    f"build: output {name!r} is a graph {x.kind}; pass it through identity() to output it"
                )
            for node_input in _reachable_constants(x):
                if node_input.constant_tensor is not None and node_input.constant_tensor.destroyed:
                    raise MLTypeError(f"build: output {name!r} depends on a destroyed constant MLTensor")
        try:
            graph = compile_graph(self, dict(outputs))
        except (MLTypeError, InvalidStateError, DataError):
            raise
        except Exception as exc:  # a device that cannot run it
            raise OperationError(
                f"build: the graph could not be compiled for {self.context.device.spec}: {exc}"
            ) from exc
        self.has_built = True
        return graph

    def __repr__(self) -> str:
        state = "built" if self.has_built else f"{self._count} operators"
        return f"<MLGraphBuilder on {self.context.device.spec}: {len(self._inputs)} inputs, {state}>"


def _reachable_constants(x: MLOperand):
    seen, stack = set(), [x]
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        if o.kind == "constant":
            yield o
        if o.node is not None:
            stack.extend(o.node.inputs)


def cast_values(values: np.ndarray, dt) -> np.ndarray:
    """Numbers converted to a WebNN data type's numpy type (floats to integers truncate, then wrap
    as a C cast would); int64/uint64 values outside the int32 range they are held in raise DataError."""
    values = np.asarray(values)
    if dt.is_float:
        return values.astype(dt.np)
    with np.errstate(all="ignore"):
        if values.dtype.kind == "f":
            values = np.trunc(np.nan_to_num(values))
        if dt.name in ("int64", "uint64") and values.size:
            lo, hi = INT_RANGES[dt.name]
            if values.min() < lo or values.max() > hi:
                raise DataError(
                    f"{dt.name} values must lie in [{lo}, {hi}] here (the device holds them in int32); "
                    f"got [{values.min()}, {values.max()}]"
                )
        return values.astype(np.int64).astype(dt.np)


def buffer_values(value, dt, shape: tuple, what: str) -> np.ndarray:
    """Constant or tensor data: an array-like of the right element count, or bytes of the right length."""
    count = int(np.prod(shape, dtype=np.int64))
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = memoryview(value).cast("B")
        if raw.nbytes != count * dt.itemsize:
            raise MLTypeError(
                f"{what}: buffer has {raw.nbytes} bytes; {dt.name}{list(shape)} needs {count * dt.itemsize}"
            )
        return np.frombuffer(raw, dtype=dt.np).reshape(shape).copy()
    if value is None:
        raise MLTypeError(f"{what}: data is missing")
    try:
        arr = np.asarray(value)
    except Exception as exc:
        raise MLTypeError(f"{what}: data must be an array-like or bytes, got {type(value).__name__}") from exc
    if arr.dtype.kind not in "fiub":
        raise MLTypeError(f"{what}: data must be numbers, got an array of {arr.dtype}")
    if arr.size != count:
        raise MLTypeError(f"{what}: data has {arr.size} elements; {dt.name}{list(shape)} needs {count}")
    return cast_values(arr.reshape(shape), dt)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    camel = head + "".join(w.upper() if w in ("nd",) else w.capitalize() for w in rest)
    return camel.replace("Nan", "NaN")


_UPPER = re.compile(r"([A-Z])")


def _builder_method(name: str, fn):
    """``fn`` as an MLGraphBuilder method that also takes the spec's spellings: an options dict as the
    last positional argument, and camelCase option names (``keepDimensions=``); arguments that do
    not fit the op's signature raise MLTypeError naming the op."""
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def method(self, *args, **kwargs):
        if args and isinstance(args[-1], dict):
            kwargs = {**args[-1], **kwargs}
            args = args[:-1]
        kwargs = {
            (_UPPER.sub(r"_\1", k).lower() if k not in sig.parameters else k): v for k, v in kwargs.items()
        }
        try:
            sig.bind(self, *args, **kwargs)
        except TypeError as exc:
            self._check(name)
            raise MLTypeError(f"{name}: {exc}") from None
        return fn(self, *args, **kwargs)

    return method


for _name, _fn in BUILDERS.items():
    _method = _builder_method(_name, _fn)
    setattr(MLGraphBuilder, _name, _method)
    _alias = _camel(_name)
    if _alias != _name and not hasattr(MLGraphBuilder, _alias):
        setattr(MLGraphBuilder, _alias, _method)
