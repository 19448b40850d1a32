"""What every model shares: ModelOutput, config dataclasses, PreTrainedModel.from_checkpoint, the dtype policy, the registry.

A model file (bert.py, vit.py, whisper.py) defines a config dataclass (``Config`` subclass with
``from_dict``) and ``PreTrainedModel`` subclasses; ``from_checkpoint`` builds the module tree from
config.json, maps checkpoint tensor names onto module names (the base-model prefix, legacy
LayerNorm ``gamma``/``beta``, tied weights), loads them, then lets each module fuse its weights
(q/k/v into one matmul). ``auto.load`` picks the class from config.json through the registry.
"""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .. import nn, ops
from ..errors import ConfigError, DTypeError, InputError, WeightsError
from ..tensor.dtype import DType, float16, float32, int32
from ..tensor.tensor import Tensor

# ------------------------------------------------------------------------------------ outputs


class ModelOutput:
    """A model's outputs: attributes (``out.logits``) and a mapping (``out["logits"]``, ``out.keys()``).

    Only the fields a model set are keys; any other known field reads as None, like transformers.
    ``id2label`` (when the model has labels) turns class indices into names, see ``labels()``.
    """

    _known = (
        "last_hidden_state",
        "pooler_output",
        "logits",
        "hidden_states",
        "attentions",
        "encoder_last_hidden_state",
        "past_key_values",
        "sequences",
    )

    def __init__(self, id2label: dict[int, str] | None = None, **fields) -> None:
        object.__setattr__(self, "_fields", {k: v for k, v in fields.items() if v is not None})
        object.__setattr__(self, "id2label", id2label)

    def __getattr__(self, name: str):
        fields = object.__getattribute__(self, "_fields")
        if name in fields:
            return fields[name]
        if name in ModelOutput._known:
            return None
        raise AttributeError(f"ModelOutput has no field {name!r}; it has {', '.join(fields) or 'none'}")

    def __setattr__(self, name: str, value) -> None:
        if name == "id2label":
            object.__setattr__(self, name, value)
        elif value is None:
            self._fields.pop(name, None)
        else:
            self._fields[name] = value

    def __getitem__(self, key):
        if isinstance(key, int):
            return list(self._fields.values())[key]
        try:
            return self._fields[key]
        except KeyError:
            raise KeyError(
                f"ModelOutput has no field {key!r}; it has {', '.join(self._fields) or 'none'}"
            ) from None

    def __contains__(self, key) -> bool:
        return key in self._fields

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def keys(self):
        return self._fields.keys()

    def values(self):
        return self._fields.values()

    def items(self):
        return self._fields.items()

    def to_tuple(self) -> tuple:
        return tuple(self._fields.values())

    def labels(self, top_k: int = 1) -> list:
        """The ``top_k`` (label, probability) pairs per example from ``logits`` (B, num_labels); reads back."""
        if self.logits is None:
            raise InputError("labels(): this output has no logits")
        return top_labels(self.logits, self.id2label, top_k)

    def __repr__(self) -> str:
        parts = []
        for k, v in self._fields.items():
            if isinstance(v, Tensor):
                parts.append(f"{k}=<{v.dtype.name} {list(v.shape)} on {v.device.spec}>")
            elif isinstance(v, np.ndarray):  # host results (a pool's): as short as a Tensor's
                parts.append(f"{k}=<{v.dtype.name} {list(v.shape)} numpy>")
            elif isinstance(v, (list, tuple)):
                parts.append(f"{k}=[{len(v)} items]")
            else:
                parts.append(f"{k}={v!r}")
        return "ModelOutput(" + ", ".join(parts) + ")"


