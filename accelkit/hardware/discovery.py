"""Devices: enumerate WebGPU adapters and the CPU, rank them, pick one, and explain every fallback.

Ranking: discrete GPU, integrated GPU, the CPU backend (numpy on BLAS), then software adapters
(lavapipe/llvmpipe, SwiftShader, WARP), since BLAS beats a software rasteriser. Nothing is opened
at import; ``devices()`` enumerates adapters without opening them and ``Device.backend`` opens one
on first use.
"""

from __future__ import annotations

import os
import platform
import threading
from dataclasses import dataclass, field

import numpy as np

from ..display import Displayable, device_html, device_line, devices_html, devices_text
from ..errors import AccelkitError, DeviceError, DTypeError

_lock = threading.RLock()
_cache: dict[str, Device] = {}
_enumeration: list[Device] | None = None
_wgpu_problem: str | None = None
_default_override: Device | None = None

RANK = {"discrete": 0, "integrated": 1, "cpu-backend": 2, "software": 3, "other": 4}


@dataclass
class Device(Displayable, text=device_line, html=device_html):
    """One place tensors can live: a WebGPU adapter or the CPU.

    ``spec`` is how to ask for it again (``"webgpu:0"``, ``"cpu"``); ``fallback_reason`` says why a
    better device was not chosen (None when it is the best there is or was asked for explicitly).
    """

    spec: str
    backend_name: str
    name: str
    kind: str  # discrete | integrated | software | cpu-backend | other
    is_software: bool = False
    fallback_reason: str | None = None
    info: dict = field(default_factory=dict)
    adapter_features: tuple = ()
    adapter_limits: dict = field(default_factory=dict)
    _adapter: object = field(default=None, repr=False)
    _backend: object = field(default=None, repr=False)

    # ------------------------------------------------------------------ the backend, opened lazily
    @property
    def backend(self):
        be = self._backend
        if be is None:
            with _lock:
                if self._backend is None:
                    self._backend = self._open()
                be = self._backend
        return be

    @property
    def runtime(self):
        """The opened backend object (a ``backends.base.Backend``) the tensor and op layers call; opened on first use."""
        return self.backend

    @property
    def is_open(self) -> bool:
        return self._backend is not None

    def _open(self):
        if self.backend_name == "cpu":
            from ..backends.cpu import CPUBackend

            return CPUBackend()
        from ..backends.webgpu import WebGPUBackend  # imports wgpu: on first use, never at import

        return WebGPUBackend(self._adapter, label=f"accelkit {self.spec}")

    @property
    def features(self) -> tuple:
        if self._backend is not None and self.backend_name == "webgpu":
            return tuple(sorted(self._backend.features))
        return tuple(self.adapter_features)

    @property
    def limits(self) -> dict:
        if self._backend is not None and self.backend_name == "webgpu":
            return dict(self._backend.limits)
        return dict(self.adapter_limits)

    @property
    def supports_f16(self) -> bool:
        return self.backend_name == "cpu" or "shader-f16" in self.features

    @property
    def lost(self) -> bool:
        return self._backend is not None and getattr(self._backend, "lost_reason", None) is not None

    def check_dtype(self, dtype) -> None:
        if dtype.name == "float16" and not self.supports_f16:
            raise DTypeError(
                f"device {self.spec} ({self.name}) lacks the shader-f16 feature, so float16 tensors "
                "cannot live there; use float32"
            )

    def memory(self) -> dict:
        """Device bytes held by live tensors now and at peak, and the buffer count (exact, not estimated)."""
        return self.backend.memory()

    def reset_peak(self) -> None:
        self.backend.reset_peak()

    def synchronize(self) -> None:
        """Wait for every recorded op on this device to finish."""
        self.backend.sync()

    sync = synchronize

    def empty_cache(self) -> None:
        """Give cached (free) pool buffers back to the device."""
        fn = getattr(self.backend, "empty_cache", None)
        if fn:
            fn()

    def describe(self) -> dict:
        """Everything known about this device, as plain data (what the reprs and `accelkit devices` show)."""
        out = {
            "spec": self.spec,
            "backend": self.backend_name,
            "name": self.name,
            "kind": self.kind,
            "is_software": self.is_software,
            "fallback_reason": self.fallback_reason,
        }
        out.update({k: v for k, v in self.info.items() if k not in out})
        return out

    def __str__(
        self,
    ) -> str:  # without the fallback reason: ``print(dev, dev.fallback_reason)`` shows it once
        return device_line(self, reason=False)

    @property
    def is_default(self) -> bool:
        """Whether ``accelkit.device()`` returns this device now (False when ACCELKIT_DEVICE is bad)."""
        try:
            return device() is self
        except AccelkitError:  # a bad ACCELKIT_DEVICE must not break a repr
            return False

    def __eq__(self, other) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    @property
    def backend_api(self) -> str:
        return str(self.info.get("backend_type", "numpy" if self.backend_name == "cpu" else ""))


