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
# # 01 · Quickstart
#
# **accelkit** runs transformer models (BERT, ViT, Whisper) on **WebGPU** from Python, through the
# [`wgpu`](https://github.com/pygfx/wgpu-py) package, with a numpy CPU backend as fallback. This notebook
# takes the shortest path through it: pick a device, make a tensor, run an op, load a model and embed
# a few sentences.
#
# Everything here runs offline on the tiny checkpoints bundled with accelkit. Their weights are
# **random**, so the numbers show that the machinery works, not what a trained model would say.

# %%
import matplotlib.pyplot as plt
import numpy as np

import accelkit as ak

plt.rcParams.update({"figure.dpi": 100, "figure.figsize": (7, 3), "font.size": 9})

# %% [markdown]
# ## 1. Devices
#
# `ak.devices()` lists every device accelkit can use, best first: WebGPU adapters (a discrete GPU, then
# an integrated one), the CPU backend (numpy on BLAS), then software WebGPU adapters. In a notebook the
# list shows itself as a table; in a terminal, as text.

# %%
ak.devices()

# %% [markdown]
# `ak.device()` gives the best one. When that is not a GPU, it says why: on a machine whose only WebGPU
# adapter is a software rasteriser (Mesa's *lavapipe*, as on Binder and in CI), numpy on BLAS is faster,
# so the CPU backend wins and the software adapter stays available as `ak.device("webgpu")`.

# %%
dev = ak.device()
print("default device:", dev.spec, "-", dev.name)
print("why:", dev.fallback_reason or "it is the best device on this machine")

# %% [markdown]
# ## 2. A tensor
#
# `ak.tensor` copies an array to a device. The result's one-line summary (shape, dtype, device, bytes,
# range, mean and standard deviation, NaN/Inf flags) is what `print` shows; the notebook view adds a
# histogram and a preview of the values.

# %%
x = ak.tensor(np.arange(12, dtype=np.float32).reshape(3, 4))
x

# %%
# NBVAL_CHECK_OUTPUT
print(x.shape, x.dtype.name, x.nbytes, "bytes")
print(x.numpy())

# %% [markdown]
# ## 3. One op
#
# Operators (`@`, `+`, `*`, ...) and the functions in `ak.ops` run on the tensor's device and return
# tensors that stay there. Nothing comes back to the host until `.numpy()` asks for it.

# %%
# NBVAL_CHECK_OUTPUT
gram = x @ x.T  # (3, 3); exact in float32 for these small integers
print(gram.numpy())

# %%
p = ak.ops.softmax(gram / 100, axis=-1)  # each row sums to 1

g = x.numpy().astype(np.float64) @ x.numpy().T.astype(np.float64) / 100
expected = np.exp(g - g.max(axis=-1, keepdims=True))
expected /= expected.sum(axis=-1, keepdims=True)
assert np.allclose(p.numpy(), expected, rtol=1e-5, atol=1e-7)
p

# %% [markdown]
# ## 4. A model: `tiny-random-bert`
#
# `ak.load` takes a directory in Hugging Face layout (`config.json` + `*.safetensors`), `"hf:org/name"`
# for the Hub, or the name of a bundled checkpoint. The class comes from `config.json`: `tiny-random-bert` is a
# `BertForSequenceClassification` with 2 layers, 3 heads and a hidden size of 42. Its notebook view is
# the module tree, with parameter counts, bytes and which weights share storage (query, key and value
# are fused into one matrix after loading).

# %%
bert = ak.load("tiny-random-bert")
print(
    f"{type(bert).__name__}: {bert.num_parameters():,} parameters, "
    f"{bert.nbytes() / 1024:.1f} KiB on {bert.device.spec}"
)
bert

# %% [markdown]
# ### Sentence embeddings and their similarities
#
# `bert.embed` tokenises, runs the encoder and pools each sentence into one vector: the mean of the
# last hidden states over the real (unpadded) tokens, or the `[CLS]` state. With `normalize=True` the
# vectors have unit length, so their dot products are cosine similarities.
#
# The sentences come in three pairs that differ by one word.

# %%
sentences = [
    "The cat sat on the mat.",
    "The cat sat on a mat.",
    "Is the weather good today?",
    "Is the weather nice today?",
    "The train leaves at noon.",
    "The train leaves at nine.",
]
emb = bert.embed(sentences, pooling="mean", normalize=True)  # (6, 42) numpy float32
sims = emb @ emb.T

centred = emb - emb.mean(axis=0)  # see below
centred /= np.linalg.norm(centred, axis=1, keepdims=True)
sims_centred = centred @ centred.T

assert emb.shape == (len(sentences), bert.config.hidden_size)
assert np.allclose(np.diag(sims), 1.0, atol=1e-5)
nearest = np.where(np.eye(len(sentences), dtype=bool), -np.inf, sims_centred).argmax(axis=1)
assert list(nearest) == [1, 0, 3, 2, 5, 4]  # each sentence finds its pair

# %%
fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.9), layout="constrained")
for ax, m, title in [(axes[0], sims, "cosine similarity"), (axes[1], sims_centred, "after centring")]:
    im = ax.imshow(m, cmap="RdBu_r", vmin=-1, vmax=1)
    for i in range(len(sentences)):
        for j in range(len(sentences)):
            ax.text(
                j,
                i,
                f"{m[i, j]:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if abs(m[i, j]) > 0.6 else "black",
            )
    ax.set_xticks(range(len(sentences)))
    ax.set_title(title)
axes[0].set_yticks(range(len(sentences)), [f"{s}  {i}" for i, s in enumerate(sentences)])
axes[1].set_yticks(range(len(sentences)))
fig.colorbar(im, ax=axes, shrink=0.9)
fig.suptitle("tiny-random-bert mean-pooled embeddings (random weights)")
plt.show()

# %% [markdown]
# Left: every pair of sentences looks alike (cosine ~0.9). An encoder, random or trained, tends to put
# all its outputs in a narrow cone, so raw cosines are compressed near 1. Subtracting the mean embedding
# (right) removes the shared direction, and the structure shows: each sentence is closest to its
# one-word variant. A random encoder knows which tokens the sentences share, not what they mean; load a
# trained BERT from the Hub (`ak.load("hf:org/name")`, network needed once) and the same code gives
# meaningful similarities.
#
# ## Where next
#
# | notebook | what it shows |
# |---|---|
# | [02 hardware](02_hardware.ipynb) | how a device is chosen, features and limits, memory, the `%accel` magics |
# | [03 tensors and kernels](03_tensors_and_kernels.ipynb) | views that never copy, broadcasting, WebGPU vs CPU vs numpy, the WGSL kernels |
# | [04 BERT](04_bert.ipynb) | tokens, attention maps, pooled embeddings, classification, fidelity against transformers |
# | [05 ViT](05_vit.ipynb) | patches, attention from `[CLS]`, classification |
# | [06 Whisper](06_whisper.ipynb) | log-mel features, encoder, greedy decoding, long audio |
# | [07 sharing](07_sharing.ipynb) | one encoder output, several consumers; memory with and without sharing |
# | [08 pool](08_pool.ipynb) | concurrent requests, batching, latency and throughput |
# | [09 profiling](09_profiling.ipynb) | `%%accel profile`: kernel tables, timelines, traces |
