"""conv2d and conv_transpose2d: im2col as one gather over an index map built at build time, then one
(batched over groups) ``accelkit.ops.matmul``; with one group the bias rides the matmul epilogue.

Layouts: input "nchw" | "nhwc"; conv2d filter "oihw" | "hwio" | "ohwi" | "ihwo"; conv_transpose2d
filter "iohw" | "hwoi" | "ohwi". Padding is [top, bottom, left, right]. The index map holds, for
every (group, output pixel, (channel, ky, kx)) column entry, the flat input position it reads, or -1
where it reads padding (or, transposed, a position between strided inputs), which the gather fills
with 0.
"""

from __future__ import annotations

import numpy as np

from ... import ops
from .. import primitives as prim
from ..errors import MLTypeError
from ..operand import FLOATS, check_same_type, choice, dims, guard, operand

LIMITS = {
    "conv2d": {
        "input": (FLOATS, 4, 4),
        "filter": (FLOATS, 4, 4),
        "bias": (FLOATS, 1, 1),
        "output": (FLOATS, 4, 4),
    },
    "conv_transpose2d": {
        "input": (FLOATS, 4, 4),
        "filter": (FLOATS, 4, 4),
        "bias": (FLOATS, 1, 1),
        "output": (FLOATS, 4, 4),
    },
}
# filter layout -> permutation to OIHW (conv2d) / IOHW (conv_transpose2d)
CONV_FILTERS = {"oihw": (0, 1, 2, 3), "hwio": (3, 2, 0, 1), "ohwi": (0, 3, 1, 2), "ihwo": (3, 0, 1, 2)}
TRANSPOSE_FILTERS = {"iohw": (0, 1, 2, 3), "hwoi": (3, 2, 0, 1), "ohwi": (3, 0, 1, 2)}


def window_options(op: str, padding, strides, dilations) -> tuple:
    """padding (4), strides (2, > 0), dilations (2, > 0) with the spec's defaults."""
    pad = dims([0, 0, 0, 0] if padding is None else padding, f"{op}: padding", allow_zero=True)
    st = dims([1, 1] if strides is None else strides, f"{op}: strides", allow_zero=True)
    dil = dims([1, 1] if dilations is None else dilations, f"{op}: dilations", allow_zero=True)
    if len(pad) != 4:
        raise MLTypeError(f"{op}: padding must have 4 values [top, bottom, left, right], got {list(pad)}")
    if len(st) != 2 or min(st) < 1:
        raise MLTypeError(f"{op}: strides must be 2 values > 0, got {list(st)}")
    if len(dil) != 2 or min(dil) < 1:
        raise MLTypeError(f"{op}: dilations must be 2 values > 0, got {list(dil)}")
    return pad, st, dil


def spatial(shape: tuple, layout: str) -> tuple:
    """(N, C, H, W) of a 4-D shape in ``layout``."""
    if layout == "nchw":
        return shape
    n, h, w, c = shape
    return n, c, h, w


def input_index(n, c, h, w, layout, nn, cc, yy, xx) -> np.ndarray:
    """Flat positions of (n, c, y, x) in an input of ``layout``; -1 where y or x is -1."""
    flat = ((nn * c + cc) * h + yy) * w + xx if layout == "nchw" else ((nn * h + yy) * w + xx) * c + cc
    return np.where((yy >= 0) & (xx >= 0), flat, -1)


def _im2col(n, c, h, w, layout, groups, kh, kw, iy, ix) -> np.ndarray:
    """(G, N*OH*OW, Cg*KH*KW) index map from per-axis tap maps iy (OH, KH) and ix (OW, KW)."""
    cg = c // groups
    oh, ow = iy.shape[0], ix.shape[0]
    g = np.arange(groups).reshape(groups, 1, 1, 1, 1, 1, 1)
    nn = np.arange(n).reshape(1, n, 1, 1, 1, 1, 1)
    cc = g * cg + np.arange(cg).reshape(1, 1, 1, 1, cg, 1, 1)
    yy = iy.reshape(1, 1, oh, 1, 1, kh, 1)
    xx = ix.reshape(1, 1, 1, ow, 1, 1, kw)
    yy, xx = np.broadcast_arrays(yy, xx)
    idx = input_index(n, c, h, w, layout, nn, cc, yy, xx)
    idx = np.broadcast_to(idx, (groups, n, oh, ow, cg, kh, kw))
    return idx.reshape(groups, n * oh * ow, cg * kh * kw).astype(np.int32)