# ---------------------------------------------------------------------------------- enumeration
def _cpu_device() -> Device:
    info = {"cores": os.cpu_count() or 1, "machine": platform.machine(), "python": platform.python_version()}
    info["model"] = _cpu_model()
    info["blas"] = _blas_name(np)
    info["numpy"] = np.__version__
    return Device(
        spec="cpu",
        backend_name="cpu",
        name=f"{info['model']} ({info['cores']} cores, numpy on {info['blas']})",
        kind="cpu-backend",
        info=info,
        adapter_features=("float16", "float32", "int32"),
    )


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def _blas_name(np) -> str:
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        name = blas.get("name", "")
        version = blas.get("version", "")
        return f"{name} {version}".strip() or "unknown BLAS"
    except Exception:  # pragma: no cover - older numpy
        return "unknown BLAS"


def _classify(info: dict) -> tuple[str, bool]:
    from ..backends.webgpu import is_software_adapter  # imports wgpu: only once enumerating

    if is_software_adapter(info):
        return "software", True
    kind = str(info.get("adapter_type", "")).lower()
    if "discrete" in kind:
        return "discrete", False
    if "integrated" in kind:
        return "integrated", False
    return "other", False


def _enumerate_webgpu() -> list[Device]:
    global _wgpu_problem
    try:
        from ..backends.webgpu import ensure_runtime_dir

        ensure_runtime_dir()  # before the Vulkan loader starts (at the first adapter enumeration)
        import wgpu
    except Exception as exc:  # ImportError, or a missing native library
        _wgpu_problem = f"the wgpu package could not be imported ({type(exc).__name__}: {exc})"
        return []
    try:
        adapters = wgpu.gpu.enumerate_adapters_sync()
    except Exception as exc:
        _wgpu_problem = f"wgpu could not enumerate adapters ({type(exc).__name__}: {exc})"
        return []
    found = []
    for adapter in adapters:
        info = dict(adapter.info)
        if str(info.get("backend_type", "")).lower() in ("opengl", "gl"):
            continue  # the GL backend lacks compute features we rely on; its Vulkan twin is listed
        kind, soft = _classify(info)
        found.append(
            Device(
                spec="",
                backend_name="webgpu",
                name=str(info.get("device") or info.get("description") or "WebGPU adapter"),
                kind=kind,
                is_software=soft,
                info=info,
                adapter_features=tuple(sorted(adapter.features)),
                adapter_limits=dict(adapter.limits),
                _adapter=adapter,
            )
        )
    if not found:
        _wgpu_problem = "wgpu found no WebGPU adapter (is a Vulkan/Metal/D3D12 driver installed?)"
    found.sort(key=lambda d: RANK[d.kind])
    for i, d in enumerate(found):
        d.spec = f"webgpu:{i}"
    return found


def _enumerate() -> list[Device]:
    global _enumeration
    with _lock:
        if _enumeration is None:
            gpus = _enumerate_webgpu()
            cpu = _cpu_device()
            for d in gpus:
                _cache[d.spec] = d
            _cache["cpu"] = cpu
            _enumeration = sorted(gpus + [cpu], key=lambda d: RANK[d.kind])
        return list(_enumeration)


class DeviceList(Displayable, list, html=devices_html):
    """A plain list of Devices that shows itself as a table in notebooks (``accelkit.devices()``)."""

    def _repr_pretty_(self, p, cycle) -> None:
        p.text("[...]" if cycle else devices_text(self))


def devices() -> DeviceList:
    """Every usable device, best first (WebGPU adapters and the CPU backend); a list with a rich repr."""
    return DeviceList(_enumerate())


def wgpu_problem() -> str | None:
    """Why no WebGPU device is available, or None when one is."""
    _enumerate()
    return _wgpu_problem


