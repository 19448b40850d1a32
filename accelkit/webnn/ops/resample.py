"""resample2d: nearest-neighbor or (bi)linear resizing of two dims (``axes``, sizes and scales in that order).

Coordinates follow the half-pixel rule: output position o reads input (o + 0.5) / scale - 0.5
clamped to the edges; nearest takes the closest source pixel, halves rounding down, as the WebNN
reference implementation does. Nearest is one gather;
linear is four gathers of the corner neighbours weighted by build-time weights.
"""

from __future__ import annotations

import numpy as np

from .. import primitives as prim
from ..errors import MLTypeError
from ..operand import choice, dims, guard

LIMITS = {
    "resample2d": {
        "input": (("float32", "float16", "int8", "uint8"), 4, 4),
        "output": (("float32", "float16", "int8", "uint8"), 4, 4),
    }
}


def resample2d(
    self,
    input,
    *,
    mode: str = "nearest-neighbor",
    scales=None,
    sizes=None,
    axes=None,  # noqa: A002
    label: str = "",
):
    """Resize dims ``axes`` (default [2, 3]) to ``sizes``, or by ``scales`` (default [1, 1])."""
    op = "resample2d"
    x = self._arg(input, op, "input")
    guard(LIMITS, op, "input", x)
    choice(mode, ("nearest-neighbor", "linear"), op, "mode")
    ax = (2, 3) if axes is None else dims(axes, f"{op}: axes", allow_zero=True)
    if len(ax) != 2 or ax[0] == ax[1] or max(ax) > 3:
        raise MLTypeError(f"{op}: axes must be two different dims of the 4-D input, got {list(ax)}")
    sc = [1.0, 1.0] if scales is None else list(scales)
    if len(sc) != 2 or any(
        not isinstance(v, (int, float)) or isinstance(v, bool) or not v > 0 or not np.isfinite(v) for v in sc
    ):
        raise MLTypeError(f"{op}: scales must be 2 finite numbers > 0, got {scales!r}")
    if sizes is not None:
        out = dims(sizes, f"{op}: sizes")
        if len(out) != 2:
            raise MLTypeError(f"{op}: sizes must have 2 values, got {list(out)}")
    else:
        out = tuple(int(np.floor(x._shape[ax[i]] * np.float32(sc[i]))) for i in range(2))
        if min(out) <= 0:
            raise MLTypeError(f"{op}: scales {sc} give an empty output for {x.shape}")
    sc = [out[i] / x._shape[ax[i]] for i in range(2)]  # coordinates follow the realised size ratio
    shape = list(x._shape)
    shape[ax[0]], shape[ax[1]] = out
    shape = tuple(shape)
    dt = x.dtype
    strides = [int(np.prod(x._shape[d + 1 :])) for d in range(4)]
    grids = np.indices(shape)
    base = sum(grids[d] * strides[d] for d in range(4) if d not in ax)

    def source(i, o):
        return (np.arange(o) + 0.5) / sc[i] - 0.5

    if mode == "nearest-neighbor" or not dt.is_float:
        # the nearest source pixel, halves rounding down, as the WebNN reference implementation does
        pos = [
            np.ceil(np.clip(source(i, out[i]), 0, x._shape[ax[i]] - 1) - 0.5).astype(np.int64)
            for i in range(2)
        ]
        idx = base + pos[0][grids[ax[0]]] * strides[ax[0]] + pos[1][grids[ax[1]]] * strides[ax[1]]
        index = prim.BuildConstant(idx.astype(np.int32))

        def run(t):
            return prim.gather_flat(t, index.on(t.device), label=op)

        return self._op(op, (x,), [(dt, shape)], run, label)

    corners = []
    per_axis = []
    for i in range(2):
        s = np.clip(source(i, out[i]), 0, x._shape[ax[i]] - 1)
        lo = np.floor(s).astype(np.int64)
        hi = np.minimum(lo + 1, x._shape[ax[i]] - 1)
        per_axis.append((lo, hi, s - lo))
    for a_pick in (0, 1):
        for b_pick in (0, 1):
            ya, yb = per_axis[0][a_pick][grids[ax[0]]], per_axis[1][b_pick][grids[ax[1]]]
            fa, fb = per_axis[0][2][grids[ax[0]]], per_axis[1][2][grids[ax[1]]]
            weight = (fa if a_pick else 1 - fa) * (fb if b_pick else 1 - fb)
            idx = base + ya * strides[ax[0]] + yb * strides[ax[1]]
            corners.append(
                (
                    prim.BuildConstant(idx.astype(np.int32)),
                    prim.BuildConstant(weight.astype(np.float32), dt.storage),
                )
            )

    def run_linear(t):
        acc = None
        for index, weight in corners:
            g = prim.gather_flat(t, index.on(t.device), label=op)
            w = weight.on(t.device)
            if acc is None:
                acc = prim.elementwise(
                    [g, w], shape, dt.storage, np.multiply, "a * b", label="resample_weight"
                )
            else:
                acc = prim.elementwise(
                    [acc, g, w],
                    shape,
                    dt.storage,
                    lambda a, b, c: a + b * c,
                    "a + b * c",
                    label="resample_weight",
                )
        return acc

    return self._op(op, (x,), [(dt, shape)], run_linear, label)


BUILDERS = {"resample2d": resample2d}
