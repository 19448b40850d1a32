"""``PreTrainedModel``: the base of every model class (config, device and dtype, input checks, loading).

A model file subclasses it once per architecture and sets the class attributes that steer loading
(``config_class``, ``base_model_prefix``, ``tied_weights`` ...); ``from_checkpoint`` runs
:func:`accelkit.models.loading.load_checkpoint`.

A model call checks its inputs on the host (raising the same errors either way), then runs its
forward through ``run_compiled``: on a device that replays (WebGPU) the first call per input
signature is captured into a plan and later calls replay it (``accelkit.graph``); on the CPU, with
``ak.options(compile=False)`` or ``ak.load(..., compile=False)``, the forward runs op by op.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import nn, ops
from ..errors import InputError
from ..graph import Compiled
from ..tensor.dtype import DType, dtype_for_array, float32, int32, narrow
from ..tensor.host import NUMERIC_KINDS, host_array
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
        #: model calls replay captured plans where the device can (``ak.load(..., compile=False)``: never)
        self.compile = True
        #: input signatures whose plans are kept per forward (least recently used dropped)
        self.max_plans = 8
        self._compiled: dict[Callable, Compiled] = {}
        self._last_compiled: Compiled | None = None

    # ------------------------------------------------------------------ properties
    @property
    def device(self):
        return self._device if self._device is not None else nn.Module.device.fget(self)

    @property
    def dtype(self) -> DType:
        return self.compute_dtype

    @property
    def random_weights(self) -> bool:
        """Whether the weights are random: one of accelkit's bundled test checkpoints (tiny-random-*).

        Their outputs show that the machinery works, not what a trained model would say.
        """
        from ..checkpoints import is_bundled

        return self.checkpoint is not None and is_bundled(self.checkpoint)

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

    # ------------------------------------------------------------------ compiled execution
    def run_compiled(self, forward: Callable, *args, **kwargs):
        """``forward(self, *args, **kwargs)`` through this model's plans (``accelkit.graph``).

        ``forward`` takes Tensors (host arrays arrive uploaded) and returns Tensors or a dict/list of
        them; the inputs are checked before this is called. One ``Compiled`` per forward, holding up to
        ``max_plans`` signatures, captured anew when a weight changes (``weights_version``).
        """
        compiled = self._compiled.get(forward)
        if compiled is None:
            ref = weakref.ref(self)  # the model owns its plans; they must not keep it alive

            def call(*a, **k):
                return forward(ref(), *a, **k)

            call.__qualname__ = getattr(forward, "__qualname__", "forward")
            compiled = Compiled(
                call, max_plans=self.max_plans, device=self.device, version=nn.weights_version
            )
            self._compiled[forward] = compiled
        compiled.enabled = self.compile
        compiled.max_plans = self.max_plans
        self._last_compiled = compiled
        return compiled(*args, **kwargs)

    @property
    def plans(self) -> list:
        """Every forward's plans (``Plan``) and eager signatures (``EagerEntry``, with the reason)."""
        return [entry for compiled in self._compiled.values() for entry in compiled.plans]

    @property
    def last_call(self) -> str:
        """How the last call ran: "captured plan #1, 22 dispatches", "replayed plan #1, ...", "eager ..."."""
        return self._last_compiled.last if self._last_compiled is not None else "not called yet"

    def free(self) -> None:
        """Give the device buffers of every compiled plan back now (they also go with the model)."""
        for compiled in self._compiled.values():
            compiled.free()

    # ------------------------------------------------------------------ inputs
    def _tensor_input(self, x, name: str, dtype: DType | None = None, *, upload: bool = True):
        """A model input as a Tensor on the model's device (numpy is uploaded; a Tensor must be there).

        ``upload=False`` keeps a host array on the host, converted to ``dtype`` (a compiled forward
        uploads it with one write)."""
        if isinstance(x, Tensor):
            if x.device is not self.device:
                raise InputError(
                    f"{name} is on {x.device.spec} but the model is on {self.device.spec}; move it with .to()"
                )
            return x if dtype is None or x.dtype is dtype else ops.cast(x, dtype)
        arr = self._host_input(x, name)
        if not upload:
            return np.ascontiguousarray(narrow(arr, dtype if dtype is not None else dtype_for_array(arr)))
        return Tensor.from_numpy(arr, dtype, self.device)

    @staticmethod
    def _host_input(x, name: str, kinds: str = NUMERIC_KINDS) -> np.ndarray:
        """A host model input (numpy, nested lists, a torch tensor, detached) as a non-empty numpy array.

        None, text, paths and non-numeric or ragged data raise InputError, as does an empty array
        (a batch of 0 examples or a length of 0), before any reshape could fail on it.
        """
        arr = host_array(x, name, kinds)
        if arr.size == 0:
            raise InputError(f"{name} is empty (shape {arr.shape}); give at least one example of length >= 1")
        return arr

    def _ids_input(self, ids, name: str, vocab: int, ndim: int = 2, *, upload: bool = True) -> tuple:
        """Integer ids -> int32 Tensor and its shape (``upload=False``: an int32 host array for host ids).

        Host ids (numpy, lists, torch) are checked to lie in [0, vocab) here, on the host. Ids that
        are already a device Tensor are NOT checked (that would need a readback): out-of-range ids
        there are clamped by the embedding kernel, silently.
        """
        if isinstance(ids, Tensor):
            if ids.dtype is not int32:
                raise InputError(f"{name} must hold integers, got a {ids.dtype.name} tensor")
            if ids.size == 0:
                raise InputError(
                    f"{name} is empty (shape {ids.shape}); give at least one sequence of >= 1 token"
                )
            shape = ids.shape
        else:
            arr = self._host_input(ids, name, "iu")
            if arr.ndim == ndim - 1:
                arr = arr[None]
            if arr.size and (arr.min() < 0 or arr.max() >= vocab):
                bad = arr[(arr < 0) | (arr >= vocab)]
                raise InputError(
                    f"{name}: token ids must be in [0, {vocab}) (vocab_size {vocab}); "
                    f"got {bad.size} out of range, e.g. {int(bad.flat[0])} (max id {int(arr.max())}, "
                    f"min id {int(arr.min())})"
                )
            ids = arr.astype(np.int32)
            if upload:
                ids = Tensor.from_numpy(ids, int32, self.device)
            shape = ids.shape
        if len(shape) != ndim:
            raise InputError(f"{name} must have shape (batch, seq_len), got {shape}")
        return (self._tensor_input(ids, name) if upload else ids), shape

    def additive_mask(self, attention_mask, shape: tuple, *, upload: bool = True):
        """(B, T) 1/0 attention mask -> additive (B, 1, 1, T) mask: 0 where attended, a large negative elsewhere.

        ``upload=False``: a numpy mask becomes an additive host array, and a device mask stays the (B, T)
        0/1 Tensor, made additive by ``device_mask`` inside the (compiled) forward."""
        if attention_mask is None:
            return None
        neg = -1e9 if self.compute_dtype is float32 else -3e4
        if isinstance(attention_mask, Tensor):
            if attention_mask.shape != shape:
                raise InputError(
                    f"attention_mask shape {attention_mask.shape} differs from input_ids {shape}"
                )
            m = self._tensor_input(attention_mask, "attention_mask", self.compute_dtype)
            if not upload:
                return m
            mask = ops.mul(ops.sub(1.0, m), neg)
        else:
            arr = self._host_input(attention_mask, "attention_mask")
            if arr.ndim == len(shape) - 1:
                arr = arr[None]
            if arr.shape != shape:
                raise InputError(f"attention_mask shape {arr.shape} differs from input_ids {shape}")
            vals = arr.astype(np.float64)
            outside = ~((vals >= 0.0) & (vals <= 1.0))  # NaN compares False: outside too
            if outside.any():
                raise InputError(
                    "attention_mask must hold 1 (attend) and 0 (padding), values in [0, 1]; "
                    f"found {vals[outside].flat[0]!r}"
                )
            mask = narrow((1.0 - vals) * neg, self.compute_dtype)
            if upload:
                mask = Tensor.from_numpy(mask, self.compute_dtype, self.device)
        return mask.reshape(shape[0], 1, 1, shape[1])

    def device_mask(self, mask: Tensor | None) -> Tensor | None:
        """Inside a forward: a (B, T) 0/1 mask from ``additive_mask(upload=False)`` made additive (B, 1, 1, T);
        an additive mask as it is."""
        if mask is None or mask.ndim != 2:
            return mask
        neg = -1e9 if self.compute_dtype is float32 else -3e4
        return ops.mul(ops.sub(1.0, mask), neg).reshape(mask.shape[0], 1, 1, mask.shape[1])

    # ------------------------------------------------------------------ display
    def extra_repr(self) -> str:
        spec = self.device.spec if self.device is not None else "not loaded"
        text = f"{spec}, {self.compute_dtype.name}"
        if self.random_weights:
            text += f", random weights ({self.checkpoint.name}, a bundled test checkpoint)"
        if not self.compile:
            text += ", compile off"
        elif self._last_compiled is not None:
            n = sum(1 for entry in self.plans if hasattr(entry, "stats"))
            text += f", {n} plan{'s' if n != 1 else ''}; last call: {self.last_call}"
        return text


__all__ = ["PreTrainedModel"]
