"""Model configs: the ``Config`` dataclass base (config.json checked field by field), activations, the dtype policy.

A model file subclasses ``Config`` with its fields (``BertConfig``); ``from_dict`` coerces each
config.json value to the field's annotation and names the bad field, and ``validate`` checks
fields against each other. ``resolve_dtype`` decides what a model computes in on a device.
"""

from __future__ import annotations

import dataclasses
import types
import typing
import warnings

import numpy as np

from ..errors import ConfigError, DTypeError
from ..tensor.dtype import DType, float16, float32


@dataclasses.dataclass
class Config:
    """Base of the config dataclasses: ``from_dict`` checks every field's type and names the bad one.

    Fields without a default are required. Keys of config.json that are not fields stay in ``extra``.
    Subclasses set ``model_type`` and may override ``validate`` for cross-field checks.
    """

    model_type: typing.ClassVar[str] = ""

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "config.json"):
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        values, problems = {}, []
        for f in dataclasses.fields(cls):
            if f.name == "extra" or not f.init:
                continue
            if f.name not in data or (data[f.name] is None and not _allows_none(hints[f.name])):
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    problems.append(f"missing required field {f.name!r} ({_type_name(hints[f.name])})")
                continue
            try:
                values[f.name] = _coerce(data[f.name], hints[f.name], f.name)
            except ConfigError as e:
                problems.append(str(e))
        if problems:
            kind = cls.model_type or cls.__name__
            raise ConfigError(f"{source}: bad {kind} config: " + "; ".join(problems))
        names = {f.name for f in dataclasses.fields(cls)}
        config = cls(**values)
        config.extra = {k: v for k, v in data.items() if k not in names}
        try:
            config.validate()
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None
        return config

    def validate(self) -> None:
        """Cross-field checks; raise ConfigError naming the fields."""

    def to_dict(self) -> dict:
        out = dict(self.extra)
        out.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"})
        if self.model_type:
            out["model_type"] = self.model_type
        return out

    def __post_init__(self) -> None:
        if not hasattr(self, "extra"):
            self.extra = {}


def _allows_none(hint) -> bool:
    return hint is type(None) or type(None) in typing.get_args(hint)


def _type_name(hint) -> str:
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


def _coerce(value, hint, name: str):
    """Check ``value`` against the annotation ``hint`` (int, float, bool, str, dict, list, X | None)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, name)
            except ConfigError as e:
                errors.append(e)
        raise errors[0]
    base = origin or hint
    if base is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"field {name!r} must be true or false, got {value!r}")
        return value
    if base is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise ConfigError(f"field {name!r} must be an integer, got {value!r}")
        return int(value)
    if base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"field {name!r} must be a number, got {value!r}")
        return float(value)
    if base is str:
        if not isinstance(value, str):
            raise ConfigError(f"field {name!r} must be a string, got {value!r}")
        return value
    if base is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"field {name!r} must be an object, got {value!r}")
        return dict(value)
    if base in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"field {name!r} must be a list, got {value!r}")
        return list(value)
    return value  # pragma: no cover - an annotation this checker does not know


def positive(config: Config, *names: str) -> None:
    """Raise ConfigError unless every named int field is > 0."""
    for n in names:
        if getattr(config, n) <= 0:
            raise ConfigError(f"field {n!r} must be positive, got {getattr(config, n)}")


def labels_from_config(id2label: dict | None) -> dict[int, str] | None:
    """config.json's id2label ({"0": "cat"}) with int keys, or None; bad keys raise ConfigError."""
    if not id2label:
        return None
    try:
        return {int(k): str(v) for k, v in id2label.items()}
    except (TypeError, ValueError):
        raise ConfigError(f"field 'id2label' must map integer ids to names, got {id2label!r:.120}") from None


#: Hugging Face activation names (config ``hidden_act`` / ``activation_function``) -> the fused
#: matmul epilogue that computes them exactly (gelu_new / gelu_pytorch_tanh / gelu_fast are all
#: the tanh approximation).
ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "relu": "relu",
    "tanh": "tanh",
}


def check_activation(name: str, field: str = "hidden_act") -> None:
    if name not in ACTIVATIONS:
        raise ConfigError(
            f"field {field!r}: unsupported activation {name!r}; supported: {', '.join(ACTIVATIONS)}"
        )


# ------------------------------------------------------------------------------------ dtype policy


def resolve_dtype(dtype, device) -> tuple[DType, str]:
    """The dtype a model computes in on ``device`` for a requested ``dtype``, and a note saying why.

    None / "float32" -> float32. "float16" -> float16 where ``device.supports_f16``; elsewhere a
    warning and float32. Weights stored as float16/bfloat16 are converted at load either way.
    """
    if dtype is None:
        return float32, "float32 (the default)"
    name = getattr(dtype, "name", None) or str(np.dtype(dtype).name if not isinstance(dtype, str) else dtype)
    name = {
        "f32": "float32",
        "float": "float32",
        "f16": "float16",
        "half": "float16",
        "bf16": "bfloat16",
    }.get(name, name)
    if name == "float32":
        return float32, "float32 (as asked)"
    if name == "float16":
        if device.supports_f16:
            return float16, f"float16 (as asked; {device.spec} supports f16)"
        note = (
            f"float16 was asked for, but {device.spec} ({device.name}) lacks the shader-f16 feature; "
            "computing in float32 instead"
        )
        warnings.warn(note, RuntimeWarning, stacklevel=4)
        return float32, note
    if name == "bfloat16":
        raise DTypeError(
            "dtype='bfloat16': accelkit computes in float32 or float16; bfloat16 weights are widened to "
            "float32 when loaded, so pass dtype=None (float32) or 'float16'"
        )
    raise DTypeError(f"unsupported model dtype {dtype!r}; expected None, 'float32' or 'float16'")


__all__ = [
    "ACTIVATIONS",
    "Config",
    "check_activation",
    "labels_from_config",
    "positive",
    "resolve_dtype",
]
