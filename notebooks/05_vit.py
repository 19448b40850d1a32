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
# # 05 · ViT: an image as a sequence of patches
#
# A Vision Transformer cuts the image into square patches, embeds each patch with one matrix multiply,
# prepends a `[CLS]` token, adds position embeddings and runs a (pre-LayerNorm) transformer encoder; the
# classifier reads the final `[CLS]` state. The bundled `tiny-random-vit` takes 30 x 30 images in 6 x 6 patches:
# 5 x 5 = 25 patches plus `[CLS]` = 26 tokens, 5 labels. Its weights are random.

# %%
import matplotlib.pyplot as plt
import numpy as np

import accelkit as ak

plt.rcParams.update({"figure.dpi": 100, "figure.figsize": (7, 3), "font.size": 9})

import math
from pathlib import Path

from accelkit import nn, ops

vit = ak.load("tiny-random-vit")
cfg = vit.config
side = cfg.image_size // cfg.patch_size
print(
    f"{type(vit).__name__}: image {cfg.image_size}, patch {cfg.patch_size} -> {side} x {side} patches, "
    f"hidden {cfg.hidden_size}, {cfg.num_hidden_layers} layers x {cfg.num_attention_heads} heads"
)
print("labels:", vit.id2label)

# %% [markdown]
# ## 1. An image, preprocessed
#
# `vit.preprocess` follows the checkpoint's `preprocessor_config.json` exactly as transformers'
# `ViTImageProcessor` does: resize (bilinear) to 30 x 30, scale to [0, 1], normalise with mean 0.5 and
# std 0.5, channels first. The picture is the sample photo that ships with matplotlib.

# %%
import matplotlib.cbook
from PIL import Image

try:
    image = np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"))
except (OSError, ValueError):  # no sample data: a generated test card
    from accelkit.models.demo import _image

    image = _image(128)
pixels = vit.preprocess(image)  # (1, 3, 30, 30) float32
print(
    image.shape,
    image.dtype,
    "->",
    pixels.shape,
    pixels.dtype,
    f"range [{pixels.min():.2f}, {pixels.max():.2f}]",
)

shown = (pixels[0].transpose(1, 2, 0) + 1) / 2  # undo the normalisation for display
fig, axes = plt.subplots(1, 2, figsize=(6, 3))
axes[0].imshow(image)
axes[0].set_title(f"original {image.shape[1]} x {image.shape[0]}")
axes[1].imshow(shown)
axes[1].set_title("what the model sees: 30 x 30")
for ax in axes:
    ax.axis("off")
fig.tight_layout()

# %% [markdown]
# ## 2. The patch grid
#
# The patch embedding is a convolution with kernel = stride = 6: each of the 25 patches (a 6 x 6 x 3
# block, 108 numbers) is flattened and multiplied by the same (108 -> 36) matrix. accelkit does it
# as a strided view of the image and one matmul. Token 0 is `[CLS]`; token `1 + r * 5 + c` is the patch in
# row `r`, column `c`.

# %%
fig, ax = plt.subplots(figsize=(3.6, 3.6))
ax.imshow(shown, extent=(0, cfg.image_size, cfg.image_size, 0))
for k in range(1, side):
    ax.axhline(k * cfg.patch_size, color="white", lw=1)
    ax.axvline(k * cfg.patch_size, color="white", lw=1)
for r in range(side):
    for c in range(side):
        ax.text(
            (c + 0.5) * cfg.patch_size,
            (r + 0.5) * cfg.patch_size,
            str(1 + r * side + c),
            color="yellow",
            ha="center",
            va="center",
            fontsize=9,
            weight="bold",
        )
ax.set_title("tokens 1..25: one per 6 x 6 patch")
ax.axis("off")
fig.tight_layout()

patches = vit.vit.embeddings.patch_embeddings(ak.tensor(pixels))  # (1, 25, 36)
print("patch embeddings:", patches)

# %% [markdown]
# ## 3. Classification
#
# `vit.classify(images, top_k)` preprocesses, runs the model and returns (label, probability) pairs;
# `vit(pixel_values).logits` gives the raw logits.

# %%
out = vit(pixels, output_hidden_states=True)
logits = out.logits.numpy()[0]
probs = np.exp(logits - logits.max())
probs /= probs.sum()
print(vit.classify(image, top_k=3))

labels = [vit.id2label[i] for i in range(len(logits))]
fig, axes = plt.subplots(1, 2, figsize=(7, 2.4))
axes[0].bar(labels, logits, color=["#3182bd" if l >= 0 else "#e6550d" for l in logits])
axes[0].axhline(0, color="black", lw=0.5)
axes[0].set_title("logits")
axes[1].bar(labels, probs, color="#31a354")
axes[1].set_ylim(0, 1)
axes[1].set_title("softmax probabilities (random weights)")
fig.tight_layout()

