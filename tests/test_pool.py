"""The resource pool: futures, many submitting threads, dynamic batching equal to unbatched runs, a bad
request failing alone, LRU eviction under a memory budget (device bytes from ``device.memory()``) and
reload, stats, close() and asyncio.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time

import numpy as np
import pytest

import accelkit as ak
from accelkit.pool import Pool, PoolClosedError


def allocated(dev) -> int:
    gc.collect()
    return dev.memory()["allocated_bytes"]


@pytest.fixture(scope="module")
def models():
    return {
        "bert": ak.load("tiny-random-bert", device="cpu"),
        "vit": ak.load("tiny-random-vit", device="cpu"),
    }


def make_requests(n: int, seed: int = 0) -> list[tuple[str, dict]]:
    """Interleaved BERT (random lengths; some with masks and token types) and ViT requests."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        if i % 2:
            length = int(rng.integers(2, 40))
            inputs = {"input_ids": rng.integers(1, 512, size=(1, length))}
            if i % 3 == 0:
                mask = np.ones((1, length), np.int64)
                mask[0, length // 2 :] = rng.integers(0, 2, size=length - length // 2)
                mask[0, 0] = 1
                inputs["attention_mask"] = mask
            out.append(("bert", inputs))
        else:
            out.append(("vit", {"pixel_values": rng.standard_normal((1, 3, 30, 30)).astype(np.float32)}))
    return out


def host(out) -> dict:
    return {k: (v.numpy() if isinstance(v, ak.Tensor) else v) for k, v in out.items()}


def assert_same_output(got, want, exact: bool) -> None:
    assert set(got.keys()) == set(want.keys())
    for k in want.keys():
        a, b = np.asarray(got[k]), want[k]
        assert a.shape == b.shape and a.dtype == b.dtype, k
        if exact:
            np.testing.assert_array_equal(a, b, err_msg=k)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=k)


def submit_from_threads(pool, models, reqs, threads: int) -> list:
    futures = [None] * len(reqs)
    go = threading.Barrier(threads)

    def work(k):
        go.wait()
        for i in range(k, len(reqs), threads):
            key, inputs = reqs[i]
            futures[i] = pool.submit(models[key], **inputs)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return futures


def test_many_threads_two_models_equal_sequential(models):
    reqs = make_requests(160)
    sequential = [host(models[k](**x)) for k, x in reqs]
    with Pool("cpu", max_batch_size=8, batch_window=0.005) as pool:
        futures = submit_from_threads(pool, models, reqs, threads=8)
        results = [f.result(timeout=120) for f in futures]
        stats = pool.stats()
    for got, want in zip(results, sequential):
        assert_same_output(got, want, exact=False)  # batched rows: the same math, BLAS may round differently
    assert stats.completed == 160 and stats.failed == 0 and stats.queue_depth == 0
    assert stats.batches < 160 and stats.largest_batch > 1  # requests were batched
    assert results[1].id2label == models["bert"].id2label


def test_unbatched_pool_is_bitwise_equal(models):
    reqs = make_requests(40, seed=1)
    sequential = [host(models[k](**x)) for k, x in reqs]
    with Pool("cpu", max_batch_size=1) as pool:
        results = [f.result() for f in submit_from_threads(pool, models, reqs, threads=4)]
    for got, want in zip(results, sequential):
        assert_same_output(got, want, exact=True)


def test_batches_on_webgpu_equal_unbatched(webgpu):
    bert, vit = ak.load("tiny-random-bert", device=webgpu), ak.load("tiny-random-vit", device=webgpu)
    mods = {"bert": bert, "vit": vit}
    reqs = make_requests(12, seed=2)
    sequential = [host(mods[k](**x)) for k, x in reqs]
    with Pool(webgpu, max_batch_size=4, batch_window=0.05) as pool:
        results = [f.result(timeout=300) for f in submit_from_threads(pool, mods, reqs, threads=3)]
        assert pool.stats().largest_batch > 1
    for got, want in zip(results, sequential):
        assert_same_output(got, want, exact=False)


