"""What the WebNN conformance tests share: contexts per device, graph runners, numpy float64
references, and the web-platform-tests' tolerance rule (ULP distance, or an absolute tolerance for
the transcendental ops whose WPT metric is ATOL)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import WEBGPU_SPECS, _no_webgpu

from accelkit import webnn

DEVICES = ["cpu", "webgpu"]
_contexts: dict = {}


def context(name: str) -> webnn.MLContext:
    if name == "webgpu" and not WEBGPU_SPECS:
        _no_webgpu()
    if name not in _contexts or _contexts[name].lost is not None:
        _contexts[name] = webnn.ml.create_context(device=name if name == "cpu" else WEBGPU_SPECS[0])
    return _contexts[name]


@pytest.fixture(params=[pytest.param(d, marks=pytest.mark.webgpu) if d == "webgpu" else d for d in DEVICES])
def ctx(request) -> webnn.MLContext:
    return context(request.param)


def desc(array: np.ndarray) -> dict:
    return {"data_type": str(array.dtype), "shape": list(array.shape)}


def run_graph(ctx, build, inputs: dict, constants: dict | None = None) -> dict:
    """Build ``build(g, operands) -> {name: operand}`` over inputs (and constants) and dispatch it once
    through MLTensors (create/write/dispatch/read), returning {name: numpy array}."""
    g = webnn.MLGraphBuilder(ctx)
    ops = {n: g.input(n, desc(a)) for n, a in inputs.items()}
    for n, a in (constants or {}).items():
        ops[n] = g.constant(desc(a), a)
    outs = build(g, ops)
    if not isinstance(outs, dict):
        outs = {"out": outs}
    graph = g.build(outs)
    tin = {}
    for n, a in inputs.items():
        tin[n] = ctx.create_tensor({**desc(a), "writable": True})
        ctx.write_tensor(tin[n], a)
    tout = {
        n: ctx.create_tensor({"data_type": o.data_type, "shape": o.shape, "readable": True})
        for n, o in outs.items()
    }
    ctx.dispatch(graph, tin, tout)
    return {n: ctx.read_tensor(t) for n, t in tout.items()}


def _ordered(bits: np.ndarray, width: int) -> np.ndarray:
    """Float bit patterns mapped to integers whose order is the floats' order (+0 == -0)."""
    b = bits.astype(np.int64)
    sign = 1 << (width - 1)
    return np.where(b & sign, -(b & (sign - 1)), b)


def ulp_distance(actual: np.ndarray, expected: np.ndarray, dtype) -> np.ndarray:
    """ULP distance between ``actual`` and ``expected`` (float64, rounded to ``dtype`` first)."""
    dtype = np.dtype(dtype)
    a = np.asarray(actual).astype(dtype)
    e = np.asarray(expected, dtype=np.float64).astype(dtype)
    ints = {4: np.uint32, 2: np.uint16}[dtype.itemsize]
    da = _ordered(a.view(ints), dtype.itemsize * 8)
    de = _ordered(e.view(ints), dtype.itemsize * 8)
    dist = np.abs(da - de)
    both_nan = np.isnan(a) & np.isnan(e)
    return np.where(both_nan, 0, dist)


