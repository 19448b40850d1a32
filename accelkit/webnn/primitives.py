"""The few device primitives the WebNN op families are written with, on the CPU (numpy) and WebGPU.

Where ``accelkit.ops`` has an op (matmul, softmax, layer_norm, copy, cast ...) the op families call
it; what it lacks is one of these five primitives, each implemented with numpy on the CPU backend
and with a WGSL kernel (``kernels/webnn_<name>.wgsl``) on WebGPU:

- :func:`elementwise`: ``out = f(a, b, c)`` over broadcast operands (a numpy function and a WGSL
  expression per op, written side by side in the op's family file);
- :func:`gather_flat`: ``out[i] = x.flat[index[i]]`` (fill where index < 0): every static
  data-movement op is one of these over an index map built at build time;
- :func:`reduce_middle`: sum / prod / max / min / argmax / argmin over the middle axis of
  ``(outer, n, inner)``;
- :func:`cumsum_middle`: cumulative sum along that axis;
- :func:`scatter_flat`: ``out = copy(x); out.flat[index[i]] = updates[i]``.
"""

from __future__ import annotations

import math

import numpy as np

from ..backends.webgpu import WebGPUBackend, wgsl
from ..tensor.dtype import DType, int32
from ..tensor.tensor import Tensor

WG = 64


def is_cpu(t: Tensor) -> bool:
    """True where ``t`` lives on a backend that does not run WGSL kernel plans (the numpy one)."""
    return not isinstance(t.storage.backend, WebGPUBackend)


def host(t: Tensor) -> np.ndarray:
    """A CPU tensor's values in compute precision (float16 -> float32): a view of its buffer, no copy."""
    a = t.storage.backend.view(t)
    return a.astype(np.float32) if a.dtype == np.float16 else a


def storage_values(values, dtype: DType) -> np.ndarray:
    """``values`` as a contiguous numpy array of storage ``dtype`` (float -> int truncates, saturating)."""
    values = np.asarray(values)
    if not dtype.is_float and values.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            values = np.nan_to_num(np.trunc(values), nan=0.0)
            values = np.clip(values, -(2.0**31), 2.0**31 - 128)
    with np.errstate(all="ignore"):
        return np.ascontiguousarray(values, dtype=dtype.np).reshape(values.shape)  # 0-d stays 0-d


def upload(values: np.ndarray, dtype: DType, device) -> Tensor:
    """A numpy array as a new tensor of storage ``dtype`` (float -> int conversions truncate, saturating)."""
    data = storage_values(values, dtype)
    out = Tensor.empty(data.shape, dtype, device)
    if out.size:
        out.storage.backend.write(out.storage.handle, 0, data)
    return out


def _storage(dtype: DType) -> str:
    return dtype.wgsl


def _compute(dtype: DType) -> str:
    return "f32" if dtype.is_float else "i32"


def _source(name: str, kernel: str | None, items: tuple) -> str:
    enable = "enable f16;" if "f16" in dict(items).values() else ""
    return wgsl.render_cached(name, kernel, items + (("ENABLE", enable),))


def _run(t: Tensor, name: str, template: dict, access: tuple, params: bytes, threads: int, buffers, label):
    """Launch ``kernels/<name>.wgsl`` (``name`` = "file" or "file:section") rendered with ``template``
    on the backend ``t`` lives on."""
    name, _, kernel = name.partition(":")
    backend = t.storage.backend
    items = tuple(sorted(template.items()))
    plan = wgsl.KernelPlan(
        key=(name, kernel, items),
        source=_source(name, kernel or None, items),
        access=access,
        params=params,
        workgroups=wgsl.grid_1d(math.ceil(max(threads, 1) / WG), backend.caps.max_workgroups_per_dim),
        label=label,
    )
    backend.launch(plan, buffers)


def _dense(t: Tensor) -> Tensor:
    return t if t.is_contiguous else t.contiguous()


# ----------------------------------------------------------------------------------- elementwise

WRAPS = {None: "v", "int8": "((v + 128) & 255) - 128", "uint8": "v & 255"}


