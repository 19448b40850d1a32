"""The model sizes the benchmarks run at, and the random-weight checkpoints written for them.

``tiny`` is the bundled checkpoints (``tiny-random-bert``, ``tiny-random-vit``, ``tiny-random-whisper``). ``small`` and ``base``
are real model dimensions (``PRESETS``): a benchmark puts them into a config.json, and
``write_checkpoint`` writes that with seeded random weights (``random_state_dict``) in Hugging Face
layout, so that the real loading path runs and no hub access is needed. ``accelkit bench models``,
``bench sharing`` and ``bench pool`` all take their sizes from here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

FAMILIES = ("bert", "vit", "whisper")

#: the bundled checkpoint of each family (--size tiny)
TINY = {"bert": "tiny-random-bert", "vit": "tiny-random-vit", "whisper": "tiny-random-whisper"}


def _encoder(hidden: int, layers: int, heads: int, **rest) -> dict:
    """A BERT-style encoder's dimensions, named alike in BERT's and ViT's configs."""
    return dict(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        **rest,
    )


def _bert(hidden: int, layers: int, heads: int) -> dict:
    return _encoder(hidden, layers, heads, vocab_size=30522, max_position_embeddings=512)


def _vit(hidden: int, layers: int, heads: int) -> dict:
    return _encoder(hidden, layers, heads, image_size=224, patch_size=16)


def _whisper(width: int, layers: int, heads: int) -> dict:
    return dict(
        d_model=width,
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=4 * width,
        decoder_ffn_dim=4 * width,
        vocab_size=51865,
        max_target_positions=448,
    )


#: the dimensions of each family at each larger size (what a config.json of that size says): width, layers
#: and heads of BERT-mini / BERT-base, ViT-Ti/16 / ViT-B/16 (224 x 224) and Whisper tiny / base, each with
#: a feed-forward of 4 x the width and the real vocabularies
PRESETS: dict[str, dict[str, dict]] = {
    "small": {"bert": _bert(256, 4, 4), "vit": _vit(192, 12, 3), "whisper": _whisper(384, 4, 6)},
    "base": {"bert": _bert(768, 12, 12), "vit": _vit(768, 12, 12), "whisper": _whisper(512, 6, 8)},
}

SIZES = ("tiny", *PRESETS)


def random_state_dict(config: dict, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded float32 weights for every parameter the model of ``config`` has (tied ones left out).

    Scales keep activations O(1) through every layer and make greedy choices clear-cut: matrices and
    convolutions n/sqrt(fan_in), biases 0.02n, LayerNorm weights 1+0.1n and biases 0.05n, embedding
    tables and tokens 0.5n. The names come from accelkit's module tree, which uses transformers' names.
    """
    from ..models.registry import model_class

    archs = config.get("architectures") or [None]
    cls = model_class(config["model_type"], archs[0])
    model = cls(cls.config_class.from_dict(config, source="bench config"))  # the tree only: no device memory
    tied = set(getattr(model, "tied_weights", {}) or {})
    rng = np.random.default_rng(seed)
    out = {}
    for name, p in sorted(model.named_parameters(), key=lambda item: item[0]):
        if name in tied:
            continue
        shape = tuple(p.shape)
        n = rng.standard_normal(shape, dtype=np.float32)
        lower = name.lower()
        if "norm" in lower:
            value = 1.0 + 0.1 * n if name.endswith("weight") else 0.05 * n
        elif len(shape) == 1:
            value = 0.02 * n
        elif "embed" in lower or "cls_token" in lower:
            value = 0.5 * n
        else:
            value = n * np.float32(1.0 / np.sqrt(np.prod(shape[1:])))
        out[name] = np.ascontiguousarray(value, dtype=np.float32)
    return out


def write_checkpoint(
    directory: str | os.PathLike, config: dict, state: dict[str, np.ndarray], generation: dict | None = None
) -> Path:
    """config.json (+ generation_config.json) and model.safetensors in Hugging Face layout; returns the path."""
    from safetensors.numpy import save_file

    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config, indent=2))
    if generation:
        (path / "generation_config.json").write_text(json.dumps(generation, indent=2))
    save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})
    return path
