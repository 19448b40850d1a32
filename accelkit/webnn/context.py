"""``ml.create_context()`` and MLContext: tensors, reading and writing them, dispatching graphs.

A context is one accelkit device (``"cpu"`` or ``"webgpu"``); everything built or created on it
runs there. ``dispatch`` validates its tensors as the spec says, then calls the graph's compiled
function of Tensors (``MLGraph``: the first dispatch captures a plan, later ones replay it), which
writes the results into the output MLTensors' own buffers.
"""

from __future__ import annotations

import weakref

import numpy as np

from ..tensor.tensor import Tensor
from .errors import InvalidStateError, MLTypeError, NotSupportedError
from .graph import MLGraph, binding_key
from .operand import DATA_TYPES, MAX_RANK, SPEC_DATA_TYPES, descriptor
from .tensor import MLTensor

POWER_PREFERENCES = ("default", "high-performance", "low-power")


class ML:
    """The ``navigator.ml`` object: ``webnn.ml.create_context(...)``."""

    def create_context(
        self,
        options: dict | None = None,
        *,
        device=None,
        power_preference: str | None = None,
        accelerated: bool | None = None,
    ) -> MLContext:
        """A context on ``device`` ("cpu", "webgpu", "webgpu:N" or an accelkit Device; None = best).

        ``power_preference`` ("default", "high-performance", "low-power") and ``accelerated`` are the
        spec's options (also accepted as an options dict, in either spelling); ``"low-power"`` or
        ``accelerated=False`` without a device picks the CPU.
        """
        from .. import hardware

        opts = dict(options or {})
        if power_preference is None:
            power_preference = opts.pop("power_preference", opts.pop("powerPreference", "default"))
        if accelerated is None:
            accelerated = opts.pop("accelerated", True)
        if device is None:
            device = opts.pop("device", None)
        if power_preference not in POWER_PREFERENCES:
            raise MLTypeError(
                f"create_context: power_preference {power_preference!r} is not one of {POWER_PREFERENCES}"
            )
        try:
            if device is None and (power_preference == "low-power" or not accelerated):
                dev = hardware.device("cpu")
            else:
                dev = hardware.device(device)
            dev.backend  # noqa: B018 - open it now, so failure is reported here
        except Exception as exc:
            raise NotSupportedError(f"create_context: no context for device {device!r}: {exc}") from exc
        return MLContext(dev, power_preference, bool(accelerated) and dev.backend_name != "cpu")

    createContext = create_context  # noqa: N815 - the spec's spelling


ml = ML()


