"""``PreTrainedModel``: the base of every model class (config, device and dtype, input checks, loading).

A model file subclasses it once per architecture and sets the class attributes that steer loading
(``config_class``, ``base_model_prefix``, ``tied_weights`` ...); ``from_checkpoint`` runs
:func:`accelkit.models.loading.load_checkpoint`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import nn, ops
from ..errors import InputError
from ..tensor.dtype import DType, float32, int32
from ..tensor.tensor import Tensor
from .config import Config, labels_from_config
from .loading import load_checkpoint


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
        See :func:`accelkit.models.loading.load_checkpoint`.
        """
        return load_checkpoint(cls, ckpt, device, dtype)

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


__all__ = ["PreTrainedModel"]
