"""``accelkit.compile(fn)``: capture a function of Tensors once per input signature, replay it afterwards.

The signature of a call is, for each Tensor argument, its (shape, dtype, strides, offset, device) and
which arguments share a storage; for each host (numpy) array, its shape and dtype; for every other
argument, its value (which must be hashable) and where it sits (so which optional arguments are
present counts). Arguments may be nested in tuples, lists and dicts.

``fn`` always receives Tensors for host arrays: they are uploaded to the device of the Tensor
arguments (else ``compile(device=...)``, else the default device) on every path, eager or not.

The first call with a new signature runs eagerly while the backend records it; the recording becomes
a ``Plan`` (static memory plan, prebuilt bind groups). Later calls with that signature replay the
plan: host arrays are uploaded with one write each, device Tensors copied in, every dispatch encoded
into one compute pass, one submit; the outputs come back as new Tensors. A call that reads device
data back to the host, or keeps a computed tensor without returning it, cannot be replayed: its
signature then runs eagerly, and ``.plans`` says why.

Plans are kept per compiled callable in an LRU (``max_plans``); a plan is dropped and captured anew
when its device was lost or ``version()`` (e.g. a model's weights version) changed. On a backend that
does not replay (the CPU), the compiled callable calls ``fn``. ``ak.options(compile=False)`` turns
replay off at call time (also as a ``with`` block).
"""

from __future__ import annotations

import functools
import gc
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..display.settings import get_options
from ..errors import InputError, KernelError
from ..tensor.tensor import Tensor
from .capture import Recorder
from .plan import CaptureAborted, Plan

DEFAULT_MAX_PLANS = 8


@dataclass
class EagerEntry:
    """A signature that runs eagerly, and why."""

    number: int
    signature: str
    reason: str
    calls: int = 0

    def __repr__(self) -> str:
        return f"<eager #{self.number} {self.signature}: {self.reason}>"


# ------------------------------------------------------------------------------------ argument trees
def _flatten(obj, leaves: list, host_arrays: bool):
    """The structure of ``obj`` with Tensors (and, for arguments, numpy arrays) moved to ``leaves``."""
    if isinstance(obj, Tensor) or (host_arrays and isinstance(obj, np.ndarray)):
        leaves.append(obj)
        return ("*",)
    if type(obj) in (tuple, list):
        return (type(obj).__name__, tuple(_flatten(x, leaves, host_arrays) for x in obj))
    if type(obj) is dict:
        keys = tuple(obj)
        return ("dict", keys, tuple(_flatten(obj[k], leaves, host_arrays) for k in keys))
    return ("=", obj)


def _unflatten(spec, leaves):
    """Rebuild what ``_flatten`` took apart, with ``leaves`` in place of its Tensors."""
    return _build(spec, iter(leaves))


def _build(node, leaves):  # a module-level function: a recursive closure would keep the leaves in a cycle
    kind = node[0]
    if kind == "*":
        return next(leaves)
    if kind == "=":
        return node[1]
    if kind == "dict":
        return {k: _build(n, leaves) for k, n in zip(node[1], node[2])}
    items = [_build(n, leaves) for n in node[1]]
    return tuple(items) if kind == "tuple" else items


def _leaf_key(leaf, index: int, first_use: dict) -> tuple:
    if isinstance(leaf, Tensor):
        alias = first_use.setdefault(id(leaf.storage), index)  # arguments sharing one storage
        return (leaf.shape, leaf.dtype.name, leaf.strides, leaf.offset, leaf.device.spec, alias)
    return ("host", leaf.shape, leaf.dtype.str)


def _describe(leaves) -> str:
    parts = []
    for leaf in leaves:
        if isinstance(leaf, Tensor):
            parts.append(f"{leaf.dtype.name}{list(leaf.shape)}")
        else:
            parts.append(f"array {leaf.dtype}{list(leaf.shape)}")
    return "(" + ", ".join(parts) + ")"


def compile_enabled() -> bool:
    """Whether compiled calls replay now (``ak.options(compile=...)``, read at every call)."""
    return get_options().compile


