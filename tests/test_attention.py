"""scaled_dot_product_attention on every backend against a float64 numpy reference, and the fused kernel's plan."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import accelkit as ak
from accelkit.backends.webgpu import attention as wa
from accelkit.backends.webgpu.attention import (
    DECODE_KEYS,
    DECODE_MAX_TQ,
    DIM_BUCKETS,
    MAX_HEAD_DIM,
    TILE_CONFIGS,
    choose_shape,
    plan_attention,
    subgroup_width,
)
from accelkit.backends.webgpu.wgsl import Caps, Layout
from accelkit.tensor import float16, float32

sdpa = ak.ops.scaled_dot_product_attention
F32_MIN = float(np.finfo(np.float32).min)


def reference(q, k, v, mask=None, causal=False, scale=None) -> np.ndarray:
    """softmax(q k^T * scale + mask [causal]) v in float64; rows with nothing to attend give zeros."""
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ np.swapaxes(k, -1, -2) * scale
    if mask is not None:
        m = np.asarray(mask)
        s = s + (np.where(m, 0.0, -np.inf) if m.dtype == np.bool_ else m.astype(np.float64))
    tq, tk = s.shape[-2:]
    if causal:
        s = np.where(np.arange(tk)[None, :] <= np.arange(tq)[:, None] + (tk - tq), s, -np.inf)
    top = s.max(axis=-1, keepdims=True)
    e = np.exp(s - np.where(np.isfinite(top), top, 0.0))
    z = e.sum(axis=-1, keepdims=True)
    return np.where(z > 0, e / np.where(z > 0, z, 1.0), 0.0) @ v


def randn(rng, *shape, dtype=np.float32) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


def run(dev, q, k, v, mask=None, causal=False, scale=None):
    t = [ak.tensor(x, device=dev) for x in (q, k, v)]
    return sdpa(*t, attn_mask=mask, is_causal=causal, scale=scale)


# ----------------------------------------------------------------------------- numerics


@pytest.mark.parametrize(
    "b, h, tq, tk, d, dv, causal",
    [
        (2, 3, 17, 17, 64, 64, False),  # tile path, a partial query block and key tile
        (2, 3, 71, 71, 64, 64, True),  # causal, Tq == Tk, several query blocks
        (1, 2, 37, 53, 10, 14, True),  # causal with Tq < Tk (KV cache prefix), odd head dims
        (1, 2, 131, 97, 14, 10, True),  # causal with Tq > Tk: the first 34 rows see nothing -> zeros
        (1, 2, 1, 37, 80, 80, False),  # decode path (Tq = 1)
        (1, 2, 1, 37, 80, 80, True),  # decode + causal: the one query sees every key
        (1, 1, 3, 2, 64, 64, True),  # decode path with Tq > Tk: one empty row
        (2, 1, 1, DECODE_KEYS + 476, 64, 64, False),  # decode over more than one key tile (Whisper: 1500)
        (1, 1, 1500, 1500, 64, 64, False),  # Whisper's encoder length
        (1, 2, 4, 61, 32, 32, True),  # decode path, several rows
        (3, 1, 5, 7, 8, 16, False),  # tiny head dim, Dv != D
        (1, 1, 1, 1, 1, 1, False),
    ],
)
def test_matches_reference(dev, rng, assert_close, b, h, tq, tk, d, dv, causal):
    q, k, v = randn(rng, b, h, tq, d), randn(rng, b, h, tk, d), randn(rng, b, h, tk, dv)
    out = run(dev, q, k, v, causal=causal)
    assert out.shape == (b, h, tq, dv) and out.dtype is float32
    assert_close(out, reference(q, k, v, causal=causal), k=tk, what=f"{dev.spec}")


def test_large_scores_and_growing_max(dev, rng, assert_close):
    """Scores far beyond exp's range, rising along the keys: the running max is rescaled every tile."""
    b, h, tq, tk, d = 1, 2, 40, 300, 64
    q = randn(rng, b, h, tq, d) * 4
    k = randn(rng, b, h, tk, d) * np.linspace(0.1, 6.0, tk, dtype=np.float32)[:, None]
    v = randn(rng, b, h, tk, d)
    for rows in (tq, 1):
        out = run(dev, q[:, :, :rows], k, v).numpy()
        assert np.isfinite(out).all()
        assert_close(out, reference(q[:, :, :rows], k, v), k=tk, what=f"{rows} rows")


