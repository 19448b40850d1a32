"""The WebGPU side of compiled execution: build a captured program's bind groups once, replay it in one pass.

``WebGPUBackend.build_replay(program)`` (``program``: ``accelkit.graph.plan.Program``) allocates the
plan's own buffers (inputs, constants, slots; exact sizes), uploads the constants, keeps the external
buffers it binds (weights, state) from going back to the pool while the plan lives, and creates one
bind group per recorded dispatch with the plan's buffers substituted for the captured ones.

``replay`` then costs, per call: one ``queue.write_buffer`` per host input, one
``copy_buffer_to_buffer`` per device input (into the pending command encoder, so it follows
recorded eager work), ``set_pipeline``/``set_bind_group``/``dispatch_workgroups`` per dispatch in one
compute pass, one copy per output into the fresh buffer handed to the caller, and a submit (the
first ones early, ``EARLY_SUBMITS``, so the GPU runs while the rest is encoded). With a
profiler listening, each dispatch gets its own pass with timestamp writes and a ``TimedDispatch``.

``bind_replay(handle, {buffer index: buffer})`` makes a *variant* of a built program: the same steps
with a caller's buffers in place of some of the program's own (its input buffers), so a replay that
reads and writes those tensors copies nothing in or out. A variant shares the program's other buffers
and its pipelines; it has its own bind groups, keeps the caller's buffers out of the pool while it
lives, and is freed with the program.
"""

from __future__ import annotations

import time

from ...errors import DeviceError, KernelError
from ..base import TimedDispatch
from .wgsl import bind_group_entries

#: encode replayed dispatches through wgpu-native's C entry points where wgpu-py exposes them: the
#: public ``set_bind_group`` builds a cffi array of dynamic offsets on every call (a quarter of the
#: per-dispatch host cost). False: always the public API (what other wgpu backends get).
NATIVE_CALLS = True

#: submit after this many replayed dispatches (then again after the next count, ...), so the GPU starts
#: on the first ones while the host encodes the rest: the encoding hides behind the GPU's work instead
#: of coming before it. Each extra submit costs the host a few tens of microseconds.
EARLY_SUBMITS = (8, 40, 136)


def _native_calls():
    """(set_pipeline, set_bind_group, dispatch, NULL) of wgpu-native for a compute pass, or None."""
    if not NATIVE_CALLS:
        return None
    try:
        from wgpu.backends.wgpu_native._api import ffi, libf
    except Exception:  # another wgpu backend, or a wgpu-py that moved them
        return None
    try:
        return (
            libf.wgpuComputePassEncoderSetPipeline,
            libf.wgpuComputePassEncoderSetBindGroup,
            libf.wgpuComputePassEncoderDispatchWorkgroups,
            ffi.NULL,
        )
    except AttributeError:
        return None


