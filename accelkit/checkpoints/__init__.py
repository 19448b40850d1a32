"""Tiny random-initialised checkpoints shipped with accelkit, for tests, notebooks and the demo."""

from __future__ import annotations

from pathlib import Path

from accelkit.errors import WeightsError

_ROOT = Path(__file__).resolve().parent


def names() -> list[str]:
    """The bundled checkpoints, sorted: ``["tiny-random-bert", "tiny-random-bert-mlm", "tiny-random-vit", "tiny-random-whisper"]``."""
    return sorted(p.name for p in _ROOT.iterdir() if (p / "config.json").is_file())


def is_bundled(directory) -> bool:
    """Whether ``directory`` is one of the bundled checkpoints (tiny, random weights)."""
    try:
        return Path(directory).resolve().parent == _ROOT and (Path(directory) / "config.json").is_file()
    except (OSError, TypeError):
        return False


def path(name: str) -> Path:
    """The directory of a bundled checkpoint (Hugging Face layout), e.g. ``path("tiny-random-bert")``."""
    available = names()
    if name not in available:
        raise WeightsError(
            f"no bundled checkpoint named {name!r}; available: {', '.join(available)} (tiny, random weights); "
            "for a trained model on the Hugging Face Hub write 'hf:org/name', e.g. 'hf:openai/whisper-tiny'"
        )
    return _ROOT / name


__all__ = ["is_bundled", "names", "path"]
