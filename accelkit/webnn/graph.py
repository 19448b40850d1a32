"""MLGraph: a built graph as a topologically sorted list of steps, run as ONE function of Tensors.

``compile_graph`` walks back from the outputs, fuses neighbours the backend has a fused kernel for
(``fusion.py``), orders the operators so each runs after its inputs, uploads the constants and the
ops' build-time data (index maps, masks) to the context's device once, and gives every value a slot. ``MLGraph.run``
takes {input name: accelkit Tensor} and returns {output name: Tensor}: each step calls its op
family's execution (``accelkit.ops`` and the WebNN primitives) on the slots it reads, and slots
are dropped after their last reader, so intermediates go back to the device's pool as the graph runs.
"""

from __future__ import annotations

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


class MLGraph:
    """A compiled graph: dispatch it with ``context.dispatch(graph, inputs, outputs)``; ``run`` is the
    underlying function of accelkit Tensors ({name: Tensor} -> {name: Tensor})."""

    def __init__(self, context, steps, inputs, out_slots, out_desc, constants, n_slots) -> None:
        self.context = context
        self.steps = steps
        self._inputs = inputs  # name -> (slot, DataType, shape)
        self._out_slots = out_slots
        self._out_desc = out_desc  # name -> (DataType, shape)
        self._constants = constants
        self._n_slots = n_slots
        self.destroyed = False

    @property
    def input_descriptors(self) -> dict:
        return {n: {"data_type": dt.name, "shape": list(s)} for n, (_, dt, s) in self._inputs.items()}

    @property
    def output_descriptors(self) -> dict:
        return {n: {"data_type": dt.name, "shape": list(s)} for n, (dt, s) in self._out_desc.items()}

    def run(self, inputs: dict) -> dict:
        """The graph as one function: {input name: Tensor} -> {output name: Tensor} (inputs are not validated)."""
        if self.destroyed:
            raise InvalidStateError("run: the MLGraph is destroyed")
        env: list = [None] * self._n_slots
        for s, t in self._constants.items():
            env[s] = t
        for name, (s, _, _) in self._inputs.items():
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
        return {name: env[s] for name, s in self._out_slots.items()}

    def destroy(self) -> None:
        """Release the constants; dispatching afterwards raises InvalidStateError."""
        self.destroyed = True
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
        state = " destroyed" if self.destroyed else ""
        ins = ", ".join(self._inputs)
        outs = ", ".join(self._out_slots)
        return f"<MLGraph{state} {len(self.steps)} steps on {self.context.device.spec}: ({ins}) -> ({outs})>"
