"""``accelkit.load``: find a checkpoint, pick the model class from its config.json, load it onto a device.

Sources, tried in this order:

- a local directory in Hugging Face layout (config.json + model.safetensors or shards with
  model.safetensors.index.json [+ tokenizer.json / preprocessor_config.json]); a path that exists
  always wins over a bundled name
- ``"hf:org/name"`` or ``"hf:org/name@revision"``: the Hugging Face Hub, through the weight store
  (needs huggingface_hub the first time; served offline afterwards)
- a bundled tiny checkpoint: ``"tiny-random-bert"``, ``"tiny-random-bert-mlm"``, ``"tiny-random-vit"``, ``"tiny-random-whisper"``,
  also written ``"tiny:bert"``, ``"tiny:bert-mlm"``, ``"tiny:vit"``, ``"tiny:whisper"``

The class comes from config.json: ``model_type`` picks the family, the first of ``architectures``
the head (``BertForSequenceClassification`` ...); pass ``architecture="BertModel"`` to load only
the base model of a task checkpoint.

    bert = accelkit.load("tiny-random-bert", device="cpu")
    vit = accelkit.load("hf:google/vit-base-patch16-224", device="webgpu", dtype="float16")
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError, InputError, WeightsError
from .model import PreTrainedModel
from .registry import model_class

BUNDLED = ("tiny-random-bert", "tiny-random-bert-mlm", "tiny-random-vit", "tiny-random-whisper")
TINY_PREFIX = "tiny:"


def bundled_dir(name: str) -> Path:
    """The directory of a bundled tiny checkpoint (``tiny-random-bert``, ``tiny-random-vit`` ...)."""
    try:
        from ..checkpoints import path as checkpoint_path  # written by the io/checkpoints engineer
    except ImportError:
        return Path(__file__).resolve().parent.parent / "checkpoints" / name
    return Path(checkpoint_path(name))


def bundled_name(source) -> str | None:
    """The bundled checkpoint a source names ("tiny-random-bert", "tiny:bert", "tiny:bert-mlm" ...), or None."""
    if not isinstance(source, str):
        return None
    name = source
    if name.startswith(TINY_PREFIX):
        short = {_short(n): n for n in BUNDLED}
        name = name[len(TINY_PREFIX) :]
        if name not in BUNDLED:
            name = short.get(name, name)
        if name not in BUNDLED:
            raise WeightsError(
                f"no bundled checkpoint {source!r}; bundled (tiny, random weights): {', '.join(BUNDLED)} "
                f"(or {', '.join(TINY_PREFIX + s for s in short)}); {HF_HINT}"
            )
        return name
    return name if name in BUNDLED else None


def _short(name: str) -> str:
    """The family (and task) of a bundled name: ``bert-mlm`` for ``tiny:bert-mlm``."""
    return name.replace("tiny-random-", "").replace("-tiny", "")


HF_HINT = (
    "for a trained model on the Hugging Face Hub write 'hf:org/name' (e.g. 'hf:openai/whisper-tiny', "
    "'hf:google-bert/bert-base-uncased', 'hf:google/vit-base-patch16-224')"
)


def _unknown(source: str) -> WeightsError:
    hint = f"; for the Hugging Face model write 'hf:{source}'" if source.count("/") == 1 else f"; {HF_HINT}"
    return WeightsError(
        f"model source {source!r} is not a checkpoint directory (it does not exist) nor a bundled checkpoint; "
        f"bundled (tiny, random weights): {', '.join(BUNDLED)}{hint}"
    )


def resolve_source(source) -> Path:
    """The checkpoint directory for ``source`` (see the module docstring for the forms)."""
    if isinstance(source, str) and not source.strip():  # "" would name the current directory
        raise WeightsError(
            f"model source is empty ({source!r}); expected a checkpoint directory, 'hf:org/name' or one of "
            f"the bundled checkpoints: {', '.join(BUNDLED)}"
        )
    if isinstance(source, (str, os.PathLike)) and not (isinstance(source, str) and source.startswith("hf:")):
        path = Path(source).expanduser()
        if path.is_dir():
            return path
        name = bundled_name(source)
        if name is not None:
            return bundled_dir(name)
        if not path.exists():
            raise _unknown(str(source))
    from ..io.hub import resolve

    return Path(resolve(source))


def load(
    source, device=None, dtype=None, *, architecture: str | None = None, compile: bool = True, **kwargs
) -> PreTrainedModel:
    """Load a model: ``source`` is a checkpoint directory, ``"hf:org/name"`` or a bundled name ("tiny-random-bert").

    ``device``: None (the best), "cpu", "webgpu", "webgpu:N" or a Device. ``dtype``: None/"float32",
    or "float16" (computes in f16 where the device has shader-f16; elsewhere warns and stays f32,
    see ``model.dtype_note``). An unsupported ``model_type`` raises WeightsError listing the
    supported ones. ``compile=False``: calls never replay captured plans (``model.compile``), they run
    op by op as with ``ak.options(compile=False)``.
    """
    from ..io import Checkpoint

    if kwargs:
        raise TypeError(f"load() got unexpected keyword arguments: {', '.join(kwargs)}")
    if not isinstance(compile, bool):
        raise InputError(f"load(): compile must be True or False, got {compile!r}")
    with Checkpoint.open(resolve_source(source)) as ckpt:  # weights are copied to the device, then unmapped
        model = _load_checkpoint(ckpt, device, dtype, architecture)
    model.compile = compile
    return model


def _load_checkpoint(ckpt, device, dtype, architecture: str | None) -> PreTrainedModel:
    config = ckpt.config
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise ConfigError(
            f"{ckpt.config_path}: no 'model_type' (got {model_type!r}); is it a transformers config?"
        )
    if architecture is None:
        archs = config.get("architectures") or []
        if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
            raise ConfigError(f"{ckpt.config_path}: 'architectures' must be a list of names, got {archs!r}")
        architecture = archs[0] if archs else None
    cls = model_class(model_type, architecture)
    return cls.from_checkpoint(ckpt, device=device, dtype=dtype)


__all__ = ["BUNDLED", "bundled_dir", "bundled_name", "load", "resolve_source"]
