"""Convolutions as views + one matmul: ``conv1d`` (Whisper's stem) and ``conv2d`` (ViT's patchify)."""

from __future__ import annotations

from ..errors import ShapeError
from ..tensor.tensor import Tensor
from .dispatch import as_tensor, device_of
from .linalg import linear
from .shape import pad


def conv1d(x, weight, bias=None, stride: int = 1, padding: int = 0, activation: str | None = None) -> Tensor:
    """1-D convolution (B, C_in, L) * (C_out, C_in, k) -> (B, C_out, L_out), as unfold view + one matmul."""
    dev = device_of(x, weight)
    x, weight = as_tensor(x, dev), as_tensor(weight, dev)
    if x.ndim != 3 or weight.ndim != 3:
        raise ShapeError(
            f"conv1d: expected input (B, C_in, L) and weight (C_out, C_in, k), got {x.shape}, {weight.shape}"
        )
    bsz, cin, length = x.shape
    cout, cin_w, k = weight.shape
    if cin != cin_w:
        raise ShapeError(
            f"conv1d: input has {cin} channels but weight expects {cin_w}: {x.shape}, {weight.shape}"
        )
    if stride < 1 or padding < 0:
        raise ShapeError(
            f"conv1d: stride must be >= 1 and padding >= 0, got stride={stride}, padding={padding}"
        )
    lp = length + 2 * padding
    lout = (lp - k) // stride + 1
    if lout <= 0:
        raise ShapeError(f"conv1d: input length {length} (padded {lp}) is shorter than the kernel {k}")
    xp = pad(x, [(padding, padding)]) if padding else x.contiguous()
    # unfold: (B, L_out, C_in, k) view over the padded input, then one dense copy and one matmul
    s = xp.strides
    cols = Tensor(xp.storage, (bsz, lout, cin, k), (s[0], stride * s[2], s[1], s[2]), xp.offset, xp.dtype)
    cols = cols.contiguous().reshape(bsz * lout, cin * k)
    y = linear(cols, weight.reshape(cout, cin * k), bias, activation)  # (B*L_out, C_out)
    return y.reshape(bsz, lout, cout).permute(0, 2, 1)


def conv2d(x, weight, bias=None, stride=1, padding=0) -> Tensor:
    """2-D convolution (B, C, H, W) * (C_out, C, kh, kw) -> (B, C_out, H_out, W_out) via im2col views + matmul.

    ViT's patchify (kernel = stride = patch, no padding) needs no padding copy.
    """
    dev = device_of(x, weight)
    x, weight = as_tensor(x, dev), as_tensor(weight, dev)
    if x.ndim != 4 or weight.ndim != 4:
        raise ShapeError(
            f"conv2d: expected input (B, C, H, W) and weight (C_out, C, kh, kw), got {x.shape}, {weight.shape}"
        )
    sh, sw = (stride, stride) if isinstance(stride, int) else tuple(stride)
    ph, pw = (padding, padding) if isinstance(padding, int) else tuple(padding)
    bsz, c, h, w = x.shape
    cout, cw, kh, kw = weight.shape
    if c != cw:
        raise ShapeError(f"conv2d: input has {c} channels but weight expects {cw}: {x.shape}, {weight.shape}")
    if sh < 1 or sw < 1 or ph < 0 or pw < 0:
        raise ShapeError(f"conv2d: bad stride {stride!r} or padding {padding!r}")
    xp = pad(x, [(ph, ph), (pw, pw)]) if (ph or pw) else x.contiguous()
    hp, wp = h + 2 * ph, w + 2 * pw
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    if ho <= 0 or wo <= 0:
        raise ShapeError(f"conv2d: input {x.shape} (padded {hp}x{wp}) is smaller than the kernel {kh}x{kw}")
    s = xp.strides
    cols = Tensor(
        xp.storage,
        (bsz, ho, wo, c, kh, kw),
        (s[0], sh * s[2], sw * s[3], s[1], s[2], s[3]),
        xp.offset,
        xp.dtype,
    )
    cols = cols.contiguous().reshape(bsz * ho * wo, c * kh * kw)
    y = linear(cols, weight.reshape(cout, c * kh * kw), bias)  # (B*Ho*Wo, C_out)
    return y.reshape(bsz, ho, wo, cout).permute(0, 3, 1, 2)
