"""The short protocol every backend implements, and the exact memory accounting they share.

A backend allocates and frees buffers, copies bytes in and out, synchronises, and implements the
op set on tensors (``unary``, ``binary``, ``matmul``, ...). Tensors arrive with their layout
(shape, strides and offset in elements over a storage); outputs are preallocated by the op layer.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


class MemoryCounter:
    """Live bytes, peak bytes and live buffer count, updated on every alloc/free."""

    def __init__(self) -> None:
        self._lock = threading.RLock()  # re-entrant: a Storage may be collected while this thread holds it
        self.allocated = 0
        self.peak = 0
        self.buffers = 0
        self.total_allocs = 0

    def add(self, nbytes: int) -> None:
        with self._lock:
            self.allocated += nbytes
            self.buffers += 1
            self.total_allocs += 1
            if self.allocated > self.peak:
                self.peak = self.allocated

    def sub(self, nbytes: int) -> None:
        with self._lock:
            self.allocated -= nbytes
            self.buffers -= 1

    def reset_peak(self) -> None:
        with self._lock:
            self.peak = self.allocated

    def stats(self) -> dict:
        return {
            "allocated_bytes": self.allocated,
            "peak_bytes": self.peak,
            "buffers": self.buffers,
            "total_allocations": self.total_allocs,
        }


@dataclass
class TimedDispatch:
    """One recorded op/dispatch, for the profiler: label, grid, host time, and (after a sync) device time."""

    label: str
    kernel: str
    workgroups: tuple
    host_ns: int
    host_dur_ns: int = 0
    flops: float = 0.0
    bytes_moved: float = 0.0
    gpu_start_ns: int | None = None
    gpu_end_ns: int | None = None


class Backend:
    """Base class: the calls the tensor and op layers make. Subclasses fill in every method."""

    name = "base"

    def __init__(self) -> None:
        self.memory_counter = MemoryCounter()
        # a profiler appends a list here; every op/dispatch then appends a TimedDispatch to it
        self.listeners: list[list] = []

    # buffers
    def alloc(self, nbytes: int, *, exact: bool = False):  # pragma: no cover - interface
        raise NotImplementedError

    def free(self, handle) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def memory(self) -> dict:
        return self.memory_counter.stats()

    def reset_peak(self) -> None:
        self.memory_counter.reset_peak()

    def sync(self) -> None:
        """Wait until every recorded op has finished."""

    def check(self) -> None:
        """Raise DeviceError if the device can no longer be used."""


def profiled(kernel: str, out_arg: int | None = None):
    """Decorate a host-side backend op so a listening profiler sees it (its device time is its host time)."""

    def wrap(fn):
        def method(self, *args, **kwargs):
            if not self.listeners:
                return fn(self, *args, **kwargs)
            t0 = time.perf_counter_ns()
            result = fn(self, *args, **kwargs)
            t1 = time.perf_counter_ns()
            op = args[0] if args and isinstance(args[0], str) else kernel
            out = kwargs.get("out", args[out_arg] if out_arg is not None and out_arg < len(args) else None)
            shape = getattr(out, "shape", None)
            label = f"{op}{list(shape) if shape is not None else ''}"
            rec = TimedDispatch(label, f"cpu.{op}", (), t0, t1 - t0, gpu_start_ns=t0, gpu_end_ns=t1)
            for sink in self.listeners:
                sink.append(rec)
            return result

        method.__name__ = fn.__name__
        method.__doc__ = fn.__doc__
        return method

    return wrap
