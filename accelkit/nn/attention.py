"""Multi-head attention: head splitting as views, the attention call, and the fused-qkv self-attention module.

The heads are split out of (B, T, H*D) projections as (B, H, T, D) views and the attention kernel
writes its output straight into a (B, T, H, D) buffer, so merging the heads back is a free reshape.
``QKVSelfAttention`` holds ``query``/``key``/``value`` Linears under BERT's and ViT's checkpoint
names; after loading, the model loader joins them into one (3C, C) matmul through ``fuse_weights``.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import ops
from ..tensor.tensor import Tensor
from .modules import Linear, Module


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, T, H*D) -> (B, H, T, D) as a view (no copy)."""
    b, t, c = x.shape
    return x.reshape(b, t, num_heads, c // num_heads).permute(0, 2, 1, 3)


def multi_head_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    num_heads: int,
    mask=None,
    causal: bool = False,
    scale: float | None = None,
) -> Tensor:
    """softmax(q k^T / sqrt(D) + mask) v per head over (B, T, H*D) projections -> (B, Tq, H*D).

    Heads are split and merged with views only: the kernel writes each head into (B, Tq, H, D).
    """
    b, tq, c = q.shape
    out = Tensor.empty((b, tq, num_heads, v.shape[-1] // num_heads), q.dtype, q.device)  # (B, Tq, H, D)
    ops.scaled_dot_product_attention(
        split_heads(q, num_heads),  # (B, H, Tq, D)
        split_heads(k, num_heads),  # (B, H, Tk, D)
        split_heads(v, num_heads),  # (B, H, Tk, D)
        attn_mask=mask,
        is_causal=causal,
        scale=scale,
        out=out.permute(0, 2, 1, 3),  # (B, H, Tq, D) view of out
    )
    return out.reshape(b, tq, -1)  # (B, Tq, H*D)


#: ``fuse(*linears) -> (weight, bias)``: joins loaded Linears into one matmul (the loader supplies it)
Fuse = Callable[..., tuple[Tensor, Tensor | None]]


class QKVSelfAttention(Module):
    """Multi-head self-attention with ``query``/``key``/``value`` Linears; (B, T, C) -> (B, T, C).

    ``project`` gives q, k, v: from one (3C, C) matmul once ``fuse_weights`` has run (the model
    loader calls it after loading), else from the three Linears.
    """

    def __init__(self, hidden_size: int, num_heads: int, bias: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.query = Linear(hidden_size, hidden_size, bias=bias)
        self.key = Linear(hidden_size, hidden_size, bias=bias)
        self.value = Linear(hidden_size, hidden_size, bias=bias)
        self.qkv = None  # (weight (3C, C), bias (3C,) or None) once fused

    def fuse_weights(self, fuse: Fuse) -> None:
        """Join query/key/value into one (3C, C) weight; the three keep their names as views into it."""
        self.qkv = fuse(self.query, self.key, self.value)

    def project(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, T, C) -> q, k, v, each (B, T, C)."""
        if self.qkv is None:
            return self.query(x), self.key(x), self.value(x)
        c = x.shape[-1]
        qkv = ops.linear(x, *self.qkv)  # (B, T, 3C), one matmul
        return qkv[..., :c], qkv[..., c : 2 * c], qkv[..., 2 * c :]

    def __call__(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        q, k, v = self.project(x)  # (B, T, C) each
        return multi_head_attention(q, k, v, self.num_heads, mask)  # (B, T, C)


__all__ = ["Fuse", "QKVSelfAttention", "multi_head_attention", "split_heads"]