class MLContext:
    """Where graphs run: ``create_tensor``, ``write_tensor``, ``read_tensor``, ``dispatch``, ``compute``."""

    def __init__(self, device, power_preference: str = "default", accelerated: bool = True) -> None:
        self.device = device
        self.power_preference = power_preference
        self.accelerated = accelerated
        self.lost: dict | None = None
        names = [n for n in DATA_TYPES if n != "float16" or device.supports_f16]
        self._data_types = tuple(names)
        self._bound_graphs: weakref.WeakSet = weakref.WeakSet()  # graphs with plans bound to MLTensors

    # ------------------------------------------------------------------------------ life
    def destroy(self) -> None:
        """Lose the context: every later call on it, its builders, graphs or tensors raises."""
        if self.lost is None:
            self.lost = {"message": "destroy() was called"}

    def _check(self, what: str) -> None:
        if self.lost is not None:
            raise InvalidStateError(f"{what}: the MLContext is lost ({self.lost['message']})")

    def _own(self, t, what: str, arg: str = "tensor") -> MLTensor:
        if not isinstance(t, MLTensor):
            raise MLTypeError(f"{what}: {arg} must be an MLTensor, got {type(t).__name__}")
        if t.context is not self:
            raise MLTypeError(f"{what}: {arg} belongs to another MLContext")
        if t.destroyed:
            raise MLTypeError(f"{what}: {arg} is destroyed")
        return t

    # ------------------------------------------------------------------------------ tensors
    def create_tensor(self, desc: dict) -> MLTensor:
        """A zero-filled tensor: ``{"data_type", "shape", "readable": False, "writable": False}``."""
        self._check("create_tensor")
        dt, shape = descriptor(desc, "create_tensor", self._data_types)
        t = Tensor.empty(shape, dt.storage, self.device)
        from .. import ops

        ops.fill_(t, 0.0)
        return MLTensor(
            self,
            dt,
            shape,
            t,
            readable=bool(desc.get("readable", False)),
            writable=bool(desc.get("writable", False)),
        )

    def create_constant_tensor(self, desc: dict, data) -> MLTensor:
        """A constant tensor holding ``data``, for ``builder.constant(tensor)`` (not dispatchable)."""
        from .builder import buffer_values
        from .primitives import upload

        self._check("create_constant_tensor")
        dt, shape = descriptor(desc, "create_constant_tensor", self._data_types)
        values = buffer_values(data, dt, shape, "create_constant_tensor")
        return MLTensor(
            self,
            dt,
            shape,
            upload(values, dt.storage, self.device),
            readable=False,
            writable=False,
            constant=True,
        )

    def tensor_from(self, t: Tensor, *, readable: bool = True, writable: bool = True) -> MLTensor:
        """An accelkit Tensor on this context's device as an MLTensor over the same buffer (no copy)."""
        self._check("tensor_from")
        if not isinstance(t, Tensor):
            raise MLTypeError(f"tensor_from: expected an accelkit Tensor, got {type(t).__name__}")
        if t.device is not self.device:
            raise MLTypeError(
                f"tensor_from: the tensor is on {t.device.spec}, this context on {self.device.spec}"
            )
        if not t.is_contiguous:
            raise MLTypeError("tensor_from: the tensor must be contiguous (call .contiguous() first)")
        return MLTensor(self, DATA_TYPES[t.dtype.name], t.shape, t, readable=readable, writable=writable)

    def write_tensor(self, tensor: MLTensor, data) -> None:
        """Copy host data (array-like of the tensor's element count, or bytes of its byte length) into it."""
        from .builder import buffer_values
        from .primitives import upload

        self._check("write_tensor")
        t = self._own(tensor, "write_tensor")
        if not t.writable:
            raise MLTypeError("write_tensor: the MLTensor was not created with writable=True")
        values = buffer_values(data, t.dtype, t._shape, "write_tensor")
        src = upload(values, t.dtype.storage, self.device)
        from .. import ops

        ops.copy_(t._tensor, src)

    def read_tensor(self, tensor: MLTensor, out=None) -> np.ndarray:
        """The tensor's values as a numpy array of its data type (or written into ``out``)."""
        self._check("read_tensor")
        t = self._own(tensor, "read_tensor")
        if not t.readable:
            raise MLTypeError("read_tensor: the MLTensor was not created with readable=True")
        values = t._tensor.numpy().astype(t.dtype.np, copy=False).reshape(t._shape)
        if out is None:
            return values
        if isinstance(out, np.ndarray):
            if out.nbytes != values.nbytes:
                raise MLTypeError(f"read_tensor: out has {out.nbytes} bytes, the tensor {values.nbytes}")
            out.reshape(-1).view(np.uint8)[:] = values.reshape(-1).view(np.uint8)
            return out
        try:
            mv = memoryview(out).cast("B")
        except TypeError as exc:
            raise MLTypeError(
                f"read_tensor: out must be a numpy array or a writable buffer, got {type(out).__name__}"
            ) from exc
        if mv.readonly:
            raise MLTypeError(f"read_tensor: out is a read-only buffer ({type(out).__name__})")
        if mv.nbytes != values.nbytes:
            raise MLTypeError(f"read_tensor: out has {mv.nbytes} bytes, the tensor {values.nbytes}")
        mv[:] = values.tobytes()
        return values

    # ------------------------------------------------------------------------------ dispatch
    def dispatch(self, graph, inputs: dict, outputs: dict) -> None:
        """Run ``graph`` reading ``inputs`` and writing ``outputs`` ({name: MLTensor} each).

        The tensors are validated as the spec says the first time a set of them is given; the graph
        then keeps, for that set (up to ``graph.BOUND_SETS`` sets), a plan that binds their buffers
        directly: the first dispatch captures it, later ones replay it (one pass, no Python per op, no
        copies in or out) after checking only that none of the tensors was destroyed. The results are
        written into the output MLTensors' own buffers, so tensors shared through ``tensor_from`` see them.
        """
        self._check("dispatch")
        if not isinstance(graph, MLGraph):
            raise MLTypeError(f"dispatch: graph must be an MLGraph, got {type(graph).__name__}")
        if graph.context is not self:
            raise MLTypeError("dispatch: the graph was built on another MLContext")
        graph._check("dispatch")
        key = None
        if type(inputs) is dict and type(outputs) is dict:
            key = binding_key(inputs, outputs)
            binding = graph._bindings.get(key)
            if binding is not None and binding.holds(inputs, outputs):
                graph._dispatch(binding, inputs, outputs)  # validated when this set was first given
                return
        self._validate(graph, inputs, outputs)
        binding = graph._bound(key, inputs, outputs) if key is not None else None
        graph._dispatch(binding, inputs, outputs)

    def _validate(self, graph: MLGraph, inputs: dict, outputs: dict) -> None:
        """The spec's checks of a dispatch's tensors (raising MLTypeError for the first that fails)."""
        for what, named in (("inputs", inputs), ("outputs", outputs)):
            if not isinstance(named, dict):
                raise MLTypeError(f"dispatch: {what} must be a dict {{name: MLTensor}}")
        every = [*inputs.values(), *outputs.values()]
        if len({id(t) for t in every}) != len(every):
            raise MLTypeError("dispatch: the same MLTensor is given twice among inputs and outputs")
        for named in (inputs, outputs):
            for name, t in named.items():
                self._own(t, "dispatch", f"tensor {name!r}")
        _match("inputs", inputs, graph._in_desc)
        _match("outputs", outputs, graph._out_desc)

    def _tensor_destroyed(self, tensor: MLTensor) -> None:
        """Drop the graphs' plans bound to ``tensor``'s buffer."""
        for graph in list(self._bound_graphs):
            graph._forget(tensor)

    def compute(self, graph, inputs: dict) -> dict:
        """Convenience: numpy arrays in ({input name: array}), {output name: numpy array} out (the
        arrays are uploaded with one write each into the plan's input buffers when it replays)."""
        from .primitives import storage_values

        self._check("compute")
        if not isinstance(graph, MLGraph) or graph.context is not self:
            raise MLTypeError("compute: graph must be an MLGraph built on this context")
        graph._check("compute")
        if not isinstance(inputs, dict) or set(inputs) != set(graph._inputs):
            got = sorted(inputs) if isinstance(inputs, dict) else inputs
            raise MLTypeError(f"compute: inputs must be exactly {sorted(graph._inputs)}, got {got}")
        from .builder import buffer_values

        arrays = {}
        for name, (_, dt, shape) in graph._inputs.items():
            given = _shape_of(inputs[name])
            if len(given) > 1 and tuple(given) != tuple(shape):  # a flat buffer is fine, a wrong shape is not
                raise MLTypeError(
                    f"compute: input {name!r} has shape {list(given)}; the graph expects {list(shape)}"
                )
            arrays[name] = storage_values(
                buffer_values(inputs[name], dt, shape, f"compute input {name!r}"), dt.storage
            )
        results = graph._run_host(arrays)
        return {
            n: results[n].numpy().astype(dt.np, copy=False).reshape(s)
            for n, (dt, s) in graph._out_desc.items()
        }

    # ------------------------------------------------------------------------------ limits
    def op_support_limits(self) -> dict:
        """Per op and operand: the data types and ranks supported on this context (snake_case keys)."""
        from .ops import LIMITS

        def entry(types, lo, hi):
            return {
                "data_types": [t for t in types if t in self._data_types],
                "rank_range": {"min": lo, "max": hi},
            }

        everything = entry(self._data_types, 0, MAX_RANK)
        out = {
            "preferred_input_layout": "nchw",
            "max_tensor_byte_length": int(
                self.device.limits.get("max-storage-buffer-binding-size", 2**31 - 1)
            )
            if self.device.backend_name == "webgpu"
            else 2**31 - 1,
            "input": everything,
            "constant": everything,
            "output": everything,
            "unsupported_data_types": [t for t in SPEC_DATA_TYPES if t not in self._data_types],
        }
        for op, operands in LIMITS.items():
            out[op] = {arg: entry(*spec) for arg, spec in operands.items()}
        return out

    opSupportLimits = op_support_limits  # noqa: N815 - the spec's spelling

    def __repr__(self) -> str:
        lost = " lost" if self.lost else ""
        return f"<MLContext{lost} {self.device.spec} ({self.device.name}) power_preference={self.power_preference!r}>"


def _shape_of(value) -> tuple:
    """The shape of an array or nested list (``()`` for bytes, scalars and ragged lists)."""
    if not isinstance(value, (np.ndarray, list, tuple)):
        return ()
    try:
        return np.shape(value)
    except ValueError:  # ragged: buffer_values reports it
        return ()


def _match(what: str, named: dict, expected: dict) -> None:
    """The spec's "validate tensors with descriptors": same names, same data types and shapes."""
    if named.keys() != expected.keys():
        missing = sorted(set(expected) - set(named))
        extra = sorted(set(named) - set(expected))
        raise MLTypeError(
            f"dispatch: {what} must be exactly {sorted(expected)}; missing {missing}, unexpected {extra}"
        )
    for name, t in named.items():
        if t.constant:
            raise MLTypeError(f"dispatch: {what[:-1]} {name!r} is a constant MLTensor")
        dt, shape = expected[name]
        if t.dtype is not dt or tuple(t._shape) != tuple(shape):
            raise MLTypeError(
                f"dispatch: {what[:-1]} {name!r} is {t.dtype.name}{list(t._shape)}, the graph expects "
                f"{dt.name}{list(shape)}"
            )
