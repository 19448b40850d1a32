"""WebGPU planners for every op but matmul and attention: elementwise, fill, softmax, layer norm, reductions, embedding.

Each ``plan_*`` function turns one op call (tensors with shape, strides, offset and dtype) into a
:class:`~accelkit.backends.wgsl.KernelPlan`; ``WebGPUBackend`` binds the tensors in the order the op
methods at the bottom of ``webgpu.py`` give and launches it. Plans never touch wgpu.

What is compiled (``plan.key``) depends only on the op, the dtypes, the access mode (dense / vec4 /
strided of some rank) and the workgroup shape; shapes, strides and offsets travel in ``Params``, so
one pipeline serves every shape of its kind.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..errors import KernelError
from .wgsl import MAX_RANK, Caps, KernelPlan, Params, ceil_div, grid_1d, render

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


def _section(source: str, kernel: str) -> str:
    """The shared part of a multi-kernel WGSL file plus its ``//! kernel <name>`` section."""
    parts = source.split("\n//! kernel ")
    for part in parts[1:]:
        name, _, body = part.partition("\n")
        if name.strip() == kernel:
            return parts[0] + body
    raise KernelError(f"no '//! kernel {kernel}' section in the WGSL source")


@functools.lru_cache(maxsize=512)
def _elementwise_source(kernel: str, values: tuple) -> str:
    return _section(render("elementwise", **dict(values)), kernel)


@functools.lru_cache(maxsize=256)
def _source(name: str, values: tuple) -> str:
    return render(name, **dict(values))


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
    "relu": "return max(x, C(0));",
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

# rough flops per element, for the profiler
UNARY_FLOPS = {
    "copy": 0,
    "cast": 0,
    "neg": 1,
    "abs": 1,
    "relu": 1,
    "scale": 1,
    "exp": 4,
    "log": 4,
    "sqrt": 4,
    "rsqrt": 5,
    "tanh": 8,
    "sigmoid": 6,
    "silu": 7,
    "erf": 20,
    "gelu": 24,
    "gelu_tanh": 14,
    "sin": 18,
    "cos": 18,
}

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
    "STRIDED": "false",
    "RANK": 1,
    "UNARY_OP": "return x;",
    "APPLY_UNARY": _APPLY1[1],
    "BINARY_OP": "return a + b;",
    "APPLY_BINARY": _APPLY2[1],
}


