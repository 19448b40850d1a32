"""``Plan``: a captured call lowered to buffers and steps, built once on the backend and replayed per call.

Building (``Plan.build``) turns a ``Recorder``'s values into the plan's buffers:

- an *input* buffer per distinct Tensor argument storage (plan-owned; each call writes host arrays
  into it with one upload, or copies a device Tensor's bytes into it at the start of the replay);
- *external* buffers (weights, state made before the call) bound as they are (kept alive by the plan);
- *constants*: buffers the call uploaded and never changed on the device (position ids, scalars),
  baked once; an upload into a buffer the call also computes becomes a copy from a baked image;
- *slots*: every other value, assigned by the static memory plan (``memory_plan.py``).

A replay writes/copies the inputs, runs every step in one compute pass (one submit), then copies each
output value into a fresh buffer it hands to the caller as a new Tensor. So an output the caller holds
is never overwritten by a later replay, and bind groups stay static. An output that is (a view of) a
device Tensor argument comes back as the same view of this call's argument, as eagerly.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..tensor.dtype import narrow
from ..tensor.tensor import Storage, Tensor
from .capture import Recorder, Step
from .memory_plan import plan_memory


class CaptureAborted(Exception):
    """Internal: the captured call cannot be replayed; ``args[0]`` says why (the signature runs eagerly)."""


@dataclass
class BufferSpec:
    """One buffer of a plan: ``kind`` is "input", "external", "const" or "slot"."""

    kind: str
    nbytes: int
    image: bytes | None = None  # const: the bytes to bake
    handle: Any = None  # external: the backend buffer to bind


@dataclass
class Program:
    """What a backend builds a replay from: buffers by index, and steps over buffer indices.

    A step is ``("dispatch", payload, meta, bindings)`` (binding: buffer index or None) or
    ``("copy", src, src_offset, dst, dst_offset, nbytes)``.
    """

    buffers: list[BufferSpec]
    steps: list[tuple]


@dataclass
class _Input:
    buffer: int  # plan buffer index
    host: bool  # the argument was a host array (uploaded), not a device Tensor
    dtype: Any
    shape: tuple
    lo: int  # byte span of the argument's elements in its buffer
    hi: int
    write_back: bool  # the call writes into it: copy back into a device argument after replaying


@dataclass
class _Output:
    kind: str  # "copy" (from a plan buffer), "input" (a view of device argument ``source``), "same" (a fixed object)
    source: Any  # copy: plan buffer index; input: argument index; same: the object
    group: int = -1  # copy: outputs of one value share one fresh buffer
    shape: tuple = ()
    strides: tuple = ()
    offset: int = 0  # elements, in the captured buffer
    dtype: Any = None


@dataclass
class PlanStats:
    """What a plan holds and how it compares with the eager call it was captured from."""

    dispatches: int
    copies: int
    slots: int
    slot_bytes: int  # the memory plan's working memory (intermediates and outputs)
    input_bytes: int
    const_bytes: int
    eager_peak_bytes: int  # the most bytes the eager call held in values it allocated
    plan_bytes: int = 0  # every byte the plan's own buffers hold on the device
    eager_buffers: int = 0  # buffers the eager call allocated


class Plan:
    """A replayable call: built by ``Plan.build`` from a capture, run by ``plan(args)``."""

    def __init__(self, device, backend, program: Program, inputs, outputs, groups, stats: PlanStats) -> None:
        """Build ``program`` on ``backend`` (the program itself is not kept: its images are on the device)."""
        self.device = device
        self.backend = backend
        self.inputs: list[_Input] = inputs
        self.outputs: list[_Output] = outputs
        self.groups: list[tuple[int, int, int, Any]] = groups  # (buffer, lo, hi, dtype) per output value
        self.stats = stats
        self.replays = 0
        self.handle = backend.build_replay(program)
        self.stats.plan_bytes = backend.replay_bytes(self.handle)
        self._finalizer = weakref.finalize(self, backend.free_replay, self.handle)
        self._finalizer.atexit = False  # at interpreter exit the device goes anyway

    # ----------------------------------------------------------------------------- building
    @classmethod
    def build(cls, device, backend, recorder: Recorder, args: list, host: list[bool], outputs: list) -> Plan:
        """Lower a finished capture: ``args`` are the Tensor arguments as captured (``host[i]``: uploaded
        from a host array), ``outputs`` the flattened results. Raises CaptureAborted when it cannot replay."""
        values = recorder.values
        steps: list[Step] = list(recorder.steps)
        # where each output leaf comes from
        out_vids: dict[int, list[int]] = {}
        out_specs: list[_Output] = []
        arg_vid = [recorder._vid_of.get(id(t.storage.handle)) for t in args]
        for i, leaf in enumerate(outputs):
            if not isinstance(leaf, Tensor):
                out_specs.append(_Output("same", leaf))
                continue
            vid = recorder._vid_of.get(id(leaf.storage.handle))
            origin = values[vid].origin if vid is not None else "external"
            if origin == "external":
                out_specs.append(_Output("same", leaf))
            elif origin == "input" and not any(h for h, v in zip(host, arg_vid) if v == vid):
                source = arg_vid.index(vid)
                base = args[source]
                delta = leaf.offset - base.offset
                out_specs.append(_Output("input", source, -1, leaf.shape, leaf.strides, delta, leaf.dtype))
            else:
                out_vids.setdefault(vid, []).append(i)
                out_specs.append(_Output("copy", vid, -1, leaf.shape, leaf.strides, leaf.offset, leaf.dtype))
        for value in values.values():
            if value.origin == "new" and value.alive and value.gpu_written and value.vid not in out_vids:
                raise CaptureAborted(
                    "a tensor computed inside the call is kept after it without being returned "
                    "(e.g. cached on an object); return it, or make it before the call"
                )
        # uploads into values the call also computes: a copy from a baked image at the upload's place
        images: list[tuple[int, int, bytes]] = []  # (vid, byte offset, data) per inserted copy
        inserts: dict[int, list[Step]] = {}
        for value in values.values():
            if value.origin == "new" and value.gpu_written and value.host_writes:
                for pos, off, data in value.host_writes:
                    if off % 4 or len(data) % 4:
                        raise CaptureAborted(
                            f"an upload of {len(data)} bytes at byte {off} into a tensor the call also "
                            "computes is not 4-byte aligned"
                        )
                    images.append((value.vid, off, data))
                    inserts.setdefault(pos, []).append(
                        Step("copy", (-len(images), value.vid), (value.vid,), (0, off, len(data)))
                    )
        if inserts:
            merged: list[Step] = []
            for pos in range(len(steps) + 1):
                merged.extend(inserts.get(pos, ()))
                if pos < len(steps):
                    merged.append(steps[pos])
            steps = merged
        steps = _forward_copies(steps, values, set(out_vids) | {v for v in arg_vid if v is not None})
        # buffers
        buffers: list[BufferSpec] = []
        index_of: dict[int, int] = {}
        used = {v for s in steps for v in s.bindings if v is not None and v >= 0} | set(out_vids)
        used |= {v for v in arg_vid if v is not None}
        for vid in sorted(used):
            value = values[vid]
            if value.origin == "input":
                index_of[vid] = len(buffers)
                buffers.append(BufferSpec("input", value.nbytes))
            elif value.origin == "external":
                index_of[vid] = len(buffers)
                buffers.append(BufferSpec("external", value.nbytes, handle=value.handle))
            elif not value.gpu_written and value.host_writes:
                index_of[vid] = len(buffers)
                buffers.append(
                    BufferSpec("const", value.nbytes, image=_image(value.nbytes, value.host_writes))
                )
        for n, (_, _, data) in enumerate(images, 1):
            index_of[-n] = len(buffers)
            buffers.append(BufferSpec("const", len(data), image=data))
        slot_values = sorted(v for v in used if v not in index_of)
        end = len(steps)
        lifetimes: dict[int, tuple[int, int]] = {}
        in_slots = set(slot_values)
        for pos, step in enumerate(steps):
            for v in step.bindings:
                if v in in_slots:
                    first, _ = lifetimes.get(v, (pos, pos))
                    lifetimes[v] = (first, pos)
        for v in slot_values:
            if v in out_vids:
                lifetimes[v] = (lifetimes.get(v, (end, end))[0], end)
            lifetimes.setdefault(v, (end, end))
        mem = plan_memory({v: values[v].nbytes for v in slot_values}, lifetimes)
        slot_base = len(buffers)
        buffers.extend(BufferSpec("slot", size) for size in mem.sizes)
        for v in slot_values:
            index_of[v] = slot_base + mem.slot_of[v]
        # steps over buffer indices
        lowered: list[tuple] = []
        for step in steps:
            if step.kind == "dispatch":
                binds = tuple(None if v is None else index_of[v] for v in step.bindings)
                lowered.append(("dispatch", step.payload, step.meta, binds))
            else:
                (src, dst), (so, do, n) = step.bindings, step.payload
                lowered.append(("copy", index_of[src], so, index_of[dst], do, n))
        # inputs
        in_specs: list[_Input] = []
        for t, is_host, vid in zip(args, host, arg_vid):
            lo, hi = _byte_span(t)
            written = values[vid].gpu_written
            in_specs.append(_Input(index_of[vid], is_host, t.dtype, t.shape, lo, hi, written and not is_host))
        # outputs: one fresh buffer per output value, spanning every output leaf that views it
        groups: list[tuple[int, int, int, Any]] = []
        for vid, leaves in out_vids.items():
            spans = [_byte_span(outputs[i]) for i in leaves]
            lo, hi = min(s[0] for s in spans), max(s[1] for s in spans)
            for i in leaves:
                out_specs[i].group = len(groups)
            groups.append((index_of[vid], lo, hi, outputs[leaves[0]].dtype))
        stats = PlanStats(
            dispatches=sum(1 for s in lowered if s[0] == "dispatch"),
            copies=sum(1 for s in lowered if s[0] == "copy"),
            slots=len(mem.sizes),
            slot_bytes=mem.total,
            input_bytes=sum(b.nbytes for b in buffers if b.kind == "input"),
            const_bytes=sum(b.nbytes for b in buffers if b.kind == "const"),
            eager_peak_bytes=recorder.peak_bytes,
            eager_buffers=sum(1 for v in values.values() if v.origin == "new"),
        )
        return cls(device, backend, Program(buffers, lowered), in_specs, out_specs, groups, stats)

    # ----------------------------------------------------------------------------- replaying
    def bind(self, args: list):
        """A replay handle with the device Tensor arguments' own buffers bound in place of the plan's
        input buffers (``args`` of this plan's signature, in capture order; host arrays stay uploads):
        ``plan(args, bound)`` then reads and writes them directly, with no copies in or back."""
        buffers = {spec.buffer: arg.storage.handle for spec, arg in zip(self.inputs, args) if not spec.host}
        return self.backend.bind_replay(self.handle, buffers)

    def __call__(self, args: list, bound=None) -> list:
        """Replay with ``args`` (Tensors or host arrays, in capture order); returns the output leaves.
        ``bound``: a handle from ``bind(args)`` (these very arguments), which replaces their copies."""
        writes, copies_in, copies_out = [], [], []
        for spec, arg in zip(self.inputs, args):
            if spec.hi <= spec.lo or (bound is not None and not spec.host):
                continue
            if spec.host:
                data = narrow(np.asarray(arg), spec.dtype)
                raw = memoryview(np.ascontiguousarray(data)).cast("B")
                writes.append((spec.buffer, 0, raw))
            else:
                copies_in.append((arg.storage.handle, spec.lo, spec.buffer, spec.lo, spec.hi - spec.lo))
        fresh = []
        for buffer, lo, hi, dtype in self.groups:
            storage = Storage(self.device, hi - lo, dtype)
            fresh.append((storage, lo))
            copies_out.append((buffer, lo, storage.handle, 0, hi - lo))
        if bound is None:
            for spec, arg in zip(self.inputs, args):
                if spec.write_back and spec.hi > spec.lo:
                    copies_out.append((spec.buffer, spec.lo, arg.storage.handle, spec.lo, spec.hi - spec.lo))
        self.backend.replay(self.handle if bound is None else bound, writes, copies_in, copies_out)
        self.replays += 1
        leaves = []
        for out in self.outputs:
            if out.kind == "same":
                leaves.append(out.source)
            elif out.kind == "input":
                base = args[out.source]
                leaves.append(
                    Tensor(base.storage, out.shape, out.strides, base.offset + out.offset, out.dtype)
                )
            else:
                storage, lo = fresh[out.group]
                offset = out.offset - lo // out.dtype.itemsize
                leaves.append(Tensor(storage, out.shape, out.strides, offset, out.dtype))
        return leaves

    def free(self) -> None:
        """Give the plan's buffers back now (also done when the plan is garbage collected)."""
        self._finalizer()

    @property
    def alive(self) -> bool:
        return self._finalizer.alive and self.backend.lost_reason is None

    def __repr__(self) -> str:
        s = self.stats
        return (
            f"<Plan {s.dispatches} dispatches, {s.slots} slots ({s.slot_bytes} B; eager peak "
            f"{s.eager_peak_bytes} B), replayed {self.replays}x>"
        )


def _forward_copies(steps: list[Step], values: dict, keep: set) -> list[Step]:
    """Drop a copy of a whole intermediate into a caller's buffer (``dst[...] = result``: an output
    written into a device argument or a tensor made before the call) by having the steps that make and
    read the intermediate use that buffer instead. Only where that is the same thing: the copy takes
    the intermediate's every byte to the same byte offset, nothing uses it afterwards, and nothing
    touches the destination while the intermediate lives."""
    for pos in range(len(steps) - 1, -1, -1):
        step = steps[pos]
        if step.kind != "copy":
            continue
        (src, dst), (so, do, n) = step.bindings, step.payload
        if src < 0 or src in keep or src == dst or so != do:
            continue
        value, target = values[src], values[dst]
        if value.origin != "new" or value.host_writes or n != value.nbytes or target.origin == "new":
            continue
        if do + n > target.nbytes:
            continue
        uses = [i for i, s in enumerate(steps) if src in s.bindings]
        if uses[-1] != pos:
            continue  # read again after the copy
        if any(dst in steps[i].bindings for i in range(uses[0], pos)):
            continue  # the destination is used while the intermediate lives
        swap = {src: dst}
        steps = [
            s
            if src not in s.bindings
            else Step(
                s.kind,
                tuple(swap.get(v, v) for v in s.bindings),
                tuple(swap.get(v, v) for v in s.writes),
                s.payload,
                s.meta,
            )
            for i, s in enumerate(steps)
            if i != pos
        ]
        target.gpu_written = True
    return steps


def _byte_span(t: Tensor) -> tuple[int, int]:
    """The 4-byte aligned byte range ``[lo, hi)`` of a tensor's elements in its buffer (empty: lo == hi)."""
    if t.size == 0:
        return 0, 0
    lo = t.offset + sum((n - 1) * s for n, s in zip(t.shape, t.strides) if s < 0)
    hi = t.offset + sum((n - 1) * s for n, s in zip(t.shape, t.strides) if s > 0) + 1
    it = t.dtype.itemsize
    return (lo * it) // 4 * 4, -(-(hi * it) // 4) * 4


def _image(nbytes: int, writes: list) -> bytes:
    """A buffer's bytes after the host uploads ``writes`` (position, offset, data), zeros elsewhere."""
    size = max([nbytes] + [off + len(data) for _, off, data in writes])
    image = bytearray(-(-size // 4) * 4)
    for _, off, data in writes:
        image[off : off + len(data)] = data
    return bytes(image)


__all__ = ["BufferSpec", "CaptureAborted", "Plan", "PlanStats", "Program"]
