"""Hardware layer: enumeration without opening, ranking, picking the best with a reason, overrides, device loss.

Ranking and fallbacks are tested with fake adapters (and fake Device objects), so they hold for
hardware this machine does not have; the real machine's choice is checked against what it has.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

import accelkit as ak
from accelkit import hardware, ops
from accelkit.display import devices_text
from accelkit.hardware import discovery


@pytest.fixture
def fresh_hardware(monkeypatch):
    """A clean enumeration state for this test; the real one (and its open devices) comes back afterwards."""
    monkeypatch.setattr(discovery, "_cache", {})
    monkeypatch.setattr(discovery, "_enumeration", None)
    monkeypatch.setattr(discovery, "_wgpu_problem", None)
    monkeypatch.setattr(discovery, "_default_override", None)
    monkeypatch.delenv("ACCELKIT_DEVICE", raising=False)
    return monkeypatch


class FakeAdapter:
    """What hardware reads off a wgpu adapter: ``info``, ``features``, ``limits``."""

    def __init__(self, device, adapter_type, *, vendor="", backend_type="Vulkan", description=""):
        self.info = {
            "vendor": vendor,
            "architecture": "",
            "device": device,
            "description": description,
            "adapter_type": adapter_type,
            "backend_type": backend_type,
        }
        self.features = {"shader-f16", "timestamp-query"}
        self.limits = {"max-buffer-size": 1 << 30, "max-storage-buffer-binding-size": 1 << 27}


def fake_wgpu(monkeypatch, adapters):
    module = types.ModuleType("wgpu")
    module.gpu = types.SimpleNamespace(enumerate_adapters_sync=lambda: list(adapters))
    monkeypatch.setitem(sys.modules, "wgpu", module)
    discovery._reset_for_tests()


DISCRETE = FakeAdapter("NVIDIA GeForce RTX 4090", "DiscreteGPU", vendor="NVIDIA")
INTEGRATED = FakeAdapter("Intel(R) Iris(R) Xe Graphics", "IntegratedGPU", vendor="Intel")
LAVAPIPE = FakeAdapter("llvmpipe (LLVM 15.0.6, 256 bits)", "CPU", vendor="llvmpipe")
SWIFTSHADER = FakeAdapter("SwiftShader Device (Subzero)", "Unknown", vendor="Google")
GL_TWIN = FakeAdapter("NVIDIA GeForce RTX 4090/PCIe/SSE2", "DiscreteGPU", backend_type="OpenGL")
UNKNOWN = FakeAdapter("Virtual GPU", "Unknown", vendor="virt")


# ============================================================================ import is cheap


def test_import_opens_no_device():
    code = textwrap.dedent(
        """
        import json, sys
        import accelkit as ak
        from accelkit.hardware import discovery
        r = {
            "wgpu_at_import": "wgpu" in sys.modules,
            "webgpu_backend_at_import": "accelkit.backends.webgpu" in sys.modules,
            "enumerated_at_import": discovery._enumeration is not None,
        }
        devs = ak.devices()
        r["wgpu_after_devices"] = "wgpu" in sys.modules
        r["open_after_devices"] = [d.spec for d in devs if d.is_open]
        best = ak.device()
        r["open_after_device"] = [d.spec for d in devs if d.is_open]
        t = ak.tensor([1.0, 2.0], device=best)
        r["open_after_tensor"] = [d.spec for d in devs if d.is_open]
        r["best"] = best.spec
        print(json.dumps(r))
        """
    )
    env = dict(os.environ)
    env.pop("ACCELKIT_DEVICE", None)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["wgpu_at_import"] is False, "import accelkit imported wgpu"
    assert r["webgpu_backend_at_import"] is False
    assert r["enumerated_at_import"] is False, "import accelkit enumerated adapters"
    assert r["wgpu_after_devices"] is True  # devices() is where wgpu gets imported
    assert r["open_after_devices"] == [], "devices() opened a device"
    assert r["open_after_device"] == [], "device() opened a device before it was used"
    assert r["open_after_tensor"] == [r["best"]]


# ============================================================================ ranking


def test_ranking_with_fake_adapters(fresh_hardware):
    fake_wgpu(fresh_hardware, [LAVAPIPE, UNKNOWN, INTEGRATED, GL_TWIN, DISCRETE])
    devs = ak.devices()
    assert [d.kind for d in devs] == ["discrete", "integrated", "cpu-backend", "software", "other"]
    assert [d.spec for d in devs] == ["webgpu:0", "webgpu:1", "cpu", "webgpu:2", "webgpu:3"]
    assert devs[0].name == "NVIDIA GeForce RTX 4090"
    assert all(d.info.get("backend_type") != "OpenGL" for d in devs)  # the GL twin is skipped
    assert devs[3].is_software and not devs[0].is_software
    assert not any(d.is_open for d in devs)
    best = ak.device()
    assert best is devs[0] and best.fallback_reason is None
    assert ak.device("webgpu") is devs[0] and ak.device("gpu") is devs[0]
    assert ak.device("webgpu:2").name.startswith("llvmpipe")
    assert ak.device("cpu") is devs[2]
    assert ak.device("webnn:gpu") is devs[0] and ak.device("webnn:cpu") is devs[2]
    assert not any(d.is_open for d in devs)


def test_integrated_beats_cpu(fresh_hardware):
    fake_wgpu(fresh_hardware, [SWIFTSHADER, INTEGRATED])
    devs = ak.devices()
    assert [d.kind for d in devs] == ["integrated", "cpu-backend", "software"]
    assert ak.device().kind == "integrated" and ak.device().fallback_reason is None


def test_only_software_adapters_pick_the_cpu_and_say_why(fresh_hardware):
    fake_wgpu(fresh_hardware, [SWIFTSHADER])
    devs = ak.devices()
    assert [d.spec for d in devs] == ["cpu", "webgpu:0"]
    assert devs[1].is_software  # by name: SwiftShader reports adapter_type Unknown
    best = ak.device()
    assert best.backend_name == "cpu"
    reason = best.fallback_reason
    assert reason and "software" in reason and "SwiftShader" in reason and "webgpu:0" in reason, reason
    assert "fallback" in repr(best)


def test_gpu_means_the_best_hardware_gpu(fresh_hardware):
    fake_wgpu(fresh_hardware, [LAVAPIPE, INTEGRATED])
    devs = ak.devices()
    assert ak.device("gpu") is devs[0] and devs[0].kind == "integrated"


def test_gpu_with_only_a_software_adapter_says_so(fresh_hardware):
    fake_wgpu(fresh_hardware, [LAVAPIPE])
    with pytest.raises(ak.DeviceError, match="no hardware GPU.*only software WebGPU adapters.*webgpu:0"):
        ak.device("gpu")
    assert ak.device("webgpu").is_software  # asking for WebGPU still gets the software adapter


def test_software_said_once_and_str_leaves_the_reason_out(fresh_hardware):
    fake_wgpu(fresh_hardware, [LAVAPIPE])
    soft = ak.device("webgpu:0")
    assert repr(soft).count("software") == 1, repr(soft)
    table = devices_text(ak.devices())
    assert table.count("software") == 2, table  # the adapter's row, and the default's fallback reason
    best = ak.device()
    assert best.fallback_reason and best.fallback_reason in repr(best)
    printed = f"{best} {best.fallback_reason}"  # what print(dev, dev.fallback_reason) writes
    assert printed.count(best.fallback_reason) == 1, printed


def test_ranking_of_fake_device_objects(fresh_hardware):
    """The ranking itself, on Device objects handed over in the worst order."""

    def fake(spec, kind, soft=False):
        return hardware.Device(spec=spec, backend_name="webgpu", name=spec, kind=kind, is_software=soft)

    gpus = [
        fake("webgpu:3", "other"),
        fake("webgpu:2", "software", True),
        fake("webgpu:1", "integrated"),
        fake("webgpu:0", "discrete"),
    ]
    fresh_hardware.setattr(discovery, "_enumerate_webgpu", lambda: list(gpus))
    devs = ak.devices()
    assert [d.spec for d in devs] == ["webgpu:0", "webgpu:1", "cpu", "webgpu:2", "webgpu:3"]
    assert ak.device().spec == "webgpu:0"
    assert ak.device().fallback_reason is None


def test_real_machine_choice_is_explained():
    devs = ak.devices()
    assert sum(d.backend_name == "cpu" for d in devs) == 1
    ranks = [hardware.RANK[d.kind] for d in devs]
    assert ranks == sorted(ranks)
    gpus = [d for d in devs if d.backend_name == "webgpu"]
    best = ak.device() if not os.environ.get("ACCELKIT_DEVICE") else None
    if best is None:
        pytest.skip("ACCELKIT_DEVICE is set")
    if any(not d.is_software and d.kind in ("discrete", "integrated") for d in gpus):
        assert best.backend_name == "webgpu" and best.fallback_reason is None
    elif any(d.is_software for d in gpus):  # lavapipe: the CPU backend wins, and says so
        assert best.backend_name == "cpu"
        soft = next(d for d in gpus if d.is_software)
        assert "software" in best.fallback_reason and soft.name in best.fallback_reason
        assert soft.spec in best.fallback_reason
    else:
        assert best.backend_name == "cpu" and best.fallback_reason


def test_lavapipe_is_classified_software():
    from accelkit.backends.webgpu import is_software_adapter

    assert is_software_adapter(LAVAPIPE.info)
    assert is_software_adapter(SWIFTSHADER.info)
    assert is_software_adapter({"device": "Microsoft Basic Render Driver", "adapter_type": "Unknown"})
    assert not is_software_adapter(DISCRETE.info)
    assert not is_software_adapter(INTEGRATED.info)


# ============================================================================ specs and overrides


def test_device_specs():
    cpu = ak.device("cpu")
    assert cpu.backend_name == "cpu" and cpu.spec == "cpu" and cpu.name
    assert ak.device("CPU") is cpu and ak.device(" numpy ") is cpu and ak.device("cpu:0") is cpu
    assert ak.device(cpu) is cpu
    assert ak.device("webnn:cpu") is cpu
    assert cpu in ak.devices()


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("tpu", "'tpu'"),
        ("cuda:0", "cuda:0"),
        ("webgpu:99", "99"),
        ("webgpu:x", "webgpu:x"),
        ("webgpu:-1", "-1"),
        ("", "''"),
    ],
)
def test_unknown_device_specs_raise(spec, fragment):
    with pytest.raises(ak.DeviceError) as info:
        ak.device(spec)
    assert isinstance(info.value, ak.AccelkitError)
    assert fragment in str(info.value), str(info.value)


def test_non_string_spec_raises():
    with pytest.raises(ak.DeviceError, match="int"):
        ak.device(3)


def test_env_override(monkeypatch, webgpu):
    monkeypatch.setenv("ACCELKIT_DEVICE", "cpu")
    assert ak.device().spec == "cpu"
    monkeypatch.setenv("ACCELKIT_DEVICE", webgpu.spec)
    assert ak.device() is webgpu  # even a software adapter, when asked for
    monkeypatch.setenv("ACCELKIT_DEVICE", "tpu")
    with pytest.raises(ak.DeviceError, match="tpu"):
        ak.device()
    assert ak.device("cpu").spec == "cpu"  # an explicit spec wins over the env


def test_env_override_cpu(monkeypatch):
    monkeypatch.setenv("ACCELKIT_DEVICE", "cpu")
    assert ak.device() is ak.device("cpu")
    t = ak.tensor([1.0])
    assert t.device.spec == "cpu"


def test_set_default(fresh_hardware):
    fake_wgpu(fresh_hardware, [DISCRETE])
    assert ak.device().spec == "webgpu:0"
    hardware.set_default("cpu")
    assert ak.device().spec == "cpu"
    hardware.set_default(None)
    assert ak.device().spec == "webgpu:0"


def test_wgpu_missing_falls_back_to_cpu_naming_wgpu(fresh_hardware):
    fresh_hardware.setitem(sys.modules, "wgpu", None)  # `import wgpu` now raises ImportError
    discovery._reset_for_tests()
    devs = ak.devices()
    assert [d.spec for d in devs] == ["cpu"]
    best = ak.device()
    assert best.backend_name == "cpu"
    assert "wgpu" in best.fallback_reason, best.fallback_reason
    assert "wgpu" in hardware.wgpu_problem()
    with pytest.raises(ak.DeviceError, match="wgpu"):
        ak.device("webgpu")
    with pytest.raises(ak.DeviceError, match="wgpu"):
        ak.device("webgpu:0")
    np.testing.assert_array_equal((ak.tensor([1.0, 2.0]) * 2).numpy(), [2.0, 4.0])


def test_no_adapter_found(fresh_hardware):
    fake_wgpu(fresh_hardware, [])
    best = ak.device()
    assert best.backend_name == "cpu" and "adapter" in best.fallback_reason
    with pytest.raises(ak.DeviceError, match="webgpu:0|adapter"):
        ak.device("webgpu:0")


def test_f16_needs_shader_f16():
    fake = hardware.Device(
        spec="webgpu:7", backend_name="webgpu", name="Fake GPU", kind="discrete", adapter_features=()
    )
    assert not fake.supports_f16
    with pytest.raises(ak.DTypeError, match="shader-f16") as info:
        ak.zeros(3, dtype="float16", device=fake)
    assert "webgpu:7" in str(info.value)
    assert not fake.is_open  # refused before opening anything
    assert ak.device("cpu").supports_f16


# ============================================================================ real devices


def test_device_description(dev):
    d = dev.describe()
    assert d["spec"] == dev.spec and d["backend"] == dev.backend_name and d["name"] == dev.name
    assert dev.spec in repr(dev) and dev.name in repr(dev)
    m = dev.memory()
    for key in ("allocated_bytes", "peak_bytes", "buffers"):
        assert isinstance(m[key], int) and m[key] >= 0
    if dev.backend_name == "webgpu":
        assert dev.limits.get("max-buffer-size", 0) > 0
        assert isinstance(dev.features, tuple)
    dev.synchronize()


def test_device_loss_then_reopen(webgpu):
    dev = webgpu
    spec = dev.spec
    t = ak.tensor([1.0, 2.0, 3.0], device=dev)
    np.testing.assert_array_equal((t + t).numpy(), [2.0, 4.0, 6.0])
    old_backend = dev.backend
    old_backend.destroy()
    assert dev.lost
    with pytest.raises(ak.DeviceError, match="lost"):
        ops.add(t, t)
    with pytest.raises(ak.DeviceError):
        t.numpy()
    assert "\n" not in repr(t)  # repr still works and says why it cannot show values
    again = ak.device(spec)
    assert not again.lost
    assert again.backend is not old_backend
    u = ak.tensor([4.0, 5.0], device=again)
    np.testing.assert_array_equal((u * 2).numpy(), [8.0, 10.0])
    np.testing.assert_allclose(
        ops.softmax(u).numpy(), np.exp([0.0, 1.0]) / np.exp([0.0, 1.0]).sum(), rtol=1e-6
    )
    # a tensor of the lost device stays unusable; it neither works nor mixes with the new one
    with pytest.raises(ak.DeviceError):
        ops.add(t, t)
    with pytest.raises(ak.DeviceError):
        ops.add(t, ak.tensor([1.0, 2.0, 3.0], device=again))
    before = again.memory()["allocated_bytes"]
    del t  # freeing into a dead backend must not disturb the new one's accounting
    assert again.memory()["allocated_bytes"] == before


# ============================================================================ the suite's own device fixture


@pytest.mark.parametrize("require", [False, True])
def test_missing_webgpu_skips_or_fails_as_asked(tmp_path, require):
    """With no WebGPU adapter the WebGPU parameter skips, and FAILS under ACCELKIT_REQUIRE_WEBGPU=1 (CI)."""
    (tmp_path / "wgpu.py").write_text('raise ImportError("wgpu hidden for this test")\n')
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    env.pop("ACCELKIT_DEVICE", None)
    env["ACCELKIT_REQUIRE_WEBGPU"] = "1" if require else "0"
    here = os.path.dirname(__file__)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            os.path.join(here, "test_memory.py"),
            "-k",
            "test_memory_keys",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:nbval",
            "-p",
            "no:benchmark",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=os.path.dirname(here),
    )
    out = proc.stdout + proc.stderr
    assert "1 passed" in out.splitlines()[-1], out  # the CPU parameter runs either way
    if require:
        assert proc.returncode != 0, out
        assert "ACCELKIT_REQUIRE_WEBGPU=1" in out and "wgpu" in out, out
        assert "skipped" not in out.splitlines()[-1], out
    else:
        assert proc.returncode == 0, out
        assert "1 skipped" in out.splitlines()[-1] and "wgpu" in out, out
