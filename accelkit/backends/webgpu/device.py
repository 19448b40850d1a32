"""The WebGPU backend's device: buffers from a size-class pool, a pipeline cache, deferred dispatch, timestamps.

Owns: opening the wgpu device, buffer allocation and the pool (``size_class``), exact memory
accounting, the command encoder and submits, pipelines and bind groups, GPU timestamps, and the op
methods of the protocol (``backends/base.py``), each of which asks a planner (``plans.py``,
``matmul.py``, ``attention.py``) for a ``KernelPlan`` and launches it.

Dispatches are recorded into one command encoder and submitted only when a result is read back
(``read``), a host write could race with recorded work (``write``), or a sync is asked for. Every
dispatch can carry GPU timestamps (when the adapter offers ``timestamp-query`` and a profiler is
listening).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque

import numpy as np

from ...errors import DeviceError, KernelError, OutOfMemoryError
from ..base import Backend, MemoryCounter, TimedDispatch
from .attention import plan_attention
from .matmul import launch_matmul, plan_matmul
from .plans import (
    plan_binary,
    plan_embedding,
    plan_fill,
    plan_layer_norm,
    plan_reduce,
    plan_softmax,
    plan_unary,
)
from .replay import Replay
from .shader_module import checks_wanted, create_module
from .update_slice import plan_update_slice
from .wgsl import Caps, KernelPlan, bind_group_entries

MIN_BUFFER = 256
WANTED_FEATURES = ("shader-f16", "subgroup", "timestamp-query", "timestamp-query-inside-passes")
WANTED_LIMITS = (
    "max-buffer-size",
    "max-storage-buffer-binding-size",
    "max-compute-workgroup-storage-size",
    "max-compute-invocations-per-workgroup",
    "max-compute-workgroup-size-x",
    "max-compute-workgroup-size-y",
    "max-compute-workgroup-size-z",
    "max-compute-workgroups-per-dimension",
    "max-storage-buffers-per-shader-stage",
    "max-uniform-buffer-binding-size",
    "max-bind-groups",
)
SOFTWARE_NAMES = ("llvmpipe", "lavapipe", "swiftshader", "microsoft basic render", "warp", "softpipe")


def size_class(nbytes: int) -> int:
    """Round a request up to its pool class: 256 B minimum, then 2^k * {1, 1.25, 1.5, 1.75} (<= 25% slack)."""
    n = max(int(nbytes), MIN_BUFFER)
    top = 1 << (n - 1).bit_length()  # next power of two >= n
    if top <= 1024:
        return top
    quarter = top // 8  # classes between top/2 and top in steps of top/8
    return -(-n // quarter) * quarter


class GPUBuffer:
    """A device buffer owned by the backend's pool; ``size`` is what the device really holds."""

    __slots__ = ("gpu", "size", "serial", "__weakref__")

    def __init__(self, gpu, size: int, serial: int) -> None:
        self.gpu = gpu
        self.size = size
        self.serial = serial