# %% [markdown]
# ## 4. Where `[CLS]` looks
#
# Recompute the last layer's attention from its own modules, as in notebook 04, but ViT is pre-LN: the
# layer normalises its input (`layernorm_before`) before projecting queries and keys. Row 0 of each
# head's probability matrix is how much `[CLS]` attends to each patch; reshaped to 5 x 5, it lies over
# the image. The check at the end confirms the recomputation matches the model's fused kernel.

# %%
H = cfg.num_attention_heads
D = cfg.hidden_size // H
last = cfg.num_hidden_layers - 1
layer = vit.vit.encoder.layer[last]
sa = layer.attention.attention
x = layer.layernorm_before(out.hidden_states[last])  # (1, 26, 36)
q, k, v = (nn.split_heads(lin(x), H) for lin in (sa.query, sa.key, sa.value))
attn = ops.softmax(q @ k.mT * (1 / math.sqrt(D)), axis=-1)  # (1, H, 26, 26)
by_hand = (attn @ v).permute(0, 2, 1, 3).reshape(x.shape)
assert np.abs(by_hand.numpy() - sa(x).numpy()).max() < 1e-5

cls_attn = attn.numpy()[0, :, 0, 1:].reshape(H, side, side)
fig, axes = plt.subplots(1, H, figsize=(3 * H, 3))
for h, ax in enumerate(axes):
    ax.imshow(shown.mean(axis=-1), extent=(0, 1, 1, 0), cmap="gray")
    ax.imshow(cls_attn[h], extent=(0, 1, 1, 0), cmap="inferno", alpha=0.55, interpolation="nearest")
    ax.set_title(f"layer {last}, head {h}: [CLS] -> patches", fontsize=9)
    ax.axis("off")
fig.tight_layout()
print(f"[CLS] keeps {attn.numpy()[0, :, 0, 0].round(3)} of its attention on itself, per head")

# %% [markdown]
# ## 5. Position embeddings
#
# Each token gets a learnt position embedding added. Below, for every patch position, its cosine
# similarity to every other position's embedding, laid out on the 5 x 5 grid. In a trained ViT
# these maps show the image's 2-D layout (neighbours are similar, rows and columns stand out); with
# random weights each position is only similar to itself.

# %%
pos = vit.vit.embeddings.position_embeddings.numpy()[0, 1:]  # (25, 36), [CLS] dropped
unit = pos / np.linalg.norm(pos, axis=-1, keepdims=True)
sim = unit @ unit.T
fig, axes = plt.subplots(side, side, figsize=(4.2, 4.2))
for i, ax in enumerate(axes.flat):
    ax.imshow(sim[i].reshape(side, side), cmap="viridis", vmin=-1, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("position-embedding similarity (row r, col c: patch r*5+c vs all)", fontsize=9)
fig.tight_layout()

# %% [markdown]
# ## 6. Fidelity against transformers
#
# `tests/fixtures/references/tiny-random-vit.npz` holds two odd-sized images, transformers' preprocessing of
# them, and its outputs for this checkpoint. The preprocessing must match exactly, the outputs to 2e-4.

# %%
root = next(
    p for p in [Path.cwd(), *Path.cwd().parents] if (p / "tests" / "fixtures" / "references").is_dir()
)
ref = np.load(root / "tests" / "fixtures" / "references" / "tiny-random-vit.npz")


def rel_error(actual, expected):
    """max |actual - expected| / max |expected|, against transformers' float64 reference"""
    return float(np.abs(np.asarray(actual, np.float64) - expected).max() / np.abs(expected).max())


mine = vit.preprocess(list(ref["images"]))
o = vit(mine)
errors = {
    "pixel_values": rel_error(mine, ref["pixel_values"]),
    "last_hidden_state": rel_error(o.last_hidden_state.numpy(), ref["last_hidden_state"]),
    "logits": rel_error(o.logits.numpy(), ref["logits"]),
}
print({k: f"{v:.1e}" for k, v in errors.items()})

# %%
# NBVAL_CHECK_OUTPUT
print("preprocessing identical:", errors["pixel_values"] < 1e-6)
print("outputs within 2e-4:", errors["last_hidden_state"] < 2e-4 and errors["logits"] < 2e-4)
assert errors["pixel_values"] < 1e-6 and errors["last_hidden_state"] < 2e-4 and errors["logits"] < 2e-4