def test_a_bad_request_fails_alone(models):
    good = make_requests(24, seed=3)
    # ids out of range (batchable: its batch is rerun one by one), a wrong image size, a wrong rank, an
    # unknown keyword
    bad = [
        ("bert", {"input_ids": [[1, 2, 70000]]}),
        ("vit", {"pixel_values": np.zeros((1, 3, 31, 30), np.float32)}),
        ("bert", {"input_ids": np.zeros((2, 3, 4), np.int64)}),
        ("bert", {"input_ids": [[1, 2]], "no_such_input": 1}),
    ]
    reqs = good[:12] + bad + good[12:]
    is_bad = [False] * 12 + [True] * len(bad) + [False] * 12
    with Pool("cpu", max_batch_size=8, batch_window=0.01) as pool:
        futures = submit_from_threads(pool, models, reqs, threads=4)
        for f, (k, x), wrong in zip(futures, reqs, is_bad):
            if wrong:
                with pytest.raises((ak.AccelkitError, TypeError)):
                    f.result(timeout=60)
            else:
                assert_same_output(f.result(timeout=60), host(models[k](**x)), exact=False)
        failing = pool.submit(models["bert"], method="no_such_method")
        with pytest.raises(AttributeError):
            failing.result()
        assert pool.stats().failed == len(bad) + 1
        # the pool keeps serving
        key, x = good[0]
        assert_same_output(pool.submit(models[key], **x).result(), host(models[key](**x)), exact=True)


def test_ids_out_of_range_raise_input_error(models):
    with Pool("cpu") as pool:
        with pytest.raises(ak.InputError, match="token ids must be in"):
            pool.submit(models["bert"], input_ids=[[5, 600]]).result()


@pytest.fixture
def private_weights():
    """Loads get their own weights (other tests' models hold the same checkpoints, and dedup would share them)."""
    with ak.sharing.no_dedup():
        yield


def test_lru_eviction_under_a_budget_and_reload(private_weights):
    dev = ak.device("cpu")
    ids = {"input_ids": np.array([[1, 2, 3, 4]])}
    px = {"pixel_values": np.zeros((1, 3, 30, 30), np.float32)}
    with Pool("cpu") as probe:  # measure what each model adds, to size the budget
        for name, x in (("tiny-random-bert", ids), ("tiny-random-vit", px), ("tiny-random-bert-mlm", ids)):
            probe.submit(name, **x).result()
        sizes = {m["name"]: m["bytes"] for m in probe.stats().models}
    assert all(v > 0 for v in sizes.values())
    budget = (
        sizes["tiny-random-bert"] + sizes["tiny-random-vit"] + sizes["tiny-random-bert-mlm"] // 2
    )  # two fit, not three
    base = allocated(dev)
    with Pool("cpu", memory_budget=budget) as pool:
        first = pool.submit("tiny-random-bert", **ids).result()
        pool.submit("tiny-random-vit", **px).result()
        pool.submit(
            "tiny-random-bert-mlm", **ids
        ).result()  # evicts tiny-random-bert, the least recently used
        state = {m["name"]: m for m in pool.stats().models}
        assert not state["tiny-random-bert"]["loaded"] and state["tiny-random-bert"]["evictions"] == 1
        assert state["tiny-random-vit"]["loaded"] and state["tiny-random-bert-mlm"]["loaded"]
        assert allocated(dev) - base <= budget
        again = pool.submit(
            "tiny-random-bert", **ids
        ).result()  # reloaded on demand (evicting tiny-random-vit)
        state = {m["name"]: m for m in pool.stats().models}
        assert state["tiny-random-bert"]["loads"] == 2 and state["tiny-random-bert"]["loaded"]
        assert not state["tiny-random-vit"]["loaded"]
        assert allocated(dev) - base <= budget
        np.testing.assert_array_equal(first.logits, again.logits)
        (dev_stats,) = pool.stats().devices
        assert dev_stats["budget"] == budget and dev_stats["used_bytes"] <= budget
    assert allocated(dev) == base  # close() gives the pool's models back


def test_a_model_over_budget_fails_its_requests(private_weights):
    with Pool("cpu", memory_budget=10_000) as pool:
        with pytest.raises(ak.OutOfMemoryError, match="over its budget of 10000"):
            pool.submit("tiny-random-vit", pixel_values=np.zeros((1, 3, 30, 30), np.float32)).result()
        assert not pool.stats().models[0]["loaded"]


def test_explicit_add_evict_and_preload(private_weights):
    dev = ak.device("cpu")
    base = allocated(dev)
    with Pool("cpu") as pool:
        name = pool.add("tiny-random-bert", name="sentiment", preload=True)
        assert name == "sentiment" and pool.stats().models[0]["loaded"]
        assert allocated(dev) > base
        pool.evict("sentiment")
        assert allocated(dev) == base
        out = pool.submit("sentiment", input_ids=[[1, 2, 3]]).result()
        assert out.logits.shape == (1, 3)
        with pytest.raises(ak.AccelkitError, match="already in the pool"):
            pool.add("tiny-random-bert", name="sentiment")


