"""The fixed-shape decoding ops, on every backend: ``ops.update_slice_`` (a write at an offset read on the
device) and attention's ``kv_start`` (the key count read on the device), against numpy float64.

These are what let one captured plan serve every decoding step: the position is data, not a shape.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import check_close

import accelkit as ak
from accelkit import ops
from accelkit.backends.webgpu.attention import DECODE_MAX_TQ, choose_shape
from accelkit.backends.webgpu.wgsl import Caps


def put(a, dev) -> ak.Tensor:
    return ak.tensor(np.asarray(a), device=dev)


def pos(p, dev, *rest) -> ak.Tensor:
    return ak.tensor(np.array([p, *rest], np.int32), device=dev)


# ----------------------------------------------------------------------------------- update_slice_


@pytest.mark.parametrize("at", [0, 3, 6, 9, -4])
def test_update_slice_writes_a_strided_view_at_the_device_offset(dev, rng, at):
    cache = rng.standard_normal((2, 3, 11, 7)).astype(np.float32)  # (B, H, L, D), odd sizes
    new = rng.standard_normal((2, 5, 3, 7)).astype(np.float32)  # (B, T, H, D), written as (B, H, T, D)
    c = put(cache, dev)
    out = ops.update_slice_(c, put(new, dev).permute(0, 2, 1, 3), pos(at, dev, 99), axis=2)
    assert out is c
    p = min(max(at, 0), 11 - 5)  # clamped to [0, L - T]
    expected = cache.copy()
    expected[:, :, p : p + 5] = new.transpose(0, 2, 1, 3)
    np.testing.assert_array_equal(c.numpy(), expected)


def test_update_slice_one_plan_serves_every_offset(dev, rng):
    """Positions written step by step through one dispatch shape, as a decoder fills its cache."""
    length, d = 13, 4
    c = put(np.zeros((1, 2, length, d), np.float32), dev)
    rows = rng.standard_normal((length, 2, d)).astype(np.float32)
    for t in range(length):
        ops.update_slice_(c, put(rows[t][None, :, None], dev), pos(t, dev), axis=-2)
    np.testing.assert_array_equal(c.numpy()[0], rows.transpose(1, 0, 2))


@pytest.mark.parametrize("axis", [0, 1])
def test_update_slice_other_axes_dtypes_and_offsets(dev, rng, axis):
    base = np.arange(5 * 6, dtype=np.int32).reshape(5, 6)
    dst = put(np.zeros((2, 5, 6), np.int32), dev)[1]  # a view at an element offset
    src = put(-base, dev)[:2] if axis == 0 else put(-base, dev)[:, 1:4]
    start = pos(0, dev, 0, 2)[2:]  # the offset at an element offset too
    ops.update_slice_(dst, src, start, axis=axis)
    expected = np.zeros((5, 6), np.int32)
    if axis == 0:
        expected[2:4] = -base[:2]
    else:
        expected[:, 2:5] = -base[:, 1:4]
    np.testing.assert_array_equal(dst.numpy(), expected)
    # float64 source data converts to the destination's dtype; a host int offset is uploaded
    f = put(np.zeros((4, 3), np.float32), dev)
    ops.update_slice_(f, np.ones((1, 3)), 2, axis=0)
    np.testing.assert_array_equal(f.numpy(), np.array([[0] * 3, [0] * 3, [1] * 3, [0] * 3], np.float32))


def test_update_slice_in_place_overlap(dev):
    x = put(np.arange(8, dtype=np.float32), dev)
    ops.update_slice_(x, x[:4], pos(3, dev), axis=0)  # source and destination share the buffer
    np.testing.assert_array_equal(x.numpy(), np.array([0, 1, 2, 0, 1, 2, 3, 7], np.float32))


def test_update_slice_bad_arguments(dev):
    c = put(np.zeros((2, 3, 8, 4), np.float32), dev)
    with pytest.raises(ak.ShapeError, match="every dim but axis 2"):
        ops.update_slice_(c, put(np.zeros((2, 2, 1, 4), np.float32), dev), pos(0, dev), axis=2)
    with pytest.raises(ak.ShapeError, match="longer"):
        ops.update_slice_(c, put(np.zeros((2, 3, 9, 4), np.float32), dev), pos(0, dev), axis=2)
    with pytest.raises(ak.DTypeError, match="int32"):
        ops.update_slice_(c, c[:, :, :1], put(np.zeros(1, np.float32), dev), axis=2)
    with pytest.raises(ak.ShapeError, match="empty"):
        ops.update_slice_(c, c[:, :, :1], put(np.zeros(0, np.int32), dev), axis=2)
    with pytest.raises(ak.InputError, match="in place"):
        ops.update_slice_(np.zeros((2, 3)), np.zeros((1, 3)), 0)


# ----------------------------------------------------------------------------------- attention kv_start


def reference(q, k, v, p, causal, mask=None):
    """float64 attention of q's rows at positions p.. over the first p + Tq keys."""
    tq = q.shape[-2]
    tk = min(max(p, 0) + tq, k.shape[-2])
    k, v = k[..., :tk, :].astype(np.float64), v[..., :tk, :].astype(np.float64)
    s = q.astype(np.float64) @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        s = s + mask[..., :tk]
    if causal:
        s = np.where(np.arange(tk)[None, :] <= np.arange(tq)[:, None] + tk - tq, s, -np.inf)
    s = np.exp(s - s.max(-1, keepdims=True))
    return (s / s.sum(-1, keepdims=True)) @ v


