"""The WebGPU matmul planner: picks a kernel of ``kernels/matmul.wgsl`` for a shape and a memory layout.

Variants (``plan.extra["variant"]``):

- ``tiled``: register-blocked tiles (``TILES`` below) through double-buffered workgroup memory,
  vec4 loads along whichever dim of ``a`` and ``b`` is contiguous when offsets and strides allow,
  scalar loads otherwise; edges are bounds-checked, so any M, N, K works. An operand contiguous
  along K (``a`` row-major, a linear layer's ``weight.T``) reaches workgroup memory by one of the
  ``LOADS`` schemes (vec4 loads stored as scalars, or 4x4 blocks transposed in registers), so the
  linear layout runs as fast as a row-major ``b`` and weights stay as the checkpoint stores them.
  *Split-K*: where the tile grid is too small to fill the device (M = 128-512 rows on a big GPU),
  K is cut into ``split`` slices; each writes f32 partial sums to a scratch buffer and a second
  dispatch (``splitk_reduce``) sums them and applies the epilogue. Such a plan carries
  ``extra["splitk"] = (scratch_bytes, reduce_plan)``; the backend allocates the scratch and launches
  both (``launch_matmul``).
  *f16 arithmetic* (float16 operands on an adapter with ``shader-f16``): the products of one K-tile
  are summed in vec4<f16> registers, then added into f32 accumulators (``compute="f16"``; off by
  default, see ``F16_ARITHMETIC``).
  Tile, split and load scheme come from the rules below (``pick_tile``, ``pick_split``) unless the
  backend's autotuner (``autotune.py``) has timed the shape class on this adapter and forces them.
- ``gemv_dot``: few rows (M <= 8, e.g. one decoder token) with ``b`` contiguous along K, which is
  ``linear``'s ``weight.T``: each column is a coalesced dot product along the weight's rows.
- ``gemv_axpy``: few rows with ``b`` contiguous along N (or any strides): coalesced along N.

Every variant fuses the epilogue ``act(a @ b + bias) + residual``. When N <= 8 < M the product is
planned transposed (``out.T = b.T @ a.T``) so that the gemv kernels serve matrix-vector products
too. ``plan.key`` holds only what changes the WGSL source (variant, dtype, layout flags, tile
config, epilogue); shapes, strides and offsets go in Params.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

from ...errors import DTypeError, KernelError, ShapeError
from .wgsl import Caps, KernelPlan, Params, ceil_div, grid_1d, render_cached

ACTIVATIONS = {None: 0, "gelu": 1, "gelu_tanh": 2, "relu": 3, "tanh": 4}
ENTRIES = {"tiled": 0, "gemv_dot": 1, "gemv_axpy": 2, "splitk_reduce": 3}
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

    def storage(self, itemsize: int = 4) -> int:
        """Workgroup memory: two buffers of A (BK x BM) and B (BK x BN) in vec4s, each row padded by one."""
        return 2 * self.bk * (self.bm // 4 + 1 + self.bn // 4 + 1) * 4 * itemsize

    @property
    def storage_bytes(self) -> int:
        return self.storage(4)


# Largest first; the planner takes the first that gives the device enough workgroups (counting
# split-K slices) and fits its limits. Measured on an H100 (benchmarks/RESULTS.md): BK = 16 beats 8
# at every size where a tile size wins, 128x128 from 2048^2 up, 64x64 around 1024^2, 32x32 below.
# (128x96, 96x128 and 64x64-with-8x8 tiles, tried on the H200 for wave quantisation at N = 768 and small M,
# ran 20-35% slower than 128x128 / 128x64 at every model shape: benchmarks/RESULTS.md, runs 7-8.)
TILES = {
    "128x128k16": Tile(128, 128, 16, 8, 8),
    "128x128": Tile(128, 128, 8, 8, 8),  # for devices with under 34 KB of workgroup memory
    "128x64k16": Tile(128, 64, 16, 8, 8),
    "64x128k16": Tile(64, 128, 16, 8, 8),
    "128x128k32": Tile(128, 128, 32, 8, 8),  # f16 arithmetic only (34 KB in f16)
    "64x64k16": Tile(64, 64, 16, 4, 4),
    "64x64": Tile(64, 64, 8, 4, 4),
    "32x64k16": Tile(32, 64, 16, 4, 4),
    "32x32": Tile(32, 32, 8, 4, 4),
}
#: the planner's rule order; the rest are candidates for the autotuner
RULE_TILES = ("128x128k16", "128x128", "64x64k16", "64x64", "32x32")
TARGET_WORKGROUPS = 384  # about three per multiprocessor on a big GPU; software adapters want 4
#: how an operand contiguous along K reaches workgroup memory: "s" one vec4 load, four scalar
#: stores; "b" 4x4 blocks (four vec4 loads) transposed in registers, four vec4 stores; "u" as "b",
#: with one register set shared by the A and B loads where each invocation loads one block; "m"
#: mixed: a as "s", b as "b"
#: Measured on the H200 (benchmarks/RESULTS.md, run 7, interleaved rounds, with the kernel since
#: 2026-12-03's split-K fix): with 128x128 tiles "s" beat "u" by 10-12% at the BERT/ViT batch-32 linear
#: shapes (4096 x 3072 x 768: 541 against 607 us) and at 4096^3 (37.5 against 29.3 TFLOP/s); with
#: 64x64 tiles at 128-197 rows "u" was as fast or up to 5% faster. So the rule picks "u" where a and b
#: both run along K in tiles below 128x128 (falling back to "b" where one register set does not cover
#: both) and "s" otherwise; a linear layer's weight is read as stored either way.
LOADS = ("s", "b", "u", "m")
#: naga's run-time checks (shader_module.py) by load scheme: accelkit's kernels go without them, but on the
#: H200 (benchmarks/RESULTS.md, runs 9 and 11, interleaved rounds) the tiles of 128 rows with "s" loads ran
#: 15-50% slower without them (4096^3: 38.5 against 31.6 TFLOP/s; 4096 x 768 x 3072 with 128x64 tiles: 650
#: against 983 us; fast only with both checks, index clamps and loop counters, on), while every other
#: scheme and tile ran 0-12% faster without ("u" at 4096 x 768 x 3072: 600 against 656 us). The compiler's choice,
#: not the checks' cost, so the autotuner times both where it can.
SCHEME_CHECKS = {("s", 128)}


def scheme_checks(bm: int, loads: str) -> bool:
    """The planner's rule: whether a tiled kernel of ``bm``-row tiles and load scheme ``loads`` keeps naga's checks."""
    return (loads, bm) in SCHEME_CHECKS


MIN_SPLIT_K = 96  # a split-K slice covers at least this much of K
MAX_SPLIT = 16
DEEP_K = 1536  # from here a 128x128 tile with split-K beats a 64x64 one at a few hundred 64x64 tiles
#: float16 operands of the tiled kernel do their arithmetic in f16 (f32 accumulation at K-tile
#: ends) by default when True. Off: on lavapipe it took BERT-tiny's logits from 8.5e-4 to 2.2e-3
#: relative error against float64 (Whisper-tiny's from 1.3e-3 to 1.8e-3), over the 2e-3 bound, for
#: 1.1-1.3x on the H200 (benchmarks/RESULTS.md). ``compute="f16"`` still asks for it per call.
F16_ARITHMETIC = False


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
    residual=None,
    variant: str | None = None,
    tile: str | None = None,
    split: int | None = None,
    compute: str | None = None,
    loads: str | None = None,
    checks: bool | None = None,
) -> KernelPlan:
    """Plan ``out = activation(a @ b + bias) + residual`` for a (batch, M, K), b (batch, K, N), out (batch, M, N).

    ``residual`` has out's shape (any strides). ``variant`` ("tiled", "gemv_dot", "gemv_axpy"),
    ``tile`` (a key of ``TILES``), ``split`` (split-K slices, tiled only), ``compute`` ("f32",
    or "f16" for float16 operands) and ``loads`` (how a K-contiguous operand reaches workgroup
    memory, ``LOADS``) and ``checks`` (naga's run-time checks in the tiled kernel, ``SCHEME_CHECKS``)
    force a choice, for tests, benchmarks and the autotuner; by
    default the planner picks from the shape and layouts. Bind the buffers as ``[a, b, bias,
    residual, out]``. Plans are cached per call signature (shapes, strides, offsets, dtypes), so a
    decoding loop that repeats its shapes plans each matmul once.
    """
    return _plan(
        caps,
        _Sig.of(a),
        _Sig.of(b),
        _Sig.of(out),
        _Sig.of(bias),
        _Sig.of(residual),
        activation,
        variant,
        tile,
        split,
        compute,
        loads,
        checks,
    )


@functools.lru_cache(maxsize=4096)
def _plan(
    caps: Caps,
    a: _Sig,
    b: _Sig,
    out: _Sig,
    bias: _Sig | None,
    residual: _Sig | None,
    activation,
    variant,
    tile,
    split,
    compute,
    loads,
    checks,
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
    if residual is not None and tuple(residual.shape) != (batch, m, n):
        raise ShapeError(f"matmul kernel: residual must have shape {(batch, m, n)}, got {residual.shape}")
    if activation not in ACTIVATIONS:
        raise KernelError(f"matmul kernel: unknown activation {activation!r}")
    dt = a.dtype.wgsl
    if dt not in ("f32", "f16") or b.dtype.wgsl != dt or out.dtype.wgsl != dt:
        raise DTypeError(
            f"matmul kernel: a, b and out must all be float32 or all float16, got "
            f"{a.dtype.name}, {b.dtype.name}, {out.dtype.name}"
        )
    for what, t in (("bias", bias), ("residual", residual)):
        if t is not None and t.dtype.wgsl != dt:
            raise DTypeError(f"matmul kernel: {what} must be {a.dtype.name}, got {t.dtype.name}")
    if dt == "f16" and not caps.f16:
        raise DTypeError("matmul kernel: float16 needs the shader-f16 feature, which this device lacks")
    if compute is None:
        compute = "f16" if dt == "f16" and F16_ARITHMETIC else "f32"
    if compute not in ("f32", "f16") or (compute == "f16" and dt != "f16"):
        raise KernelError(
            f"matmul kernel: compute must be 'f32', or 'f16' for float16 operands; got {compute!r} for {dt}"
        )
    dims = f"{batch}x{m}x{n}x{k}"

    am, bm_, om = _Mat.of(a), _Mat.of(b), _Mat.of(out)
    rm = _Mat.of(residual) if residual is not None else _Mat(0, 0, 0, 0)
    bias_off = int(bias.offset) if bias is not None else 0
    bias_rc = (0, 1)  # bias index = m * bias_rc[0] + n * bias_rc[1]
    swapped = False
    if variant is None:
        variant = "tiled" if min(m, n) > SMALL_ROWS else "gemv"
    if variant.startswith("gemv") and n < m:
        # out.T = b.T @ a.T: the few columns become the few rows
        am, bm_, om, rm = bm_.t(), am.t(), om.t(), rm.t()
        m, n = n, m
        bias_rc = (1, 0)
        swapped = True
    if variant == "gemv":
        variant = "gemv_axpy" if bm_.sc == 1 else "gemv_dot"
    if variant not in ("tiled", "gemv_dot", "gemv_axpy"):
        raise KernelError(
            f"matmul kernel: unknown variant {variant!r}; expected one of ('tiled', 'gemv_dot', 'gemv_axpy')"
        )
    if variant != "tiled" and m > SMALL_ROWS:
        raise KernelError(
            f"matmul kernel: {variant} serves at most {SMALL_ROWS} rows or columns, got {m}x{n}"
        )
    if variant != "tiled":
        compute = "f32"
        if split not in (None, 1):
            raise KernelError(f"matmul kernel: split-K is for the tiled variant, not {variant}")
    if split is not None and not (isinstance(split, int) and 1 <= split <= MAX_SPLIT):
        raise KernelError(f"matmul kernel: split must be an int in 1..{MAX_SPLIT}, got {split!r}")

    flops = 2.0 * batch * m * n * k
    nbytes = a.dtype.itemsize * (
        batch * (m * k + k * n + m * n * (2 if residual is not None else 1)) + (n if bias is not None else 0)
    )
    common = {
        "T": dt,
        "C": compute,
        "BLOCK_ACC": int(compute == "f16"),
        "ACT": ACTIVATIONS[activation],
        "HAS_BIAS": int(bias is not None),
        "HAS_RES": int(residual is not None),
        "ENTRY": ENTRIES[variant],
    }
    if checks not in (None, True, False):
        raise KernelError(f"matmul kernel: checks must be True, False or None, got {checks!r}")
    if variant == "tiled":
        values, params, groups, label = _tiled(caps, batch, m, n, k, am, bm_, om, tile, split, compute, loads)
        if checks is None:
            checks = scheme_checks(values["BM"], params["loads"])
        label += " chk" if checks else ""
    elif variant == "gemv_dot":
        values, params, groups, label = _gemv_dot(caps, batch, m, n, k, am, bm_, om)
    else:
        values, params, groups, label = _gemv_axpy(caps, batch, m, n, k, am, bm_, om)
    checks = bool(checks)
    values.update(common)
    splits = params["splits"]
    if splits > 1:
        values.update(SPLIT=1, HAS_BIAS=0, HAS_RES=0, ACT=0, O_ELEM="vec4<f32>")
    # the logical a and b come from bindings 0 and 1, or 1 and 0 when the problem was transposed
    elem_a, elem_b = values.pop("A_ELEM"), values.pop("B_ELEM")
    values.update(
        ELEM0=elem_b if swapped else elem_a,
        ELEM1=elem_a if swapped else elem_b,
        A_SRC="in1" if swapped else "in0",
        B_SRC="in0" if swapped else "in1",
    )
    key = ("matmul", *sorted(values.items()))
    np4 = ceil_div(n, 4) * 4
    part_ss = batch * m * np4  # elements per split-K slice of the scratch
    p = Params()  # the WGSL struct Params, field by field
    p.u32(m, n, k, batch)
    p.u32(*params["a"])  # offsets and strides: negative ones wrap to their two's complement
    p.u32(*params["b"])
    if splits > 1:
        p.u32(0, m * np4, np4, 1)
    else:
        p.u32(om.off, om.sb, om.sr, om.sc)
    p.u32(bias_off, bias_rc[0], bias_rc[1], params["tiles_n"])
    p.u32(params["tiles_m"], GROUP_M, splits, params["k_chunk"])
    p.u32(rm.off, rm.sb, rm.sr, rm.sc)
    p.u32(part_ss, 0, 0, 0)
    grid_x, grid_y, _ = grid_1d(groups, caps.max_workgroups_per_dim)
    grid_z = min(batch * splits, caps.max_workgroups_per_dim)
    epi = ("+bias" if bias is not None else "") + (f"+{activation}" if activation else "")
    epi += "+res" if residual is not None else ""
    extra = {"variant": variant, "config": label}
    if splits > 1:
        reduce = _splitk_reduce(caps, dt, batch, m, n, om, rm, bias_off, bias, residual, activation, splits)
        extra["splitk"] = (splits * part_ss * 4, reduce)
        extra["splits"] = splits
    return KernelPlan(
        key=key,
        source=_source(key),
        access=("read", "read", "read", "read", "read_write"),
        params=p.to_bytes(),
        workgroups=(grid_x, grid_y, grid_z),
        label=f"matmul[{label}{epi}] {dims} {dt}",
        entry_point=variant,
        flops=flops,
        bytes_moved=float(nbytes),
        extra=extra,
        checks=checks,
    )


def _splitk_reduce(caps, dt, batch, m, n, om: _Mat, rm: _Mat, bias_off, bias, residual, activation, splits):
    """The second dispatch of a split-K matmul: sum the slices' partials, then the epilogue."""
    np4 = ceil_div(n, 4) * 4
    o_vec = om.sc == 1 and _aligned(n, om.off, om.sb, om.sr)
    values = _gemv_values(1, False, False, a_k=1, b_k=1)
    values.update(
        T=dt,
        C="f32",
        BLOCK_ACC=0,
        ACT=ACTIVATIONS[activation],
        HAS_BIAS=int(bias is not None),
        HAS_RES=int(residual is not None),
        ENTRY=ENTRIES["splitk_reduce"],
        O_VEC=int(o_vec),
        O_ELEM="vec4<T>" if o_vec else "T",
        RSPLITS=splits,
        ELEM0="vec4<f32>",
        ELEM1="f32",
        A_SRC="in1",  # the unused load functions read binding 1, whose elements are scalars
        B_SRC="in1",
    )
    values.pop("A_ELEM")
    values.pop("B_ELEM")
    key = ("matmul", *sorted(values.items()))
    p = Params()
    p.u32(m, n, 0, batch)
    p.u32(0, 0, 0, 0)
    p.u32(0, 0, 0, 0)
    p.u32(om.off, om.sb, om.sr, om.sc)
    p.u32(bias_off, 0, 1, np4 // 4)
    p.u32(1, 1, splits, 0)
    p.u32(rm.off, rm.sb, rm.sr, rm.sc)
    p.u32(batch * m * np4 // 4, 0, 0, 0)
    groups = ceil_div(batch * m * np4 // 4, 256)
    epi = ("+bias" if bias is not None else "") + (f"+{activation}" if activation else "")
    epi += "+res" if residual is not None else ""
    return KernelPlan(
        key=key,
        source=_source(key),
        access=("read", "read", "read", "read", "read_write"),
        params=p.to_bytes(),
        workgroups=grid_1d(groups, caps.max_workgroups_per_dim),
        label=f"matmul[splitk_reduce s{splits}{epi}] {batch}x{m}x{n} {dt}",
        entry_point="splitk_reduce",
        flops=float(batch * m * n * splits),
        bytes_moved=float(4 * splits * batch * m * np4 + (2 if dt == "f16" else 4) * batch * m * n),
        extra={"variant": "splitk_reduce", "config": f"s{splits}"},
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


def _fits(caps: Caps, tile: Tile, itemsize: int = 4) -> bool:
    return tile.storage(itemsize) <= caps.max_workgroup_storage and tile.threads <= min(
        caps.max_invocations, caps.max_workgroup_size_x
    )


def pick_split(caps: Caps, tile: Tile, batch: int, m: int, n: int, k: int) -> int:
    """Split-K slices for a grid of too few tiles: about TARGET_WORKGROUPS in all, each slice MIN_SPLIT_K deep or more."""
    if caps.is_software:
        return 1
    tiles = batch * ceil_div(m, tile.bm) * ceil_div(n, tile.bn)
    if tiles >= TARGET_WORKGROUPS:
        return 1
    return max(1, min(ceil_div(TARGET_WORKGROUPS, tiles), k // MIN_SPLIT_K, MAX_SPLIT))


def pick_tile(caps: Caps, batch: int, m: int, n: int, itemsize: int = 4, k: int = 0) -> Tile:
    """The planner's rule: the biggest tile when it fills the device alone, or with split-K over a deep K
    (K >= DEEP_K, 32 tiles or more); else a 64x64 one, split-K making up the grid.

    On an H200 (benchmarks/RESULTS.md, 2026-12-03) 128x128 tiles won from about three waves of
    workgroups up, and with 2-8 slices at K = 1536-3072 (4096 x 768 x 3072: 0.86 ms against 1.09 for
    64x64); below that 64x64x16 with split-K was fastest or within 20% at every BERT/ViT/Whisper
    shape. Software adapters get the largest tile that still makes 4 workgroups.
    """
    fitting = [TILES[t] for t in RULE_TILES if _fits(caps, TILES[t], itemsize)]
    if itemsize == 2 and _fits(caps, TILES["128x128k32"], 2):
        fitting.insert(0, TILES["128x128k32"])
    if not fitting:
        raise KernelError(
            f"matmul kernel: no tile fits this device's workgroup limits "
            f"({caps.max_workgroup_storage} bytes, {caps.max_invocations} invocations)"
        )
    target = 4 if caps.is_software else TARGET_WORKGROUPS
    for t in fitting:
        tiles = batch * ceil_div(m, t.bm) * ceil_div(n, t.bn)
        if tiles >= target:
            return t
        if not caps.is_software and (t.bm * t.bn <= 64 * 64 or (k >= DEEP_K and tiles >= 32)):
            return t
    return fitting[-1]


def _tiled(caps, batch, m, n, k, am: _Mat, bm_: _Mat, om: _Mat, tile_name, split, compute, loads):
    if loads is not None and loads not in LOADS:
        raise KernelError(f"matmul kernel: unknown loads {loads!r}; expected one of {tuple(LOADS)}")
    itemsize = 2 if compute == "f16" else 4
    if tile_name is not None:
        if tile_name not in TILES:
            raise KernelError(f"matmul kernel: unknown tile {tile_name!r}; expected one of {tuple(TILES)}")
        tile = TILES[tile_name]
        if not _fits(caps, tile, itemsize):
            raise KernelError(
                f"matmul kernel: tile {tile_name} needs {tile.storage(itemsize)} bytes of workgroup memory and "
                f"{tile.threads} invocations; this device allows {caps.max_workgroup_storage} and {caps.max_invocations}"
            )
    else:
        tile = pick_tile(caps, batch, m, n, itemsize, k)
    if split is None:
        split = pick_split(caps, tile, batch, m, n, k)
    if batch * split > caps.max_workgroups_per_dim:
        split = 1
    k_chunk = ceil_div(ceil_div(k, split), tile.bk) * tile.bk
    a_k = not (am.sr == 1 and am.sc != 1)  # a read along K unless it is M-contiguous (a transposed view)
    a_vec = _vec(am.off, am.sb, am.sr, am.sc, k) if a_k else _vec(am.off, am.sb, am.sc, am.sr, m)
    b_k = bm_.sr == 1 and bm_.sc != 1  # b read along K only when K-contiguous (a linear layer's weight.T)
    b_vec = _vec(bm_.off, bm_.sb, bm_.sc, bm_.sr, k) if b_k else _vec(bm_.off, bm_.sb, bm_.sr, bm_.sc, n)
    o_vec = om.sc == 1 and _aligned(n, om.off, om.sb, om.sr)
    elem = "vec4<T>"
    threads = tile.threads
    if loads is None:  # the rule: one shared register set of blocks where both operands run along K ...
        loads = "u" if a_k and b_k and tile.bm * tile.bn < 128 * 128 else "s"  # ... in tiles below 128x128
    a_mode = 0 if not a_k else (1 if loads in ("s", "m") else 2)
    b_mode = 0 if not b_k else (1 if loads == "s" else 2)
    a_units = tile.bm * tile.bk // (16 if a_mode == 2 else 4)
    b_units = tile.bn * tile.bk // (16 if b_mode == 2 else 4)
    union = loads == "u" and a_mode == 2 and b_mode == 2 and a_units + b_units <= threads
    # the label names what the kernel does: "s" without blocks, "m" for scalar a + blocks of b
    if union:
        loads = "u"
    elif a_mode != 2 and b_mode != 2:
        loads = "s"
    else:
        loads = "m" if (a_mode, b_mode) == (1, 2) else "b"
    values = {
        "A_ELEM": elem if a_vec else "T",
        "B_ELEM": elem if b_vec else "T",
        "O_ELEM": elem if o_vec else "T",
        "A_K": int(a_k),
        "A_VEC": int(a_vec),
        "B_K": int(b_k),
        "B_VEC": int(b_vec),
        "O_VEC": int(o_vec),
        "SPLIT": 0,
        "A_MODE": a_mode,
        "B_MODE": b_mode,
        "UNION": int(union),
        "BM": tile.bm,
        "BN": tile.bn,
        "BK": tile.bk,
        "TM4": tile.tm // 4,
        "TN4": tile.tn // 4,
        "WGX": tile.bn // tile.tn,
        "WGY": tile.bm // tile.tm,
        "THREADS": threads,
        "A_UNITS": a_units,
        "B_UNITS": b_units,
        "B_SHIFT": a_units % threads if a_units < threads else 0,
        "A_REGS": 4 if a_mode == 2 else 1,
        "B_REGS": 4 if b_mode == 2 else 1,
        "A_LOADS": ceil_div(a_units, threads),
        "B_LOADS": ceil_div(b_units, threads),
        "MR": 1,
        "LANES": 1,
        "KSPLIT": 1,
        "K4": 0,
        "RED_LEN": 1,
        "RSPLITS": 1,
    }
    tiles_m, tiles_n = ceil_div(m, tile.bm), ceil_div(n, tile.bn)
    params = {
        "a": _a_params(am, a_vec, a_k),
        "b": _b_params(bm_, b_vec, b_k),
        "tiles_m": tiles_m,
        "tiles_n": tiles_n,
        "splits": split,
        "k_chunk": k_chunk if split > 1 else max(k, 1),
        "loads": loads,  # the scheme the kernel really uses (for the checks rule)
    }
    layout = f"a{'k' if a_k else 'm'}{'4' if a_vec else '1'}b{'k' if b_k else 'n'}{'4' if b_vec else '1'}"
    name = f"tiled {tile.name}{f' split{split}' if split > 1 else ''}{' f16' if compute == 'f16' else ''} {layout}"
    name += f" ld{loads}" if loads != "s" else ""
    return values, params, tiles_m * tiles_n, name


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
        "splits": 1,
        "k_chunk": k,
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
        "splits": 1,
        "k_chunk": k,
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
        "SPLIT": 0,
        "A_MODE": 0,
        "B_MODE": 0,
        "UNION": 0,
        "MR": mr,
        "LANES": 1,
        "KSPLIT": 1,
        "K4": 0,
        "RED_LEN": 1,
        "RSPLITS": 1,
        # the tiled kernel's values, unused here but named in the template
        "BM": 4,
        "BN": 4,
        "BK": 4,
        "TM4": 1,
        "TN4": 1,
        "WGX": 1,
        "WGY": 1,
        "THREADS": 1,
        "A_UNITS": 1,
        "B_UNITS": 1,
        "B_SHIFT": 0,
        "A_REGS": 1,
        "B_REGS": 1,
        "A_LOADS": 1,
        "B_LOADS": 1,
    }


def launch_matmul(backend, plan: KernelPlan, a, b, bias, residual, out) -> None:
    """Launch a matmul plan on ``backend`` with GPU buffers (None -> dummy); a split-K plan gets its scratch."""
    splitk = plan.extra.get("splitk")
    if splitk is None:
        backend.launch(plan, [a, b, bias, residual, out])
        return
    scratch_bytes, reduce = splitk
    scratch = backend.alloc(scratch_bytes)
    try:
        backend.launch(plan, [a, b, None, None, scratch])
        backend.launch(reduce, [scratch, None, bias, residual, out])
    finally:
        backend.free(scratch)


__all__ = ["TILES", "Tile", "launch_matmul", "pick_split", "pick_tile", "plan_matmul"]