def _best() -> Device:
    ranked = _enumerate()
    best = ranked[0]
    if best.backend_name == "cpu":
        soft = [d for d in ranked if d.is_software]
        if soft:
            reason = (
                f"the only WebGPU adapter is a software one ({soft[0].name}); numpy on BLAS is faster, "
                f"ask for {soft[0].spec!r} to use it anyway"
            )
        else:
            reason = _wgpu_problem or "no WebGPU adapter"
        best.fallback_reason = reason
    return best


def _parse(spec: str) -> Device:
    text = spec.strip().lower()
    ranked = _enumerate()
    if text in ("cpu", "numpy", "cpu:0"):
        return _cache["cpu"]
    if text == "gpu":  # the best hardware GPU; a software adapter is not a GPU
        hardware = [d for d in ranked if d.backend_name == "webgpu" and not d.is_software]
        if not hardware:
            soft = [d.spec for d in ranked if d.is_software]
            found = (
                f"only software WebGPU adapters ({', '.join(soft)}; ask for 'webgpu' to use one anyway)"
                if soft
                else (_wgpu_problem or "no WebGPU adapter found")
            )
            raise DeviceError(f"no hardware GPU for 'gpu': {found}")
        return hardware[0]
    if text in ("webgpu", "webgpu:gpu"):
        gpus = [d for d in ranked if d.backend_name == "webgpu"]
        if not gpus:
            raise DeviceError(f"no WebGPU device for {spec!r}: {_wgpu_problem or 'no adapter found'}")
        return gpus[0]
    if text.startswith("webgpu:"):
        index = text.split(":", 1)[1]
        if not index.isdigit():
            raise DeviceError(f"bad device spec {spec!r}; expected 'webgpu:N' with N an adapter index")
        dev = _cache.get(f"webgpu:{int(index)}")
        if dev is None:
            n = sum(1 for d in ranked if d.backend_name == "webgpu")
            raise DeviceError(
                f"no WebGPU adapter {index} ({n} found: "
                f"{', '.join(d.spec for d in ranked if d.backend_name == 'webgpu') or 'none'}"
                + (f"; {_wgpu_problem}" if _wgpu_problem else "")
                + ")"
            )
        return dev
    if text.startswith("webnn"):
        # the WebNN layer lowers onto a backend: webnn / webnn:gpu -> best WebGPU, webnn:cpu -> cpu
        rest = text.split(":", 1)[1] if ":" in text else ""
        return _parse("cpu") if rest == "cpu" else (_parse("webgpu") if rest == "gpu" else _best())
    raise DeviceError(
        f"unknown device spec {spec!r}; expected None, 'cpu', 'gpu', 'webgpu', 'webgpu:N', 'webnn' or 'webnn:gpu'"
    )


def _reopen_if_lost(dev: Device) -> Device:
    if not dev.lost:
        return dev
    with _lock:
        if dev.backend_name == "webgpu":
            dev._backend = None  # next use requests a fresh wgpu device on the same adapter
            dev.fallback_reason = None
        else:
            dev._backend = None
    return dev


def device(spec=None) -> Device:
    """Pick a device: None = the best (or ``ACCELKIT_DEVICE``), else "cpu", "gpu" (the best hardware GPU,
    never a software adapter), "webgpu" (the best WebGPU adapter, software ones included), "webgpu:1",
    "webnn:gpu".

    An unknown spec raises DeviceError. A device that was lost is reopened.
    """
    if isinstance(spec, Device):
        return _reopen_if_lost(spec)
    if spec is None:
        if _default_override is not None:
            return _reopen_if_lost(_default_override)
        env = os.environ.get("ACCELKIT_DEVICE")
        if env:
            return _reopen_if_lost(_parse(env))
        return _reopen_if_lost(_best())
    if not isinstance(spec, str):
        raise DeviceError(f"device spec must be a string or Device, got {type(spec).__name__}")
    return _reopen_if_lost(_parse(spec))


def set_default(spec) -> Device:
    """Make ``spec`` what ``device(None)`` returns (``%accel use`` calls this); None restores ranking."""
    global _default_override
    _default_override = None if spec is None else device(spec)
    return _default_override or device(None)


def _reset_for_tests() -> None:
    """Forget the enumeration (tests that monkeypatch wgpu use this)."""
    global _enumeration, _wgpu_problem, _default_override
    with _lock:
        _enumeration = None
        _wgpu_problem = None
        _default_override = None
        _cache.clear()