class WebGPUBackend(Backend):
    """One opened wgpu device, with its queue, buffer pool, pipeline cache and pending encoder."""

    name = "webgpu"
    fused_attention = True  # one kernel; the score matrix never reaches device memory
    fused_linear_layer_norm = True  # where the matmul is split-K: the layer norm sums its slices
    split_long_reductions = True  # the reduce kernel gives each output one workgroup

    def __init__(self, adapter, *, label: str = "accelkit") -> None:
        super().__init__()
        import wgpu

        self._wgpu = wgpu
        self.adapter = adapter
        info = adapter.info
        self.adapter_info = dict(info)
        offered = set(adapter.features)
        features = [f for f in WANTED_FEATURES if f in offered]
        limits = {k: adapter.limits[k] for k in WANTED_LIMITS if k in adapter.limits}
        try:
            self.device = adapter.request_device_sync(
                label=label, required_features=features, required_limits=limits
            )
        except Exception as exc:  # wgpu raises its own error types
            raise DeviceError(f"WebGPU device request failed on {info.get('device', '?')}: {exc}") from exc
        self.features = set(self.device.features)
        self.limits = dict(self.device.limits)
        name = str(info.get("device", "") or info.get("description", ""))
        self.caps = Caps(
            f16="shader-f16" in self.features,
            subgroups="subgroup" in self.features,
            subgroup_min=int(info.get("subgroup_min_size", 0) or info.get("stackgroup_min_size", 4) or 4),
            subgroup_max=int(info.get("subgroup_max_size", 0) or info.get("stackgroup_max_size", 128) or 128),
            timestamps="timestamp-query" in self.features,
            max_workgroup_storage=int(self.limits.get("max-compute-workgroup-storage-size", 16384)),
            max_invocations=int(self.limits.get("max-compute-invocations-per-workgroup", 256)),
            max_workgroup_size_x=int(self.limits.get("max-compute-workgroup-size-x", 256)),
            max_workgroups_per_dim=int(self.limits.get("max-compute-workgroups-per-dimension", 65535)),
            max_storage_binding=int(self.limits.get("max-storage-buffer-binding-size", 134217728)),
            vendor=str(info.get("vendor", "")),
            device_name=name,
            is_software=is_software_adapter(info),
        )
        self.lock = threading.RLock()
        self.memory_counter = MemoryCounter()
        self._free: dict[int, list] = {}
        self._free_bytes = 0
        self._cache_limit = 1 << 30
        self._serial = 0
        self._owned: dict[int, object] = {}
        self._released: deque = deque()
        self._pending_serials: set[int] = set()  # buffers that recorded, unsubmitted work uses
        self._pipelines: dict[tuple, tuple] = {}
        #: naga's run-time checks (index clamps, loop counters) in every kernel, as ACCELKIT_SHADER_CHECKS
        #: asks (shader_module.py); otherwise only in plans that ask for them (``KernelPlan.checks``)
        self.shader_checks = checks_wanted()
        self._uniforms: OrderedDict[bytes, object] = OrderedDict()
        self._bind_groups: OrderedDict[tuple, object] = OrderedDict()
        self._encoder = None
        self._pass = None
        self._pending = 0
        self.lost_reason: str | None = None
        self.dispatch_count = 0
        self.submit_count = 0
        # profiling: a list that receives TimedDispatch records while a profiler listens
        self.listeners: list[list] = []
        self._queries = None
        self._query_capacity = 0
        self._query_used = 0
        self._timed: list[TimedDispatch] = []
        # compiled execution (replay.py): the recorder of a capture, and buffers plans bind
        self._recorder = None
        self._pins: dict[int, int] = {}  # serial -> plans binding it
        self._pinned_free: dict[int, GPUBuffer] = {}  # freed while pinned: joins the pool when unpinned
        self._pin_lock = threading.Lock()  # never held while waiting on the device (free() must not block)
        self.plan_bytes = 0
        usage = wgpu.BufferUsage
        self._storage_usage = usage.STORAGE | usage.COPY_SRC | usage.COPY_DST
        self.dummy = self.device.create_buffer(size=MIN_BUFFER, usage=self._storage_usage)

    # ----------------------------------------------------------------------------- capabilities
    @property
    def supports_f16(self) -> bool:
        return self.caps.f16

    @property
    def has_timestamps(self) -> bool:
        return self.caps.timestamps

    @property
    def supports_subgroups(self) -> bool:
        return self.caps.subgroups

    replays = True  # compiled calls capture once and replay (replay.py)

    @property
    def capturing(self) -> bool:
        return self._recorder is not None

    # ----------------------------------------------------------------------------- life & errors
    def check(self) -> None:
        if self.lost_reason is not None:
            raise DeviceError(
                f"WebGPU device {self.caps.device_name!r} was lost ({self.lost_reason}); "
                "call accelkit.device() again for a working device"
            )

    def _wrap(self, exc: Exception, doing: str) -> Exception:
        text = str(exc)
        low = text.lower()
        if "lost" in low or "destroyed" in low or "invalid device" in low or "device is invalid" in low:
            self.lost_reason = text.splitlines()[0] if text else type(exc).__name__
            return DeviceError(f"WebGPU device lost while {doing}: {self.lost_reason}")
        if "out of memory" in low or "outofmemory" in low:
            return OutOfMemoryError(f"WebGPU device out of memory while {doing}: {text}")
        return DeviceError(f"WebGPU error while {doing}: {text}")

    def mark_lost(self, reason: str) -> None:
        """Record that the device is gone; the next op raises DeviceError."""
        self.lost_reason = reason

    def destroy(self) -> None:
        """Release the device (used by tests to simulate a lost device, and at shutdown)."""
        with self.lock:
            self._encoder = None
            self._pass = None
            self._pipelines.clear()
            self._uniforms.clear()
            self._bind_groups.clear()
            self._free.clear()
            self._owned.clear()
            try:
                self.device.destroy()
            except Exception:  # pragma: no cover - best effort
                pass
            if self.lost_reason is None:
                self.lost_reason = "destroyed"

    # ----------------------------------------------------------------------------- buffers
    def alloc(self, nbytes: int, *, exact: bool = False) -> GPUBuffer:
        self.check()
        if nbytes > self.caps.max_storage_binding:
            raise OutOfMemoryError(
                f"a buffer of {nbytes} bytes exceeds this adapter's max storage binding "
                f"({self.caps.max_storage_binding} bytes)"
            )
        size = -(-max(nbytes, 4) // MIN_BUFFER) * MIN_BUFFER if exact else size_class(nbytes)
        with self.lock:
            self._drain_released()
            bucket = self._free.get(size)
            if bucket:
                buf = bucket.pop()
                self._free_bytes -= size
            else:
                try:
                    gpu = self.device.create_buffer(size=size, usage=self._storage_usage)
                except Exception as exc:
                    self.empty_cache()
                    try:
                        gpu = self.device.create_buffer(size=size, usage=self._storage_usage)
                    except Exception:
                        raise self._wrap(exc, f"allocating {size} bytes") from exc
                self._serial += 1
                buf = GPUBuffer(gpu, size, self._serial)
                # keep every live wgpu buffer reachable from here: when tensors die in a reference
                # cycle, wgpu's own finalizer must not release a buffer that goes back to the pool
                self._owned[buf.serial] = gpu
            self.memory_counter.add(size)
            if self._recorder is not None:
                self._recorder.alloc(buf, nbytes)
            return buf

    def free(self, buf: GPUBuffer) -> None:
        """Give a buffer back. Never blocks: a Storage may die in any thread, e.g. when the garbage
        collector runs inside wgpu's poll thread while this thread holds ``self.lock`` waiting for
        that very poll. The buffer is queued and joins the pool at the next allocation. A buffer a
        replay plan binds stays out of the pool (and counted) until the plan lets it go."""
        if self._recorder is not None:
            self._recorder.free(buf)
        with self._pin_lock:
            if buf.serial in self._pins:
                self._pinned_free[buf.serial] = buf
                return
        self.memory_counter.sub(buf.size)
        self._released.append(buf)  # deque.append is atomic

    def buffer_bytes(self, buf: GPUBuffer) -> int:
        return buf.size

    def _drain_released(self) -> None:
        """Move freed buffers into the pool (call with ``self.lock`` held)."""
        released = self._released
        while released:
            buf = released.popleft()
            if self.lost_reason is not None:
                continue
            self._free.setdefault(buf.size, []).append(buf)
            self._free_bytes += buf.size
        if self._free_bytes > self._cache_limit:
            self._trim(self._cache_limit // 2)

    def _trim(self, target: int) -> None:
        self.flush()  # recorded dispatches may still use these buffers: submit before destroying
        for size in sorted(self._free, reverse=True):
            bucket = self._free[size]
            while bucket and self._free_bytes > target:
                buf = bucket.pop()
                self._free_bytes -= size
                self._forget_bind_groups(buf)
                self._owned.pop(buf.serial, None)
                buf.gpu.destroy()

    def empty_cache(self) -> None:
        """Destroy every pooled (free) buffer, returning its memory to the device."""
        with self.lock:
            self._drain_released()
            self._trim(0)
            self._bind_groups.clear()

    def _forget_bind_groups(self, buf: GPUBuffer) -> None:
        dead = [k for k in self._bind_groups if buf.serial in k[1]]
        for k in dead:
            del self._bind_groups[k]

    def memory(self) -> dict:
        with self.lock:
            self._drain_released()
        stats = self.memory_counter.stats()
        stats["cached_bytes"] = self._free_bytes
        stats["reserved_bytes"] = stats["allocated_bytes"] + self._free_bytes
        stats["cached_buffers"] = sum(len(b) for b in self._free.values())
        stats["plan_bytes"] = self.plan_bytes
        return stats

    def write(self, buf: GPUBuffer, byte_offset: int, data: np.ndarray | bytes) -> None:
        """Copy host bytes into a buffer (after submitting recorded work, so nothing races)."""
        self.check()
        mv = memoryview(np.ascontiguousarray(data) if isinstance(data, np.ndarray) else data).cast("B")
        n = mv.nbytes
        if n == 0:
            return
        with self.lock:
            if self._recorder is not None:
                self._recorder.write(buf, byte_offset, mv)
            if buf.serial in self._pending_serials:
                self.flush()  # recorded work uses this buffer: queue writes would overtake it
            head = n - n % 4
            try:
                if head:
                    self.device.queue.write_buffer(buf.gpu, byte_offset, mv[:head])
                if n % 4:  # write_buffer takes multiples of 4 bytes: merge the tail with what is there
                    tail_at = byte_offset + head
                    old = bytearray(self._read(buf, tail_at, 4))
                    old[: n % 4] = mv[head:]
                    self.device.queue.write_buffer(buf.gpu, tail_at, bytes(old))
            except DeviceError:
                raise
            except Exception as exc:
                raise self._wrap(exc, "uploading") from exc

    def read(self, buf: GPUBuffer, byte_offset: int, nbytes: int) -> bytes:
        """Submit recorded work, wait, and copy ``nbytes`` from the buffer to the host."""
        if self._recorder is not None:
            self._recorder.readback(nbytes)
        return self._read(buf, byte_offset, nbytes)

    def _read(self, buf: GPUBuffer, byte_offset: int, nbytes: int) -> bytes:
        self.check()
        if nbytes == 0:
            return b""
        start = byte_offset - byte_offset % 4
        end = -(-(byte_offset + nbytes) // 4) * 4
        with self.lock:
            self.flush()
            try:
                data = self.device.queue.read_buffer(buf.gpu, start, end - start)
            except Exception as exc:
                raise self._wrap(exc, "reading back") from exc
            self._collect_timestamps()
        return bytes(memoryview(data)[byte_offset - start : byte_offset - start + nbytes])

    def copy(self, src: GPUBuffer, src_offset: int, dst: GPUBuffer, dst_offset: int, nbytes: int) -> None:
        """Record a buffer-to-buffer copy (byte offsets and size must be multiples of 4)."""
        self.check()
        with self.lock:
            enc = self._ensure_encoder()
            self._end_pass()
            enc.copy_buffer_to_buffer(src.gpu, src_offset, dst.gpu, dst_offset, nbytes)
            if self._recorder is not None:
                self._recorder.copy(src, src_offset, dst, dst_offset, nbytes)
            self._pending_serials.update((src.serial, dst.serial))
            self._pending += 1

    # ----------------------------------------------------------------------------- pipelines & dispatch
    def pipeline(self, plan: KernelPlan):
        checks = self.shader_checks or plan.checks
        cache_key = (plan.key, checks)
        entry = self._pipelines.get(cache_key)
        if entry is not None:
            return entry
        wgpu = self._wgpu
        device = self.device
        try:
            module = create_module(device, plan.label or str(plan.key[0]), plan.source, checks=checks)
            kinds = {
                "read": wgpu.BufferBindingType.read_only_storage,
                "read_write": wgpu.BufferBindingType.storage,
            }
            entries = [
                {"binding": i, "visibility": wgpu.ShaderStage.COMPUTE, "buffer": {"type": kinds[a]}}
                for i, a in enumerate(plan.access)
            ]
            entries.append(
                {
                    "binding": len(plan.access),
                    "visibility": wgpu.ShaderStage.COMPUTE,
                    "buffer": {"type": wgpu.BufferBindingType.uniform},
                }
            )
            bgl = device.create_bind_group_layout(entries=entries)
            layout = device.create_pipeline_layout(bind_group_layouts=[bgl])
            pipe = device.create_compute_pipeline(
                layout=layout, compute={"module": module, "entry_point": plan.entry_point}
            )
        except Exception as exc:
            if self.lost_reason is not None:
                raise self._wrap(exc, "compiling") from exc
            numbered = "\n".join(f"{i + 1:4d}| {line}" for i, line in enumerate(plan.source.splitlines()))
            raise KernelError(f"kernel {plan.key[0]!r} failed to compile: {exc}\n{numbered}") from exc
        entry = (pipe, bgl)
        self._pipelines[cache_key] = entry
        return entry

    def _uniform(self, params: bytes):
        buf = self._uniforms.get(params)
        if buf is not None:
            self._uniforms.move_to_end(params)
            return buf
        buf = self.device.create_buffer_with_data(data=params, usage=self._wgpu.BufferUsage.UNIFORM)
        self._uniforms[params] = buf
        if len(self._uniforms) > 8192:
            self._uniforms.popitem(last=False)
        return buf

    def _ensure_encoder(self):
        if self._encoder is None:
            self._encoder = self.device.create_command_encoder()
        return self._encoder

    def _end_pass(self) -> None:
        if self._pass is not None:
            self._pass.end()
            self._pass = None

    def launch(self, plan: KernelPlan, buffers: list) -> None:
        """Record one dispatch of ``plan`` with ``buffers`` bound in ``plan.access`` order (None -> dummy)."""
        self.check()
        if len(buffers) != len(plan.access):
            raise KernelError(f"kernel {plan.key[0]!r} takes {len(plan.access)} buffers, got {len(buffers)}")
        if min(plan.workgroups) <= 0:
            return
        t0 = time.perf_counter_ns()
        limit = self.caps.max_workgroups_per_dim
        if max(plan.workgroups) > limit:
            raise KernelError(f"kernel {plan.key[0]!r}: grid {plan.workgroups} exceeds {limit} per dimension")
        with self.lock:
            try:
                pipe, bgl = self.pipeline(plan)
                uniform = self._uniform(plan.params)
                gpus = [b.gpu if b is not None else self.dummy for b in buffers]
                serials = tuple(b.serial if b is not None else 0 for b in buffers)
                bg_key = (plan.key, serials, plan.params)
                bg = self._bind_groups.get(bg_key)
                if bg is None:
                    bg = self.device.create_bind_group(layout=bgl, entries=bind_group_entries(gpus, uniform))
                    self._bind_groups[bg_key] = bg
                    if len(self._bind_groups) > 4096:
                        self._bind_groups.popitem(last=False)
                else:
                    self._bind_groups.move_to_end(bg_key)
                timed = bool(self.listeners) and self.caps.timestamps
                if timed:
                    self._end_pass()
                    cpass, qi = self._timestamped_pass()
                else:
                    if self._pass is None:
                        self._pass = self._ensure_encoder().begin_compute_pass()
                    cpass = self._pass
                cpass.set_pipeline(pipe)
                cpass.set_bind_group(0, bg)
                cpass.dispatch_workgroups(*plan.workgroups)
                if timed:
                    cpass.end()
                if self.listeners:
                    rec = TimedDispatch(
                        label=plan.label or str(plan.key[0]),
                        kernel=(plan.label.split("[")[0].split()[0] if plan.label else str(plan.key[0])),
                        workgroups=plan.workgroups,
                        host_ns=t0,
                        host_dur_ns=time.perf_counter_ns() - t0,
                        flops=plan.flops,
                        bytes_moved=plan.bytes_moved,
                    )
                    rec._query = qi if timed else None  # type: ignore[attr-defined]
                    self._timed.append(rec)
                    for sink in self.listeners:
                        sink.append(rec)
                if self._recorder is not None:
                    meta = {
                        "label": plan.label or str(plan.key[0]),
                        "kernel": plan.label.split("[")[0].split()[0] if plan.label else str(plan.key[0]),
                        "workgroups": plan.workgroups,
                        "flops": plan.flops,
                        "bytes_moved": plan.bytes_moved,
                    }
                    self._recorder.dispatch(buffers, plan.access, (pipe, bgl, uniform, plan.workgroups), meta)
                self._pending_serials.update(serials)
                self._pending += 1
                self.dispatch_count += 1
            except (KernelError, DeviceError):
                raise
            except Exception as exc:
                raise self._wrap(exc, f"launching {plan.key[0]!r}") from exc

    def prepare_profiling(self) -> None:
        """Create the timestamp query set now, so its one-time cost is not charged to the first dispatch."""
        if self.caps.timestamps and self._queries is None:
            with self.lock:
                self._ensure_query_set()

    def _ensure_query_set(self) -> None:
        if self._queries is None:
            self._query_capacity = 4096
            self._queries = self.device.create_query_set(type="timestamp", count=self._query_capacity)
            usage = self._wgpu.BufferUsage
            self._query_buf = self.device.create_buffer(
                size=self._query_capacity * 8, usage=usage.QUERY_RESOLVE | usage.COPY_SRC
            )

    def _timestamped_pass(self):
        """A compute pass of its own whose start and end write GPU timestamps: (pass, first query index)."""
        qi = self._reserve_queries()  # may submit what is recorded so far: take the encoder after it
        cpass = self._ensure_encoder().begin_compute_pass(
            timestamp_writes={
                "query_set": self._queries,
                "beginning_of_pass_write_index": qi,
                "end_of_pass_write_index": qi + 1,
            }
        )
        return cpass, qi

    def _reserve_queries(self) -> int:
        if self._queries is None or self._query_used + 2 > self._query_capacity:
            if self._queries is not None and self._query_used:
                # resolve what is there before starting a new set
                self.flush()
                self._collect_timestamps()
            self._ensure_query_set()
            self._query_used = 0
        qi = self._query_used
        self._query_used += 2
        return qi

    def flush(self) -> None:
        """Submit everything recorded so far (without waiting)."""
        with self.lock:
            if self._encoder is None:
                return
            self._end_pass()
            enc = self._encoder
            if self._queries is not None and self._query_used:
                enc.resolve_query_set(self._queries, 0, self._query_used, self._query_buf, 0)
                self._resolved = self._query_used
            self._encoder = None
            self._pending = 0
            self._pending_serials = set()
            try:
                self.device.queue.submit([enc.finish()])
            except Exception as exc:
                raise self._wrap(exc, "submitting") from exc
            self.submit_count += 1

    def sync(self) -> None:
        """Submit recorded work and wait for the device to finish it."""
        self.check()
        with self.lock:
            self.flush()
            try:
                # a 4-byte readback waits for everything submitted before it (wgpu-py 0.32's
                # on_submitted_work_done_sync does not work with its wgpu-native)
                self.device.queue.read_buffer(self.dummy, 0, 4)
            except Exception as exc:
                raise self._wrap(exc, "waiting for the device") from exc
            self._collect_timestamps()

    def _collect_timestamps(self) -> None:
        resolved = getattr(self, "_resolved", 0)
        if not resolved:
            return
        self._resolved = 0
        raw = self.device.queue.read_buffer(self._query_buf, 0, resolved * 8)
        stamps = np.frombuffer(raw, dtype=np.uint64)
        for rec in self._timed:
            qi = getattr(rec, "_query", None)
            if qi is not None and qi + 1 < resolved:
                rec.gpu_start_ns = int(stamps[qi])
                rec.gpu_end_ns = int(stamps[qi + 1])
        self._timed = []
        self._query_used = 0

    # ----------------------------------------------------------------------------- compiled execution
    def begin_capture(self, recorder) -> None:
        """Report this thread's allocs, frees, dispatches, copies, uploads and readbacks to ``recorder``."""
        with self.lock:
            if self._recorder is not None:
                raise KernelError("a capture is already recording on this device")
            self._recorder = recorder

    def end_capture(self) -> None:
        """Stop reporting to the recorder."""
        with self.lock:
            self._recorder = None

    def build_replay(self, program) -> Replay:
        """Allocate a program's buffers and build its bind groups (replay.py)."""
        self.check()
        return Replay(self, program)

    def bind_replay(self, handle: Replay, buffers: dict) -> Replay:
        """A variant of a built program with ``buffers`` ({buffer index: buffer}) bound in place of its own."""
        return handle.variant(buffers)

    def replay(self, handle: Replay, writes, copies_in, copies_out) -> None:
        """Upload ``writes``, copy ``copies_in``, run the program in one pass, copy ``copies_out``, submit."""
        handle.run(writes, copies_in, copies_out)

    def replay_bytes(self, handle: Replay) -> int:
        """Device bytes a built program holds in its own buffers."""
        return handle.nbytes

    def free_replay(self, handle: Replay) -> None:
        """Give a built program's buffers back."""
        handle.free()

    def pin(self, buf: GPUBuffer) -> None:
        """Keep ``buf`` out of the pool while a plan binds it, even when its Storage is freed."""
        with self._pin_lock:
            self._pins[buf.serial] = self._pins.get(buf.serial, 0) + 1

    def unpin(self, buf: GPUBuffer) -> None:
        with self._pin_lock:
            left = self._pins.get(buf.serial, 0) - 1
            if left > 0:
                self._pins[buf.serial] = left
                return
            self._pins.pop(buf.serial, None)
            dead = self._pinned_free.pop(buf.serial, None)
        if dead is not None:
            self.free(dead)

    # ----------------------------------------------------------------------------- ops
    # Tensors arrive with shape, strides and offset in elements over a storage whose ``handle`` is a
    # GPUBuffer; each op turns the call into a KernelPlan and launches it with the buffers in the
    # order of ``plan.access`` (None binds the dummy buffer).
    def fill(self, out, value: float) -> None:
        self.launch(plan_fill(self.caps, out, value), [_buf(out)])

    def unary(self, op: str, x, out, alpha: float = 0.0) -> None:
        if (
            x.storage is out.storage
        ):  # x[1:] = x[:-1]: one buffer cannot be bound read-only and writable at once
            x = x.clone()
        self.launch(plan_unary(self.caps, op, x, out, alpha), [_buf(x), _buf(out)])

    def binary(self, op: str, a, b, out) -> None:
        self.launch(plan_binary(self.caps, op, a, b, out), [_buf(a), _buf(b), _buf(out)])

    def matmul(self, a, b, out, bias=None, activation: str | None = None, residual=None) -> None:
        plan = plan_matmul(self.caps, a, b, out, bias, activation, residual=residual, **self._tuned(a, b))
        launch_matmul(self, plan, _buf(a), _buf(b), _buf(bias), _buf(residual), _buf(out))

    def _tuned(self, a, b) -> dict:
        """The autotuner's ``plan_matmul`` overrides for a @ b ({}: the planner's rules)."""
        batch, m, k = a.shape
        n = b.shape[2]
        if min(m, n) <= 8 or k <= 0:  # not the tiled kernel's shapes
            return {}
        b_k = b.strides[1] == 1 and b.strides[2] != 1
        recorder = self._recorder
        if recorder is None:
            return self.autotuner.choose(batch * m, n, k, a.dtype.wgsl, b_k)
        # a first call of a shape tunes it: its timing runs are no part of the capture
        with recorder.paused():
            return self.autotuner.choose(batch * m, n, k, a.dtype.wgsl, b_k)

    def linear_layer_norm(self, a, b, bias, residual, weight_ln, bias_ln, out, eps: float) -> bool:
        """Fused where the matmul is split-K: its tiled pass, then the layer norm summing the slices
        (the reduction pass saved); False (the op layer's two ops) otherwise."""
        n = b.shape[2]
        if n % 4:
            return False
        plan = plan_matmul(self.caps, a, b, out, bias, None, **self._tuned(a, b))
        splitk = plan.extra.get("splitk")
        if splitk is None:  # one tiled pass: its epilogue already adds the bias
            return False
        scratch_bytes, _ = splitk
        ln = plan_layer_norm(
            self.caps, None, weight_ln, bias_ln, out, eps, residual, plan.extra["splits"], bias
        )
        scratch = self.alloc(scratch_bytes)
        try:
            self.launch(plan, [_buf(a), _buf(b), None, None, scratch])
            self.launch(ln, [scratch, _buf(residual), _buf(weight_ln), _buf(bias_ln), _buf(out), _buf(bias)])
        finally:
            self.free(scratch)
        return True

    @property
    def autotuner(self):
        """The matmul autotuner (``autotune.py``) of this device, made at first use."""
        tuner = self.__dict__.get("_autotuner")
        if tuner is None:
            from .autotune import Autotuner

            tuner = self.__dict__["_autotuner"] = Autotuner(self)
        return tuner

    def softmax(self, x, out) -> None:
        self.launch(plan_softmax(self.caps, x, out), [_buf(x), _buf(out)])

    def layer_norm(self, x, weight, bias, out, eps: float, residual=None) -> None:
        plan = plan_layer_norm(self.caps, x, weight, bias, out, eps, residual)
        self.launch(plan, [_buf(x), _buf(residual), _buf(weight), _buf(bias), _buf(out)])

    def reduce(self, op: str, x, out) -> None:
        self.launch(plan_reduce(self.caps, op, x, out), [_buf(x), _buf(out)])

    def embedding(self, ids, table, out) -> None:
        self.launch(plan_embedding(self.caps, ids, table, out), [_buf(ids), _buf(table), _buf(out)])

    def attention(self, q, k, v, mask, out, scale: float, causal: bool, kv_start=None) -> None:
        plan = plan_attention(self.caps, q, k, v, mask, out, scale, causal, kv_start=kv_start)
        buffers = [_buf(q), _buf(k), _buf(v), _buf(mask), _buf(out)]
        self.launch(plan, buffers if kv_start is None else [*buffers, _buf(kv_start)])

    def update_slice(self, dst, src, start, axis: int) -> None:
        if src.storage is dst.storage:  # one buffer cannot be bound read-only and writable at once
            src = src.clone()
        self.launch(plan_update_slice(self.caps, dst, src, start, axis), [_buf(src), _buf(start), _buf(dst)])


def _buf(t):
    return None if t is None else t.storage.handle


def is_software_adapter(info) -> bool:
    """True for CPU rasterisers (lavapipe/llvmpipe, SwiftShader, WARP)."""
    text = " ".join(str(info.get(k, "")) for k in ("vendor", "device", "description", "architecture")).lower()
    if str(info.get("adapter_type", "")).lower() == "cpu":
        return True
    return any(name in text for name in SOFTWARE_NAMES)
