"""Planner for the fused attention kernel (``kernels/attention.wgsl``): picks a kernel shape and packs the params.

Two shapes of the same kernel:

- ``tile`` (prefill, encoders): a workgroup serves BQ query rows of one head. Its invocations form
  WGY row groups x WGX lanes; each holds a register block of TM query rows x TN4 groups of 4 keys for
  the scores and TM rows x TD vec4 columns of the output, like a matmul's register tile. K and V tiles
  of BK keys are staged in workgroup memory (K swizzled against bank conflicts), the probabilities go
  through workgroup memory (over the dead K tile in float32), and the row maxima and sums meet through
  subgroup shuffles where the device has subgroups wide enough, else through workgroup memory.
- ``decode`` (Tq <= ``DECODE_MAX_TQ``, e.g. Whisper's token-by-token decoder with a KV cache): a
  workgroup serves one query row; its lanes split the keys (scores), then split keys and value columns
  (p @ V), and sum the key groups once at the end. K and V are read straight from global memory.

Both read q, k, v as whole vec4 rows when they lie contiguously along the head dim (``vec``).
The key holds the shape, the head-dim buckets (``DIM_BUCKETS``) and those flags, never the sizes.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from ...errors import DTypeError, KernelError, ShapeError
from .wgsl import Caps, KernelPlan, Params, ceil_div, grid_1d, render

MAX_HEAD_DIM = 256
#: head dims (in vec4 units) the kernel is specialised for; a head dim is rounded up to the next one
DIM_BUCKETS = (1, 2, 4, 8, 16, 24, 32, 48, 64)
#: up to this many query rows go to the decode shape (one workgroup per row, keys split over lanes)
DECODE_MAX_TQ = 4
#: lanes of a decode workgroup, at most (fewer for short key ranges, ``decode_lanes``): on an H100 at
#: 1500 keys, 1024 lanes took 0.039 ms where 256 took 0.052 and 128 took 0.091
DECODE_LANES = 1024
DECODE_KEYS = 1024
LOG2E = 1.4426950408889634

#: tile configurations: name -> (BQ query rows, BK keys per tile, TM rows per invocation, WGX lanes per
#: row[, UX head-dim steps unrolled[, Q and p rows swizzled]]); invocations = BQ / TM * WGX. ``TILE_ORDER`` says which the
#: planner tries; the rest are kept for ``benchmarks/attention_probe.py``. On an H100 (see
#: benchmarks/RESULTS.md) q64k64x16 (4 rows x 4 keys per invocation, 256 invocations, shuffles for the
#: row reductions) was fastest or within 3% of the fastest at every prefill shape measured: more
#: invocations beat larger register blocks, and shuffles took 20-32% off the time of workgroup memory.
TILE_CONFIGS = {
    "q64k64": (64, 64, 4, 8),
    "q64k32": (64, 32, 4, 8),
    "q32k64": (32, 64, 4, 8),
    "q32k32": (32, 32, 4, 8),
    "q64k64t2": (64, 64, 2, 8),
    "q32k64t2": (32, 64, 2, 8),
    "q16k64": (16, 64, 2, 8),
    "q64k64x16": (64, 64, 4, 16, 4),
    "q64k64x16u1": (64, 64, 4, 16, 1),
    "q64k64x16u16": (64, 64, 4, 16, 16),
    "q64k64x16t2": (64, 64, 2, 16, 4),
    "q32k64x16": (32, 64, 4, 16, 4),
    "q32k64x16t2": (32, 64, 2, 16, 4),
    "q16k32": (16, 32, 2, 8),
    "q16k16": (16, 16, 4, 4),
    "q8k16": (8, 16, 2, 4),
    "q4k8": (4, 8, 1, 2),
    "q4k4": (4, 4, 1, 1),
    # Candidates for large-batch prefill (BERT/ViT at batch 32: 768-1536 workgroups, enough to fill the
    # GPU with fewer, fatter invocations). Timed on the H200 (benchmarks/RESULTS.md, runs 8-9): none beat
    # q64k64x16 at 128 rows (0.102 ms at 32 x 12 heads x 128 rows with a mask, kernels without naga's
    # checks); 8-row blocks ran 1.3-2.3x slower, the row swizzle changed nothing. At 197 rows q100k32t5
    # (two blocks, 3 rows of padding against 59) took 0.271 ms against 0.279 once the kernels went
    # without naga's checks (run 9; 4-25% slower with them, run 8): BIG_TILE_ORDER's one entry.
    # Per head-dim step an invocation loads TM q and
    # 4 * TN4 k vec4s for 16 * TM * TN4 FMAs (scores); per 4 keys, TM p and 4 * TD v vec4s for
    # 16 * TM * TD FMAs (p @ V). At D = 64 (TD = 16 / WGX) in float32, vec4 loads per FMA, scores / p @ V,
    # and workgroup memory (q64k64x16 today: 4x4 / 256, 0.125 / 0.125, 48 KiB):
    "q64k64x16t8": (64, 64, 8, 16, 4),  # 8x4 / 128, TD 1: 0.094 / 0.094, 48 KiB
    "q64k64t8": (64, 64, 8, 8, 4),  # 8x8 / 64, TD 2: 0.0625 / 0.0625, 48 KiB
    "q64k32t8": (64, 32, 8, 8, 4),  # 8x4 / 64, TD 2: 0.094 / 0.0625, 32 KiB (more workgroups per SM)
    # blocks that suit ViT's 197 rows (BQ = WGY * TM need not be a power of two; WGX must be):
    "q100k32t5": (100, 32, 5, 8, 4),  # 2 blocks (200 rows); 5x4 / 160, TD 2: 0.113 / 0.081, 45.5 KiB
    "q72k32t6": (72, 32, 6, 8, 4),  # 3 blocks (216 rows); 6x4 / 96, TD 2: 0.104 / 0.073, 35 KiB
    "q50k64x16t5": (50, 64, 5, 16, 4),  # 4 blocks (200 rows); 5x4 / 160, TD 1: 0.113 / 0.113, 44.5 KiB
    # the same with Q and p rows swizzled (6th field): the 32 / WGX row groups of a 32-lane subgroup read
    # the same column of rows DK4 (q) or BK / 4 (p) vec4s apart, i.e. in the same banks: a 4-way (WGX 8)
    # or 2-way (WGX 16) conflict on every q and p load, gone when swizzled (counted as one load above)
    "q64k64x16s": (64, 64, 4, 16, 4, True),
    "q64k64x16t8s": (64, 64, 8, 16, 4, True),
    "q64k64t8s": (64, 64, 8, 8, 4, True),
    "q64k32t8s": (64, 32, 8, 8, 4, True),
    "q100k32t5s": (100, 32, 5, 8, 4, True),
    "q72k32t6s": (72, 32, 6, 8, 4, True),
}
#: the order the planner tries configurations in: the first that fits the adapter's workgroup memory and
#: invocation limits, skipping blocks of more than twice the query rows when a smaller one covers them
#: (down to MIN_BQ rows: smaller blocks are for adapters with little workgroup memory)
TILE_ORDER = (
    "q64k64x16",
    "q64k32",
    "q32k64x16",
    "q32k32",
    "q16k64",
    "q16k32",
    "q16k16",
    "q8k16",
    "q4k8",
    "q4k4",
)
MIN_BQ = 16
#: large-batch prefill: where a call's grid under ``TILE_ORDER``'s choice has at least ``BIG_GRID``
#: workgroups (batch x heads x query blocks), the planner tries ``BIG_TILE_ORDER`` first: the first
#: configuration that fits and computes at most ``BIG_MAX_PAD`` (a fraction of Tq) rows past the last
#: query row and fewer than today's choice would; else today's choice. On the H200 (run 9) q100k32t5 won
#: at ViT's 197 rows (0.271 against 0.279 ms at batch 32) and lost at 128 (where it pads 72 rows).
BIG_GRID = 512
BIG_MAX_PAD = 0.1
BIG_TILE_ORDER: tuple[str, ...] = ("q100k32t5",)
#: few heads of one short sequence (batch 1): where that grid has fewer than ``SMALL_GRID`` workgroups
#: on a hardware adapter, ``SMALL_TILE_ORDER`` comes first: half the rows per block, twice the
#: workgroups. On the H200 (benchmarks/RESULTS.md, runs 7-8) q32k64x16t2 took 1x12 heads x 128 rows from
#: 0.0196 to 0.0144 ms (torch SDPA 0.0179; with BERT's mask 0.0205 -> 0.0149, SDPA 0.0183) and 197 rows
#: from 0.0288 to 0.0211 (SDPA 0.0294).
SMALL_GRID = 128
SMALL_TILE_ORDER: tuple[str, ...] = ("q32k64x16t2",)


@dataclass(frozen=True)
class AttentionShape:
    """The specialisation of ``attention.wgsl``: everything here changes the source, nothing else does."""

    variant: str  # "tile" or "decode"
    dtype: str  # WGSL element type
    qb: int  # query rows per workgroup (BQ; 1 for decode)
    tpr: int  # lanes per query row (WGX for tile, every lane for decode)
    kb: int  # keys per tile
    cl: int  # column lanes in the p @ V step (tile: = tpr)
    dk4: int  # head-dim bucket of q/k, vec4 units
    dv4: int  # head-dim bucket of v, vec4 units
    tm: int = 1  # tile: query rows per invocation
    ux: int = 1  # tile: head-dim steps unrolled in the scores loop
    rswz: int = 0  # tile: Q and p row swizzle mask (0: rows unswizzled)
    subgroups: bool = False  # tile: row reductions by subgroup shuffles
    vec: bool = False  # q, k, v read as vec4 rows
    vec_out: bool = False  # out written as vec4s
    dyn: bool = False  # decode: the key count comes from a kv_start buffer (a fixed-size KV cache)

    @property
    def stage(self) -> bool:
        return self.variant == "tile"

    @property
    def wgy(self) -> int:
        return self.qb // self.tm

    @property
    def wg(self) -> int:
        return self.wgy * self.tpr

    @property
    def kg(self) -> int:
        return self.tpr // self.cl

    @property
    def dc4(self) -> int:  # vec4 accumulators per invocation and query row
        return ceil_div(self.dv4, self.cl)

    @property
    def tn4(self) -> int:  # tile: groups of 4 keys per invocation
        return self.kb // (4 * self.tpr)

    @property
    def ks(self) -> int:  # tile: k_tile row stride; swizzled (no padding) for head dims of 8+ vec4s
        return self.dk4 if self.dk4 >= 8 else self.dk4 + 1

    @property
    def vs(self) -> int:  # tile: v_tile row stride (lanes past it read its last column, unused)
        return self.dv4

    @property
    def alias(self) -> bool:  # tile: p over the k_tile (both float32)
        return self.dtype == "f32"

    @property
    def lengths(self) -> dict:
        """The workgroup array lengths (elements) the source declares."""
        if self.stage:
            p_len = self.qb * self.kb // 4
            k_len = self.kb * self.ks
            return {
                "Q_LEN": self.qb * self.dk4,
                "K_LEN": max(k_len, p_len) if self.alias else k_len,
                "P_LEN": p_len,
                "V_LEN": self.kb * self.vs,
                "RED_LEN": self.qb * self.tpr,
            }
        return {
            "RED_LEN": self.wg * self.dc4 if self.kg > 1 else 1,
            "REDL_LEN": self.wg if self.kg > 1 else 1,
        }

    def workgroup_bytes(self) -> int:
        n = self.lengths
        vec = 4 * (2 if self.dtype == "f16" else 4)
        if self.stage:
            k = 16 * n["K_LEN"] if self.alias else vec * n["K_LEN"] + 16 * n["P_LEN"]
            red = 0 if self.subgroups else 4 * n["RED_LEN"]
            return vec * (n["Q_LEN"] + n["V_LEN"]) + k + red
        return vec * self.dk4 + 4 * (self.kb + self.wg + n["REDL_LEN"]) + 16 * n["RED_LEN"]

    def render(self) -> str:
        return _source(self)


@functools.lru_cache(maxsize=64)
def _source(shape: AttentionShape) -> str:
    """The WGSL of one kernel shape (rendered once per shape)."""
    t = shape.dtype
    n = shape.lengths
    values = {
        "T": t,
        "E": f"vec4<{t}>" if shape.vec else t,
        "O": f"vec4<{t}>" if shape.vec_out else t,
        "TILE": shape.stage,
        "DYN": shape.dyn,
        "PB": 6 if shape.dyn else 5,
        "VEC": shape.vec,
        "VEC_O": shape.vec_out,
        "DK4": shape.dk4,
        "DV4": shape.dv4,
        # tile
        "BQ": shape.qb,
        "BK": shape.kb,
        "WGX": shape.tpr,
        "WGY": shape.wgy,
        "WG": shape.wg,
        "TM": shape.tm,
        "UX": shape.ux,
        "NKL": ceil_div(shape.kb * shape.dk4, shape.wg),
        "NVL": ceil_div(shape.kb * shape.vs, shape.wg),
        "TN4": shape.tn4,
        "TD": shape.dc4,
        "KS": shape.ks,
        "SWZ": 7 if shape.dk4 >= 8 else 0,
        "RSWZ": shape.rswz,
        "VS": shape.vs,
        "KT": "f32" if shape.alias else t,
        "ALIAS": shape.alias,
        "P_ARR": "k_tile" if shape.alias else "p_tile",
        "SUBGROUPS": shape.subgroups,
        "SHUFFLES": [1 << i for i in range(shape.tpr.bit_length() - 1)],
        # decode
        "TPR": shape.tpr,
        "KB": shape.kb,
        "CL": shape.cl,
        "KG": shape.kg,
        "DC4": shape.dc4,
        "TREE": "true" if shape.tpr > 16 else "false",
        "Q_LEN": 1,
        "K_LEN": 1,
        "P_LEN": 1,
        "V_LEN": 1,
        "RED_LEN": 1,
        "REDL_LEN": 1,
    }
    values.update(n)
    return render("attention", **values)


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


def subgroup_width(caps: Caps) -> int:
    """The smallest subgroup the device may run a shader with (0 without subgroups)."""
    if not caps.subgroups:
        return 0
    width = caps.subgroup_min
    if "nvidia" in f"{caps.vendor} {caps.device_name}".lower():
        width = max(width, 32)  # a warp; the adapter info does not always say
    return width


def tile_shape(
    caps: Caps, dtype: str, config: str, dk4: int, dv4: int, subgroups: bool | None = None, **flags
):
    """The tile shape of one named configuration (``TILE_CONFIGS``)."""
    bq, bk, tm, wgx, *extra = TILE_CONFIGS[config]
    if subgroups is None:
        subgroups = subgroup_width(caps) >= wgx > 1
    ux = math.gcd(extra[0] if extra else 1, dk4)
    # row swizzle: over up to 4 rows, within aligned groups of vec4s that divide both row strides (the
    # largest power of two dividing both)
    common = math.gcd(dk4, bk // 4)
    rswz = min(4, common & -common) - 1 if extra[1:] and extra[1] else 0
    return AttentionShape("tile", dtype, bq, wgx, bk, wgx, dk4, dv4, tm, ux, rswz, bool(subgroups), **flags)


def decode_lanes(tk: int | None) -> int:
    """Lanes for a decode workgroup: about one per two keys, from 128 to ``DECODE_LANES``."""
    if tk is None:
        return DECODE_LANES
    return max(128, min(DECODE_LANES, _pow2_at_least(max(tk, 1)) // 2))


def choose_shape(
    caps: Caps,
    dtype: str,
    tq: int,
    d: int,
    dv: int,
    *,
    tk: int | None = None,
    config: str | None = None,
    subgroups: bool | None = None,
    vec: bool = False,
    vec_out: bool = False,
    dyn: bool = False,
    bh: int | None = None,
) -> AttentionShape:
    """The kernel shape for one call: decode for a few query rows, else the largest tile that fits.

    ``bh`` (batch x heads) lets a small grid use ``SMALL_TILE_ORDER`` and a large one ``BIG_TILE_ORDER``. ``config`` forces a tile
    configuration, or the decode shape ("decode", or "decode256": with that many lanes), and
    ``subgroups`` the tile's row reductions (experiments, tests).
    """
    dk4, dv4 = dim_bucket(d), dim_bucket(dv)
    lanes = _pow2_at_most(min(caps.max_invocations, caps.max_workgroup_size_x))
    budget = caps.max_workgroup_storage
    flags = {"vec": vec, "vec_out": vec_out, "dyn": dyn}
    if dyn and config is None:
        config = "decode"  # the key count read on the device: only the decode shape reads it
    elif dyn and not config.startswith("decode"):
        raise KernelError("attention: a key count read on the device (kv_start) needs the decode shape")
    # (a CPU rasteriser runs lanes one after another: there the fewest were fastest)
    want = 128 if caps.is_software else decode_lanes(tk)
    if config is not None:
        if config.startswith("decode"):
            tq, want = 1, int(config[6:] or want)
        else:
            shape = tile_shape(caps, dtype, config, dk4, dv4, subgroups, **flags)
            if shape.workgroup_bytes() > budget or shape.wg > lanes:
                raise KernelError(f"attention: tile {config} does not fit this adapter")
            return shape
    if tq <= DECODE_MAX_TQ:
        tpr = min(want, lanes)
        while tpr >= 32:
            cl = min(tpr, _pow2_at_least(dv4))
            kb = DECODE_KEYS
            while kb >= tpr:
                shape = AttentionShape("decode", dtype, 1, tpr, kb, cl, dk4, dv4, **flags)
                if shape.workgroup_bytes() <= budget:
                    return shape
                kb //= 2
            tpr //= 2

    def fitting(order):
        shapes = (tile_shape(caps, dtype, name, dk4, dv4, subgroups, **flags) for name in order)
        return [s for s in shapes if s.workgroup_bytes() <= budget and s.wg <= lanes]

    fits = fitting(TILE_ORDER)
    if not fits:
        raise KernelError(
            f"attention: head dims q/k {d}, v {dv} ({dtype}) need more workgroup memory than this adapter's "
            f"{budget} bytes"
        )
    chosen = fits[-1]
    for shape in fits:
        if shape.qb >= 2 * tq and shape.qb > MIN_BQ and any(tq <= s.qb < shape.qb for s in fits):
            continue  # a smaller block covers every row
        chosen = shape
        break
    if bh is None:
        return chosen
    grid = bh * ceil_div(tq, chosen.qb)  # workgroups under today's choice
    if grid < SMALL_GRID and not caps.is_software:
        small = fitting(SMALL_TILE_ORDER)
        if small and small[0].qb < chosen.qb:
            return small[0]
    if grid >= BIG_GRID:

        def pad(shape):
            return ceil_div(tq, shape.qb) * shape.qb - tq

        for shape in fitting(BIG_TILE_ORDER):
            if pad(shape) <= BIG_MAX_PAD * tq and (pad(shape) < pad(chosen) or shape.qb == chosen.qb):
                return shape
    return chosen


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


def _rows_of_vec4(t) -> bool:
    """True when every row of the layout is whole vec4s: contiguous along the last dim, which is a
    multiple of 4 long, with the offset and every other (used) stride multiples of 4."""
    if t.shape[-1] % 4 or (t.shape[-1] > 1 and t.strides[-1] != 1) or t.offset % 4:
        return False
    return all(s % 4 == 0 for n, s in zip(t.shape[:-1], t.strides[:-1]) if n > 1)


def plan_attention(
    caps: Caps,
    q,
    k,
    v,
    mask,
    out,
    scale: float,
    causal: bool,
    *,
    config: str | None = None,
    subgroups: bool | None = None,
    kv_start=None,
) -> KernelPlan:
    """One dispatch of ``attention.wgsl`` for (B, H, T, D) layouts; bindings [q, k, v, mask | dummy, out].

    ``config`` ("decode" or a ``TILE_CONFIGS`` name) and ``subgroups`` override the planner's choice
    (for benchmarks and tests). With ``kv_start`` (an int32 layout; bound after out) the decode shape
    reads q's first key position p from it and sees only the first min(p + Tq, Tk) keys of k and v.
    """
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

    vec = all(_rows_of_vec4(t) for t in (q, k, v))
    shape = choose_shape(
        caps,
        dt.wgsl,
        tq,
        d,
        dv,
        tk=tk,
        config=config,
        subgroups=subgroups,
        vec=vec,
        vec_out=_rows_of_vec4(out),
        dyn=kv_start is not None,
        bh=bsz * heads,
    )
    q_blocks = ceil_div(tq, shape.qb)
    total = bsz * heads * q_blocks
    p = Params().u32(tq, tk, d, dv, ceil_div(d, 4), ceil_div(dv, 4), heads, q_blocks, total)
    p.u32(int(bool(causal)), int(mask is not None)).f32(scale * LOG2E)
    for t in (q, k, v, out):
        p.i32(t.offset, *t.strides)
    p.i32(*((mask.offset, *mask.strides) if mask is not None else (0, 0, 0, 0, 0)))
    if kv_start is not None:
        if kv_start.dtype.wgsl != "i32":
            raise DTypeError(f"attention kernel: kv_start must be int32, got {kv_start.dtype.name}")
        p.i32(kv_start.offset)

    # elements each layout really holds (broadcast dims count once)
    held = sum(
        math.prod(n for n, s in zip(t.shape, t.strides) if s != 0) for t in layouts.values() if t is not None
    )
    flags = (" causal" if causal else "") + (" mask" if mask is not None else "")
    if shape.stage:
        what = f"tile q{shape.qb}k{shape.kb} {shape.tm}x{4 * shape.tn4}/{shape.wg}" + (
            " sg" if shape.subgroups else ""
        )
        what += f" u{shape.ux}" if shape.ux > 1 else ""
        what += " rs" if shape.rswz else ""
    else:
        what = f"decode {shape.tpr} lanes k{shape.kb}" + (" kv@buf" if shape.dyn else "")
    what += " vec" if shape.vec else ""
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
            shape.tm,
            shape.ux,
            shape.rswz,
            shape.subgroups,
            shape.vec,
            shape.vec_out,
            shape.dyn,
        ),
        source=shape.render(),
        access=("read", "read", "read", "read", "read_write") + (("read",) if shape.dyn else ()),
        params=p.to_bytes(),
        workgroups=grid_1d(total, caps.max_workgroups_per_dim),
        label=f"attention[{what}] {bsz}x{heads} q{tq} k{tk} d{d}/{dv} {dt.name}{flags}",
        flops=2.0 * bsz * heads * tq * tk * (d + dv),
        bytes_moved=float(held * dt.itemsize),
        extra={"shape": shape, "workgroup_bytes": shape.workgroup_bytes()},
    )
