"""The hardware layer: enumerate WebGPU adapters and the CPU, rank them, pick one, explain every fallback.

Owns: ``Device`` (one place tensors can live), ``devices()`` / ``DeviceList``, ``device(spec)``,
``set_default``, and ``MemoryReport`` (``%accel memory``). ``discovery.py`` holds the devices and
the ranking, ``memory.py`` the memory report.

May import: ``errors``, ``display`` and ``backends`` (a device opens its backend on first use).
"""

from __future__ import annotations

from .discovery import (
    RANK,
    Device,
    DeviceList,
    device,
    devices,
    set_default,
    wgpu_problem,
)
from .memory import MemoryReport

__all__ = [
    "RANK",
    "Device",
    "DeviceList",
    "MemoryReport",
    "device",
    "devices",
    "set_default",
    "wgpu_problem",
]
