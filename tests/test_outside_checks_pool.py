"""Outside checks for issue 13 (the pool on Dask), in a fresh process: the issue's own cluster
(``Client(LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
host="127.0.0.1"))``), a stream of requests from four threads with bad requests mixed in, one worker
SIGKILLed mid-stream: every good request answered exactly once and equal to a direct call, every bad
one fails alone with the error a direct call raises; an unpicklable input and an unknown model fail
only their own futures; ``close()`` drains (also while a killed worker's requests are retried) or
cancels; a pool never closed (nor its client) does not hold up interpreter exit.

Run by pytest as a subprocess of this file (``python tests/test_outside_checks_pool.py``)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import wait

import numpy as np
import pytest

import accelkit as ak

T0 = time.monotonic()


def log(*a) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s]", *a, flush=True)


def _run(script_args: list[str], timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "ACCELKIT_DEVICE": "cpu", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, __file__, *script_args], capture_output=True, text=True, env=env, timeout=timeout
    )


@pytest.mark.timeout(150)
def test_dask_pool_stream_with_a_worker_killed():
    pytest.importorskip("distributed")
    out = _run([], timeout=140)
    assert out.returncode == 0 and "OK" in out.stdout, out.stdout[-3000:] + out.stderr[-6000:]


def stream() -> None:
    from distributed import Client, LocalCluster

    client = Client(
        LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=None,
            host="127.0.0.1",
            silence_logs=logging.CRITICAL,
        )
    )
    client.wait_for_workers(2, timeout=60)
    log("cluster up")
    bert = ak.load("tiny:bert", device="cpu")
    rng = np.random.default_rng(13)
    N = 60
    inputs = [rng.integers(1, 500, size=(1, int(rng.integers(1, 30)))) for _ in range(N)]
    want = [bert(input_ids=x).logits.numpy() for x in inputs]
    bad_inputs = [
        {"input_ids": np.array([[1, 10**7]])},  # out of range id
        {"input_ids": "hello"},  # a string
        {"input_ids": None},
        {"input_ids": np.zeros((1, 0), np.int64)},  # seq length 0
        {"input_ids": np.array([[1.5, 2.5]])},  # floats
        {"pixel_values": np.zeros((1, 3, 8, 8))},  # the wrong input name
    ]

    def direct_error(kw):
        try:
            bert(**kw)
        except Exception as e:
            return type(e)
        raise AssertionError(f"{kw} did not fail directly")

    pool = ak.Pool(client=client, max_batch_size=4)
    pool.add("tiny:bert", preload=True)
    log("preloaded")
    calls = {i: 0 for i in range(N)}
    lock = threading.Lock()
    futures = [None] * N
    bad_futures = []

    def note(i):
        def cb(f):
            with lock:
                calls[i] += 1

        return cb

    def producer(lo, hi):
        for i in range(lo, hi):
            f = pool.submit("tiny:bert", input_ids=inputs[i])
            f.add_done_callback(note(i))
            futures[i] = f
            if i % 10 == 5:
                bad = bad_inputs[(i // 10) % len(bad_inputs)]
                bad_futures.append((pool.submit("tiny:bert", **bad), direct_error(bad)))
            time.sleep(0.01)

    threads = [threading.Thread(target=producer, args=(k * N // 4, (k + 1) * N // 4)) for k in range(4)]
    for t in threads:
        t.start()
    # kill the busier worker once something is in flight on it
    pids = client.run(os.getpid)
    deadline = time.monotonic() + 30
    while True:
        qs = {w["worker"]: w["queue"] for w in pool.stats().workers if w["alive"]}
        victim = max(qs, key=qs.get)
        if qs[victim] > 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert qs[victim] > 0, f"nothing in flight: {qs}"
    os.kill(pids[victim], signal.SIGKILL)
    log("killed", victim, "queue was", qs[victim])
    for t in threads:
        t.join()
    done, notdone = wait(futures + [f for f, _ in bad_futures], timeout=90)
    assert not notdone, f"{len(notdone)} requests never answered"
    log("all answered")
    for i, f in enumerate(futures):
        out = f.result()
        np.testing.assert_allclose(out.logits, want[i], rtol=1e-5, atol=1e-5, err_msg=f"request {i}")
    for f, kind in bad_futures:
        exc = f.exception()
        # the same error as a direct call; an AccelkitError for bad values
        assert type(exc) is kind, f"bad request raised {type(exc).__name__}: {exc}; directly {kind.__name__}"
    time.sleep(0.5)
    assert all(c == 1 for c in calls.values()), {i: c for i, c in calls.items() if c != 1}
    st = pool.stats()
    log("stats", st.completed, st.failed, st.retried)
    assert st.completed == N and st.failed == len(bad_futures), (st.completed, st.failed)
    # an unpicklable input fails its own future, not the pool
    f = pool.submit("tiny:bert", input_ids=threading.Lock())
    assert isinstance(f.exception(timeout=30), ak.AccelkitError), repr(f.exception())
    # an unknown model fails only its own future
    f = pool.submit("no-such-model", input_ids=inputs[0])
    assert isinstance(f.exception(timeout=30), ak.AccelkitError), repr(f.exception())
    np.testing.assert_allclose(
        pool.submit("tiny:bert", input_ids=inputs[0]).result(timeout=30).logits, want[0], atol=1e-5
    )
    # close(): drains what was submitted, then refuses
    last = [pool.submit("tiny:bert", input_ids=inputs[i]) for i in range(8)]
    pool.close()
    assert all(f.done() and f.exception() is None for f in last)
    try:
        pool.submit("tiny:bert", input_ids=inputs[0])
    except ak.AccelkitError:
        pass
    else:
        raise AssertionError("a closed pool took a request")
    pool.close()  # twice is fine
    # close() while a killed worker's requests are being retried: drains them all, right
    pool = ak.Pool(client=client, max_batch_size=4)
    client.wait_for_workers(2, timeout=60)
    pool.add("tiny:bert", preload=True)
    pids = client.run(os.getpid)
    futures = [pool.submit("tiny:bert", input_ids=inputs[i]) for i in range(30)]
    os.kill(pids[max(pids)], signal.SIGKILL)
    pool.close(wait=True)
    for i, f in enumerate(futures):
        assert f.done(), f"request {i} not answered by close()"
        np.testing.assert_allclose(f.result().logits, want[i], rtol=1e-5, atol=1e-5)
    log("drained after a kill")
    # close(cancel_pending=True): each request is cancelled or answered right, none left hanging
    pool = ak.Pool(client=client, max_batch_size=4)
    futures = [pool.submit("tiny:bert", input_ids=inputs[i]) for i in range(30)]
    pool.close(wait=True, cancel_pending=True)
    for i, f in enumerate(futures):
        assert f.done()
        if not f.cancelled():
            np.testing.assert_allclose(f.result().logits, want[i], rtol=1e-5, atol=1e-5)
    assert pool.stats().cancelled == sum(f.cancelled() for f in futures)
    # a pool left open (with a killed worker behind it), as a failing script leaves it: its
    # ``__del__`` runs at interpreter exit and must not hold the exit up
    global LEFT_OPEN
    LEFT_OPEN = ak.Pool(client=client)
    pids = client.run(os.getpid)
    futures = [LEFT_OPEN.submit("tiny:bert", input_ids=inputs[i]) for i in range(20)]
    os.kill(pids[max(pids)], signal.SIGKILL)
    wait(futures, timeout=60)
    log("OK")


if __name__ == "__main__":
    stream()
