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
# # 06 · Whisper: audio in, tokens out
#
# Whisper is an encoder-decoder transformer. The audio becomes a log-mel spectrogram (80 mel bands x 3000
# frames of 10 ms = a 30 s window); the encoder turns it into 1500 vectors; the decoder writes tokens one
# at a time, attending to them, after a prompt that names the language and the task. The bundled
# `tiny-random-whisper` has Whisper's structure at toy size (d_model 48, 2 + 2 layers) and random weights: the
# text it writes is gibberish, but every step is the real one.

# %%
import matplotlib.pyplot as plt
import numpy as np

import accelkit as ak

plt.rcParams.update({"figure.dpi": 100, "figure.figsize": (7, 3), "font.size": 9})

from pathlib import Path

whisper = ak.load("tiny-random-whisper")
cfg = whisper.config
fe = whisper.feature_extractor
print(
    f"d_model {cfg.d_model}, {cfg.encoder_layers} + {cfg.decoder_layers} layers, {cfg.num_mel_bins} mel bins, "
    f"{cfg.max_source_positions} encoder positions, {cfg.max_target_positions} decoder positions, "
    f"vocab {cfg.vocab_size}"
)
print(fe)

# %% [markdown]
# ## 1. A signal
#
# No recording ships with accelkit, so make a speech-like one: a voice whose pitch glides around 140 Hz,
# with harmonics, in syllable-like bursts, sampled at 16 kHz (Whisper's rate).

# %%
rate = 16000


