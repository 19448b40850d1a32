"""Smoke checks that the package imports without opening a device and runs one op on the CPU."""

import subprocess
import sys

import numpy as np


def test_import_opens_no_device():
    code = (
        "import accelkit, sys; from accelkit.hardware import discovery as h; "
        "print(h._enumeration is None, 'wgpu' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["True", "False"]


def test_cpu_matmul_roundtrip():
    import accelkit as ak

    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = ak.tensor(a, device="cpu")
    np.testing.assert_allclose((t @ t.T).numpy(), a @ a.T)