def test_close_drains_and_rejects_new_requests(models):
    pool = Pool("cpu", max_batch_size=4)
    futures = [
        pool.submit(models["vit"], pixel_values=np.zeros((1, 3, 30, 30), np.float32)) for _ in range(20)
    ]
    pool.close(wait=True)
    assert all(f.done() and not f.cancelled() for f in futures)
    assert pool.closed
    with pytest.raises(PoolClosedError):
        pool.submit(models["vit"], pixel_values=np.zeros((1, 3, 30, 30), np.float32))
    pool.close()  # twice is fine


def test_close_can_cancel_what_is_queued(models):
    pool = Pool("cpu", max_batch_size=1)
    gate = threading.Event()
    slow = pool.submit(_Gate(gate), method="wait")
    while not slow.running():  # the worker is busy with it
        time.sleep(0.001)
    queued = [pool.submit(models["bert"], input_ids=[[1, 2, 3]]) for _ in range(5)]
    threading.Timer(0.1, gate.set).start()
    pool.close(wait=True, cancel_pending=True)
    assert slow.result() is True
    assert all(f.cancelled() for f in queued)
    assert pool.stats().cancelled == 5


class _Gate:
    """A stand-in model whose ``wait`` blocks until an event is set (to hold the worker busy)."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event
        self.device = ak.device("cpu")

    def wait(self) -> bool:
        return self.event.wait(10)


def test_map_and_asyncio_run(models):
    reqs = [x for k, x in make_requests(12, seed=4) if k == "vit"]
    want = [models["vit"](**x).logits.numpy() for x in reqs]
    with Pool("cpu", max_batch_size=4) as pool:
        got = [r.logits for r in pool.map(models["vit"], reqs)]
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
        positional = list(pool.map(models["vit"], [x["pixel_values"] for x in reqs[:2]]))
        np.testing.assert_allclose(positional[1].logits, want[1], rtol=1e-5, atol=1e-5)

        async def main():
            return await asyncio.gather(*(pool.run(models["vit"], **x) for x in reqs))

        outs = asyncio.run(main())
        for a, b in zip(outs, want):
            np.testing.assert_allclose(a.logits, b, rtol=1e-5, atol=1e-5)


def test_whisper_forward_batches_and_methods_run_alone():
    whisper = ak.load("tiny-random-whisper", device="cpu")
    rng = np.random.default_rng(5)
    feats = [rng.standard_normal((1, 80, 3000)).astype(np.float32) * 0.1 for _ in range(3)]
    ids = np.array([[591, 592, 600]])
    want = [whisper(f, decoder_input_ids=ids).logits.numpy() for f in feats]
    gen = whisper.generate(feats[0], max_new_tokens=4, task="transcribe", language="en")
    with Pool("cpu", max_batch_size=4, batch_window=0.05) as pool:
        futures = [pool.submit(whisper, input_features=f, decoder_input_ids=ids) for f in feats]
        g = pool.submit(
            whisper, feats[0], method="generate", max_new_tokens=4, task="transcribe", language="en"
        )
        for f, w in zip(futures, want):
            np.testing.assert_allclose(f.result().logits, w, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(g.result(), gen)
        assert pool.stats().largest_batch >= 2


def test_stats_text_and_html(models):
    with Pool("cpu") as pool:
        for x in make_requests(6, seed=6):
            pool.submit(models[x[0]], **x[1]).result()
        stats = pool.stats()
        assert stats.completed == 6 and stats.p50_ms > 0 and stats.p95_ms >= stats.p50_ms
        assert stats.throughput_rps > 0
        text = stats.text()
        assert "latency p50" in text and "BertForSequenceClassification(tiny-random-bert)" in text
        assert "0x" not in text and "0x" not in repr(pool)
        html = stats._repr_html_()
        assert html is None or ("p50" in html and "<pre" in html)
        d = stats.to_dict()
        assert {"queue_depth", "p50_ms", "p95_ms", "throughput_rps", "models", "devices"} <= set(d)


def test_a_pool_dropped_without_close_stops_and_frees(private_weights):
    dev = ak.device("cpu")
    base = allocated(dev)
    pool = Pool("cpu")
    pool.submit("tiny-random-bert", input_ids=[[1, 2, 3]]).result()
    threads = [w.thread for w in pool._workers.values()]
    assert allocated(dev) > base
    del pool
    for t in threads:
        t.join(10)
        assert not t.is_alive()
    assert allocated(dev) == base


def test_a_done_callback_may_wait_for_another_request(models):
    """fut.result() inside a done-callback used to block the worker thread that had to compute it."""
    ids = np.array([[5, 6, 7]])
    seen = []
    with Pool("cpu") as pool:
        first = pool.submit(models["bert"], input_ids=ids)

        def chained(f):
            seen.append(threading.current_thread().name)
            second = pool.submit(models["bert"], input_ids=ids)
            seen.append(second.result(timeout=30).logits)

        first.add_done_callback(chained)
        first.result(timeout=30)
        done = time.monotonic() + 30
        while len(seen) < 2 and time.monotonic() < done:
            time.sleep(0.01)
    assert len(seen) == 2, "the callback never finished: the worker deadlocked"
    assert not seen[0].startswith("accelkit-pool-cpu")
    np.testing.assert_array_equal(seen[1], first.result().logits)


class _Failing:
    """A model that allocates device memory, then fails: its failed future must not keep the memory."""

    def __init__(self, dev) -> None:
        self.device = dev

    def __call__(self, n: int):
        scratch = ak.tensor(np.ones((n, 1024), np.float32), device=self.device)  # noqa: F841 - held by the frame
        raise ak.InputError(f"failing on purpose after allocating {n} KiB")


def test_a_failed_future_keeps_no_device_memory():
    dev = ak.device("cpu")
    with Pool("cpu") as pool:
        pool.add(name="failing", loader=_Failing, preload=True)
        base = allocated(dev)
        fut = pool.submit("failing", 256)
        exc = fut.exception(timeout=30)
        assert isinstance(exc, ak.InputError) and "on purpose" in str(exc)
        assert allocated(dev) == base, "the stored exception's traceback keeps the request's tensors alive"
        text = "".join(__import__("traceback").format_exception(exc))
        assert "__call__" in text and "raise ak.InputError" in text  # the traceback still says where


def test_results_have_the_short_repr(models):
    ids = np.arange(1, 9)[None]
    with Pool("cpu") as pool:
        out = pool.submit(models["bert"], input_ids=ids).result()
    direct = repr(models["bert"](input_ids=ids))
    assert repr(out).count("\n") == 0 and len(repr(out)) <= len(direct) + 40
    assert "last_hidden_state=<float32 [1, 8, 42] numpy>" in repr(out)


def _outcome(fn):
    try:
        return ("ok", host(fn()))
    except Exception as exc:  # noqa: BLE001 - the point is to compare what happens
        return ("error", type(exc))


_PX = np.random.default_rng(3).standard_normal((1, 3, 30, 30))


@pytest.mark.parametrize(
    "key, inputs, companion",
    [
        ("vit", {"pixel_values": _PX.tolist()}, {"pixel_values": _PX}),  # a nested list
        ("vit", {"pixel_values": _PX[0]}, {"pixel_values": _PX}),  # no batch axis
        ("bert", {"input_ids": [[1, 2, 3]]}, {"input_ids": np.array([[1, 2, 3]])}),
        ("bert", {"input_ids": np.array([4, 5, 6])}, {"input_ids": np.array([[4, 5, 6]])}),
    ],
)
def test_pool_and_direct_calls_treat_inputs_alike(models, key, inputs, companion):
    """An input either works in both paths with the same result, or fails in both with the same error,
    also when it arrives with requests it could batch with (the companion: the same data as an array)."""
    direct = _outcome(lambda: models[key](**inputs))
    with Pool("cpu", max_batch_size=8, batch_window=0.2) as pool:
        others = [pool.submit(models[key], **companion) for _ in range(3)]
        fut = pool.submit(models[key], **inputs)
        pooled = (
            ("error", type(fut.exception(timeout=30))) if fut.exception(timeout=30) else _outcome(fut.result)
        )
        for f in others:
            f.result(timeout=30)
    assert pooled[0] == direct[0], (pooled, direct)
    if direct[0] == "ok":
        for k in direct[1]:
            np.testing.assert_allclose(pooled[1][k], direct[1][k], rtol=1e-5, atol=1e-5)
    else:
        assert pooled[1] is direct[1]