# ------------------------------------------------------------------------------------ the callable
class Compiled:
    """``fn`` with capture and replay; call it as ``fn``. ``plans`` lists what each signature does."""

    def __init__(
        self,
        fn: Callable,
        *,
        max_plans: int = DEFAULT_MAX_PLANS,
        device=None,
        enabled: bool = True,
        version: Callable[[], Any] | None = None,
    ) -> None:
        if not callable(fn):
            raise InputError(f"compile() needs a callable, got {type(fn).__name__}")
        if isinstance(max_plans, bool) or not isinstance(max_plans, int) or max_plans < 1:
            raise InputError(f"compile(): max_plans must be a positive int, got {max_plans!r}")
        self.fn = fn
        self.max_plans = max_plans
        self.device = device
        self.enabled = enabled
        self.version = version
        self._entries: OrderedDict[Any, Plan | EagerEntry] = OrderedDict()
        self._lock = threading.RLock()
        self._numbers = 0
        self.calls = self.captures = self.replayed = self.eager_calls = 0
        self.last: str = "not called yet"
        functools.update_wrapper(self, fn)

    # ----------------------------------------------------------------------------- calling
    def __call__(self, *args, **kwargs):
        self.calls += 1
        leaves: list = []
        spec = _flatten((args, kwargs), leaves, host_arrays=True)
        device = self._device_for(leaves)
        if not (self.enabled and compile_enabled()):
            return self._eager(spec, leaves, device, "eager (compile is off)")
        backend = device.runtime
        if not backend.replays:
            return self._eager(spec, leaves, device, f"eager ({device.spec} runs compiled calls eagerly)")
        if backend.capturing:
            return self._eager(spec, leaves, device, "eager (inside a capture on this device)")
        first_use: dict = {}
        key = (spec, tuple(_leaf_key(leaf, i, first_use) for i, leaf in enumerate(leaves)))
        try:
            hash(key)
        except TypeError:
            bad = [type(x).__name__ for x in _unhashable(spec)]
            raise InputError(
                f"compiled call: arguments other than Tensors and arrays must be hashable "
                f"(they are part of the signature); got {', '.join(bad) or 'an unhashable value'}"
            ) from None
        version = self.version() if self.version is not None else None
        with self._lock:
            entry = self._entries.get(key)
            if isinstance(entry, Plan) and (
                not entry.alive or entry.backend is not backend or entry.weights_version != version
            ):
                self._drop(key)
                entry = None
            if entry is not None:
                self._entries.move_to_end(key)
        if isinstance(entry, EagerEntry):
            entry.calls += 1
            return self._eager(spec, leaves, device, f"eager #{entry.number}: {entry.reason}")
        if isinstance(entry, Plan):
            out = entry(leaves)
            self.replayed += 1
            self.last = f"replayed plan #{entry.number}, {entry.stats.dispatches} dispatches"
            return _unflatten(entry.out_spec, out)
        return self._capture(key, spec, leaves, device, backend, version)

    def _device_for(self, leaves):
        for leaf in leaves:
            if isinstance(leaf, Tensor):
                return leaf.device
        from ..hardware import device as pick_device

        return pick_device(self.device)

    def _eager(self, spec, leaves, device, why: str):
        """Call ``fn`` as it is, host arrays uploaded as on every other path."""
        self.eager_calls += 1
        self.last = why
        args, kwargs = _unflatten(spec, _uploaded(leaves, device)[0])
        return self.fn(*args, **kwargs)

    def _capture(self, key, spec, leaves, device, backend, version):
        tensors, host = _uploaded(leaves, device)
        args, kwargs = _unflatten(spec, tensors)
        recorder = Recorder(backend)
        for t in tensors:
            recorder.add_input(t.storage.handle)
        try:
            backend.begin_capture(recorder)
        except KernelError:  # another thread is capturing on this device: run this call eagerly
            self.eager_calls += 1
            self.last = "eager (another thread was capturing on this device)"
            return self.fn(*args, **kwargs)
        try:
            result = self.fn(*args, **kwargs)
            out_leaves: list = []
            out_spec = _flatten(result, out_leaves, host_arrays=False)
            if recorder.recording and _escapes(recorder, out_leaves):
                gc.collect()  # tensors in reference cycles: let them go while the recorder listens
        finally:
            backend.end_capture()
        self.captures += 1
        self._numbers += 1
        number = self._numbers
        signature = _describe(leaves)
        reason = recorder.abort_reason
        plan = None
        if reason is None:
            try:
                plan = Plan.build(device, backend, recorder, tensors, host, out_leaves)
            except CaptureAborted as e:
                reason = str(e)
        with self._lock:
            if plan is not None:
                plan.number, plan.signature, plan.out_spec = number, signature, out_spec
                plan.weights_version = version
                self._entries[key] = plan
                self.last = f"captured plan #{number}, {plan.stats.dispatches} dispatches"
            else:
                self._entries[key] = EagerEntry(number, signature, reason)
                self.last = f"eager #{number}: {reason}"
            while len(self._entries) > self.max_plans:
                self._drop(next(iter(self._entries)))
        return result

    def bound(self, *args, **kwargs) -> BoundCall:
        """This call with these very arguments, kept: see ``BoundCall``."""
        return BoundCall(self, args, kwargs)

    # ----------------------------------------------------------------------------- plans
    def _drop(self, key) -> None:
        entry = self._entries.pop(key, None)
        if isinstance(entry, Plan):
            entry.free()

    @property
    def plans(self) -> list:
        """Each signature's ``Plan`` or ``EagerEntry`` (with its reason), least recently used first."""
        with self._lock:
            return list(self._entries.values())

    @property
    def plan_bytes(self) -> int:
        """Device bytes held by this callable's plans."""
        return sum(p.stats.plan_bytes for p in self.plans if isinstance(p, Plan))

    def free(self) -> None:
        """Drop every plan now (their device buffers go back to the pool)."""
        with self._lock:
            for key in list(self._entries):
                self._drop(key)

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        n = sum(isinstance(p, Plan) for p in self.plans)
        return (
            f"<compiled {name}: {n} plan(s), {self.replayed} replayed / {self.calls} calls; "
            f"last: {self.last}>"
        )


