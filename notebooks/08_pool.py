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
# # 08 · A pool: many requests, several models, one device
#
# `ak.Pool` runs model calls concurrently from any number of threads (or an asyncio loop): one worker
# thread per device takes requests in arrival order, and requests for the same model that arrive within a
# short window run as one **batch** (BERT inputs padded to the longest and cut back after, ViT and
# Whisper inputs stacked). Every request gets a `concurrent.futures.Future` whose value is the model's
# output copied to numpy. A request that fails fails alone.

# %%
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

import accelkit as ak

plt.rcParams.update({"figure.dpi": 100, "figure.figsize": (7, 3), "font.size": 9})

import threading
import time

dev = ak.device()
bert = ak.load("tiny-random-bert", device=dev)
vit = ak.load("tiny-random-vit", device=dev)
rng = np.random.default_rng(0)


def bert_request():
    n = int(rng.integers(4, 40))
    return {"input_ids": rng.integers(5, bert.config.vocab_size, size=(1, n))}


def vit_request():
    return {"pixel_values": rng.standard_normal((1, 3, 30, 30)).astype(np.float32)}


# %% [markdown]
# ## 1. submit, map, await
#
# `submit(model, **inputs)` queues one call and returns a Future. `map` submits many and yields their
# results in order. `await pool.run(...)` does the same from asyncio without blocking the event loop
# (Jupyter runs top-level `await`). Models are loaded models (yours: the pool never unloads them) or
# names `ak.load` accepts, which the pool loads on first use.

# %%
import asyncio

pool = ak.Pool(dev, max_batch_size=16, batch_window=0.005)
x = bert_request()
future = pool.submit(bert, **x)
result = future.result()
print(
    type(future).__name__,
    "->",
    {k: (v.shape, v.dtype.name) for k, v in result.items() if hasattr(v, "shape")},
)
assert np.allclose(result["logits"], bert(**x).logits.numpy(), atol=1e-5)

images = [vit_request() for _ in range(6)]
labels = [vit.id2label[int(o["logits"].argmax())] for o in pool.map(vit, images)]
print("map:", labels)

outs = await asyncio.gather(*(pool.run(vit, **im) for im in images))
assert [vit.id2label[int(o["logits"].argmax())] for o in outs] == labels
print("await: the same", len(outs), "results")

by_name = pool.submit("tiny-random-bert", **x).result()  # the pool loads its own tiny-random-bert
assert np.allclose(by_name["logits"], result["logits"], atol=1e-5)
print("by name:", [m["name"] for m in pool.stats().models])


# %% [markdown]
# ## 2. Batching
#
# Eight threads submit a burst of mixed BERT and ViT requests, first to a pool with
# `max_batch_size=1` (each request its own forward pass), then with batches of up to 16. A batch pays
# the fixed cost of a forward pass once (Python, op dispatch and, on WebGPU, recording and submitting
# every kernel), and on small models that fixed cost is most of the work, so batching raises
# throughput and, in a burst, cuts latency too; padding BERT inputs to the longest in the batch gives
# a little of it back. Latency is from `submit` to result: in a burst it is mostly time spent waiting
# in the queue. (Timings on a shared machine are noisy: the numbers are measured, not asserted.)


# %%
def workload(pool, n, threads=8):
    requests = [(bert, bert_request()) if i % 2 else (vit, vit_request()) for i in range(n)]
    futures = [None] * n

    def work(k):
        for i in range(k, n, threads):
            model, inputs = requests[i]
            futures[i] = pool.submit(model, **inputs)

    start = time.perf_counter()
    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for f in futures:
        f.result()
    return time.perf_counter() - start


