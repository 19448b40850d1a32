"""``ops.linear_layer_norm``: layer_norm(x @ W.T + b + residual), fused on WebGPU where the matmul is
split-K (the layer norm's kernel sums the partial sums: kernels/layer_norm.wgsl, PARTS), two ops
elsewhere; against float64 numpy and against the two ops, on awkward shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import accelkit as ak
from accelkit.backends.webgpu import plans as wp
from accelkit.backends.webgpu.wgsl import Caps, Layout
from accelkit.tensor import float16, float32

CASES = [  # rows, K, N, forced tile and split
    (128, 768, 96, "64x64", 8),
    (37, 301, 44, "32x32", 3),  # primes, K not a multiple of the tile
    (1, 64, 12, "32x32", 2),  # one row: a gemv, no split-K, the two ops
    (130, 24, 96, "32x32", 5),  # more slices than K has tiles: empty slices
    (9, 40, 8, "32x32", 2),  # 8 columns: planned transposed, the two ops
]


def reference(x, w, b, r, g, beta, eps):
    v = x.astype(np.float64) @ w.astype(np.float64).T + r
    if b is not None:
        v = v + b
    return (v - v.mean(-1, keepdims=True)) / np.sqrt(v.var(-1, keepdims=True) + eps) * g + beta


def operands(rng, rows, k, n, bias=True, dtype=np.float32):
    x = rng.standard_normal((rows, k)).astype(dtype)
    w = (rng.standard_normal((n, k)) / np.sqrt(k)).astype(dtype)
    b = rng.standard_normal(n).astype(dtype) if bias else None
    r = rng.standard_normal((rows, n)).astype(dtype)
    g, beta = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    return x, w, b, r, g, beta


def run(dev, ops_args, eps=1e-5):
    t = [None if a is None else ak.tensor(a, device=dev) for a in ops_args]
    with ak.profile(dev) as prof:
        got = ak.ops.linear_layer_norm(t[0], t[1], t[2], t[3], t[4], t[5], eps)
        out = got.numpy()
    two = ak.ops.layer_norm(ak.ops.linear(t[0], t[1], t[2]), t[4], t[5], eps, residual=t[3]).numpy()
    return out, two, prof


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("rows,k,n,tile,split", CASES)
def test_matches_float64_on_every_backend(dev, rng, rows, k, n, tile, split, bias, monkeypatch):
    be = dev.backend
    if hasattr(be, "_tuned"):  # WebGPU: force the split-K plan that the fused path serves
        forced = {"tile": tile, "split": split}  # the tiled kernel's shapes only, as the autotuner's
        monkeypatch.setattr(be, "_tuned", lambda a, b: forced if min(a.shape[1], b.shape[2]) > 8 else {})
    args = operands(rng, rows, k, n, bias)
    got, two, prof = run(dev, args, 1e-12)
    want = reference(*args, 1e-12)
    assert np.abs(got - want).max() <= 2e-5 * np.abs(want).max()
    np.testing.assert_allclose(got, two, rtol=0, atol=2e-6 * np.abs(want).max())
    if be.name == "webgpu" and n % 4 == 0 and min(rows, n) > 8:
        # the matmul's tiled pass and the layer norm summing its slices: no separate reduction pass
        labels = " ".join(d.label for d in prof.records)
        assert f"splitk_sum s{split}" in labels and "splitk_reduce" not in labels, labels
        assert len(prof.records) == 2


@pytest.mark.webgpu
def test_without_split_k_it_is_the_two_ops(webgpu, rng, monkeypatch):
    monkeypatch.setattr(webgpu.backend, "_tuned", lambda a, b: {"tile": "32x32", "split": 1})
    args = operands(rng, 70, 48, 40)
    got, two, prof = run(webgpu, args)
    np.testing.assert_array_equal(got, two)
    labels = " ".join(d.label for d in prof.records)
    assert "splitk" not in labels and "layer_norm+residual" in labels


@pytest.mark.webgpu
def test_float16(webgpu, rng, monkeypatch):
    if not webgpu.backend.caps.f16:
        pytest.skip("adapter lacks shader-f16")
    monkeypatch.setattr(webgpu.backend, "_tuned", lambda a, b: {"tile": "32x32", "split": 4})
    args = operands(rng, 33, 128, 64, dtype=np.float16)
    got, two, _ = run(webgpu, args)
    want = reference(*[None if a is None else a.astype(np.float64) for a in args], 1e-5)
    assert np.abs(got.astype(np.float64) - want).max() <= 1e-2 * np.abs(want).max()


def test_bad_input_raises_what_the_two_ops_raise(dev, rng):
    x, w, b, r, g, beta = (ak.tensor(a, device=dev) for a in operands(rng, 4, 8, 12))
    with pytest.raises(ak.ShapeError, match="in_features"):
        ak.ops.linear_layer_norm(x, ak.tensor(np.zeros((12, 7), np.float32), device=dev), b, r, g, beta)
    with pytest.raises(ak.ShapeError, match="residual"):
        ak.ops.linear_layer_norm(x, w, b, ak.tensor(np.zeros((4, 11), np.float32), device=dev), g, beta)
    with pytest.raises(ak.ShapeError, match="weight"):
        ak.ops.linear_layer_norm(x, w, b, r, ak.tensor(np.zeros(5, np.float32), device=dev), beta)
    with pytest.raises(ak.InputError, match="eps"):
        ak.ops.linear_layer_norm(x, w, b, r, g, beta, -1.0)


def test_the_plan_needs_rows_of_whole_vec4s():
    caps = Caps(max_workgroup_storage=49152, max_invocations=1024, max_workgroup_size_x=1024)
    out = Layout.contiguous(float32, (1, 8, 10), 0)
    with pytest.raises(ak.KernelError, match="multiple of 4"):
        wp.plan_layer_norm(caps, None, None, None, out, 1e-5, None, 2, None)
    out = Layout.contiguous(float16, (1, 8, 12), 0)
    plan = wp.plan_layer_norm(caps, None, None, None, out, 1e-5, None, 3, None)
    assert plan.access[-1] == "read" and len(plan.access) == 6 and "splitk_sum s3" in plan.label
    assert "array<vec4<f32>>" in plan.source and "enable f16" in plan.source


@pytest.mark.webgpu
def test_bert_with_split_k_output_blocks_replays_and_matches(webgpu, rng, monkeypatch, tmp_path):
    """BERT's output blocks on the fused path (every tiled matmul forced to split-K, as a big GPU's batch 1
    gets): eager and replayed calls equal each other and the unsplit model to float32 rounding."""
    import json

    from accelkit.bench.presets import random_state_dict, write_checkpoint
    from accelkit.models.auto import bundled_dir

    # the bundled tiny BERT's hidden size (42) is no multiple of 4, which the fused kernel needs: 48
    config = json.loads((Path(bundled_dir("tiny-random-bert")) / "config.json").read_text())
    config.update(hidden_size=48, num_attention_heads=4, intermediate_size=76)
    path = write_checkpoint(tmp_path / "bert48", config, random_state_dict(config, seed=3))
    model = ak.load(str(path), device=webgpu)
    ids = rng.integers(0, model.config.vocab_size, (2, 11))
    mask = np.ones((2, 11), np.int64)
    mask[1, 8:] = 0
    with ak.options(compile=False):
        plain = model(input_ids=ids, attention_mask=mask).last_hidden_state.numpy()
    be = webgpu.backend
    forced = {"tile": "32x32", "split": 3}
    monkeypatch.setattr(be, "_tuned", lambda a, b: forced if min(a.shape[1], b.shape[2]) > 8 else {})
    with ak.profile(webgpu) as prof, ak.options(compile=False):
        eager = model(input_ids=ids, attention_mask=mask).last_hidden_state.numpy()
    labels = [d.label for d in prof.records]
    fused = [x for x in labels if "splitk_sum s3" in x]
    assert len(fused) == 2 * model.config.num_hidden_layers  # after attention and after the MLP, every layer
    assert not any("splitk_reduce" in x and "x" + str(model.config.hidden_size) + " " in x for x in labels)
    replays = [model(input_ids=ids, attention_mask=mask).last_hidden_state.numpy() for _ in range(3)]
    assert model.last_call.startswith("replayed plan")
    for got in replays:
        np.testing.assert_array_equal(got, eager)
    assert np.abs(eager - plain).max() <= 1e-5 * np.abs(plain).max()