def _conv_run(x_shape, layout, groups, out_c, kh, kw, iy, ix, weight_gko, has_bias, out_shape):
    """The execution shared by both convolutions: gather columns, matmul per group, lay out, add bias."""
    n, c, h, w = spatial(x_shape, layout)
    index = _im2col(n, c, h, w, layout, groups, kh, kw, iy, ix)
    oh, ow = iy.shape[0], ix.shape[0]
    og = out_c // groups
    index = prim.BuildConstant(index)

    def run(tx, tf, tb=None):
        cols = prim.gather_flat(tx, index.on(tx.device), 0.0, label="im2col")  # (G, N*OH*OW, K)
        wt = weight_gko(tf)  # (G, K, Og)
        if groups == 1:
            y = ops.matmul(
                cols.reshape(cols.shape[1], cols.shape[2]), wt.reshape(wt.shape[1], wt.shape[2]), bias=tb
            )  # (N*OH*OW, O)
            y = y.reshape(n, oh, ow, out_c)
            if layout == "nhwc":
                return y
            return y.permute(0, 3, 1, 2).contiguous()
        y = ops.matmul(cols, wt).reshape(groups, n, oh, ow, og)
        perm = (1, 0, 4, 2, 3) if layout == "nchw" else (1, 2, 3, 0, 4)
        y = y.permute(*perm).contiguous().reshape(*out_shape)
        if tb is not None:
            bshape = (1, out_c, 1, 1) if layout == "nchw" else (out_c,)
            y = ops.add(y, tb.reshape(*bshape))
        return y

    return run


def _common(self, op, x, f, bias, groups, input_layout, filter_layout, layouts):
    x = self._arg(x, op, "input")
    f = self._arg(f, op, "filter")
    guard(LIMITS, op, "input", x)
    guard(LIMITS, op, "filter", f)
    check_same_type(f, x, op, "filter", "input")
    choice(input_layout, ("nchw", "nhwc"), op, "input_layout")
    choice(filter_layout, tuple(layouts), op, "filter_layout")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise MLTypeError(f"{op}: groups must be an integer >= 1, got {groups!r}")
    if bias is not None:
        bias = operand(self, bias, op, "bias")
        guard(LIMITS, op, "bias", bias)
        check_same_type(bias, x, op, "bias", "input")
    return x, f, bias


def _out_size(op, size, k, stride, dil, pad_a, pad_b) -> int:
    eff = (k - 1) * dil + 1
    span = size + pad_a + pad_b - eff
    if span < 0:
        raise MLTypeError(
            f"{op}: the dilated kernel ({eff}) is larger than the padded input ({size + pad_a + pad_b})"
        )
    return span // stride + 1


def conv2d(
    self,
    input,
    filter,
    *,
    padding=None,
    strides=None,
    dilations=None,
    groups: int = 1,  # noqa: A002
    input_layout: str = "nchw",
    filter_layout: str = "oihw",
    bias=None,
    label: str = "",
):
    """2-D convolution (spec conv2d); output (N, O, OH, OW) in ``input_layout``."""
    op = "conv2d"
    x, f, bias = _common(self, op, input, filter, bias, groups, input_layout, filter_layout, CONV_FILTERS)
    pad, st, dil = window_options(op, padding, strides, dilations)
    n, c, h, w = spatial(x._shape, input_layout)
    o, ci, kh, kw = (f._shape[i] for i in CONV_FILTERS[filter_layout])
    if c % groups or ci != c // groups:
        raise MLTypeError(
            f"{op}: input channels {c} must equal filter input channels {ci} x groups {groups} (filter {f.shape}, "
            f"layout {filter_layout})"
        )
    if o % groups:
        raise MLTypeError(f"{op}: filter output channels {o} must be divisible by groups {groups}")
    if bias is not None and bias._shape != (o,):
        raise MLTypeError(f"{op}: bias must have shape [{o}], got {bias.shape}")
    oh = _out_size(op, h, kh, st[0], dil[0], pad[0], pad[1])
    ow = _out_size(op, w, kw, st[1], dil[1], pad[2], pad[3])
    iy = np.arange(oh)[:, None] * st[0] + np.arange(kh)[None, :] * dil[0] - pad[0]
    ix = np.arange(ow)[:, None] * st[1] + np.arange(kw)[None, :] * dil[1] - pad[2]
    iy = np.where((iy >= 0) & (iy < h), iy, -1)
    ix = np.where((ix >= 0) & (ix < w), ix, -1)
    out_shape = (n, o, oh, ow) if input_layout == "nchw" else (n, oh, ow, o)
    perm = CONV_FILTERS[filter_layout]
    og, k = o // groups, ci * kh * kw

    def weight_gko(tf):  # filter -> (G, K, Og)
        wt = tf.permute(*perm).contiguous() if perm != (0, 1, 2, 3) else tf
        return wt.reshape(groups, og, k).permute(0, 2, 1)

    run = _conv_run(
        x._shape, input_layout, groups, o, kh, kw, iy, ix, weight_gko, bias is not None, out_shape
    )
    inputs = (x, f) + ((bias,) if bias is not None else ())
    return self._op(op, inputs, [(x.dtype, out_shape)], run, label)


