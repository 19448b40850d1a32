"""Planner for ``kernels/update_slice.wgsl``: write a tensor into another along one axis at an offset read on the device.

The offset lives in an int32 buffer, not in the uniform parameters, so the dispatch (and a captured
plan holding it) stays the same whatever the offset: a decoder step writes its keys and values into
a fixed-size KV cache at the position its position buffer holds, and one plan serves every step.
"""

from __future__ import annotations

from ...errors import KernelError
from .plans import WG, _dims, _grid, _memoized, _wgsl, coalesce
from .wgsl import MAX_RANK, Caps, KernelPlan, Params, ceil_div, render_cached


@_memoized
def plan_update_slice(caps: Caps, dst, src, start, axis: int) -> KernelPlan:
    """dst[..., p:p+n, ...] = src along ``axis`` (n = src.shape[axis]), p = clamp(start[0], 0, dst.shape[axis] - n).

    Bindings [src, start, dst]; dst and src any strided layouts of one dtype whose shapes agree except
    along ``axis``; ``start`` an int32 layout whose first element is the offset.
    """
    rank = len(dst.shape)
    if len(src.shape) != rank or not 0 <= axis < rank:
        raise KernelError(
            f"update_slice: dst {tuple(dst.shape)} and src {tuple(src.shape)} along axis {axis}"
        )
    if any(a != b for i, (a, b) in enumerate(zip(dst.shape, src.shape)) if i != axis):
        raise KernelError(f"update_slice: shapes differ off the axis: dst {dst.shape}, src {src.shape}")
    t = _wgsl(dst)
    if _wgsl(src) != t or _wgsl(start) != "i32":
        raise KernelError(f"update_slice: dst {t} and src {_wgsl(src)} must match and start must be i32")
    limit = int(dst.shape[axis]) - int(src.shape[axis])
    if limit < 0:
        raise KernelError(f"update_slice: src is longer than dst along axis {axis}: {src.shape}, {dst.shape}")
    # merge dims before and after the axis where both layouts allow it (the axis itself stays whole)
    parts = [(src.shape[:axis], src.strides[:axis], dst.strides[:axis])]
    parts.append(((src.shape[axis],), (src.strides[axis],), (dst.strides[axis],)))
    parts.append((src.shape[axis + 1 :], src.strides[axis + 1 :], dst.strides[axis + 1 :]))
    shape, ss, ds = [], [], []
    for n, s_src, s_dst in parts:
        if not n:
            continue
        merged, (m_src, m_dst) = coalesce(n, s_src, s_dst)
        shape += merged
        ss += m_src
        ds += m_dst
    if len(shape) > MAX_RANK:  # pragma: no cover - tensors never have more than MAX_RANK dims
        raise KernelError(f"update_slice: rank {len(shape)} exceeds {MAX_RANK}")
    numel = 1
    for n in src.shape:
        numel *= int(n)
    params = Params().u32(numel, len(shape)).i32(limit).u32(start.offset, src.offset, dst.offset)
    params.i32(int(dst.strides[axis])).u32(0)
    params.vec4u(shape, MAX_RANK).vec4u(ss, MAX_RANK).vec4u(ds, MAX_RANK)
    return KernelPlan(
        key=("update_slice", t),
        source=render_cached("update_slice", None, (("T", t),)),
        access=("read", "read", "read_write"),
        params=params.to_bytes(),
        workgroups=_grid(caps, ceil_div(numel, WG) if numel else 0),
        label=f"update_slice[{_dims(src.shape)} into {_dims(dst.shape)} axis {axis}] {t}",
        flops=0.0,
        bytes_moved=float(2 * numel * dst.dtype.itemsize + 4),
    )


__all__ = ["plan_update_slice"]
