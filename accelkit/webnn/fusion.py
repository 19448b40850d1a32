"""Fuse neighbouring operators of a built graph where the backend has a fused kernel.

- ``matmul -> add(bias of shape (N,)) [-> gelu | relu | tanh]`` becomes one
  ``accelkit.ops.matmul(a, b, bias=..., activation=...)`` (the bias and activation run in the
  matmul's epilogue);
- ``add(x, r) -> layer_normalization`` over the last axis becomes one
  ``accelkit.ops.layer_norm(x, scale, bias, eps, residual=r)``;
- ``matmul(q, transpose(k)) [* c | / c] [+ mask] -> softmax(last axis) -> matmul(., v)`` (with k's
  last two dims swapped and c a scalar constant) becomes one
  ``accelkit.ops.scaled_dot_product_attention(q, k, v, mask, scale=c)``, the flash-style kernel
  that never writes the scores to memory.

A producer is folded only when its output has no other reader and is not a graph output, so every
value the graph exposes is still computed. The fused node takes the place of the last node it
replaces, which keeps the list in topological order.
"""

from __future__ import annotations

from collections import Counter

from .. import ops
from .operand import MLOperand, Node
from .ops.matmul import matmul_rows

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
        if node.op == "matmul":
            _fuse_attention(node, readers, removed, replaced)
    for node in nodes:
        if node.op == "matmul" and id(node) not in removed and id(node) not in replaced:
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
        return matmul_rows(ta, tb, bias=tc, activation=activation)

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


def _only(x: MLOperand, op: str, readers: Counter) -> Node | None:
    """The node making ``x`` when it is an ``op`` whose output nothing else reads."""
    node = x.node
    if node is None or node.op != op or readers[id(x)] != 1:
        return None
    return node


def _scalar_constant(x: MLOperand) -> float | None:
    if x.kind == "constant" and x.value is not None and x.value.size == 1 and x.dtype.is_float:
        return float(x.value.reshape(-1)[0])
    return None


def _fuse_attention(out_mm: Node, readers, removed, replaced) -> None:
    probs, v = out_mm.inputs
    soft = _only(probs, "softmax", readers)
    if soft is None or soft.attrs.get("axis") != len(probs._shape) - 1 or len(probs._shape) < 2:
        return
    chain = [soft]
    scores = soft.inputs[0]
    mask = None
    node = _only(scores, "add", readers)
    if node is not None:
        a, b = node.inputs
        scored = next(
            (x for x in (a, b) if x.node is not None and x.node.op in ("mul", "div", "matmul")), None
        )
        if scored is None:
            return
        mask = b if scored is a else a
        chain.append(node)
        scores = scored
    scale = 1.0
    for op in ("mul", "div"):
        node = _only(scores, op, readers)
        if node is None:
            continue
        a, b = node.inputs
        c = _scalar_constant(b)
        if c is None and op == "mul":
            c, a = _scalar_constant(a), b
        if c is None or c == 0.0:
            return
        scale = c if op == "mul" else 1.0 / c
        chain.append(node)
        scores = a
        break
    mm = _only(scores, "matmul", readers)
    if mm is None:
        return
    q, kt = mm.inputs
    tr = _only(kt, "transpose", readers)
    rank = len(kt._shape)
    if tr is None or rank < 2:
        return
    perm = tr.attrs.get("permutation")
    if perm != tuple(range(rank - 2)) + (rank - 1, rank - 2):
        return
    k = tr.inputs[0]
    if len({q.dtype, k.dtype, v.dtype}) != 1 or not q.dtype.is_float:
        return
    if len(q._shape) != len(k._shape) or len(v._shape) != len(k._shape):
        return
    if mask is not None and (mask.dtype is not q.dtype or len(mask._shape) > len(q._shape)):
        return
    inputs = (q, k, v) + ((mask,) if mask is not None else ())

    def run(tq, tk, tv, tm=None):
        return ops.scaled_dot_product_attention(tq, tk, tv, attn_mask=tm, scale=scale)

    fused = Node("attention", inputs, run, out_mm.label)
    fused.outputs = out_mm.outputs
    for node in chain + [mm, tr]:
        removed.add(id(node))
    replaced[id(out_mm)] = fused