def test_padding_mask_with_fully_padded_rows(dev, rng, assert_close):
    b, h, t, d = 3, 2, 23, 64
    q, k, v = randn(rng, b, h, t, d), randn(rng, b, h, t, d), randn(rng, b, h, t, d)
    keep = np.ones((b, t), bool)
    keep[0, 19:] = False  # padding at the end
    keep[1, :] = False  # nothing to attend: -inf gives zeros
    neg_inf = np.where(keep, 0.0, -np.inf).astype(np.float32)[:, None, None, :]  # (B, 1, 1, Tk)
    out = run(dev, q, k, v, neg_inf).numpy()
    assert not np.isnan(out).any()
    assert np.all(out[1] == 0.0)
    assert_close(out, reference(q, k, v, neg_inf), k=t, what="-inf padding mask")
    # Hugging Face style finfo.min: a fully padded row averages v uniformly, as on the CPU backend
    fmin = np.where(keep, 0.0, F32_MIN).astype(np.float32)[:, None, None, :]
    out = run(dev, q, k, v, fmin)
    assert_close(out, reference(q, k, v, fmin), k=t, what="finfo.min padding mask")
    assert_close(out.numpy()[1], np.broadcast_to(v[1].mean(axis=-2, keepdims=True), (h, t, d)), k=t)


def test_boolean_mask_and_causal_together(dev, rng, assert_close):
    b, h, tq, tk, d = 2, 3, 13, 29, 16
    q, k, v = randn(rng, b, h, tq, d), randn(rng, b, h, tk, d), randn(rng, b, h, tk, d)
    attend = rng.random((b, 1, tq, tk)) > 0.3
    attend[0, 0, 4] = False  # one row with nothing
    out = run(dev, q, k, v, attend, causal=True).numpy()
    assert np.all(out[0, :, 4] == 0.0) and not np.isnan(out).any()
    assert_close(out, reference(q, k, v, attend, causal=True), k=tk)


def test_additive_float_mask_and_custom_scale(dev, rng, assert_close):
    b, h, tq, tk, d = 1, 2, 7, 11, 32
    q, k, v = randn(rng, b, h, tq, d), randn(rng, b, h, tk, d), randn(rng, b, h, tk, d)
    bias = randn(rng, 1, h, tq, tk) * 3  # e.g. a relative position bias, broadcast over batch
    out = run(dev, q, k, v, bias, scale=0.37)
    assert_close(out, reference(q, k, v, bias, scale=0.37), k=tk)


def test_fused_qkv_views(dev, rng, assert_close):
    """q, k, v as strided views of one (B, T, 3, H, D) projection, with reversed keys (negative strides)."""
    b, t, h, d = 2, 19, 3, 14
    qkv = randn(rng, b, t, 3, h, d)
    x = ak.tensor(qkv, device=dev)
    q, k, v = (x[:, :, i].permute(0, 2, 1, 3) for i in range(3))  # (B, H, T, D) views
    assert q.strides == (t * 3 * h * d, d, 3 * h * d, 1)
    nq, nk, nv = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
    assert_close(sdpa(q, k, v, is_causal=True), reference(nq, nk, nv, causal=True), k=t)
    rk, rv = k[:, :, ::-1], v[:, :, ::-1]
    assert rk.strides[2] < 0
    assert_close(sdpa(q, rk, rv), reference(nq, nk[:, :, ::-1], nv[:, :, ::-1]), k=t)


