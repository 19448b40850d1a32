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
# # 04 · BERT, inside out
#
# `accelkit/models/bert.py` is BERT in one file, with transformers' module and weight names, so a
# checkpoint saved by `save_pretrained` loads as is. This notebook tokenises text, runs the encoder,
# recomputes one layer's attention probabilities from the model's own query and key projections,
# pools embeddings, classifies, and finally checks the outputs against transformers' (committed
# reference outputs for the same random weights).

# %%
import matplotlib.pyplot as plt
import numpy as np

import accelkit as ak

plt.rcParams.update({"figure.dpi": 100, "figure.figsize": (7, 3), "font.size": 9})

import math
from pathlib import Path

from accelkit import nn, ops

bert = ak.load("tiny-random-bert")
cfg = bert.config
print(type(bert).__name__, "on", bert.device.spec)
print(
    f"{cfg.num_hidden_layers} layers, {cfg.num_attention_heads} heads, hidden {cfg.hidden_size}, "
    f"vocab {cfg.vocab_size}, labels {bert.id2label}"
)

# %% [markdown]
# ## 1. Tokens
#
# `bert.encode` uses the checkpoint's `tokenizer.json` (WordPiece, lower-cased): `[CLS]` first, `[SEP]`
# after each text, `##` marking a piece that continues a word. A batch is padded on the right with
# `[PAD]` (id 0) and `attention_mask` marks the real tokens; a text pair gets `token_type_ids` 1 on its
# second part.

# %%
# NBVAL_CHECK_OUTPUT
texts = ["The cat sat on the mat.", "Is the weather good today?"]
enc = bert.encode(texts)
tokens = [[bert.tokenizer.id_to_token(int(i)) for i in row] for row in enc["input_ids"]]
for row, mask in zip(tokens, enc["attention_mask"]):
    print(" ".join(tok for tok, m in zip(row, mask) if m), f"  ({mask.sum()} of {len(mask)} real)")
print(enc["input_ids"])

pair = bert.encode([("Is the weather good today?", "Tomorrow will be sunny.")])
print("pair token types:", pair["token_type_ids"][0])

# %% [markdown]
# ## 2. Forward
#
# One call records every dispatch of the forward pass (on WebGPU, into one command encoder) and
# returns tensors that stay on the device. `output_hidden_states=True` also returns every layer's
# input: `hidden_states[i]` goes into layer `i` (counting from 0), so `hidden_states[0]` is the
# embedding output and the last one equals `last_hidden_state`.

# %%
# NBVAL_CHECK_OUTPUT
out = bert(**enc, output_hidden_states=True)
for name, value in out.items():
    shapes = [tuple(h.shape) for h in value] if isinstance(value, list) else tuple(value.shape)
    print(f"{name:<18} {shapes}")

# %% [markdown]
# ## 3. Attention maps, recomputed from the model's query and key
#
# The model's attention runs as one fused kernel that never writes the attention probabilities to
# memory. To look at them, recompute one layer by hand from its modules:
#
# $$P_h = \mathrm{softmax}\Big(\frac{Q_h K_h^\top}{\sqrt{d}} + M\Big), \qquad Q = x W_q^\top + b_q,\; K = x W_k^\top + b_k$$
#
# where `x` is the layer's input, `d` the head size (14) and `M` the additive padding mask (0 for real
# tokens, -1e9 for padding). `nn.split_heads` reshapes (B, T, H·d) to (B, H, T, d) as a view. Then check
# that `P_h V_h` equals what the fused kernel computed.

# %%
mask = bert.bert.additive_mask(enc["attention_mask"], enc["input_ids"].shape)  # (B, 1, 1, T)
H = cfg.num_attention_heads
D = cfg.hidden_size // H


def attention_probs(layer_index):
    sa = bert.bert.encoder.layer[layer_index].attention.self
    x = out.hidden_states[layer_index]  # the layer's input
    q, k, v = (nn.split_heads(lin(x), H) for lin in (sa.query, sa.key, sa.value))  # (B, H, T, D)
    probs = ops.softmax(q @ k.mT * (1 / math.sqrt(D)) + mask, axis=-1)  # (B, H, T, T)
    by_hand = (probs @ v).permute(0, 2, 1, 3).reshape(x.shape)  # heads merged: (B, T, C)
    fused = sa(x, mask)  # the model's own kernel
    err = np.abs(by_hand.numpy() - fused.numpy()).max()
    assert err < 1e-5, err
    return probs.numpy()


probs = [attention_probs(i) for i in range(cfg.num_hidden_layers)]
print(
    "probabilities per layer:",
    probs[0].shape,
    "; rows sum to 1:",
    np.allclose(probs[0].sum(-1), 1, atol=1e-5),
)
pad = enc["attention_mask"][1] == 0
assert (probs[0][1][..., pad] == 0).all()  # padding gets no attention

# %%
n = int(enc["attention_mask"][0].sum())
labels = tokens[0][:n]
vmax = max(p[0, :, :n, :n].max() for p in probs)
fig, axes = plt.subplots(cfg.num_hidden_layers, H, figsize=(3.1 * H, 3.0 * cfg.num_hidden_layers))
for layer in range(cfg.num_hidden_layers):
    for head in range(H):
        ax = axes[layer, head]
        ax.imshow(probs[layer][0, head, :n, :n], cmap="Blues", vmin=0, vmax=vmax)
        ax.set_xticks(range(n), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(n), labels, fontsize=7)
        ax.set_title(f"layer {layer}, head {head}", fontsize=9)
