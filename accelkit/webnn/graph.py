"""MLGraph: a built graph as a topologically sorted list of steps, run as ONE compiled function of Tensors.

``compile_graph`` walks back from the outputs, fuses neighbours the backend has a fused kernel for
(``fusion.py``), orders the operators so each runs after its inputs, uploads the constants and the
ops' build-time data (index maps, masks) to the context's device once, and gives every value a slot.

The steps are evaluated by one function of Tensors ({input name: Tensor}, optionally {output name:
Tensor} to write into) that ``build()`` hands to ``accelkit.graph.compile``: the first dispatch runs
it eagerly while the backend records it, every later dispatch with the same tensors' layout replays
that plan (prebuilt bind groups, one compute pass, one submit: no Python per op). Eagerly, each step
calls its op family's execution (``accelkit.ops`` and the WebNN primitives) on the slots it reads,
and slots are dropped after their last reader, so intermediates go back to the device's pool (and
the plan's memory plan can reuse their buffers). On the CPU the compiled function runs eagerly.

``MLContext.dispatch`` validates a set of MLTensors once and keeps it as a ``_Binding``: a
``BoundCall`` of the compiled function that, from the set's second dispatch on, replays a variant of
the plan with the tensors' own buffers bound (no copies in or out).
"""

from __future__ import annotations

import weakref

from ..tensor.tensor import Tensor
from .errors import InvalidStateError
from .fusion import fuse
from .operand import MLOperand
from .primitives import BuildConstant, upload


class Step:
    """One operator in run order: what it reads and writes (slot numbers) and which slots die after it."""

    __slots__ = ("op", "label", "run", "reads", "writes", "frees")

    def __init__(self, op: str, label: str, run, reads: tuple, writes: tuple) -> None:
        self.op, self.label, self.run, self.reads, self.writes = op, label, run, reads, writes
        self.frees: tuple = ()


def _toposort(outputs: list[MLOperand]) -> list:
    """Nodes reachable from ``outputs``, each after the nodes it reads (iterative DFS)."""
    order, done, active = [], set(), set()
    for root in outputs:
        stack = [(root.node, False)]
        while stack:
            node, expanded = stack.pop()
            if node is None or id(node) in done:
                continue
            if expanded:
                active.discard(id(node))
                done.add(id(node))
                order.append(node)
                continue
            active.add(id(node))
            stack.append((node, True))
            for x in node.inputs:
                if x.node is not None and id(x.node) not in done:
                    stack.append((x.node, False))
    return order


def _build_constants(fn, found: list, depth: int = 0) -> list:
    """The BuildConstants (index maps, masks) a step's function holds, through nested closures."""
    if depth > 4:
        return found
    stack = [c.cell_contents for c in (getattr(fn, "__closure__", None) or ()) if _filled(c)]
    while stack:
        value = stack.pop()
        if isinstance(value, BuildConstant):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            stack.extend(value)
        elif callable(value) and getattr(value, "__closure__", None):
            _build_constants(value, found, depth + 1)
    return found


def _filled(cell) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


def compile_graph(builder, outputs: dict):
    ctx = builder.context
    nodes = fuse(_toposort(list(outputs.values())), list(outputs.values()))
    slots: dict[int, int] = {}
    inputs: dict[str, tuple] = {}
    constants: dict[int, Tensor] = {}

    def slot(x: MLOperand) -> int:
        key = id(x)
        if key not in slots:
            slots[key] = len(slots)
            if x.kind == "input":
                inputs[x.name] = (slots[key], x.dtype, tuple(x._shape))
            elif x.kind == "constant":
                if x.constant_tensor is not None:
                    constants[slots[key]] = x.constant_tensor._tensor
                else:
                    constants[slots[key]] = upload(x.value, x.dtype.storage, ctx.device)
        return slots[key]

    steps = []
    for node in nodes:
        for const in _build_constants(node.run, []):
            const.on(ctx.device)  # the op's build-time data goes to the device now, not on first dispatch
        reads = tuple(slot(x) for x in node.inputs)
        writes = tuple(slot(x) for x in node.outputs)
        steps.append(Step(node.op, node.label, node.run, reads, writes))
    out_slots = {name: slot(x) for name, x in outputs.items()}
    out_desc = {name: (x.dtype, tuple(x._shape)) for name, x in outputs.items()}
    # a slot dies after its last reader, unless it is an output or a constant
    keep = set(out_slots.values()) | set(constants)
    last = {}
    for i, s in enumerate(steps):
        for r in s.reads:
            last[r] = i
    for r, i in last.items():
        if r not in keep:
            steps[i].frees += (r,)
    return MLGraph(ctx, steps, inputs, out_slots, out_desc, constants, len(slots))