def conv_transpose2d(
    self,
    input,
    filter,
    *,
    padding=None,
    strides=None,
    dilations=None,  # noqa: A002
    output_padding=None,
    output_sizes=None,
    groups: int = 1,
    input_layout: str = "nchw",
    filter_layout: str = "iohw",
    bias=None,
    label: str = "",
):
    """2-D transposed convolution (spec convTranspose2d); output in ``input_layout``."""
    op = "conv_transpose2d"
    x, f, bias = _common(
        self, op, input, filter, bias, groups, input_layout, filter_layout, TRANSPOSE_FILTERS
    )
    pad, st, dil = window_options(op, padding, strides, dilations)
    outpad = dims(
        [0, 0] if output_padding is None else output_padding, f"{op}: output_padding", allow_zero=True
    )
    if len(outpad) != 2:
        raise MLTypeError(f"{op}: output_padding must have 2 values, got {list(outpad)}")
    if output_sizes is None and (outpad[0] >= st[0] or outpad[1] >= st[1]):  # ignored with output_sizes
        raise MLTypeError(f"{op}: output_padding {list(outpad)} must be smaller than strides {list(st)}")
    n, c, h, w = spatial(x._shape, input_layout)
    ci, og, kh, kw = (f._shape[i] for i in TRANSPOSE_FILTERS[filter_layout])
    if ci != c or c % groups:
        raise MLTypeError(
            f"{op}: input channels {c} must equal the filter's input channels {ci} and divide by groups {groups}"
        )
    o = og * groups
    if bias is not None and bias._shape != (o,):
        raise MLTypeError(f"{op}: bias must have shape [{o}], got {bias.shape}")
    sizes = []
    for i, (size, k) in enumerate(((h, kh), (w, kw))):
        base = (size - 1) * st[i] + (k - 1) * dil[i] + 1 - pad[2 * i] - pad[2 * i + 1]
        sizes.append(base + outpad[i])
        if output_sizes is not None:
            want = dims(output_sizes, f"{op}: output_sizes")
            if len(want) != 2:
                raise MLTypeError(f"{op}: output_sizes must have 2 values, got {list(want)}")
            if not base <= want[i] < base + st[i]:
                raise MLTypeError(
                    f"{op}: output_sizes {list(want)} must be in [{base}, {base + st[i]}) for dim {i}"
                )
            sizes[i] = want[i]
        if sizes[i] <= 0:
            raise MLTypeError(f"{op}: the output size {sizes[i]} is not a valid dimension")
    oh, ow = sizes

    def taps(out_n, k, s, d, p, size):
        t = np.arange(out_n)[:, None] + p - np.arange(k)[None, :] * d
        ok = (t >= 0) & (t % s == 0) & (t // s < size)
        return np.where(ok, t // s, -1)

    iy = taps(oh, kh, st[0], dil[0], pad[0], h)
    ix = taps(ow, kw, st[1], dil[1], pad[2], w)
    out_shape = (n, o, oh, ow) if input_layout == "nchw" else (n, oh, ow, o)
    perm = TRANSPOSE_FILTERS[filter_layout]
    cg = c // groups

    def weight_gko(tf):  # filter -> IOHW -> (G, Cg, KH, KW, Og) -> (G, K, Og)
        wt = tf.permute(*perm).contiguous() if perm != (0, 1, 2, 3) else tf
        wt = wt.reshape(groups, cg, og, kh, kw).permute(0, 1, 3, 4, 2).contiguous()
        return wt.reshape(groups, cg * kh * kw, og)

    run = _conv_run(
        x._shape, input_layout, groups, o, kh, kw, iy, ix, weight_gko, bias is not None, out_shape
    )
    inputs = (x, f) + ((bias,) if bias is not None else ())
    return self._op(op, inputs, [(x.dtype, out_shape)], run, label)


BUILDERS = {"conv2d": conv2d, "conv_transpose2d": conv_transpose2d}
