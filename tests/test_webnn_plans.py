"""WebNN graphs run as compiled plans: the first dispatch captures, later ones replay, exactly as eagerly.

Each MLGraph owns one ``accelkit.graph.compile`` function; these tests check that dispatch, compute
and run go through it (replayed on WebGPU, eager on the CPU), that replays equal eager dispatches bit
for bit over changing inputs, that results land in the output MLTensors named (and in the buffers
of tensors shared with accelkit), that held results survive later dispatches, that
``ak.options(compile=False)`` runs eagerly, that a step reading back to the host falls back to eager
with its reason shown, and that destroying a graph frees its plans.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest

import accelkit as ak
from accelkit import webnn
from accelkit.graph import EagerEntry, Plan

F32 = "float32"


def desc(shape, **flags) -> dict:
    return {"data_type": F32, "shape": list(shape), **flags}


def block(ctx, rng):
    """x (5, 7), r (5, 3) -> y = layer_norm(gelu(x @ w + b) + r), p = softmax(x @ w, 1), z = y - p."""
    g = webnn.MLGraphBuilder(ctx)
    x = g.input("x", desc((5, 7)))
    r = g.input("r", desc((5, 3)))
    w = g.constant(desc((7, 3)), rng.standard_normal((7, 3)).astype(np.float32))
    b = g.constant(desc((3,)), rng.standard_normal(3).astype(np.float32))
    h = g.gelu(g.add(g.matmul(x, w), b))
    y = g.layer_normalization(g.add(h, r), axes=[1], epsilon=1e-5)
    p = g.softmax(g.matmul(x, w), 1)
    return g.build({"y": y, "p": p, "z": g.sub(y, p)})


def tensors(ctx, names_shapes: dict, **flags) -> dict:
    return {n: ctx.create_tensor(desc(s, **flags)) for n, s in names_shapes.items()}


OUT = {"y": (5, 3), "p": (5, 3), "z": (5, 3)}


def dispatch_read(ctx, graph, ins: dict, outs: dict) -> dict:
    ctx.dispatch(graph, ins, outs)
    return {n: ctx.read_tensor(t) for n, t in outs.items()}


def fresh_inputs(ctx, rng) -> tuple[dict, dict]:
    arrays = {"x": rng.standard_normal((5, 7)), "r": rng.standard_normal((5, 3))}
    ins = tensors(ctx, {"x": (5, 7), "r": (5, 3)}, writable=True)
    for n, a in arrays.items():
        ctx.write_tensor(ins[n], a)
    return arrays, ins


# ----------------------------------------------------------------------------------- replay == eager
def test_dispatch_replays_and_equals_eager_exactly_over_changing_inputs(dev, rng):
    ctx = webnn.ml.create_context(device=dev)
    graph = block(ctx, rng)
    replays = dev.runtime.replays
    ins = tensors(ctx, {"x": (5, 7), "r": (5, 3)}, writable=True)
    outs = tensors(ctx, OUT, readable=True)
    eager_outs = tensors(ctx, OUT, readable=True)
    for i in range(6):
        for n, shape in (("x", (5, 7)), ("r", (5, 3))):
            ctx.write_tensor(ins[n], rng.standard_normal(shape) * (i + 1))
        got = dispatch_read(ctx, graph, ins, outs)
        if replays:
            assert graph.last.startswith("captured plan #1" if i == 0 else "replayed plan #1"), graph.last
        else:
            assert graph.last == f"eager ({dev.spec} runs compiled calls eagerly)"
        with ak.options(compile=False):
            want = dispatch_read(ctx, graph, ins, eager_outs)
        assert graph.last == "eager (compile is off)"
        for n in OUT:
            assert np.array_equal(got[n], want[n]), (i, n)
        assert not np.array_equal(got["y"], got["p"])
    plans = [p for p in graph.plans if isinstance(p, Plan)]
    if replays:
        assert len(plans) == 1 and plans[0].replays == 5
        assert "1 plan(s); last: eager (compile is off)" in repr(graph)
        ctx.dispatch(graph, ins, outs)
        assert repr(graph).endswith(f"last: replayed plan #1, {plans[0].stats.dispatches} dispatches>")
    else:
        assert graph.plans == []


def test_compute_and_run_replay_too_and_agree_with_dispatch(dev, rng):
    ctx = webnn.ml.create_context(device=dev)
    graph = block(ctx, rng)
    outs = tensors(ctx, OUT, readable=True)
    for i in range(3):
        arrays, ins = fresh_inputs(ctx, rng)
        by_dispatch = dispatch_read(ctx, graph, ins, outs)
        by_compute = ctx.compute(graph, arrays)
        compute_last = graph.last
        by_run = graph.run({n: t.to_accelkit() for n, t in ins.items()})
        for n in OUT:
            assert np.array_equal(by_compute[n], by_dispatch[n])
            assert np.array_equal(by_run[n].numpy(), by_dispatch[n])
        if dev.runtime.replays and i > 0:
            assert compute_last.startswith("replayed") and graph.last.startswith("replayed")
    if dev.runtime.replays:  # tensors-into-tensors, host arrays in, tensors in and out: a plan each
        assert sum(isinstance(p, Plan) for p in graph.plans) == 3


# ----------------------------------------------------------------------------------- where results go
def test_outputs_land_in_the_mltensors_named_whichever_tensors_are_passed(dev, rng):
    ctx = webnn.ml.create_context(device=dev)
    g = webnn.MLGraphBuilder(ctx)
    a, b = g.input("a", desc((4, 6))), g.input("b", desc((4, 6)))
    graph = g.build({"sum": g.add(a, b), "diff": g.sub(a, b)})
    t = tensors(ctx, {"t1": (4, 6), "t2": (4, 6)}, writable=True)
    o = tensors(ctx, {"o1": (4, 6), "o2": (4, 6), "o3": (4, 6)}, readable=True)
    x1, x2 = rng.standard_normal((2, 4, 6)).astype(np.float32)
    ctx.write_tensor(t["t1"], x1)
    ctx.write_tensor(t["t2"], x2)
    cases = [
        ({"a": t["t1"], "b": t["t2"]}, {"sum": o["o1"], "diff": o["o2"]}, x1, x2),
        ({"a": t["t2"], "b": t["t1"]}, {"sum": o["o2"], "diff": o["o3"]}, x2, x1),
        ({"a": t["t1"], "b": t["t2"]}, {"sum": o["o3"], "diff": o["o1"]}, x1, x2),
    ]
    for ins, outs, xa, xb in cases:
        before = {n: ctx.read_tensor(v) for n, v in o.items()}
        ctx.dispatch(graph, ins, outs)
        assert np.array_equal(ctx.read_tensor(outs["sum"]), xa + xb)
        assert np.array_equal(ctx.read_tensor(outs["diff"]), xa - xb)
        written = {id(v) for v in outs.values()}
        for n, v in o.items():  # the MLTensor not given as an output is untouched
            if id(v) not in written:
                assert np.array_equal(ctx.read_tensor(v), before[n])
    if dev.runtime.replays:
        assert graph.last.startswith("replayed plan #1")


def test_outputs_are_written_into_a_shared_accelkit_tensors_buffer(dev, rng):
    """No rebinding: an output MLTensor made with ``tensor_from`` keeps the buffer the model reads."""
    ctx = webnn.ml.create_context(device=dev)
    g = webnn.MLGraphBuilder(ctx)
    x = g.input("x", desc((3, 5)))
    graph = g.build({"y": g.relu(x)})
    shared = ak.tensor(np.zeros((3, 5), np.float32), device=dev)
    handle = shared.storage.handle
    tx = ctx.tensor_from(ak.tensor(np.zeros((3, 5), np.float32), device=dev))
    ty = ctx.tensor_from(shared)
    for _ in range(3):
        xa = rng.standard_normal((3, 5)).astype(np.float32)
        ctx.write_tensor(tx, xa)
        ctx.dispatch(graph, {"x": tx}, {"y": ty})
        assert ty.to_accelkit() is shared and shared.storage.handle is handle
        assert np.array_equal(shared.numpy(), np.maximum(xa, 0))


def test_held_results_are_not_overwritten_by_later_dispatches(dev, rng):
    ctx = webnn.ml.create_context(device=dev)
    graph = block(ctx, rng)
    held, runs = [], []
    for _ in range(4):
        arrays, ins = fresh_inputs(ctx, rng)
        outs = tensors(ctx, OUT, readable=True)
        held.append((outs, dispatch_read(ctx, graph, ins, outs)))
        result = graph.run({n: t.to_accelkit() for n, t in ins.items()})
        runs.append((result, {n: v.numpy() for n, v in result.items()}))
    for outs, values in held:
        for n, t in outs.items():
            assert np.array_equal(ctx.read_tensor(t), values[n])
    for result, values in runs:
        for n, t in result.items():
            assert np.array_equal(t.numpy(), values[n])
    assert not np.array_equal(held[0][1]["y"], held[1][1]["y"])


# ----------------------------------------------------------------------------------- eager fallbacks
def test_compile_off_runs_eagerly_and_equals_compile_on(dev, rng):
    ctx = webnn.ml.create_context(device=dev)
    graph = block(ctx, rng)
    arrays, ins = fresh_inputs(ctx, rng)
    on = dispatch_read(ctx, graph, ins, tensors(ctx, OUT, readable=True))
    on = dispatch_read(ctx, graph, ins, tensors(ctx, OUT, readable=True))  # replayed where it replays
    plans = len(graph.plans)
    with ak.options(compile=False):
        off = dispatch_read(ctx, graph, ins, tensors(ctx, OUT, readable=True))
        assert graph.last == "eager (compile is off)"
        off_compute = ctx.compute(graph, arrays)
        assert graph.last == "eager (compile is off)"
    assert len(graph.plans) == plans  # nothing captured while off
    for n in OUT:
        assert np.array_equal(on[n], off[n]) and np.array_equal(off_compute[n], off[n])


def test_a_step_that_reads_back_falls_back_to_eager_with_the_reason_shown(webgpu, rng):
    ctx = webnn.ml.create_context(device=webgpu)
    graph = block(ctx, rng)
    step = graph.steps[0]
    inner = step.run

    def reads_back(*args):
        args[0].numpy()  # a value read on the host in the middle of a run
        return inner(*args)

    step.run = reads_back
    arrays, ins = fresh_inputs(ctx, rng)
    outs = tensors(ctx, OUT, readable=True)
    first = dispatch_read(ctx, graph, ins, outs)
    second = dispatch_read(ctx, graph, ins, outs)
    [entry] = graph.plans
    assert isinstance(entry, EagerEntry) and "read" in entry.reason and entry.calls == 1
    assert graph.last.startswith("eager #1: ") and f"eager #1: {entry.reason}" in repr(graph)
    step.run = inner
    with ak.options(compile=False):
        want = dispatch_read(ctx, graph, ins, tensors(ctx, OUT, readable=True))
    for n in OUT:
        assert np.array_equal(first[n], want[n]) and np.array_equal(second[n], want[n])


# ----------------------------------------------------------------------------------- memory
def test_a_destroyed_graph_frees_its_plans_and_device_bytes_return_to_baseline(webgpu, rng):
    ctx = webnn.ml.create_context(device=webgpu)
    arrays, ins = fresh_inputs(ctx, rng)
    outs = tensors(ctx, OUT, readable=True)
    block(ctx, rng).destroy()  # the ops' build-time data, cached per dev, is made before the baseline
    gc.collect()
    base = webgpu.memory()
    graph = block(ctx, rng)
    for _ in range(3):
        ctx.dispatch(graph, ins, outs)
        ctx.compute(graph, arrays)
    plans = [p for p in graph.plans if isinstance(p, Plan)]
    mem = webgpu.memory()
    assert len(plans) == 2 and mem["plan_bytes"] - base["plan_bytes"] == graph.plan_bytes > 0
    graph.destroy()
    assert graph.plans == [] and not any(p.alive for p in plans)
    assert "destroyed" in repr(graph)
    with pytest.raises(webnn.InvalidStateError, match="destroyed"):
        ctx.dispatch(graph, ins, outs)
    del graph, plans
    gc.collect()
    mem = webgpu.memory()
    assert mem["plan_bytes"] == base["plan_bytes"] and mem["allocated_bytes"] == base["allocated_bytes"]


# ----------------------------------------------------------------------------------- dispatch's own costs
def test_a_bert_layer_graph_replays_no_more_dispatches_than_the_compiled_eager_layer(webgpu):
    """Issue 12: the WebNN graph of tiny-random-bert's layer 0 (q/k/v as three matmuls, heads split and
    merged with reshape/transpose) lowers to as few kernels as ``ak.compile`` of the model's own layer,
    and a dispatch writes the layer's output into the MLTensor."""
    from accelkit.bench.webnn import bert_layer_graph

    model = ak.load("tiny-random-bert", device=webgpu)
    x_np = np.random.default_rng(0).normal(0, 1, (1, 16, model.config.hidden_size)).astype(np.float32)
    ctx = webnn.ml.create_context(device=webgpu)
    graph = bert_layer_graph(ctx, model, x_np.shape)
    tx = ctx.create_tensor(desc(x_np.shape, writable=True))
    ty = ctx.create_tensor(desc(x_np.shape, readable=True))
    ctx.write_tensor(tx, x_np)
    layer = model.base.encoder.layer[0]
    compiled = ak.compile(lambda h: layer(h, None))
    x = ak.tensor(x_np, device=webgpu)
    for _ in range(3):
        ctx.dispatch(graph, {"x": tx}, {"y": ty})
        want = compiled(x).numpy()
    [mine] = [p for p in graph.plans if isinstance(p, Plan)]
    [theirs] = [p for p in compiled.plans if isinstance(p, Plan)]
    assert mine.stats.dispatches <= theirs.stats.dispatches, (graph.steps, mine, theirs)
    assert mine.stats.copies == 0  # the result is written by the last kernel, not copied
    assert graph.last.startswith("replayed plan #1")
    assert np.abs(ctx.read_tensor(ty) - want).max() < 1e-5


