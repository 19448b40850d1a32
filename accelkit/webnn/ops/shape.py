"""Shape and data-movement ops: reshape, transpose, slice, split, concat, expand, pad, tile, reverse,
triangular.

reshape and transpose are views (every consumer takes strided tensors; a reshape that cannot be a
view copies); slice, split, expand and tile are strided views of the input made dense by one copy
(``accelkit.ops``); concat is ``accelkit.ops.concat``; pad (constant, edge,
reflection), reverse and triangular are one gather over an index map built at build time
(``kernels/webnn_gather.wgsl``; -1 entries take the pad value, or 0 for triangular).
"""

from __future__ import annotations

import builtins
import math
import numbers

import numpy as np

from ... import ops
from ...tensor.tensor import Tensor
from .. import primitives as prim
from ..errors import MLTypeError
from ..operand import (
    ANY,
    MAX_RANK,
    check_same_type,
    choice,
    dims,
    flag,
    guard,
    number,
    unidirectional,
)
from ..operand import (
    axes as check_axes,
)
from ..operand import (
    axis as check_axis,
)

R = MAX_RANK
LIMITS = {
    n: {"input": (ANY, 0, R), "output": (ANY, 0, R)}
    for n in ("reshape", "transpose", "slice", "expand", "pad", "tile", "reverse")
}
LIMITS["split"] = {"input": (ANY, 1, R), "outputs": (ANY, 1, R)}
LIMITS["concat"] = {"inputs": (ANY, 1, R), "output": (ANY, 1, R)}
LIMITS["triangular"] = {"input": (ANY, 2, R), "output": (ANY, 2, R)}


def _dense(t: Tensor) -> Tensor:
    return t if t.is_contiguous else t.contiguous()


def _new_shape(self, op: str, input, new_shape):  # noqa: A002
    """reshape's and expand's arguments: the operand and a new shape of at most R dims."""
    x = self._arg(input, op, "input")
    guard(LIMITS, op, "input", x)
    shape = dims(new_shape, f"{op}: new_shape")
    if len(shape) > R:
        raise MLTypeError(f"{op}: new_shape rank {len(shape)} exceeds {R}")
    return x, shape


def reshape(self, input, new_shape, *, label: str = ""):  # noqa: A002
    """The same elements in ``new_shape`` (a view)."""
    x, shape = _new_shape(self, "reshape", input, new_shape)
    if math.prod(shape) != math.prod(x._shape):
        raise MLTypeError(
            f"reshape: cannot reshape {x.shape} ({math.prod(x._shape)} elements) into {list(shape)}"
        )
    return self._op("reshape", (x,), [(x.dtype, shape)], lambda t: t.reshape(shape), label)


def transpose(self, input, *, permutation=None, label: str = ""):  # noqa: A002
    """Permute the dims (default: reversed)."""
    x = self._arg(input, "transpose", "input")
    guard(LIMITS, "transpose", "input", x)
    perm = (
        tuple(reversed(range(x.rank)))
        if permutation is None
        else dims(permutation, "transpose: permutation", allow_zero=True)
    )
    if sorted(perm) != list(range(x.rank)):
        raise MLTypeError(f"transpose: permutation {list(perm)} must be a permutation of 0..{x.rank - 1}")
    shape = tuple(x._shape[p] for p in perm)
    out = self._op("transpose", (x,), [(x.dtype, shape)], lambda t: t.permute(*perm), label)  # a view
    out.node.attrs = {"permutation": perm}
    return out


