"""WebGPU planners for every op but matmul and attention: elementwise, fill, softmax, layer norm, reductions, embedding.

Each ``plan_*`` function turns one op call (tensors with shape, strides, offset and dtype) into a
:class:`~accelkit.backends.webgpu.wgsl.KernelPlan`; ``WebGPUBackend`` (``device.py``) binds the tensors
in the order its op methods give and launches it. Plans never touch wgpu.

What is compiled (``plan.key``) depends only on the op, the dtypes, the access mode (dense / vec4 /
strided of some rank) and the workgroup shape; shapes, strides and offsets travel in ``Params``, so
one pipeline serves every shape of its kind.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ...errors import KernelError
from ..base import UNARY_FLOPS
from .wgsl import MAX_RANK, Caps, KernelPlan, Params, ceil_div, grid_1d, render_cached

WG = 256  # invocations per workgroup for every kernel in this file
DENSE_EPT = 4  # scalar elements per invocation on the dense (non-vec4) path

# ----------------------------------------------------------------------------------- shared helpers


def _wgsl(t) -> str:
    return t.dtype.wgsl


def _dims(shape) -> str:
    return "x".join(str(int(n)) for n in shape) if len(shape) else "scalar"


def _grid(caps: Caps, n_workgroups: int) -> tuple[int, int, int]:
    if n_workgroups <= 0:
        return (0, 1, 1)
    return grid_1d(n_workgroups, caps.max_workgroups_per_dim)


def _vec(scalar: str, width: int) -> str:
    return scalar if width == 1 else f"vec{width}<{scalar}>"


def _next_pow2(n: int) -> int:
    return 1 << max(int(n) - 1, 0).bit_length()


PLAN_CACHE_SIZE = 4096


def _signature(t):
    """What a plan depends on in an argument: a tensor's dtype and layout, or the value itself."""
    if hasattr(t, "strides"):
        return (t.dtype.name, tuple(t.shape), tuple(t.strides), t.offset)
    return t


def _memoized(fn):
    """Plan once per (caps, op, layouts, scalars): a model asks for the same plans at every layer and call.

    KernelPlan is immutable, so the cached plan is handed out as it is.
    """
    cache: dict = {}

    @functools.wraps(fn)
    def plan(caps: Caps, *args):
        key = (fn.__name__, caps) + tuple(_signature(a) for a in args)
        found = cache.get(key)
        if found is None:
            if len(cache) >= PLAN_CACHE_SIZE:
                cache.clear()
            found = cache[key] = fn(caps, *args)
        return found

    plan.cache_clear = cache.clear
    return plan


def coalesce(shape, *strides_list) -> tuple[tuple, list[tuple]]:
    """Drop size-1 dims and merge neighbours that are contiguous in every operand (numpy's nditer trick).

    ``coalesce((2, 3, 4), (12, 4, 1), (0, 0, 1))`` -> ``((6, 4), [(4, 1), (0, 1)])``. A tensor of one
    element comes back as shape ``(1,)`` with unit strides, so it counts as dense.
    """
    dims = [(int(n), [int(s[i]) for s in strides_list]) for i, n in enumerate(shape) if n != 1]
    if not dims:
        return (1,), [(1,) for _ in strides_list]
    merged = [dims[0]]
    for n, ss in dims[1:]:
        pn, pss = merged[-1]
        if all(ps == s * n for ps, s in zip(pss, ss)):
            merged[-1] = (pn * n, ss)
        else:
            merged.append((n, ss))
    shape_out = tuple(n for n, _ in merged)
    strides_out = [tuple(ss[k] for _, ss in merged) for k in range(len(strides_list))]
    return shape_out, strides_out


# ----------------------------------------------------------------------------------- elementwise

# The body of ``fn unary_op(x: C) -> C`` per op (x is f32 unless the op keeps int32).
UNARY_OPS = {
    "copy": "return x;",
    "cast": "return x;",
    "neg": "return -x;",
    "exp": "return exp(x);",
    "log": "return log(x);",
    "sqrt": "return sqrt(x);",
    "rsqrt": "return 1.0 / sqrt(x);",
    "abs": "return abs(x);",
    "tanh": "return tanh_safe(x);",
    "relu": "return relu(x);",
    "sigmoid": "return sigmoid(x);",
    "gelu": "return 0.5 * x * (1.0 + erf_approx(x * 0.7071067811865476));",
    "gelu_tanh": "return 0.5 * x * (1.0 + tanh_safe(0.7978845608028654 * (x + 0.044715 * x * x * x)));",
    "erf": "return erf_approx(x);",
    "silu": "return x * sigmoid(x);",
    "sin": "return trig(x, false);",
    "cos": "return trig(x, true);",
    "scale": "return x * p.alpha;",
}
INT_UNARY = ("copy", "cast", "neg", "abs", "relu")  # ops that stay in int32 for int32 input