runs = {}
targets = [(ak.device("cpu"), 160)] + [(d, 64) for d in ak.devices() if d.backend_name == "webgpu"][:1]
for device, n in targets:
    models = (bert, vit)
    if device is not dev:  # the same checkpoints on that device
        bert, vit = ak.load("tiny-random-bert", device=device), ak.load("tiny-random-vit", device=device)
    for batch in (1, 16):
        with ak.Pool(device, max_batch_size=batch, batch_window=0.003) as p:
            workload(p, n=16)  # warm-up
        with ak.Pool(device, max_batch_size=batch, batch_window=0.003) as p:
            seconds = workload(p, n)
            s = runs[device.spec, batch] = p.stats()
        print(
            f"{device.spec:<9} max_batch_size={batch:>2}: {s.completed} requests in {seconds:.2f} s, "
            f"{s.batches} batches (mean {s.mean_batch_size:.1f}), p50 {s.p50_ms:.0f} ms, "
            f"p95 {s.p95_ms:.0f} ms, {s.throughput_rps:.0f} req/s"
        )
        assert s.completed == n and s.failed == 0
    bert, vit = models
assert all(runs[spec, 16].batches < runs[spec, 16].completed for spec, _ in runs)

# %%
specs = list(dict.fromkeys(spec for spec, _ in runs))
fig, axes = plt.subplots(1, 2, figsize=(8, 2.8))
x = np.arange(len(specs))
for i, batch in enumerate((1, 16)):
    at, colour = x + (i - 0.5) * 0.4, ["#bdbdbd", "#31a354"][i]
    axes[0].bar(
        at, [runs[s, batch].throughput_rps for s in specs], 0.4, color=colour, label=f"max_batch_size {batch}"
    )
    axes[1].bar(at, [runs[s, batch].p50_ms for s in specs], 0.4, color=colour)
    axes[1].scatter(
        at,
        [runs[s, batch].p95_ms for s in specs],
        marker="_",
        s=600,
        color="black",
        label="p95" if i else None,
    )
labels = [s + (" (software)" if ak.device(s).is_software else "") for s in specs]
axes[0].set_xticks(x, labels)
axes[0].set_ylabel("requests / s")
axes[0].set_title("throughput")
axes[0].legend(fontsize=8)
axes[1].set_xticks(x, labels)
axes[1].set_ylabel("ms")
axes[1].set_title("latency: p50 (bars), p95")
axes[1].legend(fontsize=8, loc="upper left")
fig.suptitle("a burst of mixed BERT/ViT requests from 8 threads")
fig.tight_layout()

# %% [markdown]
# The stats of the batched CPU run, as the pool shows them:

# %%
runs["cpu", 16]

# %% [markdown]
# ## 3. A failing request fails alone
#
# A request with a token id outside the vocabulary lands in a batch with good ones. The batch fails, the
# pool reruns its requests one at a time, and only the bad request's future gets the exception
# (`ak.InputError`, with a message saying what was wrong). The others complete, and the pool keeps
# serving.

# %%
# NBVAL_CHECK_OUTPUT
good = [bert_request() for _ in range(6)]
bad = {"input_ids": np.array([[2, 7, 70000, 3]])}
futures = (
    [pool.submit(bert, **x) for x in good[:3]]
    + [pool.submit(bert, **bad)]
    + [pool.submit(bert, **x) for x in good[3:]]
)
for i, f in enumerate(futures):
    error = f.exception()
    print(i, "ok" if error is None else f"{type(error).__name__}: {error}")
assert sum(f.exception() is not None for f in futures) == 1
assert isinstance(futures[3].exception(), ak.InputError)
print("still serving:", pool.submit(vit, **vit_request()).result()["logits"].shape)

# %% [markdown]
# ## 4. A live view
#
# `LiveView` re-renders any HTML every `interval` seconds from a background thread while a kernel is
# attached (an ipywidgets `HTML`): here, the pool's stats while a load runs. In a static rendering of this
# notebook it shows the state when it was displayed; the cell after it shows the final stats (their
# throughput counts from the pool's first request, so the pauses between these cells are in it).

# %%
from accelkit.display import html_of
from accelkit.notebook.widgets import LiveView

view = LiveView(lambda: html_of(pool.stats()), interval=0.2, text=lambda: pool.stats().text())
display(view)
with view:  # refreshes during the block and once at its end
    workload(pool, n=160)
print("live view updates:", view.updates)

# %%
pool.close()  # drains the queue, stops the worker
stats = pool.stats()
assert stats.failed == 1 and stats.completed == stats.submitted - 1
stats
