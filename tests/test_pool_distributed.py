"""``ak.Pool(client=...)`` on a Dask LocalCluster of worker processes on 127.0.0.1 (CPU device on the
workers): results equal direct calls; a worker killed with SIGKILL mid-stream loses no request; a
worker that joins takes work; a bad request fails only its own future; close() drains or cancels.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import as_completed

import numpy as np
import pytest

import accelkit as ak

distributed = pytest.importorskip("distributed")

from accelkit.pool import PoolClosedError  # noqa: E402
from accelkit.pool.distributed import WorkerLostError, checkpoint_source  # noqa: E402

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def cluster():
    c = distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        dashboard_address=None,
        host="127.0.0.1",
        env={"ACCELKIT_DEVICE": "cpu", "OMP_NUM_THREADS": "1"},
        silence_logs=logging.CRITICAL,
    )
    client = distributed.Client(c)
    client.wait_for_workers(2, timeout=60)
    yield c, client
    client.close()
    c.close()


@pytest.fixture(scope="module")
def direct():
    return {
        "bert": ak.load("tiny-random-bert", device="cpu"),
        "vit": ak.load("tiny-random-vit", device="cpu"),
    }


def requests(n: int, seed: int) -> list[tuple[str, dict]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        if i % 3:
            out.append(("bert", {"input_ids": rng.integers(1, 512, size=(1, int(rng.integers(2, 40))))}))
        else:
            out.append(("vit", {"pixel_values": rng.standard_normal((1, 3, 30, 30)).astype(np.float32)}))
    return out


def check(out, want) -> None:
    assert set(out.keys()) == set(want.keys())
    for k in want.keys():
        assert isinstance(out[k], np.ndarray)
        np.testing.assert_allclose(out[k], want[k].numpy(), rtol=1e-5, atol=1e-5, err_msg=k)


def answer(f, pool, timeout: float = 60):
    """``f.result()``, saying where every unanswered request is when it times out."""
    try:
        return f.result(timeout=timeout)
    except TimeoutError:
        with pool._lock:
            calls = [(c.number, c.spec.key, c.worker, c.tried, c.task and c.task.status) for c in pool._calls]
        raise AssertionError(f"no answer in {timeout} s; unanswered {calls}\n{pool.stats().text()}") from None


def worker_pids(client) -> dict[str, int]:
    return client.run(os.getpid)


def live_workers(cluster, client, n: int) -> None:
    """Wait for ``n`` running workers (the nanny restarts a killed one, slowly on a busy machine); add
    workers when they do not come."""
    try:
        client.wait_for_workers(n, timeout=30)
    except Exception:  # noqa: BLE001 - distributed's WorkerStartTimeoutError (a TimeoutError in older ones)
        running = sum(
            w["status"] == "running" for w in client.scheduler_info(n_workers=-1)["workers"].values()
        )
        cluster.scale(len(cluster.worker_spec) + max(0, n - running))
        client.wait_for_workers(n, timeout=90)


def test_results_equal_direct_calls(cluster, direct):
    _, client = cluster
    reqs = requests(24, seed=1)
    with ak.Pool(client=client, max_batch_size=8) as pool:
        assert type(pool).__name__ == "DistributedPool" and isinstance(pool, ak.Pool)
        # by source name and by a loaded model (sent as its checkpoint's source, never its weights)
        futures = [pool.submit("tiny-random-vit" if k == "vit" else direct[k], **x) for k, x in reqs]
        for f, (k, x) in zip(futures, reqs):
            check(answer(f, pool), direct[k](**x))
        assert "last_hidden_state=<float32 [1," in repr(futures[1].result())
        outs = list(pool.map(direct["bert"], [x for k, x in reqs if k == "bert"][:4], timeout=60))
        assert len(outs) == 4
        stats = pool.stats()
        assert stats.completed == 28 and stats.failed == 0 and stats.retried == 0
        assert stats.batches >= 1 and stats.p50_ms > 0
        text = stats.text()
        assert "pool on Dask" in text and text.count("worker ") >= 2 and " on cpu" in text
        html = stats._repr_html_()
        assert html is None or ("workers" in html and "p95" in html)


def test_a_bad_request_fails_only_its_own_future(cluster, direct):
    _, client = cluster
    ids = np.array([[3, 4, 5]])
    with ak.Pool(client=client) as pool:
        good = [pool.submit("tiny-random-bert", input_ids=ids) for _ in range(3)]
        bad = pool.submit("tiny-random-bert", input_ids=np.array([[1, 10**6]]))
        more = [pool.submit("tiny-random-bert", input_ids=ids) for _ in range(3)]
        with pytest.raises(ak.InputError, match="out of range"):
            bad.result(timeout=60)
        for f in good + more:
            check(f.result(timeout=60), direct["bert"](input_ids=ids))
        stats = pool.stats()
        assert stats.failed == 1 and stats.completed == 6 and stats.retried == 0


def test_close_drains_or_cancels(cluster):
    _, client = cluster
    ids = np.array([[1, 2, 3]])
    pool = ak.Pool(client=client)
    futures = [pool.submit("tiny-random-bert", input_ids=ids) for _ in range(10)]
    pool.close(wait=True)
    assert all(f.done() and not f.cancelled() for f in futures)
    with pytest.raises(PoolClosedError):
        pool.submit("tiny-random-bert", input_ids=ids)
    pool = ak.Pool(client=client)
    futures = [pool.submit("tiny-random-bert", input_ids=ids) for _ in range(30)]
    pool.close(wait=True, cancel_pending=True)
    assert all(f.done() for f in futures)
    assert pool.stats().cancelled == sum(f.cancelled() for f in futures)


def test_a_callback_may_wait_for_another_request(cluster):
    _, client = cluster
    ids = np.array([[1, 2, 3]])
    got = threading.Event()
    with ak.Pool(client=client) as pool:

        def chained(f):
            pool.submit("tiny-random-bert", input_ids=ids).result(timeout=60)
            got.set()

        pool.submit("tiny-random-bert", input_ids=ids).add_done_callback(chained)
        assert got.wait(60)


def test_asyncio_run(cluster):
    import asyncio

    _, client = cluster
    with ak.Pool(client=client) as pool:
        out = asyncio.run(pool.run("tiny-random-bert", input_ids=np.array([[2, 3, 4]])))
    assert out.logits.shape == (1, 3)


def test_bench_pool_on_a_scheduler_address(cluster):
    from accelkit.bench.pool import main, run_clusters

    c, _ = cluster
    result = run_clusters([c.scheduler_address], requests=8, threads=2, batch_size=4, progress=False)
    direct, dask = result["rows"]
    assert direct["config"] == "direct" and dask["client"] == c.scheduler_address
    assert dask["failed"] == 0 and dask["max_abs_diff"] < 1e-4 and sum(dask["served"].values()) == 8
    assert "dask tcp://127.0.0.1" in result["table"]
    with pytest.raises(SystemExit):
        main(["--client"])  # the address is required


def test_sources_of_loaded_models(direct, tmp_path):
    assert checkpoint_source(direct["bert"].checkpoint) == "tiny-random-bert"
    assert checkpoint_source(tmp_path) == str(tmp_path.absolute())


def test_the_local_pool_works_without_distributed():
    code = (
        "import sys; sys.modules['distributed'] = None\n"
        "import numpy as np, accelkit as ak\n"
        "with ak.Pool('cpu') as pool:\n"
        "    assert pool.submit('tiny-random-bert', input_ids=np.array([[1, 2]])).result().logits.shape == (1, 3)\n"
        "try:\n"
        "    ak.Pool(client=object())\n"
        "except ak.AccelkitError as e:\n"
        "    assert 'accelkit[distributed]' in str(e), e\n"
        "else:\n"
        "    raise SystemExit('no error')\n"
        "assert sys.modules['distributed'] is None\n"
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr


def test_a_worker_killed_mid_stream_loses_no_request(cluster, direct):
    c, client = cluster
    live_workers(c, client, 2)
    reqs = requests(90, seed=2)
    answers = []
    with ak.Pool(client=client, max_batch_size=4) as pool:
        pool.add("tiny-random-bert", preload=True)  # both workers hold it: the stream spreads at once
        futures = []
        for i, (k, x) in enumerate(reqs):
            f = pool.submit("tiny-random-bert" if k == "bert" else "tiny-random-vit", **x)
            f.add_done_callback(lambda f, i=i: answers.append(i))
            futures.append(f)
        next(as_completed(futures, timeout=60))  # the stream is flowing
        queues = {w["worker"]: w["queue"] for w in pool.stats().workers if w["alive"]}
        victim = max(queues, key=queues.get)
        assert queues[victim] > 0, "nothing in flight on either worker: the kill would test nothing"
        os.kill(worker_pids(client)[victim], signal.SIGKILL)
        for f, (k, x) in zip(futures, reqs):
            check(answer(f, pool), direct[k](**x))
        stats = pool.stats()
        assert stats.completed == len(reqs) and stats.failed == 0
        assert stats.retried >= 1
        gone = [w for w in stats.workers if w["worker"] == victim]
        assert gone and not gone[0]["alive"] and gone[0]["lost_requests"] >= 1
    deadline = time.monotonic() + 30
    while sorted(answers) != list(range(len(reqs))) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sorted(answers) == list(range(len(reqs))), "every request answered exactly once"


def test_a_request_lost_on_its_last_attempt_names_the_worker(cluster):
    c, client = cluster
    live_workers(c, client, 2)
    with ak.Pool(client=client, attempts=1) as pool:
        pids = worker_pids(client)
        victim = next(w["worker"] for w in pool.stats().workers if w["alive"] and w["worker"] in pids)
        with pool._lock:  # route the next request to the victim: make the other workers look busy
            for w in pool._workers.values():
                if w.address != victim:
                    w.outstanding += 1000
            fut = pool.submit("tiny-random-bert", input_ids=np.array([[1, 2, 3]]))
            for w in pool._workers.values():
                if w.address != victim:
                    w.outstanding -= 1000
        os.kill(pids[victim], signal.SIGKILL)
        with pytest.raises(WorkerLostError, match=victim.replace(".", r"\.")):
            fut.result(timeout=60)
        assert isinstance(fut.exception(), ak.AccelkitError)
        # the pool keeps serving on the workers left
        pool.submit("tiny-random-bert", input_ids=np.array([[1, 2, 3]])).result(timeout=60)


def test_a_new_worker_takes_work(cluster, direct):
    c, client = cluster
    # every worker of the cluster's spec running first (one an earlier test killed may still be restarting:
    # counted as "new" below, it would pass the wait for the new worker before the new one came)
    live_workers(c, client, len(c.worker_spec))
    ids = np.array([[7, 8, 9, 10]])
    with ak.Pool(client=client, max_batch_size=2) as pool:
        pool.add("tiny-random-bert", preload=True)
        before = {w["worker"] for w in pool.stats().workers if w["alive"]}
        c.scale(len(c.worker_spec) + 1)
        deadline = time.monotonic() + 60
        while len([w for w in pool.stats().workers if w["alive"]]) < len(c.worker_spec):
            assert time.monotonic() < deadline, "the pool never saw the new worker"
            time.sleep(0.1)
        # a burst: no answer is counted before it is all routed (completions wait for the pool's lock)
        with pool._lock:
            futures = [pool.submit("tiny-random-bert", input_ids=ids) for _ in range(12)]
        for f in futures:
            check(answer(f, pool), direct["bert"](input_ids=ids))
        new = [w for w in pool.stats().workers if w["worker"] not in before]
        assert new and all(w["completed"] >= 1 and "tiny-random-bert" in w["models"] for w in new), (
            pool.stats().text()
        )