BINARY_OPS = {
    "add": ("return a + b;", "return a + b;"),  # (f32 body, i32 body)
    "sub": ("return a - b;", "return a - b;"),
    "mul": ("return a * b;", "return a * b;"),
    "div": ("return a / b;", "return a / b;"),
    "pow": ("return pow_f32(a, b);", "return pow_i32(a, b);"),
    "maximum": ("return max_nan(a, b);", "return max(a, b);"),
    "minimum": ("return min_nan(a, b);", "return min(a, b);"),
}

_APPLY1 = {
    1: "return unary_op(v);",
    4: "return VC(unary_op(v.x), unary_op(v.y), unary_op(v.z), unary_op(v.w));",
}
_APPLY2 = {
    1: "return binary_op(u, v);",
    4: "return VC(binary_op(u.x, v.x), binary_op(u.y, v.y), binary_op(u.z, v.z), binary_op(u.w, v.w));",
}

_ELEMENTWISE_DEFAULTS = {
    "C": "f32",
    "VC": "f32",
    "SX": "f32",
    "SA": "f32",
    "SB": "f32",
    "SO": "f32",
    "WG": WG,
    "EPT": 1,
    "MODE": 0,
    "RANK": 1,
    "RL": 32,
    "UNARY_OP": "return x;",
    "APPLY_UNARY": _APPLY1[1],
    "BINARY_OP": "return a + b;",
    "APPLY_BINARY": _APPLY2[1],
}


ROWS_MIN_INNER = 32  # the rows mode pays off once the innermost dim fills a row of 32 lanes


