"""Checkpoint loading: build a model from config.json, map checkpoint tensor names onto its modules, upload.

``load_checkpoint`` (what ``PreTrainedModel.from_checkpoint`` runs) builds the module tree from
config.json, maps each module name to a checkpoint name (the base-model prefix either way, legacy
LayerNorm ``gamma``/``beta``), drops optional modules the checkpoint lacks, uploads every weight
through the dedup uploader (a view of a live identical storage, else a chunked upload), fills tied
weights from their source, and finally lets each module fuse its weights (``fuse_weights(fuse_linears)``:
q/k/v into one matmul, fused parts shared by digest).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .. import nn, ops
from ..errors import WeightsError
from ..tensor.tensor import Tensor, zeros
from .config import resolve_dtype

if TYPE_CHECKING:
    from .model import PreTrainedModel


def load_checkpoint(cls: type[PreTrainedModel], ckpt, device=None, dtype=None) -> PreTrainedModel:
    """Build ``cls`` from ``ckpt`` (a Checkpoint or a checkpoint directory) and load its weights onto ``device``.

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
    mapping, skipped = map_checkpoint_names(model, ckpt.names())
    for path in model.optional_modules:
        under = [n for n, _ in model.named_parameters() if n.startswith(path + ".")]
        if under and not any(n in mapping for n in under):
            _drop_module(model, path)
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
            hint = (
                f" (names are shown as the model expects them, with the {model.base_model_prefix!r} prefix)"
            )
        raise WeightsError(f"{ckpt.directory}: {e}{hint}") from None
    for name, source in tied.items():
        _param(model, name).tensor = _param(model, source).get()  # same device storage
        _param(model, name).shared = f"tied to {source}"
    model.load_report = {"tied": sorted(tied), "skipped": sorted(skipped)}
    for _, module in model.named_modules():
        fuse_weights = getattr(module, "fuse_weights", None)
        if fuse_weights is not None:
            fuse_weights(fuse_linears)
    return model


def map_checkpoint_names(model: PreTrainedModel, names: list[str]) -> tuple[dict[str, str], list[str]]:
    """{module name: checkpoint name} and the checkpoint names skipped on purpose.

    Handles a base model's checkpoint loaded into a task model (names lack the prefix), a task
    model's checkpoint loaded into the base model (names carry the prefix; the heads are skipped),
    and legacy LayerNorm names (``gamma``/``beta``).
    """
    expected = [n for n, _ in model.named_parameters()]
    prefix = model.base_model_prefix
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
        if any(c.endswith(s) or c.startswith(s) for s in model.ignore_on_load):
            skipped.append(n)
        elif not has_base and prefix and ckpt_prefixed and not c.startswith(prefix + "."):
            skipped.append(n)  # a task head, when loading the base model from a task checkpoint
    return mapping, skipped


def _legacy_layer_norm(name: str) -> str:
    """Old BERT checkpoints call LayerNorm's weight/bias gamma/beta."""
    if name.endswith(".gamma"):
        return name[: -len("gamma")] + "weight"
    if name.endswith(".beta"):
        return name[: -len("beta")] + "bias"
    return name


def _drop_module(model: nn.Module, path: str) -> None:
    """Remove the child module at dotted ``path``; its attribute reads as None."""
    owner, _, leaf = path.rpartition(".")
    module = model
    for part in owner.split(".") if owner else ():
        module = module._children[part]
    module._children.pop(leaf, None)
    object.__setattr__(module, leaf, None)


def _param(model: nn.Module, name: str) -> nn.Parameter:
    """The Parameter slot at dotted ``name``."""
    owner, _, leaf = name.rpartition(".")
    module = model
    for part in owner.split(".") if owner else ():
        module = module._children[part]
    return module.param(leaf)


def fuse_linears(*linears: nn.Linear) -> tuple[Tensor, Tensor | None]:
    """Concatenate loaded Linears (same in_features) into one (sum(out), in) weight and bias.

    Each Linear's parameters then become views into the fused tensors, so the model holds one copy
    and ``state_dict`` names stay as in the checkpoint. Linears without a bias get zeros when others
    have one; None when none has.
    """
    from ..sharing.dedup import fuse  # the same parts (by digest) already fused on the device are reused

    weights = [lin.weight for lin in linears]
    weight, weight_note = fuse(linears, "weight", lambda: ops.concat(weights, axis=0))
    bias, bias_note = None, None
    if any(lin.has_bias for lin in linears):
        parts = [
            lin.bias if lin.has_bias else zeros(w.shape[0], dtype=w.dtype, device=w.device)
            for lin, w in zip(linears, weights)
        ]
        bias, bias_note = fuse(linears, "bias", lambda: ops.concat(parts, axis=0))
    at = 0
    for lin in linears:
        n = lin.out_features
        lin.param("weight").tensor = weight[at : at + n]
        lin.param("weight").shared = "fused" + (f"; {weight_note}" if weight_note else "")
        if lin.has_bias:
            lin.param("bias").tensor = bias[at : at + n]
            lin.param("bias").shared = "fused" + (f"; {bias_note}" if bias_note else "")
        at += n
    return weight, bias


__all__ = ["fuse_linears", "load_checkpoint", "map_checkpoint_names"]