def test_out_into_permuted_view(dev, rng, assert_close):
    """Heads written straight into a (B, T, H, Dv) tensor through its (B, H, T, Dv) view; nothing else touched."""
    b, h, tq, tk, d = 2, 3, 9, 12, 10
    q, k, v = randn(rng, b, h, tq, d), randn(rng, b, h, tk, d), randn(rng, b, h, tk, d)
    tq_, tk_, tv_ = (ak.tensor(x, device=dev) for x in (q, k, v))
    for rows in (tq, 1):  # tile and decode paths
        base = ak.tensor(np.full((b, tq, h, d), 7.0, np.float32), device=dev)
        view = base.permute(0, 2, 1, 3)[:, :, :rows]
        assert sdpa(tq_[:, :, :rows], tk_, tv_, is_causal=True, out=view) is view
        expect = np.full((b, tq, h, d), 7.0)
        expect[:, :rows] = reference(q[:, :, :rows], k, v, causal=True).transpose(0, 2, 1, 3)
        assert_close(base, expect, k=tk, what=f"out view, {rows} query rows")


@pytest.mark.parametrize("d", [80, 256])
def test_small_workgroup_memory(webgpu, rng, assert_close, d):
    """The tile shapes chosen for an adapter with the WebGPU minimum limits (16 KiB, 256 lanes) still compute."""
    be = webgpu.backend
    caps = dataclasses.replace(
        be.caps, max_workgroup_storage=16384, max_invocations=256, max_workgroup_size_x=256
    )
    b, h, tq, tk = 2, 2, 45, 19
    q, k, v = randn(rng, b, h, tq, d), randn(rng, b, h, tk, d), randn(rng, b, h, tk, d)
    tq_, tk_, tv_ = (ak.tensor(x, device=webgpu) for x in (q, k, v))
    out = ak.empty(b, h, tq, d, device=webgpu)
    plan = plan_attention(caps, tq_, tk_, tv_, None, out, 1 / math.sqrt(d), True)
    assert plan.extra["workgroup_bytes"] <= 16384 and plan.key[1] == "tile"
    be.launch(plan, [x.storage.handle for x in (tq_, tk_, tv_)] + [None, out.storage.handle])
    assert_close(out, reference(q, k, v, causal=True), k=tk)


def test_broadcast_batch_and_ranks(dev, rng, assert_close):
    q = randn(rng, 4, 2, 6, 8)
    k, v = randn(rng, 1, 2, 5, 8), randn(rng, 1, 1, 5, 8)  # broadcast over batch (stride 0), v over heads
    assert_close(run(dev, q, k, v), reference(q, k, v), k=5, what="broadcast")
    q3, k3, v3 = randn(rng, 3, 5, 16), randn(rng, 3, 7, 16), randn(rng, 3, 7, 16)  # (H, T, D)
    assert_close(run(dev, q3, k3, v3), reference(q3, k3, v3), k=7, what="rank 3")
    q5, k5, v5 = randn(rng, 2, 2, 2, 5, 8), randn(rng, 2, 2, 2, 4, 8), randn(rng, 2, 2, 2, 4, 8)
    assert_close(run(dev, q5, k5, v5, causal=True), reference(q5, k5, v5, causal=True), k=4, what="rank 5")


@pytest.mark.parametrize("tq", [1, 21])
def test_float16(dev, rng, assert_close, tq):
    if dev.backend_name == "webgpu" and not dev.backend.caps.f16:
        pytest.skip("adapter lacks shader-f16")
    b, h, tk, d = 2, 2, 33, 64
    q, k, v = (randn(rng, b, h, n, d, dtype=np.float16) for n in (tq, tk, tk))
    mask = np.where(rng.random((b, 1, 1, tk)) > 0.2, 0.0, -np.inf).astype(np.float16)
    out = run(dev, q, k, v, mask, causal=True)
    assert out.dtype is float16
    assert_close(out, reference(q, k, v, mask, causal=True), k=tk)