class _Access:
    """How an elementwise kernel walks its operands (out first): dense, strided, or rows; maybe vec4."""

    def __init__(self, shape, operands) -> None:
        self.numel = math.prod(shape)
        cshape, cstrides = coalesce(shape, *(t.strides for t in operands))
        if len(cshape) > MAX_RANK:  # pragma: no cover - tensors never have more than MAX_RANK dims
            raise KernelError(f"elementwise: rank {len(cshape)} exceeds {MAX_RANK}")
        offsets = [int(t.offset) for t in operands]
        inner = cshape[-1]
        if len(cshape) == 1 and all(s == (1,) for s in cstrides):
            self.mode = 0  # dense
            fours = self.numel % 4 == 0 and all(o % 4 == 0 for o in offsets)
        elif len(cshape) >= 2 and inner >= ROWS_MIN_INNER:
            self.mode = 2  # rows
            fours = (
                inner % 4 == 0
                and all(s[-1] == 1 and all(v % 4 == 0 for v in s[:-1]) for s in cstrides)
                and all(o % 4 == 0 for o in offsets)
            )
        else:
            self.mode = 1  # strided
            fours = False
        self.vec = 4 if fours else 1
        v = self.vec
        # in vec4 units from here on: the innermost length and every stride but the (unit) inner ones
        self.shape = cshape[:-1] + (inner // v,)
        self.strides = [tuple(x // v for x in s[:-1]) + (s[-1] if v == 1 else 1,) for s in cstrides]
        self.offsets = [o // v for o in offsets]
        self.inner = self.shape[-1]
        self.rows = math.prod(self.shape[:-1])
        self.row_lanes = min(WG, max(32, _next_pow2(self.inner)))
        self.chunks = ceil_div(self.inner, self.row_lanes)
        self.ept = DENSE_EPT if (self.mode == 0 and v == 1) else 1

    @property
    def name(self) -> str:
        """What the compiled kernel depends on: mode, rank, lanes per row, vec4, elements per invocation."""
        kind = ("dense", f"strided{len(self.shape)}", f"rows{len(self.shape)}/{self.row_lanes}")[self.mode]
        return f"{kind}{'x4' if self.vec == 4 else ''}*{self.ept}"

    @property
    def units(self) -> int:
        return self.numel // self.vec

    def template(self) -> dict:
        rank = 1 if self.mode == 0 else len(self.shape)
        return {"WG": WG, "EPT": self.ept, "MODE": self.mode, "RANK": rank, "RL": self.row_lanes}

    def values(self, c: str, types: dict, **extra) -> dict:
        """elementwise.wgsl's template values: compute type ``c``; per operand (``{"X": "f16", "O": ...}``) its
        element type ``T<name>`` and storage type ``S<name>`` (vec4 where this walk is); then ``extra``."""
        v = self.vec
        values = dict(_ELEMENTWISE_DEFAULTS, C=c, VC=_vec(c, v), **self.template(), **extra)
        for name, t in types.items():
            values["S" + name], values["T" + name] = _vec(t, v), t
        return values

    def params(self, *, alpha: float = 0.0, bits: int = 0) -> bytes:
        """Params with operands ordered (out, a/x, b)."""
        offs = self.offsets + [0, 0]
        p = Params().u32(self.rows if self.mode == 2 else self.units, offs[0], offs[1], offs[2]).f32(alpha)
        p.u32(bits, self.inner, self.chunks)
        p.vec4u(self.shape, MAX_RANK)
        for k in range(3):
            p.vec4u(self.strides[k] if k < len(self.strides) else (), MAX_RANK)
        return p.to_bytes()

    def workgroups(self, caps: Caps) -> tuple[int, int, int]:
        if self.mode == 2:
            return _grid(caps, ceil_div(self.rows, WG // self.row_lanes) * self.chunks)
        return _grid(caps, ceil_div(self.units, WG * self.ept))


@_memoized
def plan_unary(caps: Caps, op: str, x, out, alpha: float = 0.0) -> KernelPlan:
    """out = op(x) elementwise; x and out any strided layouts of one shape (out may be a view written in place).

    ``cast`` converts between f32, f16 and i32 (floats to int truncate toward zero); float ops on an
    int32 x read int32 and compute in f32. ``scale`` is ``alpha * x``.
    """
    if op not in UNARY_OPS:
        raise KernelError(f"unary: unknown op {op!r}; expected one of {sorted(UNARY_OPS)}")
    if tuple(x.shape) != tuple(out.shape):
        raise KernelError(f"unary {op}: shapes differ: x {x.shape}, out {out.shape}")
    tx, to = _wgsl(x), _wgsl(out)
    if tx == to and op in ("copy", "cast"):
        c = tx  # a plain copy moves the values without converting them
    elif tx == "i32" and to == "i32" and op in INT_UNARY:
        c = "i32"
    else:
        c = "f32"
    body = "return max(x, 0);" if (op == "relu" and c == "i32") else UNARY_OPS[op]
    acc = _Access(out.shape, [out, x])
    values = acc.values(c, {"X": tx, "O": to}, UNARY_OP=body, APPLY_UNARY=_APPLY1[acc.vec])
    key = ("unary", op, tx, to, acc.name, WG)
    n = acc.numel
    kind = f"{tx}->{to}" if tx != to else tx
    return KernelPlan(
        key=key,
        source=render_cached("elementwise", "unary", tuple(sorted(values.items()))),
        access=("read", "read_write"),
        params=acc.params(alpha=alpha),
        workgroups=acc.workgroups(caps),
        label=f"{op}[{_dims(out.shape)}] {kind}",
        flops=float(n * UNARY_FLOPS.get(op, 1)),
        bytes_moved=float(n * (x.dtype.itemsize + out.dtype.itemsize)),
    )


@_memoized
def plan_binary(caps: Caps, op: str, a, b, out) -> KernelPlan:
    """out = a (op) b; a and b already broadcast to out.shape (stride-0 dims), out contiguous.

    Operands share one dtype, except div of int32 by int32, which writes f32.
    """
    if op not in BINARY_OPS:
        raise KernelError(f"binary: unknown op {op!r}; expected one of {sorted(BINARY_OPS)}")
    if tuple(a.shape) != tuple(out.shape) or tuple(b.shape) != tuple(out.shape):
        raise KernelError(f"binary {op}: shapes differ: a {a.shape}, b {b.shape}, out {out.shape}")
    ta, tb, to = _wgsl(a), _wgsl(b), _wgsl(out)
    c = "i32" if to == "i32" else "f32"
    acc = _Access(out.shape, [out, a, b])
    body = BINARY_OPS[op][1 if c == "i32" else 0]
    values = acc.values(c, {"A": ta, "B": tb, "O": to}, BINARY_OP=body, APPLY_BINARY=_APPLY2[acc.vec])
    key = ("binary", op, ta, tb, to, acc.name, WG)
    n = acc.numel
    kind = to if ta == to else f"{ta}->{to}"
    return KernelPlan(
        key=key,
        source=render_cached("elementwise", "binary", tuple(sorted(values.items()))),
        access=("read", "read", "read_write"),
        params=acc.params(),
        workgroups=acc.workgroups(caps),
        label=f"{op}[{_dims(out.shape)}] {kind}",
        flops=float(n * (8 if op == "pow" else 1)),
        bytes_moved=float(n * (a.dtype.itemsize + b.dtype.itemsize + out.dtype.itemsize)),
    )


def _fill_bits(dtype_wgsl: str, value: float) -> int:
    """The u32 the fill kernel bitcasts: an i32 (truncated like numpy), or an f32 (f16 rounded first)."""
    with np.errstate(all="ignore"):
        if dtype_wgsl == "i32":
            return int(np.asarray(value, dtype=np.float64).astype(np.int32).view(np.uint32))
        v = np.float32(np.float16(value)) if dtype_wgsl == "f16" else np.float32(value)
    return int(np.asarray(v).view(np.uint32))


@_memoized
def plan_fill(caps: Caps, out, value: float) -> KernelPlan:
    """Every element of the contiguous ``out`` set to ``value`` (converted to out's dtype)."""
    to = _wgsl(out)
    c = "i32" if to == "i32" else "f32"
    acc = _Access(out.shape, [out])
    values = acc.values(c, {"O": to})
    if acc.mode != 0:
        raise KernelError(f"fill: out must be contiguous, got shape {out.shape} strides {out.strides}")
    return KernelPlan(
        key=("fill", to, acc.name, WG),
        source=render_cached("elementwise", "fill", tuple(sorted(values.items()))),
        access=("read_write",),
        params=acc.params(bits=_fill_bits(to, value)),
        workgroups=acc.workgroups(caps),
        label=f"fill[{_dims(out.shape)}] {to}",
        flops=0.0,
        bytes_moved=float(acc.numel * out.dtype.itemsize),
    )


# ----------------------------------------------------------------------------------- row kernels

ROW_CACHE = {4: 4, 1: 8}  # units per lane the row kernels keep in registers (vec4s, scalars): more spill
_VEC4_HELPERS = {
    "HMAX": "return max(max(v.x, v.y), max(v.z, v.w));",
    "HSUM": "return (v.x + v.y) + (v.z + v.w);",
    "FIRST": "return v.x;",
}
_SCALAR_HELPERS = {"HMAX": "return v;", "HSUM": "return v;", "FIRST": "return v;"}


class _RowLayout:
    """How a row kernel (softmax, layer norm) covers rows of ``n`` elements (tuned on an H100).

    Rows are read in vec4 units when every tensor allows it. A row gets the fewest lanes (32 up to
    1024) that keep it in registers at ROW_CACHE units per lane, so short rows share a workgroup;
    longer rows stream through global memory, with bigger workgroups when there are few rows to
    spread over the device. Reductions use subgroup shuffles where the device has them.
    """

    def __init__(self, caps: Caps, n: int, rows: int, tensors, cache: int | None = None) -> None:
        self.vec = 4 if n % 4 == 0 and all(t.offset % 4 == 0 for t in tensors if t is not None) else 1
        self.units = n // self.vec
        self.subgroups = bool(caps.subgroups)
        cache = cache or ROW_CACHE[self.vec]
        big = min(caps.max_invocations, caps.max_workgroup_size_x, 1024)
        self.tpr = 32
        while self.tpr < max(big, WG) and self.units > self.tpr * cache:
            self.tpr *= 2
        self.wg = max(WG, self.tpr)
        self.cached = self.units <= self.tpr * cache
        self.k = _next_pow2(ceil_div(self.units, self.tpr)) if self.cached else 1
        if not self.cached and big >= 512:
            self.wg = self.tpr = 1024 if rows < 256 and big >= 1024 else (512 if rows < 2048 else WG)

    def template(self, t: str) -> dict:
        sg = self.subgroups
        return dict(
            _VEC4_HELPERS if self.vec == 4 else _SCALAR_HELPERS,
            T=t,
            S=_vec(t, self.vec),
            V=_vec("f32", self.vec),
            WG=self.wg,
            TPR=self.tpr,
            K=self.k,
            CACHED=_b(self.cached),
            SUBGROUPS=_b(sg),
            SG_ARG=", @builtin(subgroup_size) sg_size: u32" if sg else "",
            SG_SIZE="sg_size" if sg else "1u",
        )

    @property
    def key(self) -> tuple:
        return (self.vec, self.wg, self.tpr, self.k, self.cached, self.subgroups)

    def workgroups(self, caps: Caps, rows: int) -> tuple[int, int, int]:
        return _grid(caps, ceil_div(rows, self.wg // self.tpr) if self.units else 0)

    def offset(self, t) -> int:
        return 0 if t is None else t.offset // self.vec


def _b(flag: bool) -> str:
    return "true" if flag else "false"


def _rows_and_n(x) -> tuple[int, int]:
    n = int(x.shape[-1]) if len(x.shape) else 1
    return (math.prod(x.shape[:-1]) if len(x.shape) else 1), n


@_memoized
def plan_softmax(caps: Caps, x, out) -> KernelPlan:
    """Softmax over the last dim of a contiguous x into a contiguous out (all -inf rows give zeros)."""
    rows, n = _rows_and_n(x)
    lay = _RowLayout(caps, n, rows, (x, out))
    t = _wgsl(x)
    params = Params().u32(rows, lay.units, lay.offset(x), lay.offset(out)).to_bytes()
    return KernelPlan(
        key=("softmax", t) + lay.key,
        source=render_cached("softmax", None, tuple(sorted(lay.template(t).items()))),
        access=("read", "read_write"),
        params=params,
        workgroups=lay.workgroups(caps, rows),
        label=f"softmax[{rows}x{n}] {t}",
        flops=float(rows * n * 6),
        bytes_moved=float(rows * n * x.dtype.itemsize * (2 if lay.cached else 3)),
    )


@_memoized
def plan_layer_norm(
    caps: Caps, x, weight, bias, out, eps: float, residual, parts: int = 0, lbias=None
) -> KernelPlan:
    """Layer norm over the last dim of (x + residual), with optional weight and bias (all contiguous).

    Bound as [x, residual | dummy, weight | dummy, bias | dummy, out]; Params flags say which are there.
    ``parts`` > 0: x (None here) is a split-K matmul's scratch, ``parts`` slices of f32 partial sums
    [slice][row][n] from offset 0, and ``lbias`` the matmul's bias, bound sixth: the layer norm of
    (sum of the slices + lbias + residual), the matmul's reduction pass folded in (n % 4 == 0 only).
    """
    if parts:
        rows, n = _rows_and_n(out)
        if n % 4:
            raise KernelError(
                f"layer_norm: split-K partial sums need rows of a multiple of 4 elements, got {n}"
            )
    else:
        rows, n = _rows_and_n(x)
    # summing split-K slices, a lane keeps one unit: as many lanes per row as it has units (BERT-base at
    # batch 1: 128 workgroups of one row, not 32 of four, each lane loading its slices at once)
    lay = _RowLayout(caps, n, rows, (x, residual, weight, bias, out, lbias), 1 if parts else None)
    t = _wgsl(out)
    offs = [lay.offset(a) for a in (x, residual, weight, bias, out)]
    params = (
        Params()
        .u32(rows, lay.units, n)
        .f32(eps)
        .u32(residual is not None, weight is not None, bias is not None)
        .u32(*offs)
        .u32(rows * lay.units if parts else 0, lay.offset(lbias), lbias is not None, 0)
        .to_bytes()
    )
    values = dict(lay.template(t), PARTS=int(parts), XS=_vec("f32", lay.vec) if parts else _vec(t, lay.vec))
    itemsize = out.dtype.itemsize
    passes = 1 if lay.cached else 3  # reads of x (or of the slices) and the residual per element
    read = (4 * parts if parts else itemsize) + (itemsize if residual is not None else 0)
    moved = rows * n * (read * passes + itemsize)
    what = (f"+splitk_sum s{parts}" if parts else "") + ("+residual" if residual is not None else "")
    return KernelPlan(
        key=("layer_norm", t, int(parts)) + lay.key,
        source=render_cached("layer_norm", None, tuple(sorted(values.items()))),
        access=("read", "read", "read", "read", "read_write") + (("read",) if parts else ()),
        params=params,
        workgroups=lay.workgroups(caps, rows),
        label=f"layer_norm{what}[{rows}x{n}] {t}",
        flops=float(rows * n * (8 + (residual is not None) + parts)),
        bytes_moved=float(moved),
    )


# ----------------------------------------------------------------------------------- reductions

REDUCE_MIN_WORKGROUPS = 512  # column reductions narrow their column groups until they have this many
REDUCE_OPS = {"sum": 0, "mean": 1, "max": 2, "min": 3, "argmax": 4}
_F32_NAN = "return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;"


@_memoized
def plan_reduce(caps: Caps, op: str, x, out) -> KernelPlan:
    """Reduce the middle axis of a contiguous (outer, n, inner) x into a contiguous (outer, inner) out.

    ``argmax`` writes int32 (the first index of the maximum); ``mean`` of int32 writes f32.
    """
    if op not in REDUCE_OPS:
        raise KernelError(f"reduce: unknown op {op!r}; expected one of {sorted(REDUCE_OPS)}")
    if len(x.shape) != 3:
        raise KernelError(f"reduce {op}: x must be viewed as (outer, n, inner), got shape {x.shape}")
    outer, n, inner = (int(d) for d in x.shape)
    tx, to = _wgsl(x), _wgsl(out)
    a = "i32" if tx == "i32" and op != "mean" else "f32"
    outputs = outer * inner
    wg = WG
    big = min(caps.max_invocations, caps.max_workgroup_size_x)
    if inner == 1:  # rows: the lanes of an output are neighbours
        cols, step = False, 1
        lanes = 32 if n <= 512 else WG
        if outputs < 128 and n >= 16384 and big >= 1024:
            wg = lanes = 1024  # few long rows: as many lanes on each as one workgroup has
    else:  # columns: neighbouring lanes take neighbouring outputs; enough workgroups to fill the device
        cols, step = True, min(64, _next_pow2(inner))
        while step > 8 and ceil_div(outputs, step) < REDUCE_MIN_WORKGROUPS:
            step //= 2
        lanes = WG // step
    if a == "f32":
        nan, low, high = _F32_NAN, "return bitcast<f32>(0xff800000u);", "return bitcast<f32>(0x7f800000u);"
    else:
        nan, low, high = "return false;", "return i32(-2147483647 - 1);", "return 2147483647;"
    values = {
        "TX": tx,
        "TO": to,
        "A": a,
        "OP": REDUCE_OPS[op],
        "COLS": "true" if cols else "false",
        "L": lanes,
        "STEP": step,
        "WG": wg,
        "IS_NAN": nan,
        "LOWEST": low,
        "HIGHEST": high,
    }
    params = Params().u32(outputs, n, inner, x.offset, out.offset).to_bytes()
    return KernelPlan(
        key=("reduce", op, tx, to, cols, lanes, step, wg),
        source=render_cached("reduce", None, tuple(sorted(values.items()))),
        access=("read", "read_write"),
        params=params,
        workgroups=_grid(caps, ceil_div(outputs, wg // lanes) if n else 0),
        label=f"{op}[{outer}x{n}x{inner}] {tx}",
        flops=float(outer * n * inner * (4 if op in ("sum", "mean") else 1)),
        bytes_moved=float(outer * n * inner * x.dtype.itemsize + outputs * out.dtype.itemsize),
    )


# ----------------------------------------------------------------------------------- embedding


@_memoized
def plan_embedding(caps: Caps, ids, table, out) -> KernelPlan:
    """out[i] = table[clamp(ids[i], 0, V - 1)] for contiguous i32 ids (n,), table (V, D) and out (n, D)."""
    n = int(ids.shape[0]) if len(ids.shape) else 1
    vocab, d = (int(s) for s in table.shape)
    t = _wgsl(table)
    vec = 4 if d % 4 == 0 and table.offset % 4 == 0 and out.offset % 4 == 0 else 1
    values = {"S": _vec(t, vec), "T": t}
    total = n * d // vec
    params = Params().u32(total, d // vec, vocab, ids.offset, table.offset // vec, out.offset // vec)
    return KernelPlan(
        key=("embedding", t, vec),
        source=render_cached("embedding", None, tuple(sorted(values.items()))),
        access=("read", "read", "read_write"),
        params=params.to_bytes(),
        workgroups=_grid(caps, ceil_div(total, WG) if vocab else 0),
        label=f"embedding[{n}x{d} of {vocab}] {t}",
        flops=0.0,
        bytes_moved=float(n * 4 + 2 * n * d * table.dtype.itemsize),
    )