def test_a_repeated_set_of_tensors_is_validated_once_and_bound(dev, rng, monkeypatch):
    """The spec's checks run the first time a set of MLTensors is dispatched; later dispatches with the
    same objects only check that none was destroyed, and (where plans replay) replay with the
    tensors' buffers bound: nothing copied in or back. Bad calls still raise the spec's errors."""
    ctx = webnn.ml.create_context(device=dev)
    graph = block(ctx, rng)
    checks = []
    validate = ctx._validate
    monkeypatch.setattr(ctx, "_validate", lambda *a: (checks.append(1), validate(*a)))
    be = dev.runtime
    replays = []
    if be.replays:
        replay = be.replay
        monkeypatch.setattr(be, "replay", lambda h, *io: (replays.append((h, io)), replay(h, *io)))
    arrays, ins = fresh_inputs(ctx, rng)
    outs = tensors(ctx, OUT, readable=True)
    for i in range(5):
        ctx.write_tensor(ins["x"], rng.standard_normal((5, 7)) * (i + 1))
        got = dispatch_read(ctx, graph, ins, outs)
        with ak.options(compile=False):
            want = dispatch_read(ctx, graph, ins, tensors(ctx, OUT, readable=True))
        for n in OUT:
            assert np.array_equal(got[n], want[n]), (i, n)
    assert len(checks) == 1 + 5  # the set once, and each eager comparison's fresh outputs
    if be.replays:
        [plan] = [p for p in graph.plans if isinstance(p, Plan)]
        bound = [io for h, io in replays if h is not plan.handle]
        assert len(bound) == 3  # the third dispatch on: replayed with the buffers bound
        assert all(io == ([], [], []) for io in bound)  # no upload, no copy in or back
        assert len(plan.handle.variants) == 1
    # the same dict of tensors, one of them destroyed: the spec's error, and the binding let go
    outs["p"].destroy()
    with pytest.raises(webnn.MLTypeError, match="destroyed"):
        ctx.dispatch(graph, ins, outs)
    if be.replays:
        assert plan.handle.variants == []
    # a tensor of the wrong shape in place of one of a validated set
    wrong = dict(outs, p=ctx.create_tensor(desc((3, 5), readable=True)))
    with pytest.raises(webnn.MLTypeError, match=r"output 'p' is float32\[3, 5\], the graph expects"):
        ctx.dispatch(graph, ins, wrong)
    with pytest.raises(webnn.MLTypeError, match="missing"):
        ctx.dispatch(graph, ins, {"y": outs["y"]})
    # a destroyed graph or context raises before any cached set is looked at
    fine = dict(outs, p=ctx.create_tensor(desc((5, 3), readable=True)))
    ctx.dispatch(graph, ins, fine)
    ctx.dispatch(graph, ins, fine)
    graph.destroy()
    with pytest.raises(webnn.InvalidStateError, match="MLGraph is destroyed"):
        ctx.dispatch(graph, ins, fine)


