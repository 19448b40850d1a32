"""models: BERT, ViT and Whisper, one readable file each, loaded from Hugging Face checkpoints.

    model = accelkit.load("tiny-random-bert")            # or a directory, or "hf:org/name"
    out = model(input_ids, attention_mask)        # -> ModelOutput(last_hidden_state, pooler_output, logits)

Owns the model files (``bert.py``, ``vit.py``, ``whisper.py`` + ``whisper_decoding.py`` for greedy
decoding) and what they share: ``config.py`` (the Config dataclass base, activations, the dtype
policy), ``model.py`` (PreTrainedModel), ``loading.py`` (checkpoint names -> modules, dedup upload,
weight fusion), ``outputs.py`` (ModelOutput), ``registry.py`` (model_type -> class) and ``auto.py``
(``load``: find a checkpoint, pick the class). Model files are imported on first use.

May import: errors, display, backends, hardware, tensor, ops, graph, nn, io, preprocess, sharing
(never webnn, pool, profiler, notebook, bench or cli).
"""

from __future__ import annotations

from .config import Config
from .model import PreTrainedModel
from .outputs import ModelOutput
from .registry import model_class, register, supported


def load(source, device=None, dtype=None, **kwargs):
    """See :func:`accelkit.models.auto.load`."""
    from .auto import load as _load

    return _load(source, device=device, dtype=dtype, **kwargs)


__all__ = ["Config", "ModelOutput", "PreTrainedModel", "load", "model_class", "register", "supported"]