def elementwise(
    inputs: list[Tensor],
    shape: tuple,
    out_dtype: DType,
    numpy_fn,
    wgsl_expr: str,
    *,
    alpha: float = 0.0,
    beta: float = 0.0,
    ialpha: int = 0,
    ibeta: int = 0,
    wrap: str | None = None,
    unsigned: bool = False,
    unsigned_out: bool | None = None,
    label: str = "elementwise",
) -> Tensor:
    """``out = numpy_fn(*values)`` on the CPU, ``expr(a, b, c)`` on WebGPU, over inputs broadcast to ``shape``.

    In WGSL the operands are ``a``, ``b``, ``c`` (f32 for float storage, i32 for int32, u32 with
    ``unsigned``: uint32 data held in int32), the options ``p.alpha``/``p.beta`` (f32) and
    ``p.ialpha``/``p.ibeta`` (integer bits, u32); the expression gives f32 for a float output, i32
    (u32 with ``unsigned``, unless ``unsigned_out`` is False) otherwise. ``wrap`` ("int8"/"uint8") wraps an integer result into range.
    """
    first = inputs[0]
    device = first.device
    if is_cpu(first):
        values = [host(t) for t in inputs]
        if unsigned:
            values = [v.view(np.uint32) if v.dtype == np.int32 else v for v in values]
        with np.errstate(all="ignore"):
            res = np.asarray(numpy_fn(*values))
            res = np.broadcast_to(res, shape)
            if wrap == "int8":
                res = ((res.astype(np.int64) + 128) & 255) - 128
            elif wrap == "uint8":
                res = res.astype(np.int64) & 255
        return upload(res, out_dtype, device)
    out = Tensor.empty(shape, out_dtype, device)
    n = out.size
    if not n:
        return out
    rank = len(shape)
    views = [t.expand(shape) if t.ndim else t.reshape((1,) * rank).expand(shape) for t in inputs]
    while len(views) < 3:
        views.append(None)
    p = wgsl.Params().u32(n, max(rank, 1))
    p.u32(*[(v.offset if v is not None else 0) for v in views])
    p.f32(alpha, beta).u32(ialpha, ibeta)
    p.vec4u(list(shape) or [1], 8)
    for v in views:
        p.vec4u(list(v.strides) if v is not None and rank else [0], 8)

    def compute(dtype: DType, flag: bool = unsigned) -> str:
        c = _compute(dtype)
        return "u32" if flag and c == "i32" else c

    if unsigned:
        wgsl_expr = wgsl_expr.replace("i32(", "u32(")
    template = {
        "TO": _storage(out_dtype),
        "CO": compute(out_dtype, unsigned if unsigned_out is None else unsigned_out),
        "EXPR": wgsl_expr,
        "WRAP": WRAPS[wrap],
    }
    for key, v in zip("ABC", views):
        template["T" + key] = _storage(v.dtype) if v is not None else "f32"
        template["C" + key] = compute(v.dtype) if v is not None else "f32"
    buffers = [v.storage.handle if v is not None else None for v in views] + [out.storage.handle]
    access = ("read", "read", "read", "read_write")
    _run(
        first, "webnn_elementwise", template, access, p.to_bytes(), n, buffers, f"webnn.{label}{list(shape)}"
    )
    return out


# ----------------------------------------------------------------------------------- gather / scatter


def gather_flat(x: Tensor, index: Tensor, fill: float = 0.0, label: str = "gather") -> Tensor:
    """``out[i] = x.flat[index[i]]`` (``fill`` where index < 0), shaped like ``index`` (int32)."""
    x = _dense(x)
    if is_cpu(x):
        flat = host(x).reshape(-1)
        idx = host(index)
        vals = flat[np.clip(idx, 0, max(flat.size - 1, 0))] if flat.size else np.zeros(idx.shape)
        return upload(np.where(idx < 0, fill, vals), x.dtype, x.device)
    index = _dense(index)
    out = Tensor.empty(index.shape, x.dtype, x.device)
    if not out.size:
        return out
    if x.dtype.is_float:
        bits = int(np.array(fill, np.float32).view(np.uint32))
        fill_expr = f"{x.dtype.wgsl}(bitcast<f32>(p.fill))"
    else:
        bits = int(np.array(int(fill), np.int64).astype(np.int32).view(np.uint32))
        fill_expr = "bitcast<i32>(p.fill)"
    p = wgsl.Params().u32(out.size, x.offset, index.offset, max(x.size, 1), bits).to_bytes()
    template = {"T": x.dtype.wgsl, "FILL": fill_expr}
    buffers = [x.storage.handle, index.storage.handle, out.storage.handle]
    _run(
        x,
        "webnn_gather:gather",
        template,
        ("read", "read", "read_write"),
        p,
        out.size,
        buffers,
        f"webnn.{label}",
    )
    return out


def scatter_flat(x: Tensor, index: Tensor, updates: Tensor, label: str = "scatter") -> Tensor:
    """A copy of ``x`` with ``out.flat[index[i]] = updates.flat[i]`` (index int32, clamped to x's size)."""
    if is_cpu(x):
        out = host(x).copy().reshape(-1)
        idx = np.clip(host(index).reshape(-1), 0, out.size - 1)
        out[idx] = host(updates).reshape(-1)
        return upload(out.reshape(x.shape), x.dtype, x.device)
    from .. import ops

    out = ops.copy(x)
    updates, index = _dense(updates), _dense(index)
    if not updates.size:
        return out
    p = wgsl.Params().u32(updates.size, updates.offset, index.offset, out.size, 0).to_bytes()
    buffers = [updates.storage.handle, index.storage.handle, out.storage.handle]
    template = {"T": x.dtype.wgsl}
    _run(
        x,
        "webnn_gather:scatter",
        template,
        ("read", "read", "read_write"),
        p,
        updates.size,
        buffers,
        f"webnn.{label}",
    )
    return out


