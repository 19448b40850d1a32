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
# # 07 · Sharing device memory between models
#
# Two patterns save device memory when several models, or several uses of one model, need the same
# tensors:
#
# * **named shared tensors**: a producer *publishes* a tensor (say, Whisper's encoder output); consumers
#   *acquire* it and get a view, a new `Tensor` over the same device storage, so the work runs once and
#   the bytes exist once. Every handle is counted; the storage is freed when the last one is released.
# * **weight dedup**: loading weights identical to those a live model on the same device holds (same
#   content hash, dtype and shape) reuses that model's storage.
#
# All byte counts below are measured with `device.memory()`, not estimated.

# %%
import matplotlib.pyplot as plt
import numpy as np

import accelkit as ak

plt.rcParams.update({"figure.dpi": 100, "figure.figsize": (7, 3), "font.size": 9})

import gc

from accelkit import ops

dev = ak.device()


def allocated():
    gc.collect()
    return dev.memory()["allocated_bytes"]


# %% [markdown]
# ## 1. One Whisper encoder output, two decoders
#
# Transcribing and translating the same audio both need the encoder output: 1500 x 48 float32 here,
# 1500 x 1280 (7.7 MB per 30 s) for whisper-large. Without sharing, each job encodes the audio and holds
# its own copy while it decodes; with sharing, the encoder runs once, and each job acquires a view of its
# output.

# %%
whisper = ak.load("tiny-random-whisper", device=dev)
t = np.arange(2 * 16000) / 16000
audio = (0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(np.pi * t / 2)).astype(np.float32)
features = whisper.feature_extractor([audio], sampling_rate=16000)
jobs = {
    "transcribe": dict(language="en", task="transcribe"),
    "translate": dict(language="fr", task="translate"),
}
for job in jobs.values():  # warm-up: generate caches its token masks on the device
    whisper.generate(features, max_new_tokens=1, **job)

encoder_runs = 0


def encode(features):
    global encoder_runs
    encoder_runs += 1
    return whisper.encode(features)


# without sharing: each job encodes and holds its own copy while both jobs are live
base = allocated()
own = {name: encode(features) for name in jobs}
held_separately = allocated() - base
texts_separate = {
    name: whisper.generate(encoder_hidden_states=own[name], max_new_tokens=8, **job)
    for name, job in jobs.items()
}
runs_separate, encoder_runs = encoder_runs, 0
del own
assert allocated() == base

# with sharing: publish once, every job acquires a view
with ak.sharing.publish("audio/encoder", encode(features), owner="whisper.encoder"):
    held_shared = allocated() - base
    handles = {name: ak.sharing.acquire("audio/encoder", consumer=name) for name in jobs}
    assert allocated() - base == held_shared  # acquiring allocates nothing
    texts_shared = {
        name: whisper.generate(encoder_hidden_states=handles[name].tensor, max_new_tokens=8, **job)
        for name, job in jobs.items()
    }
    report = ak.sharing.report()
    for h in handles.values():
        h.release()
runs_shared = encoder_runs
assert allocated() == base  # freed with the last handle

for name in jobs:
    assert np.array_equal(texts_separate[name], texts_shared[name])
    print(f"{name:<11}", repr(whisper.tokenizer.decode(texts_shared[name][0], skip_special_tokens=False)))
print(
    f"encoder runs: {runs_separate} separately, {runs_shared} shared; "
    f"bytes held: {held_separately:,} separately, {held_shared:,} shared"
)
assert runs_shared == 1 and held_shared * 2 == held_separately

# %%
# NBVAL_CHECK_OUTPUT
print("encoder runs, separately / shared:", runs_separate, "/", runs_shared)
print("shared holds half the bytes:", held_shared * 2 == held_separately)
print("same token ids either way:", all(np.array_equal(texts_separate[k], texts_shared[k]) for k in jobs))

# %% [markdown]
# The report, taken while both consumers held their views: who published what, who holds it, how many
# views were served and the bytes they did not copy. (It also lists deduplicated weights; see section 3.)

# %%
report

