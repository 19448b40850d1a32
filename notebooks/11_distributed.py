# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 11 · The same pool on Dask distributed
#
# `ak.Pool` serves models concurrently on the devices of one process. `ak.Pool(client=client)` runs the
# same pool on a [Dask](https://distributed.dask.org) cluster: each Dask worker runs a local pool on its
# device, loads models by name (a bundled name, a directory, `hf:org/name`: never weights sent with each
# request), and batches what reaches it. The client routes each request to a worker that already holds
# the model, least loaded first, and sends a request again when its worker dies.
#
# Here the cluster is a `LocalCluster` of two worker processes on this machine (CPU device on each);
# `Client("tcp://scheduler:8786")` takes the same code to a real cluster, with one worker per GPU
# (`dask-worker --resources GPU=1`, `ACCELKIT_DEVICE=webgpu:i`). Needs `pip install 'accelkit[distributed]'`.

# %%
import logging
import os
import signal

import numpy as np

import accelkit as ak

rng = np.random.default_rng(0)
requests = [{"input_ids": rng.integers(5, 500, size=(1, int(rng.integers(4, 40))))} for _ in range(48)]
bert = ak.load("tiny-random-bert", device="cpu")
direct = [bert(**x).logits.numpy() for x in requests]


def serve(pool):
    """The pool code: submit every request, wait for the answers, check them against direct calls."""
    pool.add("tiny-random-bert", preload=True)
    futures = [pool.submit("tiny-random-bert", **x) for x in requests]
    outs = [f.result(timeout=120) for f in futures]
    assert all(np.allclose(o.logits, d, atol=1e-5) for o, d in zip(outs, direct))
    return outs


# %% [markdown]
# ## 1. Locally
#
# One process, one worker thread on the CPU device.

# %%
with ak.Pool("cpu", max_batch_size=8) as pool:
    outs = serve(pool)
    local_stats = pool.stats()
print(outs[0])
local_stats

# %% [markdown]
# ## 2. On a local Dask cluster
#
# Two worker processes on 127.0.0.1, no dashboard, one thread each; `ACCELKIT_DEVICE=cpu` in the
# workers' environment picks their device. The pool code is the same function.

# %%
from distributed import Client, LocalCluster

cluster = LocalCluster(
    n_workers=2,
    processes=True,
    threads_per_worker=1,
    dashboard_address=None,
    host="127.0.0.1",
    env={"ACCELKIT_DEVICE": "cpu", "OMP_NUM_THREADS": "1"},
    silence_logs=logging.ERROR,
)
client = Client(cluster)
client.wait_for_workers(2)

with ak.Pool(client=client, max_batch_size=8) as pool:
    outs = serve(pool)
    stats = pool.stats()
print(outs[0])  # the same ModelOutput of numpy arrays as locally
stats

# %% [markdown]
# The stats show each worker: its device, the models it holds, its queue, latency percentiles and
# throughput as the client sees them, and the batches its local pool ran. As text:

# %%
print(stats.text())

# %% [markdown]
# ## 3. A worker dies mid-stream
#
# Requests on a worker that leaves the cluster are sent to another worker (a request runs at most twice,
# then fails with `WorkerLostError` naming the workers). Here one worker process is killed with `SIGKILL`
# while requests are in flight; every request is still answered, once, correctly. (Dask's nanny starts a
# replacement worker, which joins the pool and takes work when it is up.)

# %%
from concurrent.futures import as_completed

with ak.Pool(client=client, max_batch_size=4) as pool:
    pool.add("tiny-random-bert", preload=True)
    futures = [pool.submit("tiny-random-bert", **x) for x in requests * 2]
    next(as_completed(futures))
    busy = max((w for w in pool.stats().workers if w["alive"]), key=lambda w: w["queue"])
    print(f"killing {busy['worker']} with {busy['queue']} requests outstanding")
    os.kill(client.run(os.getpid)[busy["worker"]], signal.SIGKILL)
    outs = [f.result(timeout=120) for f in futures]
    assert all(np.allclose(o.logits, d, atol=1e-5) for o, d in zip(outs, direct * 2))
    after = pool.stats()
print(f"{after.completed} answered, {after.failed} failed, {after.retried} sent again after the worker died")
after

# %%
client.close()
cluster.close()