@pytest.mark.parametrize("tq", [1, 3, DECODE_MAX_TQ + 3])
@pytest.mark.parametrize("causal", [True, False])
def test_attention_reads_the_key_count_from_the_device(dev, rng, tq, causal):
    b, h, cap, d = 2, 3, 29, 12  # a cache of 29 positions, head dim 12
    k = rng.standard_normal((b, h, cap, d)).astype(np.float32)
    v = rng.standard_normal((b, h, cap, d)).astype(np.float32)
    kt, vt = put(k, dev), put(v, dev)
    for p in (0, 5, cap - tq, cap):  # the last clamps: only cap keys exist
        q = rng.standard_normal((b, h, tq, d)).astype(np.float32)
        out = ops.attention(put(q, dev), kt, vt, is_causal=causal, kv_start=pos(p, dev))
        check_close(out, reference(q, k, v, p, causal), k=cap, what=f"p={p}")


def test_attention_kv_start_with_a_mask_and_strided_views(dev, rng):
    b, h, cap, d, tq = 1, 2, 17, 8, 2
    qkv = rng.standard_normal((b, tq, 3 * h * d)).astype(np.float32)  # heads split out of a projection
    q = put(qkv, dev)[..., : h * d].reshape(b, tq, h, d).permute(0, 2, 1, 3)
    k = rng.standard_normal((b, h, cap, d)).astype(np.float32)
    v = rng.standard_normal((b, h, cap, d)).astype(np.float32)
    mask = np.where(rng.random((b, 1, tq, cap)) < 0.2, -np.inf, 0.0).astype(np.float32)
    mask[..., 0] = 0.0
    out = ops.attention(q, put(k, dev), put(v, dev), attn_mask=put(mask, dev), kv_start=pos(7, dev))
    qn = qkv[..., : h * d].reshape(b, tq, h, d).transpose(0, 2, 1, 3)
    check_close(out, reference(qn, k, v, 7, False, mask), k=cap)


def test_attention_kv_start_errors(dev):
    x = put(np.zeros((1, 1, 4, 4), np.float32), dev)
    with pytest.raises(ak.DTypeError, match="int32"):
        ops.attention(x, x, x, kv_start=put(np.zeros(1, np.float32), dev))
    with pytest.raises(ak.ShapeError, match="empty"):
        ops.attention(x, x, x, kv_start=put(np.zeros(0, np.int32), dev))


def test_the_planner_keeps_a_device_key_count_on_the_decode_shape():
    shape = choose_shape(Caps(), "f32", 16, 64, 64, tk=448, dyn=True)
    assert shape.variant == "decode" and shape.dyn
    assert "kv_start" in shape.render() and "@binding(6) var<uniform> P" in shape.render()
    assert "var<storage, read> kv_start" not in choose_shape(Caps(), "f32", 1, 64, 64, tk=448).render()
    with pytest.raises(ak.KernelError, match="decode shape"):
        choose_shape(Caps(), "f32", 16, 64, 64, tk=448, config="q16k16", dyn=True)
