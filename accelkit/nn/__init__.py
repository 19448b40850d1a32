"""nn: the module tree models are built from (the layer between tensor/ops and the models).

Owns ``Module`` and ``Parameter`` (a named-parameter tree that loads a checkpoint by name and
shape), the layers ``Linear``, ``LayerNorm`` (and ``linear_layer_norm``, the two fused), ``Embedding``, ``Conv1d``, ``Conv2d``, ``ModuleList``
(``nn/modules.py``), and multi-head attention: ``split_heads``, ``multi_head_attention`` and the
fused-qkv ``QKVSelfAttention`` module (``nn/attention.py``).

May import: errors, display, backends, hardware, tensor, ops, graph (never io, sharing, models or
anything above them).
"""

from __future__ import annotations

from .attention import Fuse, QKVSelfAttention, multi_head_attention, split_heads
from .modules import (
    Conv1d,
    Conv2d,
    Embedding,
    LayerNorm,
    Linear,
    Module,
    ModuleList,
    Parameter,
    linear_layer_norm,
    weights_version,
)

__all__ = [
    "Conv1d",
    "Conv2d",
    "Embedding",
    "Fuse",
    "LayerNorm",
    "Linear",
    "Module",
    "ModuleList",
    "Parameter",
    "QKVSelfAttention",
    "linear_layer_norm",
    "multi_head_attention",
    "split_heads",
    "weights_version",
]
