"""The registry of model types: (model_type, architecture) from config.json -> the class that loads it.

Classes are named as "module:Class" and imported on first use, so a broken model file only breaks
its own models. ``register`` adds one (also as a decorator); ``supported`` lists what ``load`` knows.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ..errors import WeightsError

if TYPE_CHECKING:
    from .model import PreTrainedModel

#: (model_type, architecture) -> a class, or "module:Class" imported on first use (so a broken model
#: file only breaks its own models). The architecture None is the model type's default.
_REGISTRY: dict[tuple[str, str | None], type | str] = {
    ("bert", "BertModel"): "accelkit.models.bert:BertModel",
    ("bert", "BertForSequenceClassification"): "accelkit.models.bert:BertForSequenceClassification",
    ("bert", "BertForMaskedLM"): "accelkit.models.bert:BertForMaskedLM",
    ("bert", None): "accelkit.models.bert:BertModel",
    ("vit", "ViTModel"): "accelkit.models.vit:ViTModel",
    ("vit", "ViTForImageClassification"): "accelkit.models.vit:ViTForImageClassification",
    ("vit", None): "accelkit.models.vit:ViTModel",
    ("whisper", "WhisperForConditionalGeneration"): "accelkit.models.whisper:WhisperForConditionalGeneration",
    ("whisper", None): "accelkit.models.whisper:WhisperForConditionalGeneration",
}


def register(model_type: str, architecture: str | None, target: type | str | None = None):
    """Register a class (or "module:Class") for (model_type, architecture); usable as a decorator."""

    def add(cls):
        _REGISTRY[(model_type, architecture)] = cls
        return cls

    return add if target is None else add(target)


def supported() -> dict[str, list[str]]:
    """{model_type: [architectures]} that ``accelkit.load`` knows."""
    out: dict[str, list[str]] = {}
    for kind, arch in _REGISTRY:
        out.setdefault(kind, [])
        if arch is not None:
            out[kind].append(arch)
    return out


def model_class(model_type: str, architecture: str | None = None) -> type[PreTrainedModel]:
    """The class for (model_type, architecture); an unknown architecture of a known type uses its default."""
    if model_type not in supported():
        known = ", ".join(f"{k} ({', '.join(v)})" for k, v in supported().items())
        raise WeightsError(f"unsupported model_type {model_type!r}; accelkit supports: {known}")
    target = _REGISTRY.get((model_type, architecture)) or _REGISTRY.get((model_type, None))
    if target is None:
        raise WeightsError(
            f"model_type {model_type!r} has no architecture {architecture!r}; known: "
            + ", ".join(supported()[model_type])
        )
    if isinstance(target, str):
        module_name, _, attr = target.partition(":")
        try:
            target = getattr(importlib.import_module(module_name), attr)
        except Exception as e:  # ImportError, a broken model file, a missing class
            raise WeightsError(
                f"{model_type}/{architecture or 'default'}: cannot import {module_name}.{attr} "
                f"({type(e).__name__}: {e})"
            ) from e
        _REGISTRY[(model_type, architecture)] = target
    return target


__all__ = ["model_class", "register", "supported"]
