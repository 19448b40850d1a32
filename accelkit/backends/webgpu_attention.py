"""Planner for the fused attention kernel (``kernels/attention.wgsl``): picks a tile shape and packs the params.

Two shapes of the same kernel:

- ``tile`` (prefill, encoders): a workgroup serves QB query rows of one head with TPR lanes per row;
  K and V tiles of KB keys are staged in workgroup memory and shared by the QB rows.
- ``decode`` (Tq <= ``DECODE_MAX_TQ``, e.g. Whisper's token-by-token decoder with a KV cache): a
  workgroup serves one query row; its lanes split the keys (scores), then split keys and value columns
  (p @ V), and sum the key groups once at the end. K and V are read straight from global memory.

The key holds the shape and the head-dim buckets (``DIM_BUCKETS``), never the sizes themselves.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from ..errors import DTypeError, KernelError, ShapeError
from .wgsl import Caps, KernelPlan, Params, ceil_div, grid_1d, render

MAX_HEAD_DIM = 256
#: head dims (in vec4 units) the kernel is specialised for; a head dim is rounded up to the next one
DIM_BUCKETS = (1, 2, 4, 8, 16, 24, 32, 48, 64)
#: up to this many query rows go to the decode shape (one workgroup per row, keys split over lanes)
DECODE_MAX_TQ = 4
DECODE_LANES = 128
DECODE_KEYS = 1024
TILE_LANES = 128
TILE_KEYS = (32, 16, 8, 4)


@dataclass(frozen=True)
class AttentionShape:
    """The specialisation of ``attention.wgsl``: everything here changes the source, nothing else does."""

    variant: str  # "tile" or "decode"
    dtype: str  # WGSL element type
    qb: int  # query rows per workgroup
    tpr: int  # lanes per query row
    kb: int  # keys per tile
    cl: int  # column lanes in the p @ V step
    dk4: int  # head-dim bucket of q/k, vec4 units
    dv4: int  # head-dim bucket of v, vec4 units

    @property
    def stage(self) -> bool:
        return self.variant == "tile"

    @property
    def wg(self) -> int:
        return self.qb * self.tpr

    @property
    def kg(self) -> int:
        return self.tpr // self.cl

    @property
    def sks(self) -> int:  # s_tile row stride: padded against bank conflicts between rows
        return self.kb + 1 if self.qb > 1 else self.kb

    @property
    def dc4(self) -> int:
        return ceil_div(self.dv4, self.cl)

    @property
    def lengths(self) -> dict:
        """The workgroup array lengths (elements) the source declares."""
        dks, dvs = self.dk4 + 1, self.dv4
        return {
            "Q_LEN": self.qb * dks,
            "K_LEN": self.kb * dks if self.stage else 1,
            "V_LEN": self.kb * dvs if self.stage else 1,
            "S_LEN": self.qb * self.sks,
            "RED_LEN": self.wg * self.dc4 if self.kg > 1 else 1,
            "REDL_LEN": self.wg if self.kg > 1 else 1,
        }

    def workgroup_bytes(self) -> int:
        n = self.lengths
        vec = 4 * (2 if self.dtype == "f16" else 4)
        return (
            vec * (n["Q_LEN"] + n["K_LEN"] + n["V_LEN"])
            + 4 * (n["S_LEN"] + self.wg + n["REDL_LEN"])
            + 16 * n["RED_LEN"]
            + 64  # alignment slack between arrays
        )

    def render(self) -> str:
        return _source(self)


@functools.lru_cache(maxsize=64)
def _source(shape: AttentionShape) -> str:
    """The WGSL of one kernel shape (rendered once per shape)."""
    return render(
        "attention",
        T=shape.dtype,
        QB=shape.qb,
        TPR=shape.tpr,
        WG=shape.wg,
        KB=shape.kb,
        CL=shape.cl,
        KG=shape.kg,
        DKS=shape.dk4 + 1,
        DVS=shape.dv4,
        SKS=shape.sks,
        DC4=shape.dc4,
        STAGE="true" if shape.stage else "false",
        TREE="true" if shape.tpr > 16 else "false",
        **shape.lengths,
    )


def dim_bucket(n: int) -> int:
    """The vec4 count the kernel is specialised for, for a head dim of ``n`` elements."""
    n4 = max(1, ceil_div(n, 4))
    for b in DIM_BUCKETS:
        if n4 <= b:
            return b
    raise KernelError(f"attention: head dim {n} exceeds the WebGPU kernel's limit of {MAX_HEAD_DIM}")


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _pow2_at_most(n: int) -> int:
    return 1 << (max(1, n).bit_length() - 1)


def choose_shape(caps: Caps, dtype: str, tq: int, d: int, dv: int) -> AttentionShape:
    """The kernel shape for one call: decode for a few query rows, else the largest tile that fits."""
    dk4, dv4 = dim_bucket(d), dim_bucket(dv)
    lanes = _pow2_at_most(min(caps.max_invocations, caps.max_workgroup_size_x))
    budget = caps.max_workgroup_storage
    if tq <= DECODE_MAX_TQ:
        tpr = min(DECODE_LANES, lanes)
        cl = min(tpr, _pow2_at_least(dv4))
        kb = DECODE_KEYS
        while kb > tpr:
            shape = AttentionShape("decode", dtype, 1, tpr, kb, cl, dk4, dv4)
            if shape.workgroup_bytes() <= budget:
                return shape
            kb //= 2
    # tile: ~4 vec4 accumulators per lane, as many rows as make TILE_LANES lanes (<= 64)
    tpr = min(max(1, _pow2_at_least(dv4) // 4), 16, lanes)
    top = max(1, min(64, min(TILE_LANES, lanes) // tpr))
    for min_kb in (tpr, 1):  # first keep every lane busy scoring (kb >= tpr), then take what fits
        qb = top
        while qb >= 1:
            for kb in TILE_KEYS:
                shape = AttentionShape("tile", dtype, qb, tpr, kb, tpr, dk4, dv4)
                if kb >= min_kb and shape.workgroup_bytes() <= budget:
                    return shape
            qb //= 2
    raise KernelError(
        f"attention: head dims q/k {d}, v {dv} ({dtype}) need more workgroup memory than this adapter's "
        f"{budget} bytes"
    )


def _index_range(t) -> tuple[int, int]:
    """The smallest and largest element index a layout touches."""
    lo = hi = t.offset
    for n, s in zip(t.shape, t.strides):
        if n > 1:
            if s < 0:
                lo += (n - 1) * s
            else:
                hi += (n - 1) * s
    return lo, hi


def plan_attention(caps: Caps, q, k, v, mask, out, scale: float, causal: bool) -> KernelPlan:
    """One dispatch of ``attention.wgsl`` for (B, H, T, D) layouts; bindings [q, k, v, mask | dummy, out]."""
    if len(q.shape) != 4:
        raise ShapeError(f"attention kernel: q must be rank 4 (B, H, T, D), got shape {tuple(q.shape)}")
    bsz, heads, tq, d = q.shape
    tk, dv = k.shape[-2], v.shape[-1]
    layouts = {"q": q, "k": k, "v": v, "out": out, "mask": mask}
    expect = {
        "q": (bsz, heads, tq, d),
        "k": (bsz, heads, tk, d),
        "v": (bsz, heads, tk, dv),
        "out": (bsz, heads, tq, dv),
        "mask": (bsz, heads, tq, tk),
    }
    dt = q.dtype
    for name, t in layouts.items():
        if t is None:
            continue
        if tuple(t.shape) != expect[name]:
            raise ShapeError(
                f"attention kernel: {name} has shape {tuple(t.shape)}, expected {expect[name]} "
                f"for q of shape {tuple(q.shape)}"
            )
        if t.dtype is not dt:
            raise DTypeError(
                f"attention kernel: {name} is {t.dtype.name}, q is {dt.name}; expected one dtype"
            )
        lo, hi = _index_range(t)
        if lo < 0 or hi >= 2**31:
            raise KernelError(f"attention kernel: {name} spans elements {lo}..{hi}, beyond 32-bit indexing")
    if dt.wgsl not in ("f32", "f16"):
        raise DTypeError(f"attention kernel: q, k, v must be float32 or float16, got {dt.name}")
    if dt.wgsl == "f16" and not caps.f16:
        raise DTypeError("attention kernel: float16 needs the shader-f16 feature, which this adapter lacks")
    if max(d, dv) > MAX_HEAD_DIM:
        raise KernelError(
            f"attention: head dims q/k {d}, v {dv} exceed the WebGPU kernel's limit of {MAX_HEAD_DIM}"
        )

    shape = choose_shape(caps, dt.wgsl, tq, d, dv)
    q_blocks = ceil_div(tq, shape.qb)
    total = bsz * heads * q_blocks
    p = Params().u32(tq, tk, d, dv, ceil_div(d, 4), ceil_div(dv, 4), heads, q_blocks, total)
    p.u32(int(bool(causal)), int(mask is not None)).f32(scale)
    for t in (q, k, v, out):
        p.i32(t.offset, *t.strides)
    p.i32(*((mask.offset, *mask.strides) if mask is not None else (0, 0, 0, 0, 0)))

    # elements each layout really holds (broadcast dims count once)
    held = sum(
        math.prod(n for n, s in zip(t.shape, t.strides) if s != 0) for t in layouts.values() if t is not None
    )
    flags = (" causal" if causal else "") + (" mask" if mask is not None else "")
    return KernelPlan(
        key=(
            "attention",
            shape.variant,
            shape.dtype,
            shape.qb,
            shape.tpr,
            shape.kb,
            shape.cl,
            shape.dk4,
            shape.dv4,
        ),
        source=shape.render(),
        access=("read", "read", "read", "read", "read_write"),
        params=p.to_bytes(),
        workgroups=grid_1d(total, caps.max_workgroups_per_dim),
        label=f"attention[{shape.variant}] {bsz}x{heads} q{tq} k{tk} d{d}/{dv} {dt.name}{flags}",
        flops=2.0 * bsz * heads * tq * tk * (d + dv),
        bytes_moved=float(held * dt.itemsize),
        extra={"shape": shape, "workgroup_bytes": shape.workgroup_bytes()},
    )
