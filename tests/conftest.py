"""Shared test fixtures: the devices to run on (the CPU and every WebGPU adapter), a seeded rng, tolerances.

``dev`` (alias of ``backend_devices``) runs a test once per device: ``cpu`` and each WebGPU
adapter (``webgpu0``, ...). With no WebGPU adapter the WebGPU parameter skips, or FAILS when
``ACCELKIT_REQUIRE_WEBGPU=1`` (CI on lavapipe). ``assert_close`` compares with a float64 numpy
reference at a tolerance per dtype, relative to the reference's largest magnitude.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import textwrap
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# wgpu (through Mesa's Vulkan loader) complains on every adapter enumeration without it
if not os.environ.get("XDG_RUNTIME_DIR"):
    _xdg = os.path.join(tempfile.gettempdir(), f"accelkit-xdg-{os.getuid()}")
    os.makedirs(_xdg, mode=0o700, exist_ok=True)
    os.environ["XDG_RUNTIME_DIR"] = _xdg

import accelkit as ak  # noqa: E402
from accelkit import hardware  # noqa: E402
from accelkit.tensor import as_dtype  # noqa: E402

settings.register_profile(
    "accelkit",
    deadline=None,  # pipeline compilation on lavapipe makes first examples slow
    max_examples=30,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=True,
)
settings.register_profile("ci", parent=settings.get_profile("accelkit"), derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "accelkit"))

REQUIRE_WEBGPU = os.environ.get("ACCELKIT_REQUIRE_WEBGPU") == "1"


def _webgpu_specs() -> list[str]:
    try:
        return [d.spec for d in ak.devices() if d.backend_name == "webgpu"]
    except Exception:  # enumeration itself broke: report it through the WebGPU param below
        return []


WEBGPU_SPECS = _webgpu_specs()
MISSING = "webgpu-missing"


def _device_params() -> list:
    params = [pytest.param("cpu", id="cpu")]
    specs = WEBGPU_SPECS or [MISSING]
    for spec in specs:
        params.append(pytest.param(spec, id=spec.replace(":", ""), marks=pytest.mark.webgpu))
    return params


def _no_webgpu():
    msg = f"no WebGPU adapter: {hardware.wgpu_problem() or 'none found'}"
    if REQUIRE_WEBGPU:
        pytest.fail(f"ACCELKIT_REQUIRE_WEBGPU=1 but {msg}", pytrace=False)
    pytest.skip(msg)


@pytest.fixture(params=_device_params())
def backend_devices(request) -> ak.Device:
    """One device per parameter: the CPU backend, then every WebGPU adapter present."""
    if request.param == MISSING:
        _no_webgpu()
    # ak.device() again each time: it reopens a device an earlier test destroyed
    return ak.device(request.param)


@pytest.fixture
def dev(backend_devices) -> ak.Device:
    return backend_devices


@pytest.fixture
def cpu() -> ak.Device:
    return ak.device("cpu")


@pytest.fixture
def webgpu() -> ak.Device:
    """The first WebGPU device (skips, or fails under ACCELKIT_REQUIRE_WEBGPU=1, when there is none)."""
    if not WEBGPU_SPECS:
        _no_webgpu()
    return ak.device(WEBGPU_SPECS[0])


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A generator seeded from the test's id, so every test sees the same data on every run."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


# ----------------------------------------------------------------------------- tolerances

#: error allowed relative to the reference's largest magnitude, per dtype
TOLERANCE = {"float32": 2e-5, "float16": 1e-2, "int32": 0.0}


def tolerance(dtype, k: int = 1) -> float:
    """The relative tolerance for ``dtype``; ``k`` is a reduction length (dot products grow as sqrt(k))."""
    base = TOLERANCE[str(getattr(dtype, "name", dtype))]
    return base * max(1.0, math.sqrt(k) / 4)


def check_close(
    actual,
    expected,
    dtype=None,
    *,
    k: int = 1,
    rtol: float | None = None,
    floor: float = 1e-6,
    what: str = "",
) -> None:
    """Assert ``actual`` (Tensor or array) equals ``expected`` (float64 reference) within the dtype's tolerance.

    Shapes must match exactly; NaN and +-Inf must sit at the same places; finite values must satisfy
    ``max|actual - expected| <= rtol * max(max|expected|, floor)`` (``floor`` is the magnitude below
    which errors count as absolute, e.g. 1 for elementwise functions of O(1) inputs). int32 compares exactly.
    """
    if isinstance(actual, ak.Tensor):
        if dtype is not None:
            assert actual.dtype is as_dtype(dtype), f"{what}: dtype {actual.dtype} != {dtype}"
        dtype = actual.dtype.name
        actual = actual.numpy()
    dtype = str(getattr(dtype, "name", dtype or "float32"))
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != expected {expected.shape}"
    if dtype == "int32":
        np.testing.assert_array_equal(actual, expected, err_msg=what)
        return
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(e), err_msg=f"{what}: NaN positions differ")
    np.testing.assert_array_equal(np.isposinf(a), np.isposinf(e), err_msg=f"{what}: +Inf positions differ")
    np.testing.assert_array_equal(np.isneginf(a), np.isneginf(e), err_msg=f"{what}: -Inf positions differ")
    fin = np.isfinite(e)
    if not fin.any():
        return
    rtol = tolerance(dtype, k) if rtol is None else rtol
    scale = max(float(np.max(np.abs(e[fin]))), floor)
    diff = np.abs(a[fin] - e[fin])
    worst = float(diff.max())
    if worst > rtol * scale:
        at = np.argwhere(fin)[int(diff.argmax())]
        raise AssertionError(
            f"{what}: max |error| {worst:.3g} > {rtol:.2g} * {scale:.3g} (dtype {dtype}) at index "
            f"{tuple(int(i) for i in at)}: got {a[tuple(at)]!r}, expected {e[tuple(at)]!r}"
        )


@pytest.fixture
def tol():
    """``tol(dtype, k=1)``: the relative tolerance check_close uses, see tolerance."""
    return tolerance


@pytest.fixture
def assert_close():
    """``assert_close(actual, expected64, dtype=None, *, k=1, rtol=None, floor=1e-6, what="")``, see check_close."""
    return check_close


def examples(device, cpu: int = 30, webgpu: int = 10) -> int:
    """How many hypothesis examples to run on ``device``: fewer where every dispatch is slow (lavapipe)."""
    return cpu if device.backend_name == "cpu" else webgpu


@pytest.fixture
def n_examples():
    """``n_examples(dev, cpu=30, webgpu=10)``: hypothesis max_examples for a device."""
    return examples


def run_isolated_code(code: str, spec: str) -> None:
    """Run ``code`` in a fresh interpreter, with ``np``, ``ak``, ``gc`` imported and ``dev = ak.device(spec)``.

    For checks whose failure can abort the process (a wgpu-native panic) or leave the device's
    buffer pool unusable for the tests after it: here such a failure fails one test, with its
    message, instead of killing or poisoning the rest of the suite.
    """
    prelude = f"import gc\nimport numpy as np\nimport accelkit as ak\ndev = ak.device({spec!r})\n"
    proc = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        tail = "\n".join(line for line in proc.stderr.splitlines() if not line.startswith("  "))[-3000:]
        pytest.fail(f"subprocess exited with {proc.returncode}:\n{tail}", pytrace=False)


@pytest.fixture
def run_isolated():
    """``run_isolated(code, spec)``: see run_isolated_code."""
    return run_isolated_code


def pytest_collection_modifyitems(config, items):
    """Tests that take the ``webgpu`` fixture carry the ``webgpu`` marker too (``-m "not webgpu"`` skips them)."""
    for item in items:
        if "webgpu" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.webgpu)


@pytest.fixture(scope="module", autouse=True)
def _free_module_model_caches(request):
    """At the end of each test module, drop its module-level model cache (``_models``) so the
    models it loaded are freed: later tests measure device bytes, and dedup would otherwise serve
    them the still-live weights."""
    yield
    cache = getattr(request.module, "_models", None)
    if isinstance(cache, dict):
        cache.clear()
    import gc

    gc.collect()