def top_labels(logits, id2label: dict[int, str] | None, top_k: int = 1) -> list:
    """Softmax probabilities of (B, num_labels) logits -> per example, the ``top_k`` (label, prob) pairs."""
    values = logits.numpy() if isinstance(logits, Tensor) else np.asarray(logits)
    values = values.astype(np.float64).reshape(-1, values.shape[-1])
    probs = np.exp(values - values.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    k = max(1, min(int(top_k), probs.shape[-1]))
    out = []
    for row in probs:
        order = np.argsort(-row, kind="stable")[:k]
        pairs = [((id2label or {}).get(int(i), f"LABEL_{int(i)}"), float(row[i])) for i in order]
        out.append(pairs)
    return out


# ------------------------------------------------------------------------------------ configs


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


# ------------------------------------------------------------------------------------ building blocks

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


class ModuleList(nn.Module):
    """Numbered children (``layer.0``, ``layer.1`` ...), as transformers' nn.ModuleList names them."""

    def __init__(self, modules=()) -> None:
        super().__init__()
        for i, m in enumerate(modules):
            setattr(self, str(i), m)

    def __getitem__(self, i: int) -> nn.Module:
        return self._children[str(i % len(self))]

    def __len__(self) -> int:
        return len(self._children)

    def __iter__(self):
        return iter(self._children.values())


class QKVSelfAttention(nn.Module):
    """Multi-head self-attention with ``query``/``key``/``value`` Linears (BERT's and ViT's names).

    After loading, ``fuse_weights`` joins the three into one (3C, C) matmul; the heads are split
    out of its output as views and the attention kernel writes them straight into (B, T, H, D).
    """

    def __init__(self, hidden_size: int, num_heads: int, bias: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.query = nn.Linear(hidden_size, hidden_size, bias=bias)
        self.key = nn.Linear(hidden_size, hidden_size, bias=bias)
        self.value = nn.Linear(hidden_size, hidden_size, bias=bias)
        self.qkv = None  # (weight (3C, C), bias (3C,) or None) once fused

    def fuse_weights(self) -> None:
        self.qkv = fuse_linears(self.query, self.key, self.value)

    def __call__(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        c = x.shape[-1]
        if self.qkv is not None:
            qkv = ops.linear(x, *self.qkv)  # (B, T, 3C), one matmul
            q, k, v = qkv[..., :c], qkv[..., c : 2 * c], qkv[..., 2 * c :]
        else:
            q, k, v = self.query(x), self.key(x), self.value(x)
        return nn.multi_head_attention(q, k, v, self.num_heads, mask)  # (B, T, C)


def fuse_linears(*linears: nn.Linear) -> tuple[Tensor, Tensor | None]:
    """Concatenate loaded Linears (same in_features) into one (sum(out), in) weight and bias.

    Each Linear's parameters then become views into the fused tensors, so the model holds one copy
    and ``state_dict`` names stay as in the checkpoint. Linears without a bias get zeros when others
    have one; None when none has.
    """
    from ..sharing.dedup import fuse  # the same parts (by digest) already fused on the device are reused

    weights = [lin.weight for lin in linears]
    weight, weight_note = fuse(linears, "weight", lambda: ops.concat(weights, axis=0))
    has_bias = ["bias" in lin._params for lin in linears]
    bias, bias_note = None, None
    if any(has_bias):
        parts = [
            lin.bias if b else ops.cast(ops.mul(ops.sum(w, axis=1), 0.0), w.dtype)
            for lin, b, w in zip(linears, has_bias, weights)
        ]
        bias, bias_note = fuse(linears, "bias", lambda: ops.concat(parts, axis=0))
    at = 0
    for lin in linears:
        n = lin.out_features
        lin.param("weight").tensor = weight[at : at + n]
        lin.param("weight").shared = "fused" + (f"; {weight_note}" if weight_note else "")
        if "bias" in lin._params:
            lin.param("bias").tensor = bias[at : at + n]
            lin.param("bias").shared = "fused" + (f"; {bias_note}" if bias_note else "")
        at += n
    return weight, bias


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


# ------------------------------------------------------------------------------------ the model base


class PreTrainedModel(nn.Module):
    """A model built from a config and loaded from an HF-layout checkpoint.

    Class attributes a model sets:
      ``config_class``      its Config dataclass
      ``base_model_prefix`` the name of the base model inside task models ("bert", "vit", "model")
      ``tied_weights``      {module name: source module name} filled from the source when the
                            checkpoint omits them (the MLM decoder and the word embeddings)
      ``ignore_on_load``    name prefixes/suffixes of checkpoint tensors to skip (buffers, tied copies)
      ``optional_modules``  child modules (e.g. "pooler") dropped, and left None, when the
                            checkpoint has none of their weights
    """

    config_class: type[Config] = Config
    base_model_prefix: str = ""
    tied_weights: dict[str, str] = {}
    ignore_on_load: tuple[str, ...] = ()
    optional_modules: tuple[str, ...] = ()

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config
        self.checkpoint: Path | None = None  # the directory the weights came from
        self.compute_dtype: DType = float32
        self.dtype_note: str = "float32 (the default)"
        self.load_report: dict = {}
        self._device = None

    # ------------------------------------------------------------------ properties
    @property
    def device(self):
        return self._device if self._device is not None else nn.Module.device.fget(self)

    @property
    def dtype(self) -> DType:
        return self.compute_dtype

    @property
    def id2label(self) -> dict[int, str] | None:
        return labels_from_config(getattr(self.config, "id2label", None))

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_checkpoint(cls, ckpt, device=None, dtype=None):
        """Build from ``ckpt`` (a Checkpoint or a checkpoint directory) and load its weights onto ``device``.

        ``dtype="float16"`` computes in f16 where the device supports it (else warns and stays f32;
        ``model.dtype_note`` says which). Missing, unexpected or mis-shaped tensors raise WeightsError.
        """
        from ..hardware import device as pick_device
        from ..io import Checkpoint
        from ..sharing.dedup import CheckpointUploader

        if not isinstance(ckpt, Checkpoint):
            with Checkpoint.open(ckpt) as opened:
                return cls.from_checkpoint(opened, device, dtype)
        dev = pick_device(device)
        compute, note = resolve_dtype(dtype, dev)
        config = cls.config_class.from_dict(ckpt.config, source=str(ckpt.config_path))
        model = cls(config)
        model.checkpoint = Path(ckpt.directory)
        model.compute_dtype, model.dtype_note, model._device = compute, note, dev
        mapping, skipped = model._map_checkpoint_names(ckpt.names())
        for path in model.optional_modules:
            under = [n for n, _ in model.named_parameters() if n.startswith(path + ".")]
            if under and not any(n in mapping for n in under):
                model._drop_module(path)
        expected = dict(model.named_parameters())
        tied = {n: s for n, s in model.tied_weights.items() if n in expected and n not in mapping}
        unexpected = [n for n in ckpt.names() if n not in mapping.values() and n not in skipped]
        try:  # each weight: a view of a live identical storage (dedup), else a chunked upload with progress
            with CheckpointUploader(model, ckpt, mapping, dev) as upload:
                model.load_state_dict(
                    lambda name: ckpt.array(mapping[name]) if name in mapping else None,
                    names=list(mapping) + unexpected,
                    device=dev,
                    dtype=compute,
                    allow_missing=tuple(tied),
                    upload=upload,
                )
        except WeightsError as e:
            hint = ""
            if model.base_model_prefix and any(n.startswith(model.base_model_prefix + ".") for n in expected):
                hint = f" (names are shown as the model expects them, with the {model.base_model_prefix!r} prefix)"
            raise WeightsError(f"{ckpt.directory}: {e}{hint}") from None
        for name, source in tied.items():
            model._param(name).tensor = model._param(source).get()  # same device storage
            model._param(name).shared = f"tied to {source}"
        model.load_report = {"tied": sorted(tied), "skipped": sorted(skipped)}
        for _, module in model.named_modules():
            fuse = getattr(module, "fuse_weights", None)
            if fuse is not None:
                fuse()
        return model

    def _drop_module(self, path: str) -> None:
        owner, _, leaf = path.rpartition(".")
        module = self
        for part in owner.split(".") if owner else ():
            module = module._children[part]
        module._children.pop(leaf, None)
        object.__setattr__(module, leaf, None)

    def _param(self, name: str) -> nn.Parameter:
        owner, _, leaf = name.rpartition(".")
        module = self
        for part in owner.split(".") if owner else ():
            module = module._children[part]
        return module.param(leaf)

    def _map_checkpoint_names(self, names: list[str]) -> tuple[dict[str, str], list[str]]:
        """{module name: checkpoint name} and the checkpoint names skipped on purpose.

        Handles a base model's checkpoint loaded into a task model (names lack the prefix), a task
        model's checkpoint loaded into the base model (names carry the prefix; the heads are skipped),
        and legacy LayerNorm names (``gamma``/``beta``).
        """
        expected = [n for n, _ in self.named_parameters()]
        prefix = self.base_model_prefix
        aliases: dict[str, str] = {}  # checkpoint name -> the name the module tree uses
        for n in names:
            aliases[n] = _legacy_layer_norm(n)
        canonical = set(aliases.values())
        has_base = bool(prefix) and any(n.startswith(prefix + ".") for n in expected)
        ckpt_prefixed = bool(prefix) and any(c.startswith(prefix + ".") for c in canonical)
        mapping: dict[str, str] = {}
        skipped: list[str] = []
        by_canonical = {c: n for n, c in aliases.items()}
        for n in expected:
            candidates = [n]
            if has_base and not ckpt_prefixed and n.startswith(prefix + "."):
                candidates.append(n[len(prefix) + 1 :])  # base checkpoint -> task model
            if not has_base and prefix and ckpt_prefixed:
                candidates.insert(0, f"{prefix}.{n}")  # task checkpoint -> base model
            for c in candidates:
                if c in by_canonical:
                    mapping[n] = by_canonical[c]
                    break
        used = set(mapping.values())
        for n in names:
            c = aliases[n]
            if n in used:
                continue
            if any(c.endswith(s) or c.startswith(s) for s in self.ignore_on_load):
                skipped.append(n)
            elif not has_base and prefix and ckpt_prefixed and not c.startswith(prefix + "."):
                skipped.append(n)  # a task head, when loading the base model from a task checkpoint
        return mapping, skipped

    # ------------------------------------------------------------------ inputs
    def _tensor_input(self, x, name: str, dtype: DType | None = None) -> Tensor:
        """A model input as a Tensor on the model's device (numpy is uploaded; a Tensor must be there)."""
        if isinstance(x, Tensor):
            if x.device is not self.device:
                raise InputError(
                    f"{name} is on {x.device.spec} but the model is on {self.device.spec}; move it with .to()"
                )
            return x if dtype is None or x.dtype is dtype else ops.cast(x, dtype)
        arr = np.asarray(x)
        if arr.dtype == object:
            raise InputError(f"{name} must be a numeric array, got ragged or non-numeric data")
        return Tensor.from_numpy(arr, dtype, self.device)

    def _ids_input(self, ids, name: str, vocab: int, ndim: int = 2) -> tuple[Tensor, tuple]:
        """Integer ids (numpy checked to be in [0, vocab); a Tensor is trusted) -> int32 Tensor and its shape."""
        if isinstance(ids, Tensor):
            if ids.dtype is not int32:
                raise InputError(f"{name} must hold integers, got a {ids.dtype.name} tensor")
            shape = ids.shape
        else:
            arr = np.asarray(ids)
            if arr.dtype.kind not in "iu":
                raise InputError(f"{name} must hold integers, got dtype {arr.dtype}")
            if arr.ndim == ndim - 1:
                arr = arr[None]
            if arr.size and (arr.min() < 0 or arr.max() >= vocab):
                bad = arr[(arr < 0) | (arr >= vocab)]
                raise InputError(
                    f"{name}: token ids must be in [0, {vocab}) (vocab_size {vocab}); "
                    f"got {bad.size} out of range, e.g. {int(bad.flat[0])}"
                )
            ids = Tensor.from_numpy(arr.astype(np.int32), int32, self.device)
            shape = ids.shape
        if len(shape) != ndim:
            raise InputError(f"{name} must have shape (batch, seq_len), got {shape}")
        return self._tensor_input(ids, name), shape

    def additive_mask(self, attention_mask, shape: tuple) -> Tensor | None:
        """(B, T) 1/0 attention mask -> additive (B, 1, 1, T) mask: 0 where attended, a large negative elsewhere."""
        if attention_mask is None:
            return None
        neg = -1e9 if self.compute_dtype is float32 else -3e4
        if isinstance(attention_mask, Tensor):
            if attention_mask.shape != shape:
                raise InputError(
                    f"attention_mask shape {attention_mask.shape} differs from input_ids {shape}"
                )
            m = self._tensor_input(attention_mask, "attention_mask", self.compute_dtype)
            mask = ops.mul(ops.sub(1.0, m), neg)
        else:
            arr = np.asarray(attention_mask)
            if arr.ndim == len(shape) - 1:
                arr = arr[None]
            if arr.shape != shape:
                raise InputError(f"attention_mask shape {arr.shape} differs from input_ids {shape}")
            mask = Tensor.from_numpy(((1.0 - arr.astype(np.float64)) * neg), self.compute_dtype, self.device)
        return mask.reshape(shape[0], 1, 1, shape[1])

    # ------------------------------------------------------------------ display
    def extra_repr(self) -> str:
        spec = self.device.spec if self.device is not None else "not loaded"
        return f"{spec}, {self.compute_dtype.name}"


def _legacy_layer_norm(name: str) -> str:
    """Old BERT checkpoints call LayerNorm's weight/bias gamma/beta."""
    if name.endswith(".gamma"):
        return name[: -len("gamma")] + "weight"
    if name.endswith(".beta"):
        return name[: -len("beta")] + "bias"
    return name


# ------------------------------------------------------------------------------------ registry

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


def bundled_dir(name: str) -> Path:
    """The directory of a bundled tiny checkpoint (``bert-tiny``, ``vit-tiny`` ...)."""
    try:
        from ..checkpoints import path as checkpoint_path  # written by the io/checkpoints engineer
    except ImportError:
        return Path(__file__).resolve().parent.parent / "checkpoints" / name
    return Path(checkpoint_path(name))


__all__ = [
    "ACTIVATIONS",
    "Config",
    "ModuleList",
    "check_activation",
    "fuse_linears",
    "ModelOutput",
    "PreTrainedModel",
    "QKVSelfAttention",
    "bundled_dir",
    "labels_from_config",
    "model_class",
    "register",
    "resolve_dtype",
    "supported",
    "top_labels",
]
