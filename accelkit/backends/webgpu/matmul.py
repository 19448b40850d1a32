"""The WebGPU matmul planner: picks a kernel of ``kernels/matmul.wgsl`` for a shape and a memory layout.

Variants (``plan.extra["variant"]``):

- ``tiled``: register-blocked tiles (``TILES`` below) through double-buffered workgroup memory,
  vec4 loads along whichever dim of ``a`` and ``b`` is contiguous when offsets and strides allow,
  scalar loads otherwise; edges are bounds-checked, so any M, N, K works.
- ``gemv_dot``: few rows (M <= 8, e.g. one decoder token) with ``b`` contiguous along K, which is
  ``linear``'s ``weight.T``: each column is a coalesced dot product along the weight's rows.
- ``gemv_axpy``: few rows with ``b`` contiguous along N (or any strides): coalesced along N.

When N <= 8 < M the product is planned transposed (``out.T = b.T @ a.T``) so that the gemv
kernels serve matrix-vector products too. ``plan.key`` holds only what changes the WGSL source
(variant, dtype, layout flags, tile config, epilogue); shapes, strides and offsets go in Params.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

from ...errors import DTypeError, KernelError, ShapeError
from .wgsl import Caps, KernelPlan, Params, ceil_div, grid_1d, render_cached

ACTIVATIONS = {None: 0, "gelu": 1, "gelu_tanh": 2, "relu": 3, "tanh": 4}
ENTRIES = {"tiled": 0, "gemv_dot": 1, "gemv_axpy": 2}
SMALL_ROWS = 8  # M (or N) at or below this goes to the gemv kernels
GROUP_M = 8  # rows of tiles that sweep N together (grouped order, for cache reuse)


@dataclass(frozen=True)
class Tile:
    """A tiled-kernel configuration: a BM x BN output tile per workgroup, TM x TN per invocation, BK deep."""

    bm: int
    bn: int
    bk: int
    tm: int
    tn: int

    @property
    def name(self) -> str:
        return f"{self.bm}x{self.bn}x{self.bk}/{self.tm}x{self.tn}"

    @property
    def threads(self) -> int:
        return (self.bm // self.tm) * (self.bn // self.tn)

    @property
    def storage_bytes(self) -> int:
        """Workgroup memory: two buffers of A (BK x BM) and B (BK x BN) in vec4<f32>, each row padded by one."""
        return 2 * self.bk * (self.bm // 4 + 1) * 16 + 2 * self.bk * (self.bn // 4 + 1) * 16


# Largest first; the planner takes the first that gives the device enough workgroups and fits its
# limits. Measured on an H100 (benchmarks/RESULTS.md): BK = 16 beats 8 at every size where a tile
# size wins, 128x128 from 2048^2 up, 64x64 around 1024^2, 32x32 below.
TILES = {
    "128x128k16": Tile(128, 128, 16, 8, 8),
    "128x128": Tile(128, 128, 8, 8, 8),  # for devices with under 34 KB of workgroup memory
    "64x64k16": Tile(64, 64, 16, 4, 4),
    "64x64": Tile(64, 64, 8, 4, 4),
    "32x32": Tile(32, 32, 8, 4, 4),
}
TARGET_WORKGROUPS = 256  # about two per multiprocessor on a big GPU; software adapters want 4


def _source(key: tuple) -> str:
    return render_cached("matmul", None, key[1:])


# ---------------------------------------------------------------------------------- layouts
@dataclass(frozen=True)
class _Mat:
    """One operand as (batch, rows, cols) with element strides; size-1 dims get stride 0."""

    off: int
    sb: int
    sr: int
    sc: int

    @staticmethod
    def of(t) -> _Mat:
        shape, strides = tuple(t.shape), tuple(t.strides)
        sb, sr, sc = (s if n != 1 else 0 for n, s in zip(shape, strides))
        return _Mat(int(t.offset), sb, sr, sc)

    def t(self) -> _Mat:
        return _Mat(self.off, self.sb, self.sc, self.sr)


def _aligned(*values: int) -> bool:
    return all(v % 4 == 0 for v in values)


def _vec(off: int, sb: int, s_other: int, s_contig: int, n_contig: int) -> bool:
    """vec4 loads along a dim need it dense (stride 1), its length and every other stride and the offset % 4 == 0."""
    return s_contig == 1 and _aligned(n_contig, off, sb, s_other)


# ---------------------------------------------------------------------------------- the planner
class _Sig(NamedTuple):
    """What the planner reads off a tensor (hashable, so plans are cached per call signature)."""

    shape: tuple
    strides: tuple
    offset: int
    dtype: object

    @staticmethod
    def of(t) -> _Sig | None:
        return None if t is None else _Sig(tuple(t.shape), tuple(t.strides), int(t.offset), t.dtype)


def plan_matmul(
    caps: Caps,
    a,
    b,
    out,
    bias=None,
    activation: str | None = None,
    *,
    variant: str | None = None,
    tile: str | None = None,
) -> KernelPlan:
    """Plan ``out = activation(a @ b + bias)`` for a (batch, M, K), b (batch, K, N), out (batch, M, N).

    ``variant`` ("tiled", "gemv_dot", "gemv_axpy") and ``tile`` (a key of ``TILES``) force a
    choice, for tests and benchmarks; by default the planner picks from the shape and layouts.
    Plans are cached per call signature (shapes, strides, offsets, dtypes), so a decoding loop
    that repeats its shapes plans each matmul once.
    """
    return _plan(caps, _Sig.of(a), _Sig.of(b), _Sig.of(out), _Sig.of(bias), activation, variant, tile)


@functools.lru_cache(maxsize=4096)
def _plan(
    caps: Caps, a: _Sig, b: _Sig, out: _Sig, bias: _Sig | None, activation, variant, tile
) -> KernelPlan:
    if len(a.shape) != 3 or len(b.shape) != 3 or len(out.shape) != 3:
        raise ShapeError(
            f"matmul kernel: expected 3-D (batch, rows, cols) operands, got {a.shape} @ {b.shape}"
        )
    batch, m, k = a.shape
    n = b.shape[2]
    if b.shape[:2] != (batch, k) or tuple(out.shape) != (batch, m, n):
        raise ShapeError(f"matmul kernel: shapes do not fit: {a.shape} @ {b.shape} -> {out.shape}")
    if bias is not None and tuple(bias.shape) != (n,):
        raise ShapeError(f"matmul kernel: bias must have shape ({n},), got {bias.shape}")
    if activation not in ACTIVATIONS:
        raise KernelError(f"matmul kernel: unknown activation {activation!r}")
    dt = a.dtype.wgsl
    if dt not in ("f32", "f16") or b.dtype.wgsl != dt or out.dtype.wgsl != dt:
        raise DTypeError(
            f"matmul kernel: a, b and out must all be float32 or all float16, got "
            f"{a.dtype.name}, {b.dtype.name}, {out.dtype.name}"
        )
    if bias is not None and bias.dtype.wgsl != dt:
        raise DTypeError(f"matmul kernel: bias must be {a.dtype.name}, got {bias.dtype.name}")
    if dt == "f16" and not caps.f16:
        raise DTypeError("matmul kernel: float16 needs the shader-f16 feature, which this device lacks")
    dims = f"{batch}x{m}x{n}x{k}"

    am, bm_, om = _Mat.of(a), _Mat.of(b), _Mat.of(out)
    bias_off = int(bias.offset) if bias is not None else 0
    bias_rc = (0, 1)  # bias index = m * bias_rc[0] + n * bias_rc[1]
    swapped = False
    if variant is None:
        variant = "tiled" if min(m, n) > SMALL_ROWS else "gemv"
    if variant.startswith("gemv") and n < m:
        # out.T = b.T @ a.T: the few columns become the few rows
        am, bm_, om = bm_.t(), am.t(), om.t()
        m, n = n, m
        bias_rc = (1, 0)
        swapped = True
    if variant == "gemv":
        variant = "gemv_axpy" if bm_.sc == 1 else "gemv_dot"
    if variant not in ENTRIES:
        raise KernelError(f"matmul kernel: unknown variant {variant!r}; expected one of {tuple(ENTRIES)}")
    if variant != "tiled" and m > SMALL_ROWS:
        raise KernelError(
            f"matmul kernel: {variant} serves at most {SMALL_ROWS} rows or columns, got {m}x{n}"
        )

    flops = 2.0 * batch * m * n * k
    nbytes = a.dtype.itemsize * (batch * (m * k + k * n + m * n) + (n if bias is not None else 0))
    common = {
        "T": dt,
        "ACT": ACTIVATIONS[activation],
        "HAS_BIAS": int(bias is not None),
        "ENTRY": ENTRIES[variant],
    }
    if variant == "tiled":
        values, params, groups, label = _tiled(caps, batch, m, n, k, am, bm_, om, tile)
    elif variant == "gemv_dot":
        values, params, groups, label = _gemv_dot(caps, batch, m, n, k, am, bm_, om)
    else:
        values, params, groups, label = _gemv_axpy(caps, batch, m, n, k, am, bm_, om)
    values.update(common)
    # the logical a and b come from bindings 0 and 1, or 1 and 0 when the problem was transposed
    elem_a, elem_b = values.pop("A_ELEM"), values.pop("B_ELEM")
    values.update(
        ELEM0=elem_b if swapped else elem_a,
        ELEM1=elem_a if swapped else elem_b,
        A_SRC="in1" if swapped else "in0",
        B_SRC="in0" if swapped else "in1",
    )
    key = ("matmul", *sorted(values.items()))
    p = Params()  # the WGSL struct Params, field by field
    p.u32(m, n, k, batch)
    p.u32(*params["a"])  # offsets and strides: negative ones wrap to their two's complement
    p.u32(*params["b"])
    p.u32(om.off, om.sb, om.sr, om.sc)
    p.u32(bias_off, bias_rc[0], bias_rc[1], params["tiles_n"])
    p.u32(params["tiles_m"], GROUP_M, 0, 0)
    grid_x, grid_y, _ = grid_1d(groups, caps.max_workgroups_per_dim)
    grid_z = min(batch, caps.max_workgroups_per_dim)
    act = f"+{activation}" if activation else ""
    return KernelPlan(
        key=key,
        source=_source(key),
        access=("read", "read", "read", "read_write"),
        params=p.to_bytes(),
        workgroups=(grid_x, grid_y, grid_z),
        label=f"matmul[{label}{'+bias' if bias is not None else ''}{act}] {dims} {dt}",
        entry_point=variant,
        flops=flops,
        bytes_moved=float(nbytes),
        extra={"variant": variant, "config": label},
    )


def _a_params(am: _Mat, vec: bool, along_k: bool) -> tuple:
    if not vec:
        return (am.off, am.sb, am.sr, am.sc)
    if along_k:
        return (am.off // 4, am.sb // 4, am.sr // 4, 1)
    return (am.off // 4, am.sb // 4, 1, am.sc // 4)


def _b_params(bm_: _Mat, vec: bool, along_k: bool) -> tuple:
    # b's rows are K, its columns N: Params order is (off, sb, sk, sn)
    if not vec:
        return (bm_.off, bm_.sb, bm_.sr, bm_.sc)
    if along_k:
        return (bm_.off // 4, bm_.sb // 4, 1, bm_.sc // 4)
    return (bm_.off // 4, bm_.sb // 4, bm_.sr // 4, 1)


def _fits(caps: Caps, tile: Tile) -> bool:
    return tile.storage_bytes <= caps.max_workgroup_storage and tile.threads <= min(
        caps.max_invocations, caps.max_workgroup_size_x
    )


def pick_tile(caps: Caps, batch: int, m: int, n: int) -> Tile:
    """The largest tile that still gives the device enough workgroups to fill it (and fits its limits)."""
    fitting = [t for t in TILES.values() if _fits(caps, t)]
    if not fitting:
        raise KernelError(
            f"matmul kernel: no tile fits this device's workgroup limits "
            f"({caps.max_workgroup_storage} bytes, {caps.max_invocations} invocations)"
        )
    target = 4 if caps.is_software else TARGET_WORKGROUPS
    for t in fitting:
        if batch * ceil_div(m, t.bm) * ceil_div(n, t.bn) >= target:
            return t
    return min(fitting, key=lambda t: t.bm * t.bn)


def _tiled(caps, batch, m, n, k, am: _Mat, bm_: _Mat, om: _Mat, tile_name):
    if tile_name is not None:
        if tile_name not in TILES:
            raise KernelError(f"matmul kernel: unknown tile {tile_name!r}; expected one of {tuple(TILES)}")
        tile = TILES[tile_name]
        if not _fits(caps, tile):
            raise KernelError(
                f"matmul kernel: tile {tile_name} needs {tile.storage_bytes} bytes of workgroup memory and "
                f"{tile.threads} invocations; this device allows {caps.max_workgroup_storage} and {caps.max_invocations}"
            )
    else:
        tile = pick_tile(caps, batch, m, n)
    a_k = not (am.sr == 1 and am.sc != 1)  # a read along K unless it is M-contiguous (a transposed view)
    a_vec = _vec(am.off, am.sb, am.sr, am.sc, k) if a_k else _vec(am.off, am.sb, am.sc, am.sr, m)
    b_k = bm_.sr == 1 and bm_.sc != 1  # b read along K only when K-contiguous (a linear layer's weight.T)
    b_vec = _vec(bm_.off, bm_.sb, bm_.sc, bm_.sr, k) if b_k else _vec(bm_.off, bm_.sb, bm_.sr, bm_.sc, n)
    o_vec = om.sc == 1 and _aligned(n, om.off, om.sb, om.sr)
    elem = "vec4<T>"
    a_slots, b_slots = tile.bm * tile.bk // 4, tile.bk * tile.bn // 4
    values = {
        "A_ELEM": elem if a_vec else "T",
        "B_ELEM": elem if b_vec else "T",
        "O_ELEM": elem if o_vec else "T",
        "A_K": int(a_k),
        "A_VEC": int(a_vec),
        "B_K": int(b_k),
        "B_VEC": int(b_vec),
        "O_VEC": int(o_vec),
        "BM": tile.bm,
        "BN": tile.bn,
        "BK": tile.bk,
        "TM4": tile.tm // 4,
        "TN4": tile.tn // 4,
        "WGX": tile.bn // tile.tn,
        "WGY": tile.bm // tile.tm,
        "THREADS": tile.threads,
        "A_LOADS": ceil_div(a_slots, tile.threads),
        "B_LOADS": ceil_div(b_slots, tile.threads),
        "AS_LEN": 2 * tile.bk * (tile.bm // 4 + 1),
        "BS_LEN": 2 * tile.bk * (tile.bn // 4 + 1),
        "MR": 1,
        "LANES": 1,
        "KSPLIT": 1,
        "K4": 0,
        "RED_LEN": 1,
    }
    tiles_m, tiles_n = ceil_div(m, tile.bm), ceil_div(n, tile.bn)
    params = {
        "a": _a_params(am, a_vec, a_k),
        "b": _b_params(bm_, b_vec, b_k),
        "tiles_m": tiles_m,
        "tiles_n": tiles_n,
    }
    layout = f"a{'k' if a_k else 'm'}{'4' if a_vec else '1'}b{'k' if b_k else 'n'}{'4' if b_vec else '1'}"
    return values, params, tiles_m * tiles_n, f"tiled {tile.name} {layout}"


def _rows_bucket(m: int) -> int:
    return 1 << max(0, (m - 1).bit_length())


def _gemv_dot(caps, batch, m, n, k, am: _Mat, bm_: _Mat, om: _Mat):
    mr = _rows_bucket(m)
    lanes = 32 if k >= 2048 else (16 if k >= 512 else 8)
    k4 = k % 4 == 0
    a_vec = k4 and _vec(am.off, am.sb, am.sr, am.sc, k)
    b_vec = k4 and _vec(bm_.off, bm_.sb, bm_.sc, bm_.sr, k)
    values = _gemv_values(mr, a_vec, b_vec, a_k=1, b_k=1)
    values.update(LANES=lanes, K4=int(k4), RED_LEN=mr * 256)
    groups = ceil_div(n, 256 // lanes)
    params = {
        "a": _a_params(am, a_vec, True),
        "b": _b_params(bm_, b_vec, True),
        "tiles_m": 1,
        "tiles_n": groups,
    }
    return values, params, groups, f"gemv_dot r{mr} l{lanes} a{'4' if a_vec else '1'}b{'4' if b_vec else '1'}"


def _gemv_axpy(caps, batch, m, n, k, am: _Mat, bm_: _Mat, om: _Mat):
    mr = _rows_bucket(m)
    ksplit = 4 if n >= 32768 else (16 if n >= 8192 else 64)  # aim for >= 128 workgroups
    b_vec = _vec(bm_.off, bm_.sb, bm_.sr, bm_.sc, n)
    values = _gemv_values(mr, False, b_vec, a_k=1, b_k=0)
    values.update(KSPLIT=ksplit)
    groups = ceil_div(n, 4 * (256 // ksplit))
    params = {
        "a": _a_params(am, False, True),
        "b": _b_params(bm_, b_vec, False),
        "tiles_m": 1,
        "tiles_n": groups,
    }
    return values, params, groups, f"gemv_axpy r{mr} s{ksplit} b{'4' if b_vec else '1'}"


def _gemv_values(mr: int, a_vec: bool, b_vec: bool, *, a_k: int, b_k: int) -> dict:
    return {
        "A_ELEM": "vec4<T>" if a_vec else "T",
        "B_ELEM": "vec4<T>" if b_vec else "T",
        "O_ELEM": "T",
        "A_K": a_k,
        "A_VEC": int(a_vec),
        "B_K": b_k,
        "B_VEC": int(b_vec),
        "O_VEC": 0,
        "MR": mr,
        "LANES": 1,
        "KSPLIT": 1,
        "K4": 0,
        "RED_LEN": 1,
        # the tiled kernel's values, unused here but named in the template
        "BM": 4,
        "BN": 4,
        "BK": 4,
        "TM4": 1,
        "TN4": 1,
        "WGX": 1,
        "WGY": 1,
        "THREADS": 1,
        "A_LOADS": 1,
        "B_LOADS": 1,
        "AS_LEN": 1,
        "BS_LEN": 1,
    }


__all__ = ["TILES", "Tile", "pick_tile", "plan_matmul"]