def assert_conforms(actual, expected, dtype, *, ulp: int | None = None, atol: float | None = None, what=""):
    """The WPT check: every element within ``ulp`` ULPs (floats), or ``atol``, or exactly (integers)."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        np.testing.assert_array_equal(actual, expected.astype(dtype), err_msg=what)
        return
    if atol is not None:
        diff = np.abs(actual.astype(np.float64) - expected)
        ok = (diff <= atol) | (np.isnan(actual) & np.isnan(expected)) | (actual == expected)
        assert ok.all(), f"{what}: max abs diff {np.nanmax(diff)} > atol {atol}"
        return
    dist = ulp_distance(actual, expected, dtype)
    worst = int(dist.max()) if dist.size else 0
    assert worst <= ulp, (
        f"{what}: {worst} ULP > {ulp} at {np.unravel_index(int(dist.argmax()), dist.shape)}: "
        f"got {actual.reshape(-1)[int(dist.argmax())]!r}, want {expected.reshape(-1)[int(dist.argmax())]!r}"
    )


# ----------------------------------------------------------------------------------- references (float64)


def erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def gelu(x):
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def layer_norm(x, axes, scale=None, bias=None, eps=1e-5):
    mean = x.mean(axis=tuple(axes), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=tuple(axes), keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    return y


def conv2d_nchw(x, w, pad=(0, 0, 0, 0), stride=(1, 1), dil=(1, 1), groups=1):
    """Direct convolution: x (N, C, H, W), w (O, C/groups, KH, KW)."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[1]), (pad[2], pad[3])))
    oh = (h + pad[0] + pad[1] - (kh - 1) * dil[0] - 1) // stride[0] + 1
    ow = (wd + pad[2] + pad[3] - (kw - 1) * dil[1] - 1) // stride[1] + 1
    out = np.zeros((n, o, oh, ow))
    og = o // groups
    for g in range(groups):
        xs = xp[:, g * cg : (g + 1) * cg]
        for ky in range(kh):
            for kx in range(kw):
                ys, xs0 = ky * dil[0], kx * dil[1]
                patch = xs[
                    :,
                    :,
                    ys : ys + stride[0] * (oh - 1) + 1 : stride[0],
                    xs0 : xs0 + stride[1] * (ow - 1) + 1 : stride[1],
                ]
                out[:, g * og : (g + 1) * og] += np.einsum(
                    "nchw,oc->nohw", patch, w[g * og : (g + 1) * og, :, ky, kx]
                )
    return out


def conv_transpose2d_nchw(x, w, pad=(0, 0, 0, 0), stride=(1, 1), dil=(1, 1), out_pad=(0, 0), groups=1):
    """Transposed convolution by scatter-add: x (N, C, H, W), w (C, O/groups, KH, KW)."""
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    cg = c // groups
    full_h = (h - 1) * stride[0] + (kh - 1) * dil[0] + 1 + out_pad[0]
    full_w = (wd - 1) * stride[1] + (kw - 1) * dil[1] + 1 + out_pad[1]
    out = np.zeros((n, og * groups, full_h + 0, full_w + 0))
    for g in range(groups):
        for iy in range(h):
            for ix in range(wd):
                for ky in range(kh):
                    for kx in range(kw):
                        oy, ox = iy * stride[0] + ky * dil[0], ix * stride[1] + kx * dil[1]
                        out[:, g * og : (g + 1) * og, oy, ox] += np.einsum(
                            "nc,co->no",
                            x[:, g * cg : (g + 1) * cg, iy, ix],
                            w[g * cg : (g + 1) * cg, :, ky, kx],
                        )
    return out[:, :, pad[0] : full_h - pad[1], pad[2] : full_w - pad[3]]


def pool2d_nchw(x, kind, win, pad=(0, 0, 0, 0), stride=(1, 1), dil=(1, 1), ceil=False):
    n, c, h, w = x.shape
    kh, kw = win

    def size(s, k, p0, p1, st, d):
        span = s + p0 + p1 - ((k - 1) * d + 1)
        return (-(-span // st) if ceil else span // st) + 1

    oh, ow = size(h, kh, pad[0], pad[1], stride[0], dil[0]), size(w, kw, pad[2], pad[3], stride[1], dil[1])
    out = np.zeros((n, c, oh, ow))
    for oy in range(oh):
        for ox in range(ow):
            ys = [oy * stride[0] + k * dil[0] - pad[0] for k in range(kh)]
            xs = [ox * stride[1] + k * dil[1] - pad[2] for k in range(kw)]
            ys = [y for y in ys if 0 <= y < h]
            xs = [v for v in xs if 0 <= v < w]
            win_v = x[:, :, ys][:, :, :, xs].reshape(n, c, -1)
            if kind == "max":
                out[:, :, oy, ox] = win_v.max(-1)
            elif kind == "average":
                out[:, :, oy, ox] = win_v.mean(-1)
            else:
                out[:, :, oy, ox] = np.sqrt((win_v**2).sum(-1))
    return out