@settings(max_examples=12, deadline=None)
@given(
    b=st.integers(1, 2),
    h=st.integers(1, 3),
    tq=st.integers(1, 70),
    tk=st.integers(1, 70),
    d=st.sampled_from([3, 8, 14, 32, 64, 80]),
    dv=st.sampled_from([5, 16, 64]),
    causal=st.booleans(),
    masked=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_property_shapes(webgpu, assert_close, b, h, tq, tk, d, dv, causal, masked, seed):
    rng = np.random.default_rng(seed)
    q, k, v = randn(rng, b, h, tq, d), randn(rng, b, h, tk, d), randn(rng, b, h, tk, dv)
    mask = (rng.random((b, 1, 1, tk)) > 0.25) if masked else None
    assert_close(run(webgpu, q, k, v, mask, causal), reference(q, k, v, mask, causal), k=tk)


def launch_forced(dev, q, k, v, mask, causal, **kw):
    """One dispatch of the kernel shape ``kw`` asks for (config=..., subgroups=...), output poisoned first."""
    b, h, tq, _ = q.shape
    tensors = [ak.tensor(x, device=dev) for x in (q, k, v)]
    m = None if mask is None else ak.tensor(mask, device=dev).expand(b, h, tq, k.shape[2])
    out = ak.tensor(np.full((b, h, tq, v.shape[-1]), np.nan, q.dtype), device=dev)
    try:
        plan = plan_attention(dev.backend.caps, *tensors, m, out, 1 / math.sqrt(q.shape[-1]), causal, **kw)
    except ak.KernelError as exc:
        if "does not fit" in str(exc):
            pytest.skip(f"{kw} does not fit this adapter")
        raise
    handles = [t.storage.handle for t in tensors] + [
        None if m is None else m.storage.handle,
        out.storage.handle,
    ]
    dev.backend.launch(plan, handles)
    return plan, out


@pytest.mark.parametrize("config", [*TILE_CONFIGS, "decode128", "decode256", "decode1024"])
def test_every_kernel_shape(webgpu, rng, assert_close, config):
    """Each tile configuration and decode width, forced, on awkward cases (small head dims, so that the
    large tiles fit a software adapter's workgroup memory too)."""
    cases = [
        (2, 2, 70, 45, 16, 16, True, False),  # causal with Tq > Tk: rows that see nothing
        (1, 3, 37, 131, 14, 10, False, True),  # -inf padding mask with an empty batch entry; element loads
        (1, 1, 3, 200, 8, 16, True, False),  # a few rows over many keys (partial tiles)
    ]
    for b, h, tq, tk, d, dv, causal, masked in cases:
        q, k, v = randn(rng, b, h, tq, d), randn(rng, b, h, tk, d), randn(rng, b, h, tk, dv)
        mask = None
        if masked:
            keep = rng.random((b, 1, 1, tk)) > 0.3
            keep[0] = False
            mask = np.where(keep, 0.0, -np.inf).astype(np.float32)
        plan, out = launch_forced(webgpu, q, k, v, mask, causal, config=config)
        want = "decode" if config.startswith("decode") else "tile"
        assert plan.key[1] == want
        expect = reference(q, k, v, mask, causal)
        assert_close(out, expect, k=tk, what=f"{config} {plan.label}")
        assert np.all(out.numpy()[expect == 0.0] == 0.0)


@pytest.mark.parametrize("config", list(TILE_CONFIGS))
def test_every_tile_at_swizzled_head_dims(webgpu, rng, assert_close, config):
    """Each tile configuration with q/k head dims of 8 vec4s (the K tile swizzled, as at D = 64) and short
    v rows (so that the 64x64 tiles fit a software adapter's 32 KiB): ViT's 197 rows (blocks that do not
    divide them) under a padding mask; causal with Tq > Tk and element loads."""
    cases = [
        (1, 2, 197, 197, 32, 16, False, True),
        (1, 1, 131, 97, 32, 13, True, False),
    ]
    for b, h, tq, tk, d, dv, causal, masked in cases:
        q, k, v = randn(rng, b, h, tq, d), randn(rng, b, h, tk, d), randn(rng, b, h, tk, dv)
        mask = None
        if masked:
            keep = rng.random((b, 1, 1, tk)) > 0.3
            mask = np.where(keep, 0.0, -np.inf).astype(np.float32)
        plan, out = launch_forced(webgpu, q, k, v, mask, causal, config=config)
        expect = reference(q, k, v, mask, causal)
        assert_close(out, expect, k=tk, what=f"{config} {plan.label}")
        assert np.all(out.numpy()[expect == 0.0] == 0.0)


@pytest.mark.parametrize("config", [c for c, spec in TILE_CONFIGS.items() if spec[3] <= 4])
def test_subgroup_row_reductions(webgpu, rng, assert_close, config):
    """The shuffle reductions, on configurations whose row lanes fit the adapter's smallest subgroup."""
    caps = webgpu.backend.caps
    if not caps.subgroups or subgroup_width(caps) < TILE_CONFIGS[config][3]:
        pytest.skip("no subgroups this wide")
    b, h, tq, tk, d = 2, 2, 45, 77, 32
    q, k, v = randn(rng, b, h, tq, d), randn(rng, b, h, tk, d), randn(rng, b, h, tk, d)
    plan, out = launch_forced(webgpu, q, k, v, None, True, config=config, subgroups=True)
    assert plan.extra["shape"].subgroups
    assert_close(out, reference(q, k, v, causal=True), k=tk, what=plan.label)


@pytest.mark.parametrize("config", ["q32k32", "decode"])
def test_float16_forced_shapes(webgpu, rng, assert_close, config):
    """float16 tiles (p in its own float32 array rather than over the K tile) and the decode shape."""
    if not webgpu.backend.caps.f16:
        pytest.skip("adapter lacks shader-f16")
    b, h, tq, tk, d = 1, 2, 40, 90, 64
    q, k, v = (randn(rng, b, h, n, d, dtype=np.float16) for n in (tq, tk, tk))
    plan, out = launch_forced(webgpu, q, k, v, None, True, config=config)
    assert not plan.extra["shape"].alias
    assert_close(out, reference(q, k, v, causal=True), k=tk, what=plan.label)


# ----------------------------------------------------------------------------- errors


def test_shape_errors_name_the_shapes(dev, rng):
    q, k, v = randn(rng, 1, 2, 5, 8), randn(rng, 1, 2, 6, 8), randn(rng, 1, 2, 6, 8)
    with pytest.raises(ak.ShapeError, match=re.escape("(1, 2, 6, 4)")):
        run(dev, q, k[..., :4], v)
    with pytest.raises(ak.ShapeError, match=r"k and v lengths differ"):
        run(dev, q, k, v[:, :, :5])
    with pytest.raises(ak.ShapeError, match=re.escape("(1, 2, 5, 5)")):
        run(dev, q, k, v, np.zeros((1, 2, 5, 5), np.float32))  # Tk is 6, not 5
    with pytest.raises(ak.ShapeError, match=re.escape("(2, 2) and (3, 2)")):
        run(dev, randn(rng, 2, 2, 5, 8), randn(rng, 3, 2, 6, 8), v)  # batch 2 vs 3 does not broadcast


def test_head_dim_limit(webgpu, rng):
    d = MAX_HEAD_DIM + 4
    q, k, v = randn(rng, 1, 1, 2, d), randn(rng, 1, 1, 3, d), randn(rng, 1, 1, 3, d)
    with pytest.raises(ak.KernelError, match=str(MAX_HEAD_DIM)):
        run(webgpu, q, k, v)
    q, k, v = randn(rng, 1, 1, 2, 256), randn(rng, 1, 1, 3, 256), randn(rng, 1, 1, 3, 256)
    check = reference(q, k, v)
    assert np.abs(run(webgpu, q, k, v).numpy() - check).max() < 1e-4


# ----------------------------------------------------------------------------- the plan (no device needed)


def layouts(dtype, b, h, tq, tk, d, dv, mask=False):
    lay = Layout.contiguous
    m = Layout(dtype, (b, h, tq, tk), (0, 0, 0, 1)) if mask else None
    return (
        lay(dtype, (b, h, tq, d)),
        lay(dtype, (b, h, tk, d)),
        lay(dtype, (b, h, tk, dv)),
        m,
        lay(dtype, (b, h, tq, dv)),
    )


def test_plan_binds_five_buffers_and_no_scores():
    q, k, v, m, o = layouts(float32, 2, 3, 100, 100, 64, 64, mask=True)
    plan = plan_attention(Caps(), q, k, v, m, o, 0.125, True)
    assert plan.access == ("read", "read", "read", "read", "read_write")
    bindings = re.findall(r"@binding\((\d+)\)\s*var<(\w+)", plan.source)
    assert bindings == [("0", "storage"), ("1", "storage"), ("2", "storage"), ("3", "storage"),
                        ("4", "storage"), ("5", "uniform")]  # fmt: skip
    assert len(re.findall(r"var<storage", plan.source)) == 5
    assert len(re.findall(r"var<storage, read_write>", plan.source)) == 1  # only out is written
    assert plan.extra["workgroup_bytes"] <= Caps().max_workgroup_storage  # the scores stay on chip
    assert plan.flops == 2.0 * 2 * 3 * 100 * 100 * 128
    assert "attention" in plan.label


def test_plan_key_has_no_shapes():
    def key(tq, tk, d, b=1, h=2):
        return plan_attention(Caps(), *layouts(float32, b, h, tq, tk, d, d), 0.1, False).key

    assert key(100, 200, 64) == key(100, 1500, 60, b=2, h=1)  # same head-dim bucket and config
    assert key(100, 200, 62) != key(100, 200, 64)  # rows of 62 are not whole vec4s: element loads
    assert key(1, 200, 64) == key(2, 7, 64)  # decode
    assert key(1, 200, 64) != key(100, 200, 64)
    assert key(100, 200, 64) != key(100, 200, 80)


@pytest.mark.parametrize("budget", [16384, 32768, 49152])
@pytest.mark.parametrize("d", [1, 8, 10, 14, 64, 80, 128, 200, 256])
@pytest.mark.parametrize("tq", [1, DECODE_MAX_TQ + 1])
def test_shape_respects_workgroup_limits(budget, d, tq):
    caps = Caps(max_workgroup_storage=budget, max_invocations=256, max_workgroup_size_x=256)
    for dtype in ("f32", "f16"):
        shape = choose_shape(caps, dtype, tq, d, d)
        assert shape.workgroup_bytes() <= budget
        assert shape.wg <= 256 and shape.tpr % shape.cl == 0
        assert shape.cl * shape.dc4 >= math.ceil(d / 4)
        assert (shape.variant == "decode") == (tq <= DECODE_MAX_TQ)


def test_plan_rejects_too_large_head_dim():
    with pytest.raises(ak.KernelError, match="256"):
        plan_attention(Caps(), *layouts(float32, 1, 1, 4, 4, 320, 64), 0.1, False)


H100 = Caps(
    f16=True,
    subgroups=True,
    subgroup_min=4,  # what wgpu reports there; a warp is 32
    timestamps=True,
    max_workgroup_storage=49152,
    max_invocations=1024,
    max_workgroup_size_x=1024,
    vendor="NVIDIA",
    device_name="NVIDIA H100 80GB HBM3",
)


def test_planner_choices_on_a_large_gpu():
    assert subgroup_width(H100) == 32
    shape = choose_shape(H100, "f32", 128, 64, 64)  # BERT-base heads
    assert (shape.variant, shape.qb, shape.kb, shape.tpr, shape.tm, shape.subgroups) == (
        "tile",
        64,
        64,
        16,
        4,
        True,
    )
    assert shape.workgroup_bytes() == 49152  # q, k (then p) and v tiles, nothing else
    assert choose_shape(H100, "f32", 20, 64, 64).qb == 32  # a smaller block covers every row
    no_sg = dataclasses.replace(H100, subgroups=False)
    shape = choose_shape(no_sg, "f32", 1500, 64, 64)
    assert not shape.subgroups and shape.workgroup_bytes() <= 49152
    # decode: lanes grow with the keys, up to what the adapter allows
    assert choose_shape(H100, "f32", 1, 64, 64, tk=1500).tpr == 1024
    assert choose_shape(H100, "f32", 1, 64, 64, tk=100).tpr == 128
    assert choose_shape(Caps(), "f32", 1, 64, 64, tk=1500).tpr == 256


@pytest.mark.parametrize("config", [c for c, spec in TILE_CONFIGS.items() if spec[5:] == (True,)])
def test_row_swizzle_stays_inside_the_rows(config):
    """The Q/p row swizzle (x ^ (row & rswz)) permutes aligned groups that divide both row lengths."""
    for dk4 in DIM_BUCKETS:
        shape = wa.tile_shape(H100, "f32", config, dk4, dk4)
        group = shape.rswz + 1
        assert group & shape.rswz == 0 and dk4 % group == 0 and (shape.kb // 4) % group == 0
        assert shape.rswz == min(3, dk4 - 1)  # up to 4 row groups of a 32-lane subgroup apart
        assert ("rswz" in shape.render()) == (shape.rswz > 0)
    plain = wa.tile_shape(H100, "f32", config.removesuffix("s"), 16, 16)
    assert plain.rswz == 0 and "rswz" not in plain.render()


def test_big_grid_rule(monkeypatch):
    """Large grids (batch x heads x query blocks >= BIG_GRID) try BIG_TILE_ORDER: the first configuration
    that fits with at most BIG_MAX_PAD of Tq in padding rows and less padding than today's (or as tall
    a block), else today's choice."""
    today = choose_shape(H100, "f32", 128, 64, 64)
    assert choose_shape(H100, "f32", 128, 64, 64, bh=32 * 12) == today  # BERT's 128 rows: q100 pads 72
    vit = choose_shape(H100, "f32", 197, 64, 64, bh=32 * 12)
    assert (vit.qb, vit.kb, vit.tm) == (100, 32, 5)  # ViT's 197 rows: 3 rows of padding, not 59
    monkeypatch.setattr(wa, "BIG_TILE_ORDER", ())
    assert choose_shape(H100, "f32", 197, 64, 64, bh=32 * 12) == choose_shape(H100, "f32", 197, 64, 64)
    monkeypatch.setattr(wa, "SMALL_TILE_ORDER", ())  # test_small_grid_rule's business
    monkeypatch.setattr(wa, "BIG_TILE_ORDER", ("q64k64t8", "q100k32t5"))
    monkeypatch.setattr(wa, "BIG_GRID", 512)
    monkeypatch.setattr(wa, "BIG_MAX_PAD", 0.1)

    def chosen(tq, bh, caps=H100, dtype="f32"):
        shape = choose_shape(caps, dtype, tq, 64, 64, bh=bh)
        return shape if shape.variant == "decode" else (shape.qb, shape.kb, shape.tm, shape.tpr)

    assert chosen(128, 32 * 12) == (64, 64, 8, 8)  # BERT-base at batch 32: 2 blocks of 64 rows, no padding
    assert chosen(197, 32 * 12) == (100, 32, 5, 8)  # ViT-B/16: q64k64t8 would pad 59 rows, q100 3
    assert chosen(128, 256) == (64, 64, 8, 8)  # 256 heads x 2 blocks = BIG_GRID workgroups
    assert chosen(128, 255) == (64, 64, 4, 16)  # one block fewer: today's choice
    assert chosen(128, None) == (64, 64, 4, 16)  # no batch size given
    assert chosen(197, 12) == (64, 64, 4, 16)  # batch 1
    assert chosen(1, 10_000).variant == "decode"  # decode rows are not tiles
    monkeypatch.setattr(wa, "BIG_TILE_ORDER", ("q64k64t8",))
    assert chosen(197, 32 * 12) == (64, 64, 4, 16)  # nothing pads little enough: today's choice
    assert chosen(128, 32 * 12) == (64, 64, 8, 8)  # as tall a block as today's, no padding
    small = dataclasses.replace(H100, max_workgroup_storage=32768)  # q64k64t8 needs 48 KiB
    assert choose_shape(small, "f32", 128, 64, 64, bh=32 * 12) == choose_shape(small, "f32", 128, 64, 64)
    few = dataclasses.replace(H100, max_invocations=32, max_workgroup_size_x=32)  # q64k64t8 has 64 lanes
    assert choose_shape(few, "f32", 128, 64, 64, bh=32 * 12) == choose_shape(few, "f32", 128, 64, 64)
    monkeypatch.setattr(wa, "BIG_TILE_ORDER", ("q64k64t8", "q100k32t5"))
    q, k, v, m, o = layouts(float32, 32, 12, 197, 197, 64, 64)
    assert plan_attention(H100, q, k, v, m, o, 0.125, False).extra["shape"].qb == 100  # the plan passes B*H
    q, k, v, m, o = layouts(float32, 1, 12, 197, 197, 64, 64)
    assert plan_attention(H100, q, k, v, m, o, 0.125, False).extra["shape"].qb == 64


def test_small_grid_rule(monkeypatch):
    """Fewer than SMALL_GRID workgroups (batch 1 of a short sequence) on a hardware adapter: SMALL_TILE_ORDER
    first when its block is smaller than today's choice; software adapters and large grids keep today's."""
    monkeypatch.setattr(wa, "SMALL_GRID", 128)
    monkeypatch.setattr(wa, "SMALL_TILE_ORDER", ("q32k64x16t2",))

    def chosen(tq, bh, caps=H100):
        shape = choose_shape(caps, "f32", tq, 64, 64, bh=bh)
        return (shape.qb, shape.kb, shape.tm, shape.tpr)

    today = (64, 64, 4, 16)
    assert chosen(128, 12) == (32, 64, 2, 16)  # BERT-base batch 1: 24 workgroups -> 48
    assert chosen(197, 12) == (32, 64, 2, 16)  # ViT-B/16 batch 1: 48 -> 84
    assert chosen(128, 63) == (32, 64, 2, 16)  # 126 workgroups
    assert chosen(128, 64) == today  # 128: not small
    assert chosen(128, None) == today  # no batch size given
    assert chosen(128, 32 * 12) == today
    soft = dataclasses.replace(H100, is_software=True)
    assert choose_shape(soft, "f32", 128, 64, 64, bh=12) == choose_shape(soft, "f32", 128, 64, 64)
    few = dataclasses.replace(H100, max_invocations=128, max_workgroup_size_x=128)  # q32k64x16t2: 256 lanes
    assert choose_shape(few, "f32", 128, 64, 64, bh=12) == choose_shape(few, "f32", 128, 64, 64)
    q, k, v, m, o = layouts(float32, 1, 12, 128, 128, 64, 64)
    assert plan_attention(H100, q, k, v, m, o, 0.125, False).extra["shape"].qb == 32  # the plan passes B*H


def test_plan_reads_whole_vec4_rows_only_when_it_can():
    def shape(q=None, k=None, v=None, out=None, d=64):
        lay = layouts(float32, 2, 3, 50, 60, d, d)
        q, k, v, _, out = (x or y for x, y in zip((q, k, v, None, out), lay))
        return plan_attention(H100, q, k, v, None, out, 0.1, False).extra["shape"]

    assert shape().vec and shape().vec_out
    assert not shape(d=62).vec  # rows of 62 elements
    t, h, d = 50, 3, 64  # heads split out of a fused (B, T, 3, H, D) projection: rows stay whole vec4s
    fused = Layout(float32, (2, h, t, d), (t * 3 * h * d, d, 3 * h * d, 1), h * d)
    assert shape(q=fused).vec
    assert not shape(q=Layout(float32, (2, h, t, d), (t * h * d, d, h * d, 1), 2)).vec  # offset 2
    assert not shape(k=Layout(float32, (2, h, 60, d), (h * d * 60, d * 60, 1, 60))).vec  # k stored transposed
    reversed_keys = Layout(float32, (2, h, 60, d), (60 * h * d, 60 * d, -d, 1), 59 * d)
    assert shape(k=reversed_keys).vec  # negative row strides are fine
    assert not shape(out=Layout(float32, (2, h, t, d), (t * h * d, 1, h * d, h))).vec_out
