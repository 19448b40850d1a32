"""The recorder: what a backend appends to while a call is captured (dispatches, copies, uploads, allocations).

``backend.begin_capture(recorder)`` makes the backend report each event of the capturing thread to
the ``Recorder`` while it still runs it eagerly (so the first call's result is the eager one):

- ``alloc(buf, nbytes)`` / ``free(buf)``: a buffer made / given back during the call;
- ``dispatch(buffers, access, payload, meta)``: one kernel launch, its buffers in binding order
  (``access[i]`` is ``"read"`` or ``"read_write"``), a backend-private ``payload`` (pipeline,
  layout, uniform, grid) and ``meta`` (label, kernel, workgroups, flops, bytes moved);
- ``copy(src, src_offset, dst, dst_offset, nbytes)``: a buffer-to-buffer copy;
- ``write(buf, byte_offset, data)``: host bytes uploaded into a buffer;
- ``readback(nbytes)``: the call read device data to the host: the capture is aborted (the call's
  host logic depends on data, so replaying its dispatches would be wrong) and the call runs on eagerly.

Buffers are renamed to *values* (``vid``): every allocation starts a new value even when the pool
hands back a buffer used earlier in the call, so the memory plan sees true lifetimes. A value is an
``input`` (a buffer of a Tensor argument), ``external`` (existed before the call and is not an input:
weights, state) or ``new`` (allocated inside the call).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Value:
    """One buffer's contents over a span of the captured call."""

    vid: int
    handle: Any  # the backend buffer it lived in during capture
    nbytes: int  # bytes the value needs (requested size for new values, the buffer's size otherwise)
    origin: str  # "input" | "external" | "new"
    alive: bool = True  # new values: still allocated when the call returned
    held: int = 0  # new values: bytes the backend really holds for it (size-class rounded)
    host_writes: list = field(default_factory=list)  # (step position, byte offset, bytes)
    gpu_written: bool = False  # a dispatch or copy writes it


@dataclass
class Step:
    """One recorded event of the call, in order: a dispatch or a copy (host uploads are kept on values)."""

    kind: str  # "dispatch" | "copy"
    bindings: tuple  # dispatch: vid or None per binding; copy: (src vid, dst vid)
    writes: tuple  # vids written
    payload: Any = None  # dispatch: backend-private; copy: (src_offset, dst_offset, nbytes)
    meta: dict | None = None  # dispatch: label, kernel, workgroups, flops, bytes_moved


class Recorder:
    """Receives a backend's events for one captured call (only those of the thread that began it)."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.thread = threading.get_ident()
        self.values: dict[int, Value] = {}
        self.steps: list[Step] = []
        self.abort_reason: str | None = None
        self._vid_of: dict[int, int] = {}  # id(buffer) -> current value
        self._keep: list = []  # every buffer seen, so that no id is reused while recording
        self._paused = 0  # > 0: the capturing thread does the backend's own work (not part of the call)
        self.live_bytes = 0  # bytes held by values allocated in the call and not yet freed
        self.peak_bytes = 0  # the most of them at once: the eager call's peak

    # ----------------------------------------------------------------------------- set up by the graph layer
    def add_input(self, handle) -> int:
        """Declare a Tensor argument's buffer (before the call runs); returns its value id."""
        vid = self._vid_of.get(id(handle))
        if vid is None:
            vid = self._new(handle, self.backend.buffer_bytes(handle), "input")
        return vid

    def vid(self, handle) -> int:
        """The value a buffer holds now (a buffer never seen becomes an external value)."""
        vid = self._vid_of.get(id(handle))
        if vid is None:
            vid = self._new(handle, self.backend.buffer_bytes(handle), "external")
        return vid

    def abort(self, reason: str) -> None:
        """Stop recording; the call goes on eagerly and its signature will run eagerly."""
        if self.abort_reason is None:
            self.abort_reason = reason

    @property
    def recording(self) -> bool:
        return self.abort_reason is None

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Keep what the capturing thread does inside out of the recording: the backend's own work in
        the middle of a call (the matmul autotuner timing its candidates), which a replay must not repeat."""
        self._paused += 1
        try:
            yield
        finally:
            self._paused -= 1

    def _new(self, handle, nbytes: int, origin: str) -> int:
        vid = len(self.values)
        self.values[vid] = Value(vid, handle, int(nbytes), origin)
        self._vid_of[id(handle)] = vid
        self._keep.append(handle)
        return vid

    def _mine(self) -> bool:
        return self.abort_reason is None and not self._paused and threading.get_ident() == self.thread

    # ----------------------------------------------------------------------------- called by the backend
    def alloc(self, buf, nbytes: int) -> None:
        if self._mine():
            vid = self._new(buf, max(-(-int(nbytes) // 4) * 4, 4), "new")
            held = self.values[vid].held = self.backend.buffer_bytes(buf)
            self.live_bytes += held
            self.peak_bytes = max(self.peak_bytes, self.live_bytes)

    def free(self, buf) -> None:
        vid = self._vid_of.get(id(buf))  # any thread: a Storage may die anywhere
        if vid is not None and self.values[vid].origin == "new":
            value = self.values[vid]
            value.alive = False
            self.live_bytes -= value.held
            self._vid_of.pop(id(buf), None)

    def dispatch(self, buffers, access, payload, meta: dict) -> None:
        if not self._mine():
            return
        vids = tuple(None if b is None else self.vid(b) for b in buffers)
        writes = tuple(v for v, a in zip(vids, access) if v is not None and a == "read_write")
        for v in writes:
            self.values[v].gpu_written = True
        self.steps.append(Step("dispatch", vids, writes, payload, meta))

    def copy(self, src, src_offset: int, dst, dst_offset: int, nbytes: int) -> None:
        if not self._mine():
            return
        s, d = self.vid(src), self.vid(dst)
        self.values[d].gpu_written = True
        self.steps.append(Step("copy", (s, d), (d,), (int(src_offset), int(dst_offset), int(nbytes))))

    def write(self, buf, byte_offset: int, data: bytes) -> None:
        if not self._mine():
            return
        value = self.values[self.vid(buf)]
        if value.origin != "new":
            what = "an input tensor" if value.origin == "input" else "a tensor made before the call"
            self.abort(
                f"the call uploads host data into {what}; pass that data as an input of the call instead"
            )
            return
        value.host_writes.append((len(self.steps), int(byte_offset), bytes(data)))

    def readback(self, nbytes: int) -> None:
        if self._mine():
            self.abort(
                f"the call reads {nbytes} bytes of device data back to the host (e.g. .numpy(), .item() "
                "or a Python branch on values); move that out of the compiled call"
            )


__all__ = ["Recorder", "Step", "Value"]