# %% [markdown]
# ## 2. BERT hidden states, a classifier and a similarity search
#
# One BERT forward pass serves two consumers: a classifier reads the pooled output, a similarity search
# reads the `[CLS]` hidden states. Without sharing, each consumer runs its own forward pass and holds its
# own outputs.

# %%
bert = ak.load("tiny-random-bert", device=dev)
corpus = ["the cat sat on the mat", "a dog ran in the park", "the cat slept on a mat", "trains leave at noon"]
enc = bert.encode(corpus)


def classify(pooled):
    return bert.classifier(pooled)


def similarities(hidden):
    cls = hidden[:, 0]
    unit = cls / ops.sqrt(ops.sum(cls * cls, axis=-1, keepdims=True))
    return ops.matmul(unit, unit.T)


base = allocated()
a, b = bert.bert(**enc), bert.bert(**enc)  # one forward each
logits_separate, sims_separate = classify(a.pooler_output), similarities(b.last_hidden_state)
bert_separately = allocated() - base
logits_separate, sims_separate = logits_separate.numpy(), sims_separate.numpy()
del a, b
gc.collect()

base = allocated()
out = bert.bert(**enc)  # one forward for both
with (
    ak.sharing.publish("text/hidden", out.last_hidden_state, owner="bert"),
    ak.sharing.publish("text/pooled", out.pooler_output, owner="bert"),
):
    del out
    with (
        ak.sharing.acquire("text/pooled", consumer="classifier") as p,
        ak.sharing.acquire("text/hidden", consumer="search") as h,
    ):
        logits, sims = classify(p.tensor), similarities(h.tensor)
        bert_shared = allocated() - base
        logits, sims = logits.numpy(), sims.numpy()

assert np.array_equal(logits, logits_separate) and np.allclose(sims, sims_separate, atol=1e-6)
print(f"device bytes while both consumers ran: {bert_separately:,} separately, {bert_shared:,} shared")
np.fill_diagonal(sims, -np.inf)
for i, j in enumerate(sims.argmax(axis=1)):
    print(f"{corpus[i]!r:26} is closest to {corpus[j]!r}")


# %% [markdown]
# ## 3. Weight dedup: the same checkpoint loaded twice
#
# Dedup is on by default. A second `ak.load` of weights a live model already holds on that device adds
# (almost) nothing: its parameters are views of the first model's storages. `ak.sharing.no_dedup()` gives
# private copies, which is what the bars compare.


# %%
def load_cost(make):
    before = allocated()
    model = make()
    return model, allocated() - before


# `bert` (section 2) is alive, so its weights are on the device already
with ak.sharing.no_dedup():
    private, private_bytes = load_cost(lambda: ak.load("tiny-random-bert", device=dev))
second, second_bytes = load_cost(lambda: ak.load("tiny-random-bert", device=dev))
print(f"loading tiny-random-bert again: {private_bytes:,} B without dedup, {second_bytes:,} B with dedup")
assert second_bytes < 0.05 * private_bytes
assert np.array_equal(second(**enc).logits.numpy(), bert(**enc).logits.numpy())

# %%
fig, axes = plt.subplots(1, 3, figsize=(9, 2.8))
panels = [
    ("Whisper encoder output\n(transcribe + translate)", held_separately, held_shared),
    ("BERT outputs\n(classifier + search)", bert_separately, bert_shared),
    ("second load of tiny-random-bert", private_bytes, second_bytes),
]
for ax, (title, without, with_) in zip(axes, panels):
    bars = ax.bar(
        ["without\nsharing", "with\nsharing"], [without / 1024, with_ / 1024], color=["#bdbdbd", "#31a354"]
    )
    ax.bar_label(bars, fmt="%.1f KiB", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel("device KiB (measured)")
    ax.margins(y=0.2)
fig.suptitle(f"device.memory() on {dev.spec}")
fig.tight_layout()

# %% [markdown]
# The report now lists what the live models share; the module tree of either model marks each shared
# weight too (`shared: dedup: also in tiny-random-bert#...`).

# %%
rep = ak.sharing.report()
assert rep.dedup_bytes_saved > 0
print(
    next(f"{name}: {p.shared}" for name, p in second.named_parameters() if p.shared and "dedup" in p.shared)
)
rep
