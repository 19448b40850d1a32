"""The bundled models end to end on one device (``accelkit demo``): BERT embeddings, ViT classification, Whisper.

Each model is timed three ways: load (checkpoint -> device), the first run (includes pipeline
compilation on WebGPU) and a warm run. The models are tiny and random-initialised, so the
similarities, labels and transcript show that everything runs, not what a trained model says.
"""

from __future__ import annotations

import time
import traceback
import warnings

import numpy as np

SENTENCES = [
    "The cat slept on the warm window sill.",
    "A small cat was sleeping by the window.",
    "The train to the airport leaves every twenty minutes.",
]


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:8.1f} ms"


def _image(size: int = 64) -> np.ndarray:
    """A (size, size, 3) uint8 test card: colour ramps and a dark disc."""
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    disc = ((x - 0.6) ** 2 + (y - 0.4) ** 2) < 0.06
    rgb = np.stack([x, y, 1 - x * y], axis=-1) * 255
    rgb[disc] = (30, 40, 60)
    return rgb.astype(np.uint8)


def _audio(seconds: float = 1.5, rate: int = 16000) -> np.ndarray:
    """A speech-like signal: a gliding pitch with formant-like harmonics, syllable-shaped envelope."""
    t = np.arange(int(seconds * rate)) / rate
    pitch = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voice = sum(np.sin(k * phase) / k for k in (1, 2, 3, 5, 8))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * 3 * t)) * np.exp(-((t - seconds / 2) ** 2))
    return (0.3 * voice * envelope).astype(np.float32)


def run(device, quiet: bool = False) -> int:
    """Run the three bundled models on ``device``, printing results and timings; returns an exit code."""
    from ..hardware import device as pick_device
    from .auto import load

    say = (lambda *a: None) if quiet else print
    dev = pick_device(device)
    failures = 0
    say(f"models on {dev.spec} (bundled tiny checkpoints, random weights):")

    def report(name: str, t_load: float, t_first: float, t_warm: float) -> None:
        say(f"  {name:<19} load {_ms(t_load)}   first run {_ms(t_first)}   warm run {_ms(t_warm)}")

    # BERT: sentence embeddings and their cosine similarities
    try:
        bert, t_load = _timed(lambda: load("tiny-random-bert", device=dev))
        _, t_first = _timed(lambda: bert.embed(SENTENCES, pooling="mean"))
        emb, t_warm = _timed(lambda: bert.embed(SENTENCES, pooling="mean", normalize=True))
        report("tiny-random-bert", t_load, t_first, t_warm)
        sims = emb @ emb.T
        for i in range(len(SENTENCES)):
            for j in range(i + 1, len(SENTENCES)):
                say(f"    cos {sims[i, j]:+.3f}  {SENTENCES[i]!r} ~ {SENTENCES[j]!r}")
    except Exception as exc:  # the demo reports every failure and goes on
        failures += 1
        say(f"  tiny-random-bert failed: {type(exc).__name__}: {exc}")

    # ViT: classify a generated image
    try:
        vit, t_load = _timed(lambda: load("tiny-random-vit", device=dev))
        image = _image()
        _, t_first = _timed(lambda: vit.classify(image, top_k=3))
        [top], t_warm = _timed(lambda: vit.classify(image, top_k=3))
        report("tiny-random-vit", t_load, t_first, t_warm)
        say("    top-3 for a generated test card: " + ", ".join(f"{label} {p:.2f}" for label, p in top))
    except Exception as exc:
        failures += 1
        say(f"  tiny-random-vit failed: {type(exc).__name__}: {exc}")

    # Whisper: transcribe a generated speech-like signal
    try:
        whisper, t_load = _timed(lambda: load("tiny-random-whisper", device=dev))
        audio = _audio()
        with warnings.catch_warnings():
            # transcribe() warns that a random-weights model's text means nothing: the demo says so below
            warnings.filterwarnings("ignore", message="transcribe: .* random weights", category=UserWarning)
            _, t_first = _timed(lambda: whisper.transcribe(audio))
            text, t_warm = _timed(lambda: whisper.transcribe(audio))
        report("tiny-random-whisper", t_load, t_first, t_warm)
        say(
            f"    transcript of {len(audio) / 16000:.1f} s of synthetic audio (random weights: no meaning): {text!r}"
        )
    except Exception as exc:
        failures += 1
        say(f"  tiny-random-whisper failed: {type(exc).__name__}: {exc}")
        if not quiet:
            traceback.print_exc(limit=3)
    return 1 if failures else 0


__all__ = ["run"]
