"""Compiled execution (accelkit.graph): capture once, replay exactly, outputs stay valid, plans are bounded and freed."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import accelkit as ak
from accelkit.graph import Compiled, EagerEntry, Plan, compile, plan_memory


def gelu_softmax(x, w):
    y = ak.ops.gelu(x @ w)  # matmul, gelu
    return ak.ops.softmax(y * 2.0 + 1.0, axis=-1), y  # scalars are uploads baked as constants


def same(a, b) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(b))


@pytest.fixture
def w(webgpu, rng):
    return ak.tensor(rng.standard_normal((13, 7)).astype(np.float32), device=webgpu)


# ----------------------------------------------------------------------------------- replay == eager
def test_replay_equals_eager_exactly_over_many_calls(webgpu, w, rng):
    f = compile(gelu_softmax)
    for i in range(6):
        xa = rng.standard_normal((5, 13)).astype(np.float32)
        x = ak.tensor(xa, device=webgpu)
        got = f(x, w)
        want = gelu_softmax(x, w)
        assert f.last == ("captured plan #1, 5 dispatches" if i == 0 else "replayed plan #1, 5 dispatches")
        assert same(got[0], want[0]) and same(got[1], want[1])
        from_host = f(xa, w)  # a host array is its own signature: uploaded with one write per call
        assert same(from_host[0], want[0])
    assert f.captures == 2 and f.replayed == 10
    plan = next(p for p in f.plans if isinstance(p, Plan))
    assert plan.replays == 5 and plan.stats.dispatches == 5


def test_a_long_replay_submits_early_and_still_equals_eager(webgpu, rng):
    """A plan longer than the first early-submit point goes to the GPU in pieces (EARLY_SUBMITS),
    in order: the result is the eager one, bit for bit."""
    from accelkit.backends.webgpu import replay

    def chain(x):
        for i in range(60):  # 60 dispatches: past the 8- and 40-dispatch submit points
            x = x * 1.0001 + float(i % 3)
        return x

    f = compile(chain)
    xa = rng.standard_normal((7, 11)).astype(np.float32)
    f(ak.tensor(xa, device=webgpu))  # capture
    be = webgpu.runtime
    for k in range(3):
        x = ak.tensor(xa + k, device=webgpu)
        want = chain(x).numpy()
        before = be.submit_count
        got = f(x)
        assert f.last.startswith("replayed")
        assert be.submit_count - before >= 1 + sum(n < 60 for n in replay.EARLY_SUBMITS)
        assert same(got.numpy(), want)


def test_held_outputs_keep_their_values_after_later_replays(webgpu, w, rng):
    f = compile(gelu_softmax)
    held = []
    for _ in range(4):
        x = ak.tensor(rng.standard_normal((5, 13)).astype(np.float32), device=webgpu)
        held.append((f(x, w)[0], gelu_softmax(x, w)[0].numpy()))
    assert f.replayed == 3
    for out, want in held:
        assert same(out, want)


def test_outputs_are_new_tensors_each_replay(webgpu, w, rng):
    f = compile(gelu_softmax)
    x = ak.tensor(rng.standard_normal((5, 13)).astype(np.float32), device=webgpu)
    f(x, w)
    a, b = f(x, w)[0], f(x, w)[0]
    assert a.storage is not b.storage and same(a, b)


def test_views_of_one_value_share_one_fresh_buffer_and_keep_their_layout(webgpu, rng):
    def heads(x):
        y = x * 3.0
        return y[:, 1:], y.T, y

    f = compile(heads)
    x = ak.tensor(rng.standard_normal((4, 6)).astype(np.float32), device=webgpu)
    f(x)
    got, want = f(x), heads(x)
    assert f.replayed == 1
    assert got[0].storage is got[1].storage is got[2].storage
    for g, e in zip(got, want):
        assert g.shape == e.shape and g.strides == e.strides and same(g, e)


def test_an_output_that_views_an_argument_is_that_view_of_this_calls_argument(webgpu, rng):
    f = compile(lambda x: (x[1:], x + 1.0))
    x1 = ak.tensor(rng.standard_normal((3, 4)).astype(np.float32), device=webgpu)
    x2 = ak.tensor(rng.standard_normal((3, 4)).astype(np.float32), device=webgpu)
    f(x1)
    view, plus = f(x2)
    assert view.storage is x2.storage and same(view, x2.numpy()[1:]) and same(plus, x2.numpy() + 1.0)


def test_weights_and_other_outputs_that_existed_before_the_call_come_back_as_they_are(webgpu, w, rng):
    f = compile(lambda x: (x @ w, w, "tag"))  # w: made before the call, not an argument
    x = ak.tensor(rng.standard_normal((2, 13)).astype(np.float32), device=webgpu)
    f(x)
    _, w2, tag = f(x)
    assert w2 is w and tag == "tag" and f.replayed == 1


# ----------------------------------------------------------------------------------- signatures
def test_each_signature_captures_once(webgpu, w, rng):
    def fn(x, w, scale=1.0, bias=None):
        y = x @ w * scale
        return y if bias is None else y + bias

    f = compile(fn)
    x5 = ak.tensor(rng.standard_normal((5, 13)).astype(np.float32), device=webgpu)
    x6 = ak.tensor(rng.standard_normal((6, 13)).astype(np.float32), device=webgpu)
    b = ak.tensor(rng.standard_normal(7).astype(np.float32), device=webgpu)
    calls = [(x5, w), (x6, w), (x5, w, 2.0), (x5, w, 1.0, b), (x5.T.contiguous().T, w)]
    for args in calls * 2:
        assert same(f(*args), fn(*args))
    assert f.captures == 5 and f.replayed == 5
    assert f(x5, w, bias=b) is not None and f.captures == 6  # a keyword is its own place in the signature


def test_arguments_sharing_a_storage_are_part_of_the_signature(webgpu, rng):
    f = compile(lambda a, b: a + b)
    x = ak.tensor(rng.standard_normal(8).astype(np.float32), device=webgpu)
    y = ak.tensor(rng.standard_normal(8).astype(np.float32), device=webgpu)
    assert same(f(x, x), 2 * x.numpy())
    assert same(f(x, y), x.numpy() + y.numpy())  # not the (x, x) plan with one input buffer
    assert f.captures == 2


def test_unhashable_arguments_raise_input_error(webgpu, w):
    f = compile(lambda x, opts: x)
    with pytest.raises(ak.InputError, match="hashable"):
        f(w, bytearray(b"options"))
    assert compile(lambda x, opts: x)(w, {"a": [1, 2]}) is not None  # containers are structure, not values


def test_compile_checks_its_arguments():
    with pytest.raises(ak.InputError, match="callable"):
        compile(3)
    with pytest.raises(ak.InputError, match="max_plans"):
        compile(lambda x: x, max_plans=0)


# ----------------------------------------------------------------------------------- what cannot replay
def test_a_readback_inside_the_call_makes_the_signature_run_eagerly(webgpu, w, rng):
    def data_dependent(x):
        return x * 2.0 if float(x.numpy().sum()) > 0 else x * -2.0

    f = compile(data_dependent)
    for sign in (1.0, -1.0, 1.0):
        x = ak.tensor(sign * np.abs(rng.standard_normal(6)).astype(np.float32) + sign, device=webgpu)
        assert same(f(x), np.abs(x.numpy()) * 2.0)
    (entry,) = f.plans
    assert isinstance(entry, EagerEntry) and "reads" in entry.reason and entry.calls == 2
    assert f.last.startswith("eager #1") and f.replayed == 0


def test_a_computed_tensor_kept_without_being_returned_makes_it_run_eagerly(webgpu, rng):
    kept = []

    def leaky(x):
        kept.append(x * 2.0)
        return x + 1.0

    f = compile(leaky)
    x = ak.tensor(rng.standard_normal(4).astype(np.float32), device=webgpu)
    f(x)
    f(x)
    assert isinstance(f.plans[0], EagerEntry) and "kept after it" in f.plans[0].reason
    assert same(kept[-1], x.numpy() * 2.0)


def test_an_upload_into_an_earlier_tensor_makes_it_run_eagerly(webgpu, rng):
    state = ak.tensor(np.zeros(4, np.float32), device=webgpu)

    def writes_state(x, values):
        state.storage.backend.write(state.storage.handle, 0, np.asarray(values, np.float32))
        return x + state

    f = compile(writes_state)
    x = ak.tensor(rng.standard_normal(4).astype(np.float32), device=webgpu)
    for values in ((1, 2, 3, 4), (1, 2, 3, 4)):
        assert same(f(x, values), x.numpy() + np.float32([1, 2, 3, 4]))
    assert isinstance(f.plans[0], EagerEntry) and "pass that data as an input" in f.plans[0].reason


def test_a_constant_assigned_inside_the_call_is_baked(webgpu, rng):
    state = ak.tensor(np.zeros(4, np.float32), device=webgpu)

    def sets_state(x):
        state[:] = np.arange(4, dtype=np.float32)  # uploaded into a new buffer, then copied by a dispatch
        return x + state

    f = compile(sets_state)
    x = ak.tensor(rng.standard_normal(4).astype(np.float32), device=webgpu)
    f(x)
    state[:] = np.zeros(4, np.float32)
    assert same(f(x), x.numpy() + np.arange(4, dtype=np.float32)) and f.replayed == 1
    assert same(state, np.arange(4, dtype=np.float32))


# ----------------------------------------------------------------------------------- state and in-place
def test_in_place_writes_replay_into_state_and_back_into_device_arguments(webgpu, rng):
    state = ak.tensor(np.zeros(4, np.float32), device=webgpu)

    def step(x, acc):
        state[:] = state + x  # state made before the call: replays into the same buffer, as eagerly
        acc[:] = acc * 2.0  # a device argument written in place: copied back after the replay
        return state * 1.0

    f = compile(step)
    acc = ak.tensor(np.ones(4, np.float32), device=webgpu)
    total = np.zeros(4, np.float32)
    for i in range(4):
        xa = rng.standard_normal(4).astype(np.float32)
        total += xa
        out = f(ak.tensor(xa, device=webgpu), acc)
        assert same(out, total) and same(state, total)
        assert same(acc, np.full(4, 2.0 ** (i + 1), np.float32))
    assert f.replayed == 3


def _copy_into(dst, src) -> None:
    """``dst[...] = src`` as the backend's buffer-to-buffer copy (what WebNN's dispatch records)."""
    n = src.size * src.dtype.itemsize
    dst.storage.backend.copy(src.storage.handle, 0, dst.storage.handle, dst.offset * 4, n)


def test_a_result_copied_into_a_device_argument_is_written_there_by_its_kernel(webgpu, rng):
    """A final copy of a whole intermediate into a caller's buffer is dropped from the plan: the
    kernel that made it writes the caller's buffer instead. Not where the buffer is read while the
    intermediate lives, nor where the intermediate is read after the copy."""

    def into(x, out):
        _copy_into(out, ak.ops.gelu(x * 2.0))

    def read_meanwhile(x, out):
        y = x * 2.0
        z = y + out  # reads the destination while y lives
        _copy_into(out, y)
        return z

    def read_after(x, out):
        y = x * 2.0
        _copy_into(out, y)
        return y + 1.0  # reads y after the copy

    for fn, copies in ((into, 0), (read_meanwhile, 1), (read_after, 1)):
        f = compile(fn)
        for i in range(3):
            xa = rng.standard_normal((4, 6)).astype(np.float32)
            start = rng.standard_normal((4, 6)).astype(np.float32)
            out = ak.tensor(start, device=webgpu)
            got = f(ak.tensor(xa, device=webgpu), out)
            eager_out = ak.tensor(start, device=webgpu)
            want = fn(ak.tensor(xa, device=webgpu), eager_out)
            assert same(out, eager_out), (fn.__name__, i)
            if want is not None:
                assert same(got, want), (fn.__name__, i)
        [plan] = f.plans
        assert plan.stats.copies == copies, fn.__name__


def test_a_bound_call_replays_with_its_arguments_buffers_and_no_copies(webgpu, rng, monkeypatch):
    """``compiled.bound(*args)``: its second call on replays a plan variant that binds the arguments'
    own buffers (no copy in, no write back), and keeps working after the plan is dropped."""
    f = compile(lambda x, acc: (_copy_into(acc, acc * 0.5 + x), (x * 3.0).sum())[1])
    x = ak.tensor(rng.standard_normal(8).astype(np.float32), device=webgpu)
    acc = ak.tensor(np.zeros(8, np.float32), device=webgpu)
    call = f.bound(x, acc)
    be = webgpu.runtime
    seen = []
    replay = be.replay
    monkeypatch.setattr(be, "replay", lambda h, *io: (seen.append(io), replay(h, *io)))
    want = np.zeros(8, np.float32)
    for i in range(5):
        total = call()
        want = want * np.float32(0.5) + x.numpy()
        assert np.allclose(acc.numpy(), want) and np.isclose(total.item(), 3 * x.numpy().sum(), rtol=1e-5)
        if i == 3:
            f.free()  # the plan goes: the next call captures again, then binds again
    [plan] = f.plans
    assert f.replayed == 3 and f.captures == 2
    copies_in = [io[1] for io in seen]
    assert copies_in[0] != [] and copies_in[1] == copies_in[2] == []  # ordinary, then bound twice
    assert len(plan.handle.variants) == 0 and call._plan is None  # captured anew, bound next call
    call()
    assert len(plan.handle.variants) == 1
    call.free()
    assert plan.handle.variants == []


def test_a_bound_call_inside_another_capture_is_recorded_into_it(webgpu, rng):
    x = ak.tensor(rng.standard_normal(8).astype(np.float32), device=webgpu)
    acc = ak.tensor(np.zeros(8, np.float32), device=webgpu)
    call = compile(lambda x, acc: _copy_into(acc, acc * 0.5 + x)).bound(x, acc)
    for _ in range(3):
        call()  # bound from here on
    outer = compile(lambda y: (call(), y * 1.0)[1])
    y = ak.tensor(np.ones(2, np.float32), device=webgpu)
    want = acc.numpy()
    for _ in range(3):
        outer(y)
        want = want * np.float32(0.5) + x.numpy()
        assert np.allclose(acc.numpy(), want)
    assert outer.replayed == 2 and outer.plans[0].stats.dispatches == 3


def test_an_upload_into_a_tensor_the_call_also_computes_replays_from_a_baked_image(webgpu, rng):
    def mixed(x):
        t = ak.tensor(np.arange(8, dtype=np.float32), device=x.device)  # an upload inside the call
        t[2:6] = x * 10.0  # then computed into
        return t + 0.5

    f = compile(mixed)
    for _ in range(3):
        xa = rng.standard_normal(4).astype(np.float32)
        want = np.arange(8, dtype=np.float32)
        want[2:6] = xa * np.float32(10.0)
        assert same(f(ak.tensor(xa, device=webgpu)), want + np.float32(0.5))
    assert f.replayed == 2 and f.plans[0].stats.copies >= 1


# ----------------------------------------------------------------------------------- plans: bounds, memory, validity
def test_the_lru_bound_frees_the_least_recent_plan(webgpu, w, rng):
    f = compile(gelu_softmax, max_plans=2)
    xs = [ak.tensor(rng.standard_normal((n, 13)).astype(np.float32), device=webgpu) for n in (2, 3, 4)]
    for x in xs:
        f(x, w)
    assert len(f.plans) == 2 and [p.signature for p in f.plans] == [
        "(float32[3, 13], float32[13, 7])",
        "(float32[4, 13], float32[13, 7])",
    ]
    assert webgpu.memory()["plan_bytes"] >= f.plan_bytes > 0
    f(xs[0], w)  # evicted: captured anew
    assert f.captures == 4


def test_plans_are_freed_and_device_bytes_return_to_baseline(webgpu, w, rng):
    x = ak.tensor(rng.standard_normal((5, 13)).astype(np.float32), device=webgpu)
    gc.collect()
    base = webgpu.memory()
    f = compile(gelu_softmax)
    f(x, w)
    f(x, w)
    mem = webgpu.memory()
    assert mem["plan_bytes"] - base["plan_bytes"] == f.plan_bytes > 0
    plan = f.plans[0]
    assert plan.stats.slot_bytes < plan.stats.eager_peak_bytes
    f.free()
    assert f.plans == [] and not plan.alive
    mem = webgpu.memory()
    assert mem["plan_bytes"] == base["plan_bytes"] and mem["allocated_bytes"] == base["allocated_bytes"]
    f(x, w)  # and it captures again
    del f
    gc.collect()
    assert webgpu.memory()["allocated_bytes"] == base["allocated_bytes"]


def test_weights_bound_by_a_plan_stay_valid_after_their_tensor_dies(webgpu, rng):
    holder = {"w": ak.tensor(rng.standard_normal((13, 7)).astype(np.float32), device=webgpu)}
    f = compile(lambda x: x @ holder["w"])
    x = ak.tensor(rng.standard_normal((2, 13)).astype(np.float32), device=webgpu)
    want = f(x).numpy()
    gc.collect()
    before = webgpu.memory()["allocated_bytes"]
    handle, nbytes = holder["w"].storage.handle, holder["w"].storage.device_bytes
    del holder["w"]
    gc.collect()
    assert webgpu.memory()["allocated_bytes"] == before  # still bound by the plan: still counted
    junk = [ak.tensor(rng.standard_normal((13, 7)).astype(np.float32), device=webgpu) for _ in range(4)]
    assert all(j.storage.handle is not handle for j in junk)  # not back in the pool
    assert same(f(x), want)
    del junk
    gc.collect()
    plan_bytes = f.plan_bytes
    f.free()
    assert webgpu.memory()["allocated_bytes"] == before - nbytes - plan_bytes


def test_a_version_change_captures_anew(webgpu, w, rng):
    version = [0]
    f = compile(gelu_softmax, version=lambda: version[0])
    x = ak.tensor(rng.standard_normal((5, 13)).astype(np.float32), device=webgpu)
    f(x, w)
    f(x, w)
    version[0] += 1
    f(x, w)
    assert f.captures == 2 and f.last.startswith("captured plan #2") and len(f.plans) == 1


def test_plans_are_rebuilt_after_the_device_is_lost(webgpu, rng):
    f = compile(lambda x: ak.ops.softmax(x * 3.0, axis=-1))
    xa = rng.standard_normal((3, 5)).astype(np.float32)
    f(ak.tensor(xa, device=webgpu))
    old = f.plans[0]
    webgpu.runtime.destroy()
    fresh = ak.device("webgpu")
    out = f(ak.tensor(xa, device=fresh))
    out = f(ak.tensor(xa, device=fresh))
    assert not old.alive and f.captures == 2 and f.replayed == 1
    assert same(out, ak.ops.softmax(ak.tensor(xa, device=fresh) * 3.0, axis=-1))


def test_a_compiled_call_inside_a_capture_is_recorded_into_it(webgpu, w, rng):
    inner = compile(lambda x: x * 2.0)
    outer = compile(lambda x: inner(x) + 1.0)
    x = ak.tensor(rng.standard_normal(5).astype(np.float32), device=webgpu)
    outer(x)
    assert same(outer(x), x.numpy() * 2.0 + 1.0)
    assert outer.replayed == 1 and inner.captures == 0


# ----------------------------------------------------------------------------------- profiler, CPU
def test_the_autotuners_timing_runs_during_a_capture_are_not_recorded(webgpu, rng, tmp_path):
    """A first call of a matmul shape on a tuning adapter times its candidates in the middle of the
    capture: those dispatches are the backend's own work, not the call's, and must not be replayed
    (they made a 10-dispatch WebNN graph replay 100 dispatches on the H200)."""
    from accelkit.backends.webgpu.autotune import Autotuner, measure_candidate

    be = webgpu.runtime
    timed = []

    def measure(backend, rows, n, k, dtype, b_k, cand):  # real candidate dispatches, a made-up time
        measure_candidate(backend, rows, n, k, dtype, b_k, cand)
        timed.append(cand)
        return 1.0 + len(timed)

    tuner = Autotuner(be, path=tmp_path / "autotune.json", measure=measure)
    tuner.enabled = True
    saved = be.__dict__.get("_autotuner")
    be.__dict__["_autotuner"] = tuner
    try:
        f = compile(lambda x, w: ak.ops.gelu(x @ w))
        x = ak.tensor(rng.standard_normal((24, 16)).astype(np.float32), device=webgpu)
        wt = ak.tensor(rng.standard_normal((16, 20)).astype(np.float32), device=webgpu)
        first = f(x, wt)
        assert len(timed) > 1  # the shape was tuned inside the capture
        assert f.last == "captured plan #1, 2 dispatches"
        again = f(x, wt)
        assert f.last == "replayed plan #1, 2 dispatches"
        assert same(first, again)
    finally:
        if saved is None:
            be.__dict__.pop("_autotuner", None)
        else:
            be.__dict__["_autotuner"] = saved


def test_the_profiler_sees_replayed_dispatches(webgpu, w, rng):
    f = compile(gelu_softmax)
    x = ak.tensor(rng.standard_normal((5, 13)).astype(np.float32), device=webgpu)
    f(x, w)
    with ak.profile(webgpu) as prof:
        got = f(x, w)
    assert len(prof.records) == 5 and all(r.replayed for r in prof.records)
    assert same(got[0], gelu_softmax(x, w)[0])
    if webgpu.runtime.has_timestamps:
        assert all(r.gpu_end_ns >= r.gpu_start_ns for r in prof.records)


def test_fn_sees_tensors_for_host_arrays_on_every_path(cpu, webgpu, rng):
    seen = []

    def fn(x):
        seen.append(type(x))
        return x * 2.0

    xa = rng.standard_normal(6).astype(np.float32)
    for dev in (cpu, webgpu):
        f = compile(fn, device=dev)
        for _ in range(2):
            out = f(xa)
            assert out.device == dev and same(out, xa * np.float32(2.0))
    assert seen == [ak.Tensor] * 3  # cpu twice (eager), webgpu once (captured), then replayed


def test_on_the_cpu_backend_a_compiled_call_runs_eagerly(cpu, rng):
    f = compile(gelu_softmax)
    w = ak.tensor(rng.standard_normal((13, 7)).astype(np.float32), device=cpu)
    x = ak.tensor(rng.standard_normal((5, 13)).astype(np.float32), device=cpu)
    for _ in range(2):
        assert same(f(x, w)[0], gelu_softmax(x, w)[0])
    assert f.replayed == 0 and f.eager_calls == 2 and "eagerly" in f.last
    assert cpu.memory()["plan_bytes"] == 0
    assert isinstance(f, Compiled) and f.__name__ == "gelu_softmax"


# ----------------------------------------------------------------------------------- the memory plan
def test_memory_plan_reuses_dead_slots_best_fit():
    plan = plan_memory({0: 1024, 1: 1024, 2: 512, 3: 2048}, {0: (0, 1), 1: (1, 2), 2: (2, 3), 3: (3, 4)})
    assert plan.slot_of[2] == plan.slot_of[0]  # 0 died at step 1
    assert plan.slot_of[3] == plan.slot_of[1]  # a free slot grows rather than a new one opening
    assert plan.total == 1024 + 2048


@given(
    st.lists(st.tuples(st.integers(1, 4096), st.integers(0, 30), st.integers(0, 10)), min_size=1, max_size=40)
)
def test_memory_plan_never_gives_one_slot_to_values_alive_at_once(values):
    sizes = {i: s for i, (s, _, _) in enumerate(values)}
    lifetimes = {i: (a, a + d) for i, (_, a, d) in enumerate(values)}
    plan = plan_memory(sizes, lifetimes)
    for i in sizes:
        assert plan.sizes[plan.slot_of[i]] >= sizes[i]
        for j in sizes:
            if i < j and plan.slot_of[i] == plan.slot_of[j]:
                (a0, a1), (b0, b1) = lifetimes[i], lifetimes[j]
                assert a1 < b0 or b1 < a0, (i, j)
    peak = max(sum(sizes[i] for i in sizes if lifetimes[i][0] <= t <= lifetimes[i][1]) for t in range(0, 41))
    assert plan.total >= peak


def test_replay_through_the_public_wgpu_calls_equals_the_native_path(webgpu, w, rng, monkeypatch):
    from accelkit.backends.webgpu import replay

    x = ak.tensor(rng.standard_normal((5, 13)).astype(np.float32), device=webgpu)
    native = compile(gelu_softmax)
    native(x, w)
    monkeypatch.setattr(replay, "NATIVE_CALLS", False)
    public = compile(gelu_softmax)
    public(x, w)
    assert public.plans[0].handle.native is None
    assert same(public(x, w)[0], native(x, w)[0]) and public.replayed == native.replayed == 1


def test_a_replay_right_after_its_capture_waits_for_the_captured_work(webgpu, rng):
    # the capture's eager work is still unsubmitted when the plan takes buffers it freed from the
    # pool; the replay's input upload must not overtake that work
    def chain(x):
        for _ in range(6):  # no scalars: a plan with constants to upload would submit the work first
            x = ak.ops.exp(ak.ops.tanh(x))
        return x

    f = compile(chain, device=webgpu)
    xs = [rng.standard_normal(300).astype(np.float32) for _ in range(3)]
    held = [f(x) for x in xs]  # captured, then replayed with nothing read in between
    for x, out in zip(xs, held):
        assert same(out, chain(ak.tensor(x, device=webgpu)))


def test_a_profile_says_its_dispatches_were_replayed(webgpu, w, rng):
    f = compile(gelu_softmax)
    x = ak.tensor(rng.standard_normal((5, 13)).astype(np.float32), device=webgpu)
    f(x, w)
    with ak.profile(webgpu) as eager:
        gelu_softmax(x, w)
    with ak.profile(webgpu) as replayed:
        f(x, w)
    assert "replayed" not in repr(eager) and "(5 replayed from compiled plans)" in repr(replayed)
    assert "5 replayed from compiled plans" in replayed._repr_html_()