def voice(seconds, f0=140.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = f0 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    wave = sum(np.sin(k * phase) / k for k in (1, 2, 3, 5, 8))
    syllables = 0.5 * (1 - np.cos(2 * np.pi * 3 * t)) * (t < seconds - 0.2)
    return (0.2 * wave * syllables + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


audio = voice(2.5)
fig, ax = plt.subplots(figsize=(7, 1.8))
ax.plot(np.arange(audio.size) / rate, audio, lw=0.4)
ax.set_xlabel("seconds")
ax.set_title("2.5 s of synthetic voice at 16 kHz")
fig.tight_layout()

# %% [markdown]
# ## 2. The log-mel spectrogram
#
# The feature extractor (numpy, matching transformers' `WhisperFeatureExtractor`) pads the audio to 30 s,
# takes a 25 ms Hann-windowed FFT every 10 ms, maps the power onto 80 mel bands, takes log10, clips to
# 8 (80 dB) below the maximum and rescales to roughly [-1, 1]. The padding is silence, which shows as
# the flat floor after 2.5 s.

# %%
features = fe([audio], sampling_rate=rate)  # (1, 80, 3000) float32
print(features.shape, features.dtype)

fig, axes = plt.subplots(2, 1, figsize=(7, 4.2), gridspec_kw={"height_ratios": [2, 1]})
panels = [
    (features[0, :, :300], 3.0, "log-mel features, first 3 s"),
    (features[0], 30, "the whole 30 s window the encoder sees (zero-padded)"),
]
for ax, (mel, seconds, title) in zip(axes, panels):
    extent = (0, seconds, 0, cfg.num_mel_bins)
    ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", extent=extent, interpolation="nearest")
    ax.set_title(title)
    ax.set_ylabel("mel band")
axes[1].set_xlabel("seconds")
fig.tight_layout()

# %% [markdown]
# ## 3. The encoder
#
# Two 1-D convolutions (the second with stride 2) take the 3000 frames to 1500 positions of 20 ms,
# position embeddings are added, then the transformer layers run. The output stays on the device; the
# decoder's cross-attention reads it at every step.

# %%
encoded = whisper.encode(features)  # (1, 1500, 48)
print(encoded)
fig, ax = plt.subplots(figsize=(7, 2.2))
ax.imshow(
    encoded.numpy()[0, :150].T,
    aspect="auto",
    cmap="RdBu_r",
    extent=(0, 3.0, cfg.d_model, 0),
    interpolation="nearest",
)
ax.set_xlabel("seconds (first 150 of 1500 positions)")
ax.set_ylabel("channel")
ax.set_title("encoder output")
fig.tight_layout()

# %% [markdown]
# ## 4. The prompt: language and task tokens
#
# The decoder starts from a prompt of special tokens, as in transformers' `generate`:
# `<|startoftranscript|>`, a language (`<|en|>`, `<|fr|>`, ...), a task (`<|transcribe|>` writes the
# spoken language, `<|translate|>` writes English), and `<|notimestamps|>` (no time tokens in the text).
# With no language given, Whisper detects it: the first decoder step's logits, restricted to the
# language tokens, pick one.

# %%
# NBVAL_CHECK_OUTPUT
tok = whisper.tokenizer
for language, task in [("en", "transcribe"), ("fr", "translate"), ("fr", None), (None, None)]:
    ids = whisper.prompt_ids(language=language, task=task)
    shown = " ".join("<language: detected>" if i is None else tok.id_to_token(i) for i in ids)
    print(f"language={language!s:<5} task={task!s:<11} -> {shown}")

# %%
print("detected language:", whisper.detect_language(encoder_hidden_states=encoded))

# %% [markdown]
# ## 5. Greedy decoding
#
# `generate` runs the decoder step by step on the device: per layer a key/value cache is filled in place,
# the encoder's keys and values are projected once, suppressed tokens are masked inside the logits matmul,
# and the argmax is taken on the device, so each step reads back only the chosen token id. It stops at
# `<|endoftext|>` or after `max_new_tokens`.

# %%
ids = whisper.generate(encoder_hidden_states=encoded, language="en", task="transcribe", max_new_tokens=16)
print(ids)
print([tok.id_to_token(int(i)) for i in ids[0]])
print("text:", repr(tok.decode(ids[0], skip_special_tokens=True)))

# %% [markdown]
# ## 6. A longer recording: chunking and resampling
#
# `transcribe` takes audio of any length, rate and channel count: it mixes to mono, resamples to 16 kHz,
# cuts the audio into 30 s windows, decodes the windows in batches and joins their texts. Here: 70 s at
# 44.1 kHz, so three windows (30 + 30 + 10 s).

# %%
from accelkit.preprocess import chunk_audio, resample

long_16k = np.concatenate([voice(10, f0=110 + 15 * i, seed=i) for i in range(7)])  # 70 s
long_44k = resample(long_16k, 16000, 44100)
chunks = chunk_audio(long_16k, 16000, fe.chunk_length)  # what transcribe() does after resampling
print(f"{long_44k.size / 44100:.0f} s at 44.1 kHz -> windows of", [f"{c.size / 16000:.0f} s" for c in chunks])

fig, ax = plt.subplots(figsize=(7, 1.8))
ax.plot(np.arange(long_44k.size) / 44100, long_44k, lw=0.2)
for edge in np.cumsum([c.size / 16000 for c in chunks])[:-1]:
    ax.axvline(edge, color="red", lw=1.5)
ax.set_xlabel("seconds")
ax.set_title("70 s of audio; red: where transcribe() cuts 30 s windows")
fig.tight_layout()

text = whisper.transcribe(long_44k, sampling_rate=44100, language="en", max_new_tokens=12)
print("transcript:", repr(text))

# %% [markdown]
# ## 7. Fidelity against transformers
#
# `tests/fixtures/references/tiny-random-whisper.npz` holds 3.2 s of audio, transformers' features, encoder
# output and logits for it, and the token ids its greedy `generate` wrote for English transcription and
# translation. The features and outputs must match to 2e-4, and the ids exactly.

# %%
root = next(
    p for p in [Path.cwd(), *Path.cwd().parents] if (p / "tests" / "fixtures" / "references").is_dir()
)
ref = np.load(root / "tests" / "fixtures" / "references" / "tiny-random-whisper.npz")


def rel_error(actual, expected):
    """max |actual - expected| / max |expected|, against transformers' float64 reference"""
    return float(np.abs(np.asarray(actual, np.float64) - expected).max() / np.abs(expected).max())


feats = fe([ref["audio"]], sampling_rate=int(ref["sampling_rate"]))
o = whisper(ref["input_features"], ref["decoder_input_ids"])
errors = {
    "input_features": rel_error(feats, ref["input_features"]),
    "encoder_last_hidden_state": rel_error(
        o.encoder_last_hidden_state.numpy(), ref["encoder_last_hidden_state"]
    ),
    "logits": rel_error(o.logits.numpy(), ref["logits"]),
}
print({k: f"{v:.1e}" for k, v in errors.items()})
same_ids = {
    task: np.array_equal(
        whisper.generate(
            encoder_hidden_states=o.encoder_last_hidden_state, language="en", task=task, max_new_tokens=20
        ),
        ref[f"generated_ids_{task}"],
    )
    for task in ("transcribe", "translate")
}

# %%
# NBVAL_CHECK_OUTPUT
print("features and outputs within 2e-4:", all(e < 2e-4 for e in errors.values()))
print("greedy ids identical to transformers':", same_ids)
assert all(e < 2e-4 for e in errors.values()) and all(same_ids.values())
