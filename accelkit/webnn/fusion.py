"""Fuse neighbouring operators of a built graph where the backend has a fused kernel.

- ``matmul -> add(bias of shape (N,)) [-> gelu | relu | tanh]`` becomes one
  ``accelkit.ops.matmul(a, b, bias=..., activation=...)`` (the bias and activation run in the
  matmul's epilogue);
- ``add(x, r) -> layer_normalization`` over the last axis becomes one
  ``accelkit.ops.layer_norm(x, scale, bias, eps, residual=r)``.

A producer is folded only when its output has no other reader and is not a graph output, so every
value the graph exposes is still computed. The fused node takes the place of the last node it
replaces, which keeps the list in topological order.
"""

from __future__ import annotations

from collections import Counter

from .. import ops
from .operand import MLOperand, Node

ACTIVATIONS = ("gelu", "relu", "tanh")


def _readers(nodes: list[Node], outputs: list[MLOperand]) -> Counter:
    count = Counter(id(x) for n in nodes for x in n.inputs)
    for x in outputs:
        count[id(x)] += 1  # a graph output is read by the caller
    return count


def _sole_reader(x: MLOperand, readers: Counter, consumers: dict) -> Node | None:
    if readers[id(x)] != 1:
        return None
    return consumers.get(id(x))


def fuse(nodes: list[Node], outputs: list[MLOperand]) -> list[Node]:
    """The nodes with fusable neighbours merged (same order otherwise)."""
    readers = _readers(nodes, outputs)
    consumers = {id(x): n for n in nodes for x in n.inputs}
    removed: set[int] = set()
    replaced: dict[int, Node] = {}

    for node in nodes:
        if node.op == "matmul" and id(node) not in removed:
            _fuse_matmul(node, readers, consumers, removed, replaced)
        elif node.op == "layer_normalization":
            _fuse_residual_layer_norm(node, readers, removed, replaced)
    return [replaced.get(id(n), n) for n in nodes if id(n) not in removed]


def _fuse_matmul(mm: Node, readers, consumers, removed, replaced) -> None:
    m = mm.outputs[0]
    add = _sole_reader(m, readers, consumers)
    if add is None or add.op != "add" or id(add) in replaced:
        return
    bias = add.inputs[1] if add.inputs[0] is m else add.inputs[0]
    if bias is m or bias._shape != (m._shape[-1],) or bias.dtype is not m.dtype:
        return
    if add.outputs[0]._shape != m._shape:
        return
    last, activation = add, None
    act = _sole_reader(add.outputs[0], readers, consumers)
    if act is not None and act.op in ACTIVATIONS and id(act) not in replaced:
        last, activation = act, act.op
    a, b = mm.inputs

    def run(ta, tb, tc):
        return ops.matmul(ta, tb, bias=tc, activation=activation)

    fused = Node(
        "+".join(["matmul", "add"] + ([activation] if activation else [])), (a, b, bias), run, last.label
    )
    fused.outputs = last.outputs
    removed.add(id(mm))
    if last is not add:
        removed.add(id(add))
    replaced[id(last)] = fused


def _fuse_residual_layer_norm(ln: Node, readers, removed, replaced) -> None:
    attrs = ln.attrs
    x = ln.inputs[0]
    rank = len(x._shape)
    if attrs.get("axes") != (rank - 1,) or x.node is None or x.node.op != "add" or readers[id(x)] != 1:
        return
    add = x.node
    if id(add) in replaced or id(add) in removed:
        return
    h, r = add.inputs
    if h._shape != x._shape or r._shape != x._shape:
        return
    scale, bias, eps = attrs["scale"], attrs["bias"], attrs["epsilon"]
    inputs = (h, r) + tuple(p for p in (scale, bias) if p is not None)

    def run(th, tr, *rest):
        rest = list(rest)
        ts = rest.pop(0) if scale is not None else None
        tb = rest.pop(0) if bias is not None else None
        return ops.layer_norm(th, ts, tb, eps, residual=tr)

    fused = Node("add+layer_normalization", inputs, run, ln.label)
    fused.outputs = ln.outputs
    removed.add(id(add))
    replaced[id(ln)] = fused
