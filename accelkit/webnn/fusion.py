"""Fuse neighbouring operators of a built graph where the backend has a fused kernel.

- ``matmul -> add(bias of shape (N,)) [-> gelu | relu | tanh]`` becomes one
  ``accelkit.ops.matmul(a, b, bias=..., activation=...)`` (the bias and activation run in the
  matmul's epilogue);
- ``add(x, r) -> layer_normalization`` over the last axis becomes one
  ``accelkit.ops.layer_norm(x, scale, bias, eps, residual=r)``;
- ``matmul(q, transpose(k)) [* c | / c] [+ mask] -> softmax(last axis) -> matmul(., v)`` (with k's
  last two dims swapped and c a scalar constant) becomes one
  ``accelkit.ops.scaled_dot_product_attention(q, k, v, mask, scale=c)``, the flash-style kernel
  that never writes the scores to memory; a ``transpose`` of its result that nothing else reads is
  folded in too (the kernel writes the heads straight into the transposed layout, e.g. (B, T, H, D),
  so the usual ``reshape`` to (B, T, C) afterwards is a view, not a copy);
- matmuls (each possibly fused with its bias and activation as above) that read the same input and
  multiply it by 2-D constants with the same inner size become ONE matmul against the constants
  concatenated along N (and their biases likewise), built once at ``build()``; each former result is
  a column slice of it (a strided view: the reshapes and transposes after q/k/v projections stay views).
  Every output column is the same dot product as before, so the results agree within matmul's own
  tolerance (the kernel may pick another tile or split-K for the wider matrix).

A producer is folded only when its output has no other reader and is not a graph output, so every
value the graph exposes is still computed. The fused node takes the place of the last node it
replaces, which keeps the list in topological order.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from .. import ops
from ..tensor.tensor import Tensor
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
            _fuse_attention(node, readers, consumers, removed, replaced)
    for node in nodes:
        if node.op == "matmul" and id(node) not in removed and id(node) not in replaced:
            _fuse_matmul(node, readers, consumers, removed, replaced)
        elif node.op == "layer_normalization":
            _fuse_residual_layer_norm(node, readers, removed, replaced)
    fused = [replaced.get(id(n), n) for n in nodes if id(n) not in removed]
    return _merge_shared_input_matmuls(fused, {id(x) for x in outputs})


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
    fused.attrs = {"activation": activation}
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


def _fuse_attention(out_mm: Node, readers, consumers, removed, replaced) -> None:
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
    last, inverse = out_mm, None
    after = _sole_reader(out_mm.outputs[0], readers, consumers)
    if after is not None and after.op == "transpose":  # write the heads straight into that layout
        perm = after.attrs["permutation"]
        inverse = tuple(sorted(range(len(perm)), key=perm.__getitem__))
        last = after
        chain.append(out_mm)

    def run(tq, tk, tv, tm=None):
        if inverse is None:
            return ops.scaled_dot_product_attention(tq, tk, tv, attn_mask=tm, scale=scale)
        shape = last.outputs[0]._shape
        y = Tensor.empty(shape, tq.dtype, tq.device)
        ops.scaled_dot_product_attention(tq, tk, tv, attn_mask=tm, scale=scale, out=y.permute(*inverse))
        return y

    fused = Node("attention" if inverse is None else "attention+transpose", inputs, run, last.label)
    fused.outputs = last.outputs
    for node in chain + [mm, tr]:
        removed.add(id(node))
    replaced[id(last)] = fused


def _linear_parts(node: Node):
    """(input, 2-D constant weight, constant bias or None, activation) of a matmul (+ add + activation)
    node whose weight and bias are constants with values known at build time, else None."""
    if node.op == "matmul":
        (a, b), bias, activation = node.inputs, None, None
    elif node.op.startswith("matmul+add") and "activation" in node.attrs:
        (a, b, bias), activation = node.inputs, node.attrs["activation"]
    else:
        return None
    if len(b._shape) != 2 or len(a._shape) < 2 or b.kind != "constant" or b.value is None:
        return None
    if bias is not None and (bias.kind != "constant" or bias.value is None):
        return None
    return a, b, bias, activation


def _merge_shared_input_matmuls(nodes: list[Node], graph_outputs: set) -> list[Node]:
    """Matmuls of one input by constants of one inner size (q, k, v projections) as ONE matmul against
    the constants concatenated along N, placed where the first of them was; each result a column view."""
    groups: dict[tuple, list] = {}
    for node in nodes:
        parts = _linear_parts(node)
        if parts is None or any(id(x) in graph_outputs for x in node.outputs):
            continue
        a, b, bias, activation = parts
        key = (id(a), b._shape[0], b.dtype, activation, bias is None)
        groups.setdefault(key, []).append((node, parts))
    merged: dict[int, Node] = {}
    removed: set[int] = set()
    for members in groups.values():
        if len(members) < 2:
            continue
        a, b0, _, activation = members[0][1]
        widths = [parts[1]._shape[1] for _, parts in members]
        builder = b0.builder
        weight = MLOperand(builder, b0.dtype, (b0._shape[0], sum(widths)), kind="constant")
        weight.value = np.concatenate([parts[1].value for _, parts in members], axis=1)
        inputs = [a, weight]
        if members[0][1][2] is not None:
            bias = MLOperand(builder, b0.dtype, (sum(widths),), kind="constant")
            bias.value = np.concatenate([parts[2].value.reshape(-1) for _, parts in members])
            inputs.append(bias)
        starts = np.cumsum([0] + widths[:-1]).tolist()

        def run(ta, tw, tb=None, starts=tuple(starts), widths=tuple(widths), activation=activation):
            y = matmul_rows(ta, tw, bias=tb, activation=activation)
            lead = y.strides[:-1]
            return tuple(
                Tensor(y.storage, y.shape[:-1] + (w,), lead + (y.strides[-1],), y.offset + s, y.dtype)
                for s, w in zip(starts, widths)
            )

        node = Node(
            f"{members[0][0].op} x{len(members)} (one input)",
            tuple(inputs),
            run,
            ", ".join(m.label for m, _ in members if m.label),
        )
        node.outputs = [m.outputs[0] for m, _ in members]
        merged[id(members[0][0])] = node
        removed.update(id(m) for m, _ in members[1:])
    if not merged:
        return nodes
    return [merged.get(id(n), n) for n in nodes if id(n) not in removed]