fig.suptitle(f"attention probabilities (query row -> key column): {texts[0]!r}")
fig.tight_layout()

# %% [markdown]
# ## 4. Pooled embeddings
#
# BERT's *pooler* is `tanh(W h_[CLS] + b)`: the classifier reads it. For sentence embeddings,
# `bert.embed` pools the last hidden states instead, either the `[CLS]` state or the mean over real
# tokens. Here, four pairs of sentences that differ by one word, their mean embeddings projected on
# their first two principal components, each pair joined by a line.

# %%
print("pooler_output:", out.pooler_output)
assert np.allclose(bert.embed(texts, pooling="cls"), out.last_hidden_state[:, 0].numpy(), atol=1e-6)

corpus = [
    "The cat sat on the mat.",
    "The cat sat on a mat.",
    "A dog ran in the park.",
    "A dog ran in the garden.",
    "Is the weather good today?",
    "Is the weather nice today?",
    "The train leaves at noon.",
    "The train leaves at nine.",
]
e = bert.embed(corpus, pooling="mean")
centred = e - e.mean(axis=0)
_, s, vt = np.linalg.svd(centred, full_matrices=False)
xy = centred @ vt[:2].T

fig, ax = plt.subplots(figsize=(6.5, 3.6))
for k in range(0, len(corpus), 2):
    colour = plt.cm.tab10(k // 2)
    ax.plot(xy[k : k + 2, 0], xy[k : k + 2, 1], "o-", color=colour)
    for i in (k, k + 1):
        above = xy[i, 1] >= xy[k + (i == k), 1]
        ax.annotate(
            corpus[i],
            xy[i],
            fontsize=8,
            color=colour,
            xytext=(6, 5 if above else -12),
            textcoords="offset points",
        )
ax.set_xlabel(f"PC 1 ({s[0] ** 2 / (s**2).sum():.0%} of variance)")
ax.set_ylabel(f"PC 2 ({s[1] ** 2 / (s**2).sum():.0%})")
ax.set_title("mean-pooled tiny-random-bert embeddings (random weights)")
ax.margins(x=0.45, y=0.15)
fig.tight_layout()

# %% [markdown]
# ## 5. Classification
#
# `tiny-random-bert` is a `BertForSequenceClassification` with three labels in its `config.json`
# (`id2label`). `out.logits` is (B, 3); `out.labels(top_k)` and `bert.classify(texts)` turn logits into
# (label, probability) pairs. The weights are random, so the labels are too.

# %%
print(out.logits)
for text, top in zip(texts, out.labels(top_k=3)):
    print(f"{text!r:32}", ", ".join(f"{label} {p:.2f}" for label, p in top))
assert out.labels(top_k=3) == bert.classify(texts, top_k=3)

probs_cls = np.exp(out.logits.numpy() - out.logits.numpy().max(-1, keepdims=True))
probs_cls /= probs_cls.sum(-1, keepdims=True)
fig, ax = plt.subplots(figsize=(6.5, 1.8))
left = np.zeros(len(texts))
for i, label in bert.id2label.items():
    ax.barh(texts, probs_cls[:, i], left=left, label=label)
    left += probs_cls[:, i]
ax.set_xlim(0, 1)
ax.invert_yaxis()
ax.set_xlabel("probability")
ax.legend(ncol=3, fontsize=8, loc="lower right", bbox_to_anchor=(1, 1))
fig.tight_layout()

# %% [markdown]
# ## 6. Fidelity: the same numbers as transformers
#
# `tests/fixtures/references/tiny-random-bert.npz` holds transformers' outputs (computed in float64) for this
# very checkpoint on three inputs: a short text, a text pair, and a long text with an out-of-vocabulary
# character, padded to 35 tokens. Run them on every device and compare; the error is the largest
# absolute difference relative to the largest reference value, and must stay under 2e-4.

# %%
root = next(
    p for p in [Path.cwd(), *Path.cwd().parents] if (p / "tests" / "fixtures" / "references").is_dir()
)
ref = np.load(root / "tests" / "fixtures" / "references" / "tiny-random-bert.npz")


def rel_error(actual, expected):
    """max |actual - expected| / max |expected|, against transformers' float64 reference"""
    return float(np.abs(np.asarray(actual, np.float64) - expected).max() / np.abs(expected).max())


inputs = {k: ref[k] for k in ("input_ids", "attention_mask", "token_type_ids")}

devices = [ak.device("cpu")] + [d for d in ak.devices() if d.backend_name == "webgpu"][:1]
fields = ["last_hidden_state", "pooler_output", "logits"]
fidelity = {}
for d in devices:
    model = bert if d is bert.device else ak.load("tiny-random-bert", device=d)
    o = model(**inputs)
    fidelity[d.spec] = {f: rel_error(o[f], ref[f]) for f in fields}
for spec, errs in fidelity.items():
    print(f"{spec:<10}", "  ".join(f"{f} {e:.1e}" for f, e in errs.items()))

# %%
# NBVAL_CHECK_OUTPUT
for f in fields:
    worst = max(errs[f] for errs in fidelity.values())
    print(f"{f:<18} within 2e-4 of transformers: {worst < 2e-4}")
    assert worst < 2e-4
