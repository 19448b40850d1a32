"""The backend protocol (``Backend``), its capabilities, and the memory accounting and timing records backends share.

A backend allocates and frees buffers, copies bytes in and out, synchronises, and implements the
op set on tensors (``unary``, ``binary``, ``matmul``, ...). Tensors arrive with their layout
(shape, strides and offset in elements over a storage); outputs are preallocated by the op layer.
``Backend`` lists every method the layers above call; ``cpu.CPUBackend`` and
``webgpu.WebGPUBackend`` define each in their class bodies. Upper layers branch on capabilities
(``supports_f16``, ``fused_attention``, ...), never on ``name``.
"""

from __future__ import annotations

import functools
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


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


#: rough floating-point operations per element of a unary op, for the profiler (both backends)
UNARY_FLOPS = {
    "copy": 0,
    "cast": 0,
    "neg": 1,
    "abs": 1,
    "relu": 1,
    "scale": 1,
    "exp": 4,
    "log": 4,
    "sqrt": 4,
    "rsqrt": 5,
    "tanh": 8,
    "sigmoid": 6,
    "silu": 7,
    "erf": 20,
    "gelu": 24,
    "gelu_tanh": 14,
    "sin": 18,
    "cos": 18,
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
    replayed: bool = False  # recorded by replaying a compiled plan (accelkit.graph), not by an op call


class TensorLike(Protocol):
    """What a backend sees of a tensor: its layout, in elements, over a storage whose ``handle`` it allocated."""

    shape: tuple[int, ...]
    strides: tuple[int, ...]
    offset: int
    dtype: Any  # accelkit.tensor.dtype.DType (its numpy dtype ``np``, ``itemsize`` and ``wgsl`` type)
    storage: Any  # accelkit.tensor.Storage (``handle``)


def contiguous_strides(shape) -> tuple:
    """The row-major strides, in elements, of a dense tensor of ``shape`` (size-0 dims count as 1)."""
    strides, acc = [], 1
    for n in reversed(tuple(shape)):
        strides.append(acc)
        acc *= max(int(n), 1)
    return tuple(reversed(strides))


def is_contiguous(layout) -> bool:
    """True when ``layout``'s (a TensorLike's) elements lie densely in row-major order (size-1 dims may
    have any stride)."""
    expected = 1
    for n, s in zip(reversed(layout.shape), reversed(layout.strides)):
        if n != 1 and s != expected:
            return False
        expected *= n
    return True


class Backend(ABC):
    """The protocol: every call the tensor, op, sharing, profiler and bench layers make on a backend.

    A buffer (``buf``, a Storage's ``handle``) is whatever the backend allocates (a ``GPUBuffer``, a
    numpy byte array); the layers above only pass it back. Op methods take Tensors (shape, strides, offset in elements over a
    ``storage.handle``) and write into a preallocated ``out``; float16 computes in float32.
    Capabilities are plain attributes the layers above branch on instead of the backend's name.
    """

    #: short name ("cpu", "webgpu"): for messages and records, never to branch on
    name: str = "base"

    # ----------------------------------------------------------------------------- capabilities
    #: float16 tensors can live here (WebGPU: the adapter offers ``shader-f16``)
    supports_f16: bool = False
    #: dispatches carry device timestamps when a profiler listens (WebGPU: ``timestamp-query``)
    has_timestamps: bool = False
    #: ``attention`` runs as one kernel that never writes the score matrix to memory
    fused_attention: bool = False
    #: ``linear_layer_norm`` can fuse (it may still decline a call, returning False)
    fused_linear_layer_norm: bool = False
    #: kernels may use subgroup (wave/warp) operations
    supports_subgroups: bool = False
    #: ``reduce`` gives each output one workgroup, so a long axis reduced to a few values pays to
    #: be split into two passes (the op layer does the split)
    split_long_reductions: bool = False
    #: why the device is gone (None while it works); set when the device is lost or destroyed
    lost_reason: str | None = None
    #: compiled calls (``accelkit.graph``) capture their dispatches once and replay them; when False
    #: (the CPU backend) a compiled call simply runs eagerly
    replays: bool = False

    @property
    def capturing(self) -> bool:
        """True while a capture records on this backend (a compiled call inside it runs eagerly)."""
        return False

    def __init__(self) -> None:
        self.memory_counter = MemoryCounter()
        #: a profiler appends a list here; every op/dispatch then appends a TimedDispatch to it
        self.listeners: list[list] = []

    # ----------------------------------------------------------------------------- buffers
    @abstractmethod
    def alloc(self, nbytes: int, *, exact: bool = False) -> Any:
        """A buffer of at least ``nbytes`` (exactly, rounded to the backend's granule, with ``exact``)."""

    @abstractmethod
    def free(self, buf: Any) -> None:
        """Give a buffer back; never blocks (a Storage may die in any thread)."""

    @abstractmethod
    def buffer_bytes(self, buf: Any) -> int:
        """What the device really holds for ``buf`` (size-class rounded)."""

    @abstractmethod
    def write(self, buf: Any, byte_offset: int, data: np.ndarray | bytes) -> None:
        """Copy host bytes into a buffer at ``byte_offset`` (ordered after recorded work)."""

    @abstractmethod
    def read(self, buf: Any, byte_offset: int, nbytes: int) -> bytes:
        """Finish recorded work and copy ``nbytes`` at ``byte_offset`` to the host."""

    @abstractmethod
    def memory(self) -> dict:
        """``allocated_bytes``, ``peak_bytes``, ``buffers``, ``cached_bytes``, ``reserved_bytes``, ..."""

    def reset_peak(self) -> None:
        """Start the peak from the bytes allocated now."""
        self.memory_counter.reset_peak()

    @abstractmethod
    def empty_cache(self) -> None:
        """Give cached (free, pooled) buffers back to the device."""

    # ----------------------------------------------------------------------------- life & timing
    @abstractmethod
    def sync(self) -> None:
        """Wait until every recorded op has finished."""

    @abstractmethod
    def check(self) -> None:
        """Raise DeviceError if the device can no longer be used."""

    @abstractmethod
    def prepare_profiling(self) -> None:
        """Set up timing now (e.g. timestamp queries), so its one-time cost is not charged to an op."""

    # ----------------------------------------------------------------------------- ops
    @abstractmethod
    def fill(self, out: TensorLike, value: float) -> None:
        """Set every element of the contiguous ``out`` to ``value``."""

    @abstractmethod
    def unary(self, op: str, x: TensorLike, out: TensorLike, alpha: float = 0.0) -> None:
        """``out = op(x)`` elementwise (``copy``, ``cast``, ``exp``, ``gelu``, ...; ``scale`` by ``alpha``)."""

    @abstractmethod
    def binary(self, op: str, a: TensorLike, b: TensorLike, out: TensorLike) -> None:
        """``out = op(a, b)`` elementwise over same-shape (possibly stride-0) views."""

    @abstractmethod
    def matmul(
        self,
        a: TensorLike,
        b: TensorLike,
        out: TensorLike,
        bias: TensorLike | None = None,
        activation: str | None = None,
        residual: TensorLike | None = None,
    ) -> None:
        """``out = activation(a @ b + bias) + residual`` over (batch, M, K) @ (batch, K, N) views."""

    @abstractmethod
    def softmax(self, x: TensorLike, out: TensorLike) -> None:
        """Softmax over the last dim of the contiguous ``x`` (all -inf rows give zeros)."""

    @abstractmethod
    def layer_norm(
        self,
        x: TensorLike,
        weight: TensorLike | None,
        bias: TensorLike | None,
        out: TensorLike,
        eps: float,
        residual: TensorLike | None = None,
    ) -> None:
        """Layer norm over the last dim of ``x`` (+ ``residual``), contiguous operands."""

    def linear_layer_norm(
        self,
        a: TensorLike,
        b: TensorLike,
        bias: TensorLike | None,
        residual: TensorLike,
        weight_ln: TensorLike,
        bias_ln: TensorLike,
        out: TensorLike,
        eps: float,
    ) -> bool:
        """``out = layer_norm(a @ b + bias + residual)`` in the backend's fused kernels, returning True; or
        nothing done and False where it has none for these operands (the op layer then runs ``matmul``
        and ``layer_norm``). (1, M, K) @ (1, K, N) views; residual, out and the layer norm's weights
        contiguous. This base returns False."""
        return False

    @abstractmethod
    def reduce(self, op: str, x: TensorLike, out: TensorLike) -> None:
        """Reduce the middle axis of a contiguous (outer, n, inner) ``x`` into (outer, inner)."""

    @abstractmethod
    def embedding(self, ids: TensorLike, table: TensorLike, out: TensorLike) -> None:
        """Rows of ``table`` (V, D) at int32 ``ids`` (N,) into ``out`` (N, D); ids are clamped."""

    @abstractmethod
    def attention(
        self,
        q: TensorLike,
        k: TensorLike,
        v: TensorLike,
        mask: TensorLike | None,
        out: TensorLike,
        scale: float,
        causal: bool,
        kv_start: TensorLike | None = None,
    ) -> None:
        """``softmax(q k^T * scale + mask [+ causal]) v`` over (B, H, T, D) views.

        With ``kv_start`` (int32, its first element p read on the device) q's rows sit at key positions
        p, p + 1, ...: keys from p + Tq on are not attended (causal: row i sees keys j <= p + i), so a
        fixed-size KV cache serves every decoding step with the same dispatch.
        """

    @abstractmethod
    def update_slice(self, dst: TensorLike, src: TensorLike, start: TensorLike, axis: int) -> None:
        """``dst[..., p : p + n, ...] = src`` along ``axis`` (n = src's length there), in place; p is the
        first element of the int32 ``start``, read on the device and clamped to [0, dst's length - n]."""

    # ----------------------------------------------------------------------------- compiled execution
    # The graph layer (``accelkit/graph``) captures a call with a recorder (``graph/capture.py``), lowers
    # it to a program (``graph/plan.py``: buffers by index, dispatch and copy steps) and replays it.
    @abstractmethod
    def begin_capture(self, recorder) -> None:
        """Run on eagerly, but report this thread's alloc/free/dispatch/copy/write/readback to ``recorder``."""

    @abstractmethod
    def end_capture(self) -> None:
        """Stop reporting to the recorder."""

    @abstractmethod
    def build_replay(self, program) -> Any:
        """Allocate a program's buffers, upload its constants, prebuild its steps; returns a handle."""

    @abstractmethod
    def bind_replay(self, handle: Any, buffers: dict) -> Any:
        """A variant of a built program with ``buffers`` ({buffer index: backend buffer}: a caller's
        tensors) bound in place of its own; replayed like it, freed with it or by ``free_replay``."""

    @abstractmethod
    def replay(self, handle: Any, writes: list, copies_in: list, copies_out: list) -> None:
        """Run a built program once, in one submit.

        ``writes``: (buffer index, byte offset, host bytes) uploads first; ``copies_in``: (source buf,
        offset, buffer index, offset, nbytes) copies into the program's buffers; then every step;
        then ``copies_out``: (buffer index, offset, destination buf, offset, nbytes).
        """

    @abstractmethod
    def replay_bytes(self, handle: Any) -> int:
        """Device bytes a built program holds in its own buffers."""

    @abstractmethod
    def free_replay(self, handle: Any) -> None:
        """Give a built program's buffers back (idempotent)."""


def profiled(kernel: str, out_arg: int | None = None, flops=None, variant=None):
    """Decorate a host-side backend op so a listening profiler sees it (its device time is its host time).

    The record's kernel name is the op's (``matmul``, ``add``, ``layer_norm+residual``): the same
    name the WebGPU backend gives the same op, so profiles of both backends line up. ``flops(*args,
    **kwargs)`` counts the op's floating-point operations (the profile's GFLOP/s); ``variant(*args,
    **kwargs)`` returns a suffix of the kernel name (``"+residual"``).
    """

    def wrap(fn):
        def method(self, *args, **kwargs):
            if not self.listeners:
                return fn(self, *args, **kwargs)
            t0 = time.perf_counter_ns()
            result = fn(self, *args, **kwargs)
            t1 = time.perf_counter_ns()
            op = args[0] if args and isinstance(args[0], str) else kernel
            op += variant(*args, **kwargs) if variant is not None else ""
            out = kwargs.get("out", args[out_arg] if out_arg is not None and out_arg < len(args) else None)
            shape = getattr(out, "shape", None)
            label = f"{op}{list(shape) if shape is not None else ''}"
            n_flops = float(flops(*args, **kwargs)) if flops is not None else 0.0
            rec = TimedDispatch(label, op, (), t0, t1 - t0, flops=n_flops, gpu_start_ns=t0, gpu_end_ns=t1)
            for sink in self.listeners:
                sink.append(rec)
            return result

        return functools.wraps(fn)(method)

    return wrap
