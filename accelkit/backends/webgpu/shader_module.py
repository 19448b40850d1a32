"""Shader modules for accelkit's own kernels, with or without naga's run-time checks.

Owns: turning WGSL into a ``GPUShaderModule`` and the one switch, ``ACCELKIT_SHADER_CHECKS``.

wgpu-native compiles WGSL through naga, which by default clamps every dynamic index into a
workgroup or private array (``min(i, len - 1)``) and adds a counter to every loop so that no loop can
run forever. In the inner loop of a matmul or an attention tile that is an integer compare and a
separate address computation per workgroup-memory load, which the driver can then no longer fold
into the load's constant offset. accelkit's kernels are its own (``kernels/*.wgsl``, rendered by
``wgsl.render``): their indices are in range by construction and by the tests on awkward shapes, and
every loop has a bound. So they are created with ``wgpuDeviceCreateShaderModuleTrusted`` and no
run-time checks. Storage buffers stay safe either way: wgpu opens the Vulkan device with
robust buffer access, so an out-of-range load or store of a buffer is still contained by the driver.

``ACCELKIT_SHADER_CHECKS=1`` (or ``on``) turns naga's checks back on for every kernel (to rule them
out when a kernel misbehaves); a wgpu build without the trusted entry point gets them anyway.
"""

from __future__ import annotations

import os

ENV_SWITCH = "ACCELKIT_SHADER_CHECKS"


def checks_wanted() -> bool:
    """Whether ``ACCELKIT_SHADER_CHECKS`` asks for naga's run-time checks (default: off for accelkit's kernels)."""
    return os.environ.get(ENV_SWITCH, "0").strip().lower() in ("1", "on", "true", "yes")


def _trusted_entry():
    """wgpu-native's ``wgpuDeviceCreateShaderModuleTrusted`` and the helpers to call it, or None."""
    try:
        from wgpu.backends.wgpu_native import _api
        from wgpu.backends.wgpu_native._ffi import ffi, lib
    except ImportError:  # pragma: no cover - another wgpu backend
        return None
    # through wgpu-py's error-capturing wrapper (libf), so a WGSL error raises here as it does for
    # device.create_shader_module, not later as an invalid module
    create = getattr(getattr(_api, "libf", None), "wgpuDeviceCreateShaderModuleTrusted", None)
    needed = ("new_struct_p", "to_c_string_view", "GPUShaderModule")
    if create is None or not all(hasattr(_api, name) for name in needed):
        return None
    return _api, ffi, lib, create


def trusted_available() -> bool:
    """Whether this wgpu build can create a shader module without run-time checks."""
    return _trusted_entry() is not None


def create_module(device, label: str, code: str, *, checks: bool):
    """A shader module of WGSL ``code`` on the wgpu ``device``, naga's run-time checks on or off
    (on whatever ``checks`` says where this wgpu build lacks the trusted entry point)."""
    entry = None if checks else _trusted_entry()
    if entry is None:
        return device.create_shader_module(label=label, code=code)
    _api, ffi, lib, create = entry
    source = _api.new_struct_p("WGPUShaderSourceWGSL *", code=_api.to_c_string_view(code))
    source[0].chain.next = ffi.NULL
    source[0].chain.sType = lib.WGPUSType_ShaderSourceWGSL
    descriptor = _api.new_struct_p(
        "WGPUShaderModuleDescriptor *",
        nextInChain=ffi.cast("WGPUChainedStruct *", source),
        label=_api.to_c_string_view(label),
    )
    handle = create(device._internal, descriptor, lib.WGPUShaderRuntimeChecks_None)
    if handle == ffi.NULL:
        raise RuntimeError("shader module creation failed")
    return _api.GPUShaderModule(label, handle, device)