class Replay:
    """A built program: its buffers and, per run of dispatches between copies, (pipeline, bind group, grid)."""

    def __init__(self, backend, program) -> None:
        self.backend = backend
        self.buffers: list = []
        self.owned: list = []
        self.pinned: list = []
        self.nbytes = 0
        self.dispatches = 0
        self.runs: list[tuple] = []
        self.native = None  # wgpu-native's three calls, when every object exposes its native handle
        self.steps = program.steps if program is not None else []  # kept for variants (no images)
        self.variants: list[Replay] = []
        self.parent: Replay | None = None
        if program is None:
            return
        try:
            self._build(program)
            self._encode()
        except BaseException:
            self.free()
            raise

    def _build(self, program) -> None:
        be = self.backend
        for spec in program.buffers:
            if spec.kind == "external":
                be.pin(spec.handle)
                self.pinned.append(spec.handle)
                self.buffers.append(spec.handle)
                continue
            buf = be.alloc(spec.nbytes, exact=True)
            self.owned.append(buf)
            self.nbytes += buf.size
            be.plan_bytes += buf.size
            self.buffers.append(buf)
            if spec.image:
                be.write(buf, 0, spec.image)

    def variant(self, substitutes: dict) -> Replay:
        """This program with ``substitutes`` ({buffer index: buffer}) bound in place of its own buffers."""
        be = self.backend
        be.check()
        v = Replay(be, None)
        v.steps, v.parent = self.steps, self
        v.buffers = [substitutes.get(i, buf) for i, buf in enumerate(self.buffers)]
        try:
            for buf in substitutes.values():
                be.pin(buf)
                v.pinned.append(buf)
            v._encode()
        except BaseException:
            v.free()
            raise
        self.variants.append(v)
        return v

    def _encode(self) -> None:
        """The runs: ("pass", [(pipeline, bind group, (x, y, z), meta), ...]) or ("copy", src, so, dst, do, n)."""
        be = self.backend
        batch: list | None = None
        with be.lock:
            for step in self.steps:
                if step[0] == "dispatch":
                    _, (pipe, bgl, uniform, workgroups), meta, binds = step
                    gpus = [be.dummy if i is None else self.buffers[i].gpu for i in binds]
                    try:
                        bg = be.device.create_bind_group(
                            layout=bgl, entries=bind_group_entries(gpus, uniform)
                        )
                    except Exception as exc:
                        raise be._wrap(exc, f"building a replay of {meta['label']!r}") from exc
                    if batch is None:
                        batch = []
                        self.runs.append(("pass", batch))
                    batch.append((pipe, bg, tuple(workgroups), meta))
                    self.dispatches += 1
                else:
                    _, src, so, dst, do, n = step
                    self.runs.append(("copy", self.buffers[src].gpu, so, self.buffers[dst].gpu, do, n))
                    batch = None
        native = _native_calls()
        if native is not None:
            try:  # the same runs with native handles: (pipeline, bind group, x, y, z)
                self.native_runs = [
                    (run[0], [(p._internal, b._internal, *wg) for p, b, wg, _ in run[1]])
                    if run[0] == "pass"
                    else run
                    for run in self.runs
                ]
                self.native = native
            except AttributeError:
                self.native = None

    def run(self, writes, copies_in, copies_out) -> None:
        be = self.backend
        be.check()
        with be.lock:
            try:
                queue = be.device.queue
                pending = be._pending_serials
                if pending and any(self.buffers[index].serial in pending for index, _, _ in writes):
                    # recorded eager work still uses this buffer (the pool gave it to the plan after
                    # the capture freed it): a queue write would overtake that work
                    be.flush()
                for index, offset, raw in writes:
                    n = len(raw)
                    if n % 4:
                        raw = bytes(raw) + bytes(4 - n % 4)
                    queue.write_buffer(self.buffers[index].gpu, offset, raw)
                enc = be._ensure_encoder()
                be._end_pass()
                for src, so, index, do, n in copies_in:
                    enc.copy_buffer_to_buffer(src.gpu, so, self.buffers[index].gpu, do, n)
                if be.listeners:
                    self._run_timed(enc)
                elif self.native is not None:
                    self._run_native(enc)
                else:
                    for run in self.runs:
                        if run[0] == "pass":
                            cpass = enc.begin_compute_pass()
                            set_pipeline, set_bind_group = cpass.set_pipeline, cpass.set_bind_group
                            dispatch = cpass.dispatch_workgroups
                            last = None
                            for pipe, bg, (x, y, z), _ in run[1]:
                                if pipe is not last:
                                    set_pipeline(pipe)
                                    last = pipe
                                set_bind_group(0, bg)
                                dispatch(x, y, z)
                            cpass.end()
                        else:
                            enc.copy_buffer_to_buffer(*run[1:])
                enc = be._ensure_encoder()
                for index, so, dst, do, n in copies_out:
                    enc.copy_buffer_to_buffer(self.buffers[index].gpu, so, dst.gpu, do, n)
                be._pending += 1
                be.dispatch_count += self.dispatches
                be.flush()
            except (KernelError, DeviceError):
                raise
            except Exception as exc:
                raise be._wrap(exc, "replaying a plan") from exc

    def _run_native(self, enc) -> None:
        set_pipeline, set_bind_group, dispatch, null = self.native
        be = self.backend
        done, early = 0, iter(EARLY_SUBMITS)
        submit_at = next(early, None)
        for run in self.native_runs:
            if run[0] == "pass":
                cpass = enc.begin_compute_pass()
                handle = cpass._internal
                last = None
                for pipe, bg, x, y, z in run[1]:
                    if pipe != last:
                        set_pipeline(handle, pipe)
                        last = pipe
                    set_bind_group(handle, 0, bg, 0, null)
                    dispatch(handle, x, y, z)
                    done += 1
                    if done == submit_at and done < self.dispatches:
                        # hand the GPU what is encoded so far, and encode the rest while it runs
                        cpass.end()
                        be.flush()
                        enc = be._ensure_encoder()
                        cpass = enc.begin_compute_pass()
                        handle = cpass._internal
                        last = None
                        submit_at = next(early, None)
                cpass.end()
            else:
                enc.copy_buffer_to_buffer(*run[1:])

    def _run_timed(self, enc) -> None:
        """One pass per dispatch (with GPU timestamps where the adapter has them) and a record for each."""
        be = self.backend
        stamps = be.caps.timestamps
        for run in self.runs:
            if run[0] == "copy":
                be._ensure_encoder().copy_buffer_to_buffer(*run[1:])
                continue
            for pipe, bg, (x, y, z), meta in run[1]:
                t0 = time.perf_counter_ns()
                cpass, qi = (
                    be._timestamped_pass() if stamps else (be._ensure_encoder().begin_compute_pass(), None)
                )
                cpass.set_pipeline(pipe)
                cpass.set_bind_group(0, bg)
                cpass.dispatch_workgroups(x, y, z)
                cpass.end()
                rec = TimedDispatch(
                    label=meta["label"],
                    kernel=meta["kernel"],
                    workgroups=(x, y, z),
                    host_ns=t0,
                    host_dur_ns=time.perf_counter_ns() - t0,
                    flops=meta["flops"],
                    bytes_moved=meta["bytes_moved"],
                    replayed=True,
                )
                rec._query = qi  # type: ignore[attr-defined]
                if stamps:
                    be._timed.append(rec)
                for sink in be.listeners:
                    sink.append(rec)

    def free(self) -> None:
        """Give the plan's buffers back and let the external ones go, variants too (idempotent)."""
        be = self.backend
        for v in self.variants:
            v.free()
        if self.parent is not None and self in self.parent.variants:
            self.parent.variants.remove(self)
        owned, pinned = self.owned, self.pinned
        self.owned, self.pinned, self.runs, self.buffers = [], [], [], []
        self.native, self.native_runs, self.steps, self.variants = None, [], [], []
        for buf in owned:
            be.free(buf)
        for buf in pinned:
            be.unpin(buf)
        be.plan_bytes -= self.nbytes
        self.nbytes = 0


__all__ = ["Replay"]