class BoundCall:
    """A compiled call with fixed arguments (``compiled.bound(*args)``), for a caller that calls it again
    and again with the same device Tensors (WebNN's dispatch into the same MLTensors).

    Calling it calls the compiled function with those arguments; from the second call on, once their
    signature has a plan, it replays a variant of that plan with the arguments' own buffers bound in
    place of the plan's input buffers (``Plan.bind``): no argument is copied in or written back. Where
    that cannot be done (compile off, a backend that does not replay, a signature that runs eagerly, a
    plan dropped, lost or outdated) it is an ordinary call. It keeps the arguments alive, and a plan
    variant keeps their buffers out of the pool: ``free()`` lets both go.
    """

    __slots__ = ("compiled", "args", "kwargs", "calls", "_plan", "_handle", "_leaves")

    def __init__(self, compiled: Compiled, args: tuple, kwargs: dict) -> None:
        self.compiled, self.args, self.kwargs = compiled, args, kwargs
        self.calls = 0
        self._plan = self._handle = self._leaves = None

    def __call__(self):
        c = self.compiled
        plan = self._plan
        if (
            plan is not None
            and plan.alive
            and not plan.backend.capturing  # inside another capture: the ordinary call records it
            and c.enabled
            and compile_enabled()
            and (c.version is None or plan.weights_version == c.version())
        ):
            c.calls += 1
            out = plan(self._leaves, self._handle)
            c.replayed += 1
            c.last = f"replayed plan #{plan.number}, {plan.stats.dispatches} dispatches"
            return _unflatten(plan.out_spec, out)
        self.free()
        result = c(*self.args, **self.kwargs)
        self.calls += 1
        if self.calls > 1 and c.last.startswith("replayed"):  # the second call: bind its plan
            self._bind()
        return result

    def _bind(self) -> None:
        c = self.compiled
        leaves: list = []
        spec = _flatten((self.args, self.kwargs), leaves, host_arrays=True)
        first_use: dict = {}
        key = (spec, tuple(_leaf_key(leaf, i, first_use) for i, leaf in enumerate(leaves)))
        with c._lock:
            plan = c._entries.get(key)
        if isinstance(plan, Plan) and plan.alive:
            self._handle = plan.bind(leaves)
            self._plan, self._leaves = plan, leaves

    def free(self) -> None:
        """Let the plan variant go (the arguments stay until this object goes)."""
        handle, plan = self._handle, self._plan
        self._plan = self._handle = self._leaves = None
        if handle is not None and plan is not None and plan.alive:
            plan.backend.free_replay(handle)


def _uploaded(leaves: list, device) -> tuple[list, list[bool]]:
    """The leaves with host arrays uploaded to ``device`` as Tensors, and which ones were arrays."""
    tensors, host = [], []
    for leaf in leaves:
        if isinstance(leaf, Tensor):
            tensors.append(leaf)
            host.append(False)
        else:
            tensors.append(Tensor.from_numpy(leaf, device=device))
            host.append(True)
    return tensors, host


def _escapes(recorder: Recorder, outputs: list) -> bool:
    kept = {id(t.storage.handle) for t in outputs}
    return any(
        v.origin == "new" and v.alive and v.gpu_written and id(v.handle) not in kept
        for v in recorder.values.values()
    )


def _unhashable(spec):
    if spec[0] == "=":
        try:
            hash(spec[1])
        except TypeError:
            yield spec[1]
    elif spec[0] in ("tuple", "list"):
        for n in spec[1]:
            yield from _unhashable(n)
    elif spec[0] == "dict":
        for n in spec[2]:
            yield from _unhashable(n)


def compile(
    fn: Callable | None = None,
    *,
    max_plans: int = DEFAULT_MAX_PLANS,
    device=None,
    version: Callable[[], Any] | None = None,
):
    """``fn`` captured once per input signature and replayed afterwards; usable as ``@ak.compile``.

    >>> f = ak.compile(lambda x, w: ak.ops.gelu(x @ w))
    >>> y = f(x, w)        # first call: runs eagerly and records a plan
    >>> y = f(x2, w)       # same shapes: replays the plan (one pass, one submit)
    >>> f.plans            # [<Plan 2 dispatches ...>]

    ``device``: where host (numpy) arguments go when no Tensor argument says; ``max_plans``: the
    LRU bound on signatures kept; ``version``: a callable whose value, when it changes, makes the
    plans capture anew (a model passes its weights version).
    """
    if fn is None:
        return lambda f: Compiled(f, max_plans=max_plans, device=device, version=version)
    return Compiled(fn, max_plans=max_plans, device=device, version=version)


__all__ = ["BoundCall", "Compiled", "EagerEntry", "compile", "compile_enabled"]
