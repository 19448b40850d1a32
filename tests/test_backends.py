"""The backend protocol: each backend defines every method of ``Backend`` in its own class body, its
capabilities are booleans that agree with the device, and the layers above never branch on a backend's name."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest

import accelkit as ak
from accelkit.backends.base import Backend
from accelkit.backends.cpu import CPUBackend
from accelkit.backends.webgpu import WebGPUBackend

CAPABILITIES = (
    "supports_f16",
    "has_timestamps",
    "fused_attention",
    "fused_linear_layer_norm",
    "supports_subgroups",
    "split_long_reductions",
)
PROTOCOL = sorted(Backend.__abstractmethods__)


@pytest.mark.parametrize("cls", [CPUBackend, WebGPUBackend])
def test_every_protocol_method_is_defined_in_the_class_body(cls):
    missing = [name for name in PROTOCOL if name not in cls.__dict__]
    assert not missing, f"{cls.__name__} inherits or lacks {missing}"
    assert not cls.__abstractmethods__
    for name in PROTOCOL:  # same parameter names as the protocol, so the layers above can pass keywords
        want = list(inspect.signature(getattr(Backend, name)).parameters)
        got = list(inspect.signature(getattr(cls, name)).parameters)
        assert got == want, (cls.__name__, name, got, want)


def test_the_protocol_covers_what_the_layers_above_call():
    for name in ("alloc", "free", "buffer_bytes", "write", "read", "memory", "sync", "check", "empty_cache"):
        assert name in PROTOCOL
    for name in (
        "fill",
        "unary",
        "binary",
        "matmul",
        "softmax",
        "layer_norm",
        "reduce",
        "embedding",
        "attention",
    ):
        assert name in PROTOCOL
        assert Backend.__dict__[name].__doc__, name


def test_capabilities_are_booleans_that_agree_with_the_device(dev):
    be = dev.runtime
    assert isinstance(be, Backend)
    assert be is dev.runtime  # opened once
    for cap in CAPABILITIES:
        assert isinstance(getattr(be, cap), bool), cap
    assert be.supports_f16 == dev.supports_f16
    if isinstance(be, WebGPUBackend):
        assert be.has_timestamps == ("timestamp-query" in dev.features)
        assert be.supports_subgroups == ("subgroup" in dev.features)
        assert be.fused_attention and be.split_long_reductions and be.fused_linear_layer_norm
    else:
        assert not (be.has_timestamps or be.fused_attention or be.split_long_reductions)
        assert not be.fused_linear_layer_norm
    t = ak.tensor(np.arange(10, dtype=np.float32), device=dev)
    assert be.buffer_bytes(t.storage.handle) == t.storage.device_bytes >= t.nbytes


def test_no_layer_above_branches_on_a_backend_name():
    root = Path(ak.__file__).parent
    pattern = re.compile(r"""\.name\s*[!=]=\s*["'](webgpu|cpu)["']|_backend\b""")
    found = []
    for pkg in ("ops", "tensor", "nn", "models", "sharing"):
        for path in sorted((root / pkg).rglob("*.py")):
            for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if pattern.search(line):
                    found.append(f"{path.relative_to(root)}:{i}: {line.strip()}")
    assert not found, "\n".join(found)


def test_a_profile_longer_than_one_timestamp_query_set(webgpu):
    """Past 2,048 timed dispatches the query set is resolved and submitted with the encoder recorded so
    far; the next dispatch's pass must open on a fresh encoder (it once opened on the submitted one)."""
    x = ak.tensor(np.arange(4, dtype=np.float32), device=webgpu)
    n = 2100
    with ak.profile(webgpu) as prof:
        y = x
        for _ in range(n):
            y = y + x
    np.testing.assert_array_equal(y.numpy(), np.arange(4, dtype=np.float32) * (n + 1))
    assert len(prof.records) == n
    if webgpu.backend.has_timestamps:
        assert all(r.gpu_start_ns is not None for r in prof.records)
