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
# # 09 · Profiling: where the time goes
#
# `ak.profile()` records every dispatch on a device with its host time and, on WebGPU adapters with the
# `timestamp-query` feature, its device time (each dispatch gets its own compute pass with timestamp
# writes while a profile listens). On the CPU backend the op runs where it is recorded, so its host time
# *is* its device time. `%%accel profile` wraps a cell in it and shows the result: a kernel table, a
# timeline, and on request a Chrome trace.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

import accelkit as ak

plt.rcParams.update({"figure.dpi": 100, "figure.figsize": (7, 3), "font.size": 9})

# the first WebGPU device: cells that use it are skipped without one (or, under ACCELKIT_REQUIRE_WEBGPU=1, fail)
gpus = [d for d in ak.devices() if d.backend_name == "webgpu"]
if not gpus and os.environ.get("ACCELKIT_REQUIRE_WEBGPU") == "1":
    raise RuntimeError("ACCELKIT_REQUIRE_WEBGPU=1 but no WebGPU adapter was found")
gpu = gpus[0] if gpus else None

import json
import tempfile
from pathlib import Path

cpu = ak.device("cpu")

bert = ak.load("tiny-random-bert", device=cpu)
enc = bert.encode(["The cat sat on the mat.", "Is the weather good today?", "Trains leave at noon."])
_ = bert(**enc).logits.numpy()  # warm-up

# %% [markdown]
# ## 1. `%%accel profile` on a BERT forward (CPU backend)
#
# `-o prof` keeps the `Profile` in the namespace; `--device` picks the device (default: the default
# device). In a notebook the timeline is drawn too.

# %%
# %load_ext accelkit

# %%
# %%accel profile --device cpu -o prof
out = bert(**enc)
out.logits.numpy()

# %% [markdown]
# ## 2. The kernel table, as data
#
# `prof.kernels()` gives per-kernel totals (calls, device and host time, FLOPs) most expensive first;
# `prof.table(top)` the same as text; `prof.summary()` everything as plain data.

# %%
print(prof.table(top=6))
s = prof.summary()
print(
    f"\n{s['dispatches']} dispatches, device {s['gpu_ms']:.2f} ms of {s['wall_ms']:.2f} ms wall: busy {s['gpu_busy']:.0%}"
)
assert s["dispatches"] == len(prof.records) > 0

# %% [markdown]
# ## 3. The same forward on WebGPU, with device timestamps
#
# Warm up first: the first run on WebGPU compiles every kernel specialisation, and the first profile
# creates the timestamp query set. Here `device ms` comes from the adapter's timestamp queries. The
# **GPU busy share** is device time over wall time: how much of the cell the device spent running
# kernels, the rest being Python, recording, submission and the readback wait. Where the adapter is
# lavapipe, the "device" is software on the CPU, so these times say how the kernels compare with each
# other, not how fast a GPU is.

# %%
if gpu is not None:
    bert_gpu = ak.load("tiny-random-bert", device=gpu)
    bert_gpu(**enc).logits.numpy()  # compile the pipelines
    with ak.profile(gpu):  # the first profile also creates the query set
        bert_gpu(**enc).logits.numpy()
    with ak.profile(gpu, label="tiny-random-bert forward") as prof_gpu:
        bert_gpu(**enc).logits.numpy()
    print(f"{gpu.spec}: timestamps {prof_gpu.has_gpu_times}, GPU busy {prof_gpu.gpu_busy:.0%}")
    assert prof_gpu.has_gpu_times == ("timestamp-query" in gpu.features)
    display(prof_gpu)

# %% [markdown]
# The timelines: one bar per dispatch, in the host lane when it was recorded and in the device lane
# when it ran. The two lanes have different clocks (the host's and the adapter's), each starting at its
# own first event. On the CPU backend recording *is* running; on WebGPU the device runs the whole
# forward after the host has recorded and submitted it.

# %%
profiles = {"cpu": prof} | ({gpu.spec: prof_gpu} if gpu is not None else {})
fig, axes = plt.subplots(len(profiles), 1, figsize=(8, 2.2 * len(profiles)), squeeze=False)
for ax, p in zip(axes[:, 0], profiles.values()):
    p.plot(ax=ax)
fig.tight_layout()


# %% [markdown]
# Per kernel, side by side: both backends give the same op the same kernel name (`matmul`,
# `attention`, `layer_norm+residual`, ...), so the bars line up.


# %%
def per_kernel(p):
    return {k.kernel: k.gpu_ms for k in p.kernels()}


tables = {name: per_kernel(p) for name, p in profiles.items()}
kernels = sorted(set().union(*tables.values()), key=lambda k: -max(t.get(k, 0) for t in tables.values()))
fig, ax = plt.subplots(figsize=(7, 2.6))
width = 0.8 / len(tables)
for i, (name, t) in enumerate(tables.items()):
    ax.bar(
        np.arange(len(kernels)) + (i - (len(tables) - 1) / 2) * width,
        [t.get(k, 0) for k in kernels],
        width,
        label=name + (" (software)" if name != "cpu" and gpu.is_software else ""),
    )
ax.set_xticks(range(len(kernels)), kernels, rotation=20)
ax.set_ylabel("device ms")
ax.set_title("tiny-random-bert forward, batch of 3: device time per kernel")
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# ## 4. A Chrome trace
#
# `--trace FILE` (or `prof.save_trace(FILE)`) writes the dispatches as Chrome trace events: a host lane
# and, with timestamps, a device lane. Open the file in [Perfetto](https://ui.perfetto.dev) or
# `chrome://tracing`. (Here it goes to a temporary directory; IPython expands `{...}` in magic lines.)
# The line form `%accel profile STATEMENT` profiles one statement.

# %%
with tempfile.TemporaryDirectory() as tmp:
    trace_file = Path(tmp) / "bert_trace.json"
    # %accel profile --device cpu --trace {trace_file} -q bert(**enc).logits.numpy()
    events = json.loads(trace_file.read_text())["traceEvents"]
print(json.dumps(next(e for e in events if e.get("ph") == "X"), indent=1))

# %%
# NBVAL_CHECK_OUTPUT
lanes = sorted({e["args"]["name"] for e in events if e.get("name") == "thread_name"})
spans = [e for e in events if e.get("ph") == "X"]
print("lanes:", lanes)
print("a host and a device span per dispatch:", len(spans) == 2 * len(prof.records))

# %% [markdown]
# ## 5. Profiling code of your own
#
# `ak.profile(device)` is a context manager; anything that runs ops inside it is recorded, e.g. one
# attention call and the softmax of a larger matrix:

# %%
d = gpu or cpu
rng = np.random.default_rng(0)
q = ak.tensor(rng.standard_normal((2, 4, 128, 32)), device=d)
ak.ops.scaled_dot_product_attention(q, q, q).numpy()  # warm-up
with ak.profile(d) as p:
    ak.ops.scaled_dot_product_attention(q, q, q, is_causal=True)
    ak.ops.softmax(ak.tensor(rng.standard_normal((512, 1000)), device=d)).numpy()
print(p.table())