class _Body:
    """What the compiled function evaluates: the steps, the constants and the slots (no back-reference
    to the MLGraph, so the graph, its compiled function and its plans form no reference cycle)."""

    __slots__ = ("steps", "inputs", "out_slots", "constants", "n_slots")

    def __init__(self, steps, inputs, out_slots, constants, n_slots) -> None:
        self.steps, self.inputs, self.out_slots = steps, inputs, out_slots
        self.constants, self.n_slots = constants, n_slots

    def evaluate(self, inputs: dict) -> dict:
        """Each step in order on the slots it reads: {input name: Tensor} -> {output name: Tensor}."""
        env: list = [None] * self.n_slots
        for s, t in self.constants.items():
            env[s] = t
        for name, (s, _, _) in self.inputs.items():
            env[s] = inputs[name]
        for step in self.steps:
            result = step.run(*[env[r] for r in step.reads])
            if len(step.writes) == 1:
                env[step.writes[0]] = result
            else:
                for w, t in zip(step.writes, result):
                    env[w] = t
            for f in step.frees:
                env[f] = None
        return {name: env[s] for name, s in self.out_slots.items()}


def _write(dst: Tensor, src: Tensor) -> None:
    """``dst[...] = src``: a buffer-to-buffer copy where the backend records one (both contiguous, one
    dtype, 4-byte aligned), else ``ops.copy_`` (a copy kernel; the CPU backend copies in numpy)."""
    from .. import ops

    backend = dst.storage.backend
    isz = dst.dtype.itemsize
    lo, n = dst.offset * isz, dst.size * isz
    if (
        hasattr(backend, "copy")
        and src.storage.backend is backend
        and src.storage.handle is not dst.storage.handle  # WebGPU copies between two buffers only
        and src.dtype is dst.dtype
        and src.shape == dst.shape
        and src.is_contiguous
        and dst.is_contiguous
        and n % 4 == 0
        and lo % 4 == 0
        and (src.offset * isz) % 4 == 0
    ):
        if n:
            backend.copy(src.storage.handle, src.offset * isz, dst.storage.handle, lo, n)
    else:
        ops.copy_(dst, src)


def _graph_function(body: _Body, name: str):
    """The function ``accelkit.graph.compile`` captures: with ``outputs`` it copies each result into
    the given output Tensor (an in-place write into a device argument, which a replay copies back)
    and returns nothing; without, it returns the results."""

    def webnn_graph(inputs: dict, outputs: dict | None = None):
        results = body.evaluate(inputs)
        if outputs is None:
            return results
        for n, t in outputs.items():
            _write(t, results[n])
        return None

    webnn_graph.__qualname__ = webnn_graph.__name__ = name
    return webnn_graph


#: distinct sets of MLTensors a graph keeps validated and bound (their buffers bound into a variant
#: of its plan: bind groups only); a set beyond these is validated on every dispatch and replayed
#: through the plan's own input buffers (copied in and back)
BOUND_SETS = 16


class _Binding:
    """One distinct set of MLTensors a graph is dispatched with: validated once, then dispatched as a
    ``BoundCall`` of the graph's compiled function (from its second dispatch on, a replay with the
    tensors' buffers bound directly: nothing copied in or out). Holds the MLTensors weakly (their
    accelkit Tensors strongly, as the plan variant binds their buffers): a binding of a tensor that
    died or was destroyed is dropped."""

    __slots__ = ("refs", "call")

    def __init__(self, graph: MLGraph, inputs: dict, outputs: dict) -> None:
        self.refs = tuple(weakref.ref(t) for t in (*inputs.values(), *outputs.values()))
        self.call = graph._compiled.bound(
            {name: inputs[name]._tensor for name in graph._in_desc},
            {name: outputs[name]._tensor for name in graph._out_desc},
        )

    def holds(self, inputs: dict, outputs: dict) -> bool:
        """Still the very tensors given (same objects, none destroyed)."""
        refs = iter(self.refs)
        for named in (inputs, outputs):
            for t in named.values():
                if next(refs)() is not t or t.destroyed:
                    return False
        return True

    @property
    def dead(self) -> bool:
        return any((t := r()) is None or t.destroyed for r in self.refs)


def binding_key(inputs: dict, outputs: dict) -> tuple:
    """What a dispatch's tensors are looked up by: names and object ids, in the dicts' order."""
    return (*inputs, *map(id, inputs.values()), None, *outputs, *map(id, outputs.values()))