class _Access:
    """How an elementwise kernel walks its operands: dense (maybe vec4) or strided of some rank."""

    def __init__(self, shape, operands) -> None:
        self.numel = math.prod(shape)
        cshape, cstrides = coalesce(shape, *(t.strides for t in operands))
        self.shape, self.strides = cshape, cstrides
        self.offsets = [int(t.offset) for t in operands]
        self.dense = len(cshape) == 1 and all(s == (1,) for s in cstrides)
        if len(cshape) > MAX_RANK:  # pragma: no cover - tensors never have more than MAX_RANK dims
            raise KernelError(f"elementwise: rank {len(cshape)} exceeds {MAX_RANK}")
        aligned = self.numel % 4 == 0 and all(o % 4 == 0 for o in self.offsets)
        self.vec = 4 if self.dense and aligned else 1
        self.mode = "vec4" if self.vec == 4 else ("dense" if self.dense else f"rank{len(cshape)}")

    @property
    def ept(self) -> int:
        return 1 if (self.vec == 4 or not self.dense) else DENSE_EPT

    @property
    def units(self) -> int:
        return self.numel // self.vec

    def template(self) -> dict:
        return {
            "WG": WG,
            "EPT": self.ept,
            "STRIDED": "false" if self.dense else "true",
            "RANK": 1 if self.dense else len(self.shape),
        }

    def params(self, *, alpha: float = 0.0, bits: int = 0) -> bytes:
        """Params with operands ordered (out, a/x, b)."""
        offs = [o // self.vec for o in self.offsets] + [0, 0]
        p = Params().u32(self.units, offs[0], offs[1], offs[2]).f32(alpha).u32(bits, len(self.shape), 0)
        p.vec4u(self.shape, MAX_RANK)
        for k in range(3):
            p.vec4u(self.strides[k] if k < len(self.strides) else (), MAX_RANK)
        return p.to_bytes()

    def workgroups(self, caps: Caps) -> tuple[int, int, int]:
        return _grid(caps, ceil_div(self.units, WG * self.ept))


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
    acc = _Access(out.shape, [out, x])
    v = acc.vec
    values = dict(
        _ELEMENTWISE_DEFAULTS,
        C=c,
        VC=_vec(c, v),
        SX=_vec(tx, v),
        SO=_vec(to, v),
        UNARY_OP=UNARY_OPS[op],
        APPLY_UNARY=_APPLY1[v],
        TX=tx,
        TO=to,
    )
    values.update(acc.template())
    key = ("unary", op, tx, to, acc.mode, WG)
    n = acc.numel
    kind = f"{tx}->{to}" if tx != to else tx
    return KernelPlan(
        key=key,
        source=_elementwise_source("unary", tuple(sorted(values.items()))),
        access=("read", "read_write"),
        params=acc.params(alpha=alpha),
        workgroups=acc.workgroups(caps),
        label=f"{op}[{_dims(out.shape)}] {kind}",
        flops=float(n * UNARY_FLOPS.get(op, 1)),
        bytes_moved=float(n * (x.dtype.itemsize + out.dtype.itemsize)),
    )


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
    v = acc.vec
    body = BINARY_OPS[op][1 if c == "i32" else 0]
    values = dict(
        _ELEMENTWISE_DEFAULTS,
        C=c,
        VC=_vec(c, v),
        SA=_vec(ta, v),
        SB=_vec(tb, v),
        SO=_vec(to, v),
        BINARY_OP=body,
        APPLY_BINARY=_APPLY2[v],
        TA=ta,
        TB=tb,
        TO=to,
    )
    values.update(acc.template())
    key = ("binary", op, ta, tb, to, acc.mode, WG)
    n = acc.numel
    kind = to if ta == to else f"{ta}->{to}"
    return KernelPlan(
        key=key,
        source=_elementwise_source("binary", tuple(sorted(values.items()))),
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


def plan_fill(caps: Caps, out, value: float) -> KernelPlan:
    """Every element of the contiguous ``out`` set to ``value`` (converted to out's dtype)."""
    to = _wgsl(out)
    c = "i32" if to == "i32" else "f32"
    acc = _Access(out.shape, [out])
    v = acc.vec
    values = dict(_ELEMENTWISE_DEFAULTS, C=c, VC=_vec(c, v), SO=_vec(to, v), TO=to)
    values.update(acc.template())
    if not acc.dense:
        raise KernelError(f"fill: out must be contiguous, got shape {out.shape} strides {out.strides}")
    return KernelPlan(
        key=("fill", to, acc.mode, WG),
        source=_elementwise_source("fill", tuple(sorted(values.items()))),
        access=("read_write",),
        params=acc.params(bits=_fill_bits(to, value)),
        workgroups=acc.workgroups(caps),
        label=f"fill[{_dims(out.shape)}] {to}",
        flops=0.0,
        bytes_moved=float(acc.numel * out.dtype.itemsize),
    )


# ----------------------------------------------------------------------------------- row kernels

ROW_CACHE = 8  # values per lane kept in registers by the row kernels (softmax, layer norm)


def _next_pow2(n: int) -> int:
    return 1 << max(int(n) - 1, 0).bit_length()


def _row_layout(n: int) -> tuple[int, int, bool]:
    """(lanes per row, values cached per lane, cached?) for a row kernel over rows of length ``n``.

    Short rows share a workgroup (32 lanes each); rows up to 256 * ROW_CACHE stay in registers;
    longer rows stream through global memory.
    """
    tpr = 32 if n <= 32 * ROW_CACHE else WG
    if n > tpr * ROW_CACHE:
        return tpr, 1, False
    return tpr, _next_pow2(ceil_div(n, tpr)), True


def _rows_and_n(x) -> tuple[int, int]:
    n = int(x.shape[-1]) if len(x.shape) else 1
    return (math.prod(x.shape[:-1]) if len(x.shape) else 1), n


def plan_softmax(caps: Caps, x, out) -> KernelPlan:
    """Softmax over the last dim of a contiguous x into a contiguous out (all -inf rows give zeros)."""
    rows, n = _rows_and_n(x)
    tpr, k, cached = _row_layout(n)
    t = _wgsl(x)
    values = {"T": t, "TPR": tpr, "K": k, "CACHED": "true" if cached else "false"}
    params = Params().u32(rows, n, x.offset, out.offset).to_bytes()
    return KernelPlan(
        key=("softmax", t, tpr, k, cached),
        source=_source("softmax", tuple(sorted(values.items()))),
        access=("read", "read_write"),
        params=params,
        workgroups=_grid(caps, ceil_div(rows, WG // tpr) if n else 0),
        label=f"softmax[{rows}x{n}] {t}",
        flops=float(rows * n * 6),
        bytes_moved=float(rows * n * x.dtype.itemsize * (2 if cached else 3)),
    )


def plan_layer_norm(caps: Caps, x, weight, bias, out, eps: float, residual) -> KernelPlan:
    """Layer norm over the last dim of (x + residual), with optional weight and bias (all contiguous).

    Bound as [x, residual | dummy, weight | dummy, bias | dummy, out]; Params flags say which are there.
    """
    rows, n = _rows_and_n(x)
    tpr, k, cached = _row_layout(n)
    t = _wgsl(x)
    values = {"T": t, "TPR": tpr, "K": k, "CACHED": "true" if cached else "false"}
    offs = [0 if a is None else a.offset for a in (x, residual, weight, bias, out)]
    params = (
        Params()
        .u32(rows, n)
        .f32(eps)
        .u32(residual is not None, weight is not None, bias is not None)
        .u32(*offs)
        .to_bytes()
    )
    extras = "".join(f"+{name}" for name, a in (("residual", residual),) if a is not None)
    reads = 2 if residual is not None else 1
    return KernelPlan(
        key=("layer_norm", t, tpr, k, cached),
        source=_source("layer_norm", tuple(sorted(values.items()))),
        access=("read", "read", "read", "read", "read_write"),
        params=params,
        workgroups=_grid(caps, ceil_div(rows, WG // tpr) if n else 0),
        label=f"layer_norm{extras}[{rows}x{n}] {t}",
        flops=float(rows * n * (8 + (residual is not None))),
        bytes_moved=float(rows * n * x.dtype.itemsize * (reads * (1 if cached else 3) + 1)),
    )


# ----------------------------------------------------------------------------------- reductions

REDUCE_OPS = {"sum": 0, "mean": 1, "max": 2, "min": 3, "argmax": 4}
_F32_NAN = "return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;"


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
    if inner == 1:
        cols, lanes, step = False, (32 if n <= 512 else WG), 1
    else:
        step = min(64, _next_pow2(inner))
        cols, lanes = True, WG // step
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
        "IS_NAN": nan,
        "LOWEST": low,
        "HIGHEST": high,
    }
    outputs = outer * inner
    params = Params().u32(outputs, n, inner, x.offset, out.offset).to_bytes()
    return KernelPlan(
        key=("reduce", op, tx, to, cols, lanes, step),
        source=_source("reduce", tuple(sorted(values.items()))),
        access=("read", "read_write"),
        params=params,
        workgroups=_grid(caps, ceil_div(outputs, WG // lanes) if n else 0),
        label=f"{op}[{outer}x{n}x{inner}] {tx}",
        flops=float(outer * n * inner * (4 if op in ("sum", "mean") else 1)),
        bytes_moved=float(outer * n * inner * x.dtype.itemsize + outputs * out.dtype.itemsize),
    )


# ----------------------------------------------------------------------------------- embedding


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
        source=_source("embedding", tuple(sorted(values.items()))),
        access=("read", "read", "read_write"),
        params=params.to_bytes(),
        workgroups=_grid(caps, ceil_div(total, WG) if vocab else 0),
        label=f"embedding[{n}x{d} of {vocab}] {t}",
        flops=0.0,
        bytes_moved=float(n * 4 + 2 * n * d * table.dtype.itemsize),
    )
