"""Device memory accounting: ``dev.memory()`` is exact (not an estimate) on every backend.

``allocated_bytes`` rises by the device size of each new tensor (a WebGPU buffer is rounded up to
its pool's size class) and returns to the same number when the tensors go; ``peak_bytes`` remembers
the high-water mark since ``reset_peak()``; ``buffers`` counts live buffers. Ops allocate only their
outputs: every temporary they make is gone when they return.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest

import accelkit as ak
from accelkit import ops


def snapshot(device) -> dict:
    gc.collect()
    return dict(device.memory())


def expected_device_bytes(device, nbytes: int) -> int:
    if device.backend_name == "webgpu":
        from accelkit.backends.webgpu import size_class

        return size_class(nbytes)
    return nbytes


def test_memory_keys(dev):
    m = dev.memory()
    for key in ("allocated_bytes", "peak_bytes", "buffers", "total_allocations"):
        assert isinstance(m[key], int) and m[key] >= 0, key
    assert m["peak_bytes"] >= m["allocated_bytes"]


SIZES = [
    ((1,), "float32"),
    ((1000,), "float32"),
    ((129, 257), "float32"),
    ((0, 4), "float32"),
    ((7,), "float16"),
    ((3, 5), "int32"),
    ((2, 2049), "float32"),
]


def test_each_tensor_adds_its_device_size(dev):
    base = snapshot(dev)
    made = []
    running = base["allocated_bytes"]
    for shape, dtype in SIZES:
        if dtype == "float16" and not dev.supports_f16:
            continue
        t = ak.zeros(*shape, dtype=dtype, device=dev)
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        assert t.nbytes == nbytes
        held = t.storage.device_bytes
        assert held == expected_device_bytes(dev, nbytes), (shape, dtype, held)
        assert held >= nbytes
        running += held
        made.append(t)
        m = dev.memory()
        assert m["allocated_bytes"] == running, (shape, dtype)
        assert m["buffers"] == base["buffers"] + len(made)
        assert m["total_allocations"] == base["total_allocations"] + len(made)
    # free in a scrambled order: every step gives back exactly that tensor's bytes
    for i in (3, 0, 2):
        if i < len(made):
            t = made.pop(i)
            running -= t.storage.device_bytes
            del t
            assert snapshot(dev)["allocated_bytes"] == running
    made.clear()
    after = snapshot(dev)
    assert after["allocated_bytes"] == base["allocated_bytes"]
    assert after["buffers"] == base["buffers"]


def test_from_numpy_and_to_account_the_same(dev, cpu):
    base = snapshot(dev)
    a = np.random.default_rng(1).standard_normal((33, 65)).astype(np.float32)
    t = ak.tensor(a, device=dev)
    assert snapshot(dev)["allocated_bytes"] - base["allocated_bytes"] == expected_device_bytes(dev, a.nbytes)
    c = t.to(cpu)
    if dev is not cpu:
        assert snapshot(dev)["allocated_bytes"] - base["allocated_bytes"] == expected_device_bytes(
            dev, a.nbytes
        )
    del t, c
    assert snapshot(dev)["allocated_bytes"] == base["allocated_bytes"]


def test_peak_bytes(dev):
    gc.collect()
    dev.reset_peak()
    base = dev.memory()
    assert base["peak_bytes"] == base["allocated_bytes"]
    a = ak.zeros(64, 1024, device=dev)  # 256 KiB
    b = ak.zeros(32, 1024, device=dev)  # 128 KiB
    high = base["allocated_bytes"] + a.storage.device_bytes + b.storage.device_bytes
    assert dev.memory()["peak_bytes"] == high
    del a
    gc.collect()
    c = ak.zeros(16, 1024, device=dev)
    m = dev.memory()
    assert m["allocated_bytes"] == base["allocated_bytes"] + b.storage.device_bytes + c.storage.device_bytes
    assert m["peak_bytes"] == high  # the high-water mark stays
    dev.reset_peak()
    assert dev.memory()["peak_bytes"] == dev.memory()["allocated_bytes"]
    del b, c
    gc.collect()
    assert dev.memory()["allocated_bytes"] == base["allocated_bytes"]


def test_views_and_failed_ops_allocate_nothing(dev):
    t = ak.zeros(8, 16, device=dev)
    base = snapshot(dev)
    v = [t.T, t[::2, 1:], t.reshape(2, 64), t[None].expand(3, 8, 16), t.unsqueeze(1).squeeze(1)]
    with pytest.raises(ak.ShapeError):
        ops.matmul(t, t)
    with pytest.raises(ak.ShapeError):
        ops.add(t, t[:, :3])
    after = snapshot(dev)
    assert after["allocated_bytes"] == base["allocated_bytes"]
    assert after["total_allocations"] == base["total_allocations"]
    del v


def _op_cases(dev, rng):
    """(name, callable) pairs whose only lasting allocation should be their output."""
    x = ak.tensor(rng.standard_normal((5, 12)).astype(np.float32), device=dev)
    w = ak.tensor(rng.standard_normal((7, 12)).astype(np.float32), device=dev)
    b = ak.tensor(rng.standard_normal((7,)).astype(np.float32), device=dev)
    q = ak.tensor(rng.standard_normal((2, 3, 6, 4)).astype(np.float32), device=dev)
    img = ak.tensor(rng.standard_normal((1, 3, 8, 8)).astype(np.float32), device=dev)
    pw = ak.tensor(rng.standard_normal((5, 3, 4, 4)).astype(np.float32), device=dev)
    seq = ak.tensor(rng.standard_normal((1, 12, 9)).astype(np.float32), device=dev)
    cw = ak.tensor(rng.standard_normal((4, 12, 3)).astype(np.float32), device=dev)
    mask = np.zeros((2, 1, 1, 6), np.float32)
    mask[1, ..., 3:] = -np.inf
    ids = np.array([[0, 3], [6, 1]])
    inputs = (x, w, b, q, img, pw, seq, cw)
    cases = [
        ("add broadcast", lambda: x + b[:5, None]),
        ("add scalar", lambda: 2.0 * x),
        ("mul numpy", lambda: x * np.ones(12, np.float32)),
        ("matmul views", lambda: x @ w.T),
        ("matmul broadcast batch", lambda: q @ q[0].mT),
        ("linear gelu", lambda: ops.linear(x, w, b, activation="gelu")),
        ("softmax axis 0", lambda: ops.softmax(x, axis=0)),
        ("softmax on a view", lambda: ops.softmax(x.T)),
        ("layer_norm residual views", lambda: ops.layer_norm(x.T.T, None, None, residual=x[::1])),
        ("layer_norm numpy weight", lambda: ops.layer_norm(x, np.ones(12, np.float32))),
        ("sum axis 0", lambda: ops.sum(x, axis=0)),
        ("argmax None", lambda: ops.argmax(x)),
        ("mean of a view", lambda: ops.mean(x.T, axis=1)),
        ("embedding numpy ids", lambda: ops.embedding(ids, w)),
        ("concat", lambda: ops.concat([x, x.T.T], axis=1)),
        ("stack", lambda: ops.stack([x, x])),
        ("pad", lambda: ops.pad(x, [(1, 1)])),
        ("conv1d", lambda: ops.conv1d(seq, cw, stride=2, padding=1)),
        ("conv2d patchify", lambda: ops.conv2d(img, pw, stride=4)),
        ("attention numpy mask", lambda: ops.attention(q, q, q, attn_mask=mask)),
        ("attention bool mask causal", lambda: ops.attention(q, q, q, attn_mask=mask == 0, is_causal=True)),
        ("contiguous", lambda: x.T.contiguous()),
        ("reshape of a view", lambda: x.T.reshape(-1)),
        ("cast", lambda: x.astype("int32")),
        ("setitem", lambda: x.__setitem__((slice(None), 0), 1.0)),
        ("numpy", lambda: x.T.numpy()),
        ("repr", lambda: repr(x.T)),
    ]
    return inputs, cases


def settled(device, want_bytes: int) -> dict:
    """The device's memory once refcounting has freed what it frees; a gc pass only when that is not enough."""
    m = device.memory()
    if m["allocated_bytes"] != want_bytes:
        gc.collect()
        m = device.memory()
    return m


