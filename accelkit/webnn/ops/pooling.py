"""average_pool2d, l2_pool2d, max_pool2d: every window gathered into a trailing axis (one gather over
an index map built at build time, padding filled with -inf or 0), then one reduction over it.

Options as the spec: window_dimensions (default: the whole spatial extent), padding [top, bottom,
left, right], strides, dilations, layout "nchw" | "nhwc", output_shape_rounding "floor" | "ceil",
output_sizes. The average divides by the count of real (non-padding) elements in each window.
"""

from __future__ import annotations

import numpy as np

from .. import primitives as prim
from ..errors import MLTypeError
from ..operand import ANY, FLOATS, choice, dims, guard
from .conv import input_index, spatial, window_options

LIMITS = {
    "average_pool2d": {"input": (FLOATS, 4, 4), "output": (FLOATS, 4, 4)},
    "l2_pool2d": {"input": (FLOATS, 4, 4), "output": (FLOATS, 4, 4)},
    "max_pool2d": {"input": (ANY, 4, 4), "output": (ANY, 4, 4)},
}


def _pool(kind: str):
    op = f"{kind}_pool2d"

    def build(
        self,
        input,
        *,
        window_dimensions=None,
        padding=None,
        strides=None,
        dilations=None,  # noqa: A002
        layout: str = "nchw",
        output_shape_rounding: str = "floor",
        output_sizes=None,
        label: str = "",
    ):
        x = self._arg(input, op, "input")
        guard(LIMITS, op, "input", x)
        choice(layout, ("nchw", "nhwc"), op, "layout")
        choice(output_shape_rounding, ("floor", "ceil"), op, "output_shape_rounding")
        pad, st, dil = window_options(op, padding, strides, dilations)
        n, c, h, w = spatial(x._shape, layout)
        win = (h, w) if window_dimensions is None else dims(window_dimensions, f"{op}: window_dimensions")
        if len(win) != 2:
            raise MLTypeError(f"{op}: window_dimensions must have 2 values > 0, got {list(win)}")
        sizes = []
        for i, (size, k) in enumerate(((h, win[0]), (w, win[1]))):
            span = size + pad[2 * i] + pad[2 * i + 1] - ((k - 1) * dil[i] + 1)
            if span < 0:
                raise MLTypeError(f"{op}: the dilated window {list(win)} is larger than the padded input")
            lo, hi = span // st[i] + 1, -(-span // st[i]) + 1
            sizes.append((lo, hi))
        if output_sizes is not None:
            want = dims(output_sizes, f"{op}: output_sizes")
            if len(want) != 2 or want not in ((sizes[0][0], sizes[1][0]), (sizes[0][1], sizes[1][1])):
                raise MLTypeError(
                    f"{op}: output_sizes {list(want)} must be the floor or ceil output size {[list(s) for s in sizes]}"
                )
            oh, ow = want
        else:
            pick = 0 if output_shape_rounding == "floor" else 1
            oh, ow = sizes[0][pick], sizes[1][pick]
        kh, kw = win
        iy = np.arange(oh)[:, None] * st[0] + np.arange(kh)[None, :] * dil[0] - pad[0]
        ix = np.arange(ow)[:, None] * st[1] + np.arange(kw)[None, :] * dil[1] - pad[2]
        iy = np.where((iy >= 0) & (iy < h), iy, -1)
        ix = np.where((ix >= 0) & (ix < w), ix, -1)
        nn = np.arange(n).reshape(n, 1, 1, 1, 1, 1)
        cc = np.arange(c).reshape(1, c, 1, 1, 1, 1)
        yy = iy.reshape(1, 1, oh, 1, kh, 1)
        xx = ix.reshape(1, 1, 1, ow, 1, kw)
        yy, xx = np.broadcast_arrays(yy, xx)
        idx = np.broadcast_to(input_index(n, c, h, w, layout, nn, cc, yy, xx), (n, c, oh, ow, kh, kw))
        if layout == "nhwc":
            idx = idx.transpose(0, 2, 3, 1, 4, 5)
        out_shape = (n, c, oh, ow) if layout == "nchw" else (n, oh, ow, c)
        count = int(np.prod(out_shape))
        index = prim.BuildConstant(idx.reshape(count, kh * kw).astype(np.int32))
        valid = ((iy >= 0)[:, None, :, None] & (ix >= 0)[None, :, None, :]).reshape(oh, ow, kh * kw).sum(-1)
        counts_shape = (oh, ow, 1) if layout == "nhwc" else (oh, ow)
        counts = prim.BuildConstant(
            np.maximum(valid, 1).reshape(counts_shape).astype(np.float32), x.dtype.storage
        )
        dt = x.dtype
        fill = -np.inf if dt.is_float else float(np.iinfo(np.int32).min)

        def run(t):
            if kind == "max":
                win_t = prim.gather_flat(t, index.on(t.device), fill, label="pool_windows")
                return prim.reduce_middle("max", win_t, count, kh * kw, 1).reshape(*out_shape)
            if kind == "l2":
                t = prim.elementwise([t], t.shape, dt.storage, np.square, "a * a", label="square")
            win_t = prim.gather_flat(t, index.on(t.device), 0.0, label="pool_windows")
            total = prim.reduce_middle("sum", win_t, count, kh * kw, 1).reshape(*out_shape)
            if kind == "l2":
                return prim.elementwise([total], out_shape, dt.storage, np.sqrt, "sqrt(a)", label="sqrt")
            return prim.elementwise(
                [total, counts.on(t.device)], out_shape, dt.storage, np.divide, "a / b", label="average"
            )

        return self._op(op, (x,), [(dt, out_shape)], run, label)

    build.__name__ = op
    build.__doc__ = f"2-D {kind} pooling over windows of the spatial dims."
    return build


BUILDERS = {f"{k}_pool2d": _pool(k) for k in ("average", "l2", "max")}