def slice(self, input, starts, sizes, *, strides=None, label: str = ""):  # noqa: A001,A002 - the spec's name
    """input[starts : starts + sizes : strides] per dim."""
    op = "slice"
    x = self._arg(input, op, "input")
    guard(LIMITS, op, "input", x)
    st = dims(starts, "slice: starts", allow_zero=True)
    sz = dims(sizes, "slice: sizes")
    steps = (1,) * x.rank if strides is None else dims(strides, "slice: strides")
    if not len(st) == len(sz) == len(steps) == x.rank:
        raise MLTypeError(
            f"slice: starts, sizes and strides need {x.rank} values each (the input's rank), got "
            f"{list(st)}, {list(sz)}, {list(steps)}"
        )
    for d in range(x.rank):
        if st[d] >= x._shape[d] or st[d] + sz[d] > x._shape[d]:
            raise MLTypeError(f"slice: start {st[d]} + size {sz[d]} exceed dim {d} of {x.shape}")
    shape = tuple(-(-sz[d] // steps[d]) for d in range(x.rank))

    def run(t):
        t = _dense(t)
        offset = t.offset + sum(s * k for s, k in zip(st, t.strides))
        view = Tensor(t.storage, shape, tuple(k * s for k, s in zip(t.strides, steps)), offset, t.dtype)
        return _dense(view)

    return self._op(op, (x,), [(x.dtype, shape)], run, label)


def split(self, input, splits, *, axis: int = 0, label: str = ""):  # noqa: A002
    """Split along ``axis`` into ``splits`` equal parts (an int) or parts of the given sizes (a list)."""
    op = "split"
    x = self._arg(input, op, "input")
    guard(LIMITS, op, "input", x)
    ax = check_axis(axis, x.rank, op)
    size = x._shape[ax]
    if isinstance(splits, numbers.Integral) and not isinstance(splits, bool):
        if splits <= 0 or size % splits:
            raise MLTypeError(f"split: {splits} parts must be > 0 and divide dim {ax} of {x.shape}")
        parts = (size // int(splits),) * int(splits)
    else:
        parts = dims(splits, "split: splits")
        if not parts or sum(parts) != size:
            raise MLTypeError(f"split: sizes {list(parts)} must sum to dim {ax} ({size}) of {x.shape}")
    outs = []
    for p in parts:
        s = list(x._shape)
        s[ax] = p
        outs.append((x.dtype, tuple(s)))

    def run(t):
        t = _dense(t)
        res, at = [], 0
        for p in parts:
            index = [builtins.slice(None)] * x.rank
            index[ax] = builtins.slice(at, at + p)
            res.append(_dense(t[tuple(index)]))
            at += p
        return tuple(res)

    out = self._op(op, (x,), outs, run, label)
    return out if isinstance(out, list) else [out]


def concat(self, inputs, axis, *, label: str = ""):
    """Join ``inputs`` along ``axis``; every other dim must match."""
    op = "concat"
    self._check(op)
    if isinstance(inputs, (str, bytes)) or not hasattr(inputs, "__iter__"):
        raise MLTypeError("concat: inputs must be a sequence of MLOperands")
    xs = [self._arg(x, op, f"inputs[{i}]") for i, x in enumerate(inputs)]
    if not xs:
        raise MLTypeError("concat: inputs must not be empty")
    first = xs[0]
    guard(LIMITS, op, "inputs", first)
    ax = check_axis(axis, first.rank, op)
    for i, x in enumerate(xs[1:], 1):
        check_same_type(x, first, op, f"inputs[{i}]", "inputs[0]")
        if x.rank != first.rank or any(x._shape[d] != first._shape[d] for d in range(first.rank) if d != ax):
            raise MLTypeError(
                f"concat: inputs[{i}] shape {x.shape} differs from {first.shape} outside axis {ax}"
            )
    shape = list(first._shape)
    shape[ax] = sum(x._shape[ax] for x in xs)
    if shape[ax] > 2**31 - 1:
        raise MLTypeError(f"concat: the output dim {shape[ax]} is too large")

    def run(*ts):
        return ops.concat(list(ts), ax)

    return self._op(op, tuple(xs), [(first.dtype, tuple(shape))], run, label)


def expand(self, input, new_shape, *, label: str = ""):  # noqa: A002
    """Broadcast ``input`` to ``new_shape`` (which it must broadcast to: same dims or 1, leading dims added)."""
    x, shape = _new_shape(self, "expand", input, new_shape)
    unidirectional(x._shape, shape, "expand", "input")
    a = (1,) * (len(shape) - x.rank) + x._shape

    def run(t):
        return _dense(t.reshape(a).expand(shape))

    return self._op("expand", (x,), [(x.dtype, shape)], run, label)


def tile(self, input, repetitions, *, label: str = ""):  # noqa: A002
    """Repeat ``input`` ``repetitions[d]`` times along each dim d."""
    x = self._arg(input, "tile", "input")
    guard(LIMITS, "tile", "input", x)
    reps = dims(repetitions, "tile: repetitions")
    if len(reps) != x.rank:
        raise MLTypeError(f"tile: repetitions {list(reps)} need {x.rank} values (the input's rank)")
    shape = tuple(s * r for s, r in zip(x._shape, reps))
    split_shape = tuple(v for s in x._shape for v in (1, s))
    rep_shape = tuple(v for s, r in zip(x._shape, reps) for v in (r, s))

    def run(t):
        return _dense(_dense(t).reshape(split_shape).expand(rep_shape)).reshape(shape)

    return self._op("tile", (x,), [(x.dtype, shape)], run, label)


def _gather_op(self, op: str, x, shape: tuple, index: np.ndarray, fill: float, label: str):
    index = prim.BuildConstant(index.astype(np.int32))

    def run(t):
        return prim.gather_flat(t, index.on(t.device), fill, label=op).reshape(shape)

    return self._op(op, (x,), [(x.dtype, shape)], run, label)


def pad(
    self,
    input,
    beginning_padding,
    ending_padding,
    *,
    mode: str = "constant",
    value=0,  # noqa: A002
    label: str = "",
):
    """Pad each dim by beginning/ending amounts; mode "constant" (with ``value``), "edge" or "reflection"."""
    op = "pad"
    x = self._arg(input, op, "input")
    guard(LIMITS, op, "input", x)
    begin = dims(beginning_padding, "pad: beginning_padding", allow_zero=True)
    end = dims(ending_padding, "pad: ending_padding", allow_zero=True)
    choice(mode, ("constant", "edge", "reflection"), op, "mode")
    fill = number(value, op, "value")
    if len(begin) != x.rank or len(end) != x.rank:
        raise MLTypeError(
            f"pad: beginning_padding and ending_padding need {x.rank} values each, got {list(begin)}, "
            f"{list(end)}"
        )
    if mode == "reflection" and any(b >= s or e >= s for b, e, s in zip(begin, end, x._shape)):
        raise MLTypeError(f"pad: reflection padding must be smaller than each dim of {x.shape}")
    shape = tuple(s + b + e for s, b, e in zip(x._shape, begin, end))
    coords = []
    for s, b, n in zip(x._shape, begin, shape):
        c = np.arange(n) - b
        if mode == "edge":
            c = np.clip(c, 0, s - 1)
        elif mode == "reflection":
            c = np.abs(c)
            c = np.where(c > s - 1, 2 * (s - 1) - c, c)
        coords.append(c)
    index = _flat_index(x._shape, coords)
    if not x.dtype.is_float:
        fill = float(int(fill))
    return _gather_op(self, op, x, shape, index, fill, label)


def _flat_index(shape: tuple, coords: list) -> np.ndarray:
    """Outer product of per-dim coordinates -> flat positions in ``shape`` (-1 where any coordinate is out)."""
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc)
        acc *= n
    strides = strides[::-1]
    if not shape:
        return np.zeros((), np.int64)
    grids = np.meshgrid(*coords, indexing="ij")
    flat = sum(g * s for g, s in zip(grids, strides))
    bad = np.zeros(flat.shape, bool)
    for g, n in zip(grids, shape):
        bad |= (g < 0) | (g >= n)
    return np.where(bad, -1, flat)


def reverse(self, input, *, axes=None, label: str = ""):  # noqa: A002
    """Reverse the order of elements along ``axes`` (default all)."""
    x = self._arg(input, "reverse", "input")
    guard(LIMITS, "reverse", "input", x)
    ax = tuple(range(x.rank)) if axes is None else check_axes(axes, x.rank, "reverse")
    coords = [np.arange(s)[::-1] if d in ax else np.arange(s) for d, s in enumerate(x._shape)]
    return _gather_op(self, "reverse", x, x._shape, _flat_index(x._shape, coords), 0.0, label)


def triangular(self, input, *, upper: bool = True, diagonal: int = 0, label: str = ""):  # noqa: A002
    """Keep the upper (or lower) triangle of the last two dims from ``diagonal`` on; zero the rest."""
    x = self._arg(input, "triangular", "input")
    guard(LIMITS, "triangular", "input", x)
    up = flag(upper, "triangular", "upper")
    if isinstance(diagonal, bool) or not isinstance(diagonal, numbers.Integral):
        raise MLTypeError(f"triangular: diagonal must be an integer, got {diagonal!r}")
    rows, cols = x._shape[-2:]
    i, j = np.arange(rows)[:, None], np.arange(cols)[None, :]
    keep = (j - i >= diagonal) if up else (j - i <= diagonal)
    flat = np.arange(math.prod(x._shape)).reshape(x._shape)
    index = np.where(np.broadcast_to(keep, x._shape), flat, -1)
    return _gather_op(self, "triangular", x, x._shape, index, 0.0, label)


BUILDERS = {
    "reshape": reshape,
    "transpose": transpose,
    "slice": slice,
    "split": split,
    "concat": concat,
    "expand": expand,
    "tile": tile,
    "pad": pad,
    "reverse": reverse,
    "triangular": triangular,
}