def test_ops_leave_only_their_outputs(dev, rng):
    inputs, cases = _op_cases(dev, rng)
    gc.collect()
    for name, fn in cases:
        fn()  # warm up: pipelines, pools, uniforms
        base = settled(dev, dev.memory()["allocated_bytes"])
        out = fn()
        if isinstance(out, ak.Tensor):
            owned = out.storage not in [t.storage for t in inputs]
            expect = base["allocated_bytes"] + (out.storage.device_bytes if owned else 0)
            got = settled(dev, expect)
            assert got["allocated_bytes"] == expect, name
            assert got["buffers"] == base["buffers"] + (1 if owned else 0), name
        del out
        after = settled(dev, base["allocated_bytes"])
        assert after["allocated_bytes"] == base["allocated_bytes"], f"{name} leaked"
        assert after["buffers"] == base["buffers"], f"{name} leaked a buffer"


def test_webgpu_pool_reuses_and_empty_cache(webgpu, run_isolated):
    run_isolated(
        """
        gc.collect()
        dev.empty_cache()
        base = dev.memory()
        assert base["cached_bytes"] == 0
        t = ak.zeros(1000, device=dev)
        held = t.storage.device_bytes
        del t
        gc.collect()
        m = dev.memory()
        assert m["allocated_bytes"] == base["allocated_bytes"]
        assert m["cached_bytes"] == held and m["cached_buffers"] == 1, m
        assert m["reserved_bytes"] == m["allocated_bytes"] + m["cached_bytes"]
        u = ak.zeros(990, device=dev)  # same size class: the cached buffer comes back
        m = dev.memory()
        assert u.storage.device_bytes == held
        assert m["cached_bytes"] == 0 and m["allocated_bytes"] == base["allocated_bytes"] + held, m
        del u
        gc.collect()
        dev.empty_cache()
        m = dev.memory()
        assert m["cached_bytes"] == 0 and m["reserved_bytes"] == m["allocated_bytes"] == base["allocated_bytes"]
        assert (ak.ones(10, device=dev) * 2).numpy().tolist() == [2.0] * 10
        """,
        webgpu.spec,
    )


def test_webgpu_empty_cache_with_pending_work(webgpu, run_isolated):
    """Recorded-but-unsubmitted work may use a buffer that was freed to the pool; emptying the pool must not break it."""
    run_isolated(
        """
        t = ak.zeros(1000, device=dev)  # a fill is recorded, not yet submitted
        del t  # its buffer goes to the pool
        dev.empty_cache()
        np.testing.assert_array_equal(ak.zeros(10, device=dev).numpy(), np.zeros(10))
        """,
        webgpu.spec,
    )


def test_webgpu_synchronize(webgpu, run_isolated):
    run_isolated(
        """
        t = ak.ones(64, device=dev) * 3.0
        dev.synchronize()
        np.testing.assert_array_equal(t.numpy(), np.full(64, 3.0))
        """,
        webgpu.spec,
    )


def test_cpu_has_no_cache(cpu):
    m = cpu.memory()
    assert m.get("cached_bytes", 0) == 0
    assert m.get("reserved_bytes", m["allocated_bytes"]) == m["allocated_bytes"]