# ----------------------------------------------------------------------------------- reductions

_STEPS = {
    "sum": ("acc = acc + v;", "acc"),
    "prod": ("acc = acc * v;", "acc"),
    "max": ("acc = max(acc, v);", "acc"),
    "min": ("acc = min(acc, v);", "acc"),
    "argmax": ("if (v > acc) { acc = v; best = i32(k); }", "best"),
    "argmin": ("if (v < acc) { acc = v; best = i32(k); }", "best"),
}

_NUMPY_REDUCE = {
    "sum": np.sum,
    "prod": np.prod,
    "max": np.max,
    "min": np.min,
    "argmax": np.argmax,
    "argmin": np.argmin,
}


def reduce_middle(
    op: str, x: Tensor, outer: int, n: int, inner: int, out_dtype: DType | None = None
) -> Tensor:
    """Reduce the dense ``x`` viewed as (outer, n, inner) over n -> (outer, inner) (arg* give int32;
    ``out_dtype`` float32 keeps a float16 sum that float16 cannot hold)."""
    x = _dense(x)
    out_dtype = int32 if op.startswith("arg") else (out_dtype or x.dtype)
    if is_cpu(x):
        v = host(x).reshape(outer, n, inner)
        if op in ("sum", "prod") and v.dtype.kind == "f":
            res = _NUMPY_REDUCE[op](v.astype(np.float64), axis=1)
        else:
            res = _NUMPY_REDUCE[op](v, axis=1)
        return upload(res, out_dtype, x.device)
    out = Tensor.empty((outer, inner), out_dtype, x.device)
    if not out.size:
        return out
    step, result = _STEPS[op]
    template = {
        "T": x.dtype.wgsl,
        "TO": out_dtype.wgsl,
        "C": _compute(x.dtype),
        "STEP": step,
        "RESULT": result,
    }
    p = wgsl.Params().u32(outer, n, inner, x.offset, 0, 0).to_bytes()
    buffers = [x.storage.handle, out.storage.handle]
    _run(
        x, "webnn_reduce:reduce", template, ("read", "read_write"), p, out.size, buffers, f"webnn.reduce_{op}"
    )
    return out


def cumsum_middle(x: Tensor, outer: int, n: int, inner: int, exclusive: bool, reversed_: bool) -> Tensor:
    """Cumulative sum of the dense ``x`` viewed as (outer, n, inner) along n (same shape out)."""
    x = _dense(x)
    if is_cpu(x):
        v = host(x).reshape(outer, n, inner)
        acc = v.astype(np.float64) if v.dtype.kind == "f" else v.astype(np.int64)
        if reversed_:
            acc = acc[:, ::-1]
        res = np.cumsum(acc, axis=1)
        if exclusive:
            res = np.concatenate([np.zeros_like(res[:, :1]), res[:, :-1]], axis=1)
        if reversed_:
            res = res[:, ::-1]
        if res.dtype.kind == "i":
            res = ((res + 2**31) % 2**32) - 2**31
        return upload(res.reshape(x.shape), x.dtype, x.device)
    out = Tensor.empty(x.shape, x.dtype, x.device)
    if not out.size:
        return out
    template = {"T": x.dtype.wgsl, "TO": x.dtype.wgsl, "C": _compute(x.dtype)}
    p = wgsl.Params().u32(outer, n, inner, x.offset, int(exclusive), int(reversed_)).to_bytes()
    buffers = [x.storage.handle, out.storage.handle]
    _run(
        x,
        "webnn_reduce:cumsum",
        template,
        ("read", "read_write"),
        p,
        outer * inner,
        buffers,
        "webnn.cumulative_sum",
    )
    return out


class BuildConstant:
    """Data an op works out at build time (an index map, a mask), uploaded on first use and kept."""

    __slots__ = ("values", "dtype", "_tensor")

    def __init__(self, values: np.ndarray, dtype: DType = int32) -> None:
        self.values = np.ascontiguousarray(values).reshape(np.shape(values))
        self.dtype = dtype
        self._tensor: Tensor | None = None

    def on(self, device) -> Tensor:
        t = self._tensor
        if t is None or t.device is not device:
            t = self._tensor = upload(self.values, self.dtype, device)
        return t
