"""Models: BERT, ViT and Whisper, one readable file each, loaded from Hugging Face checkpoints.

    model = accelkit.load("bert-tiny")            # or a directory, or "hf:org/name"
    out = model(input_ids, attention_mask)        # -> ModelOutput(last_hidden_state, pooler_output, logits)

``base`` holds what they share (ModelOutput, Config, PreTrainedModel, the registry); ``auto.load``
picks the class from config.json. Model files are imported on first use.
"""

from __future__ import annotations

from .base import Config, ModelOutput, PreTrainedModel, model_class, register, supported


def load(source, device=None, dtype=None, **kwargs):
    """See :func:`accelkit.models.auto.load`."""
    from .auto import load as _load

    return _load(source, device=device, dtype=dtype, **kwargs)


__all__ = ["Config", "ModelOutput", "PreTrainedModel", "load", "model_class", "register", "supported"]