class MLGraph:
    """A compiled graph: dispatch it with ``context.dispatch(graph, inputs, outputs)``; ``run`` is the
    underlying function of accelkit Tensors ({name: Tensor} -> {name: Tensor}).

    ``plans`` lists the compiled function's plans (a ``Plan`` per tensor layout, or an ``EagerEntry``
    with the reason a layout cannot replay); ``last`` says what the latest dispatch did
    ("captured plan #1, 14 dispatches", "replayed plan #1, 14 dispatches", "eager (compile is off)").
    """

    def __init__(self, context, steps, inputs, out_slots, out_desc, constants, n_slots) -> None:
        from ..graph import compile as compile_plan

        self.context = context
        self.steps = steps
        self._inputs = inputs  # name -> (slot, DataType, shape)
        self._in_desc = {n: (dt, s) for n, (_, dt, s) in inputs.items()}  # name -> (DataType, shape)
        self._out_slots = out_slots
        self._out_desc = out_desc  # name -> (DataType, shape)
        self._constants = constants
        self._n_slots = n_slots
        self.destroyed = False
        self._body = _Body(steps, inputs, out_slots, constants, n_slots)
        name = f"MLGraph({', '.join(inputs)}) -> ({', '.join(out_slots)})"
        # one compiled function per graph for run, compute and dispatches beyond BOUND_SETS; its
        # signature is the tensors' shapes, dtypes and layout (fixed by the graph, so one plan for the
        # tensors-in-tensors-out call, one for compute)
        self._compiled = compile_plan(_graph_function(self._body, name), device=context.device)
        # dispatch: per distinct set of MLTensors, its validation and its bound call (``_Binding``)
        self._bindings: dict[tuple, _Binding] = {}

    @property
    def input_descriptors(self) -> dict:
        return {n: {"data_type": dt.name, "shape": list(s)} for n, (_, dt, s) in self._inputs.items()}

    @property
    def output_descriptors(self) -> dict:
        return {n: {"data_type": dt.name, "shape": list(s)} for n, (dt, s) in self._out_desc.items()}

    @property
    def plans(self) -> list:
        """The compiled function's plans: ``Plan`` (replayed) or ``EagerEntry`` (with its reason)."""
        return self._compiled.plans

    @property
    def plan_bytes(self) -> int:
        """Device bytes held by the graph's plans."""
        return self._compiled.plan_bytes

    @property
    def last(self) -> str:
        """What the latest dispatch, compute or run did ("replayed plan #1, 14 dispatches", ...)."""
        return self._compiled.last

    def run(self, inputs: dict) -> dict:
        """The graph as one compiled function: {input name: Tensor} -> {output name: Tensor} (inputs are
        not validated). Results are fresh Tensors: a later run never overwrites them."""
        self._check("run")
        return self._compiled({name: inputs[name] for name in self._inputs})

    def _bound(self, key: tuple, inputs: dict, outputs: dict) -> _Binding | None:
        """The binding of a validated set of MLTensors, made now if fewer than BOUND_SETS are held
        (after dropping those whose tensors died or were destroyed); None: dispatch without one."""
        for k in [k for k, b in self._bindings.items() if b.dead]:
            self._drop(k)  # lets their Tensors go
        if len(self._bindings) >= BOUND_SETS:
            return None
        binding = self._bindings[key] = _Binding(self, inputs, outputs)
        self.context._bound_graphs.add(self)
        return binding

    def _drop(self, key: tuple) -> None:
        binding = self._bindings.pop(key, None)
        if binding is not None:
            binding.call.free()

    def _forget(self, tensor) -> None:
        """``tensor`` was destroyed: drop the bindings that hold it (their plan variants bind its buffer)."""
        for key in [k for k, b in self._bindings.items() if any(r() is tensor for r in b.refs)]:
            self._drop(key)

    def _dispatch(self, binding: _Binding | None, inputs: dict, outputs: dict) -> None:
        """Evaluate (or replay) writing each result into the output MLTensors (validated): through the
        tensors' binding, else as an ordinary call (Tensors in the graph's name order: its signature)."""
        if binding is not None:
            binding.call()
            return
        self._compiled(
            {name: inputs[name]._tensor for name in self._in_desc},
            {name: outputs[name]._tensor for name in self._out_desc},
        )

    def _run_host(self, arrays: dict) -> dict:
        """Evaluate (or replay) on host arrays of the inputs' storage dtypes (uploaded with one write each)."""
        return self._compiled({name: arrays[name] for name in self._inputs})

    def destroy(self) -> None:
        """Release the constants and the compiled plans; dispatching afterwards raises InvalidStateError."""
        self.destroyed = True
        self._compiled.free()
        for key in list(self._bindings):
            self._drop(key)
        self._body.steps, self._body.constants = [], {}
        self._constants = {}
        self.steps = []

    def _check(self, what: str) -> None:
        if self.destroyed:
            raise InvalidStateError(f"{what}: the MLGraph is destroyed")

    def summary(self) -> list[dict]:
        """One row per step: op, label, and how many values it reads and writes."""
        return [
            {"op": s.op, "label": s.label, "reads": len(s.reads), "writes": len(s.writes)} for s in self.steps
        ]

    def __repr__(self) -> str:
        ins = ", ".join(self._inputs)
        outs = ", ".join(self._out_slots)
        head = f"<MLGraph{' destroyed' if self.destroyed else ''} {len(self.steps)} steps on {self.context.device.spec}"
        if self.destroyed:
            return f"{head}: ({ins}) -> ({outs})>"
        from ..graph import EagerEntry

        plans = self._compiled.plans
        n = sum(not isinstance(p, EagerEntry) for p in plans)
        eager = "".join(f"; eager #{p.number}: {p.reason}" for p in plans if isinstance(p, EagerEntry))
        return f"{head}: ({ins}) -> ({outs}); {n} plan(s){eager}; last: {self._compiled.last}>"