def test_sets_beyond_the_bound_ones_are_validated_every_time_and_still_right(dev, rng, monkeypatch):
    from accelkit.webnn import graph as graph_module

    monkeypatch.setattr(graph_module, "BOUND_SETS", 1)
    ctx = webnn.ml.create_context(device=dev)
    graph = block(ctx, rng)
    checks = []
    validate = ctx._validate
    monkeypatch.setattr(ctx, "_validate", lambda *a: (checks.append(1), validate(*a)))
    sets = [fresh_inputs(ctx, rng)[1] for _ in range(2)]
    outs = [tensors(ctx, OUT, readable=True) for _ in range(2)]
    for i in range(6):
        j = i % 2
        got = dispatch_read(ctx, graph, sets[j], outs[j])
        with ak.options(compile=False):
            want = dispatch_read(ctx, graph, sets[j], tensors(ctx, OUT, readable=True))
        for n in OUT:
            assert np.array_equal(got[n], want[n]), (i, n)
    assert len(graph._bindings) == 1
    assert len(checks) == 1 + 3 + 6  # the bound set once, the other every time, the eager comparisons
    # once the bound set's tensors are gone, a new set takes its place
    del sets[0], outs[0]
    gc.collect()
    ctx.dispatch(graph, sets[0], outs[0])
    assert len(graph._bindings) == 1 and next(iter(graph._bindings.values())).holds(sets[0], outs[0])
