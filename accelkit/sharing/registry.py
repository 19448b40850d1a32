"""Named tensors shared between models: a producer publishes, consumers acquire views (no copy).

Every holder (the producer's handle and each consumer's) counts once; the registry keeps the tensor
alive while any holder has not released it, and drops it when the last one does, so its storage
goes back to the device as soon as nobody else references it either.

    enc = whisper.encode(features)                                 # (B, S, C) on the device
    with ak.sharing.publish("audio/enc", enc, owner="whisper.encoder"):
        with ak.sharing.acquire("audio/enc", consumer="transcribe") as h:
            whisper.generate(encoder_hidden_states=h.tensor, task="transcribe")
        with ak.sharing.acquire("audio/enc", consumer="translate") as h:
            whisper.generate(encoder_hidden_states=h.tensor, task="translate")
    ak.sharing.report()                                            # who shares what, bytes saved

A consumer's ``.tensor`` is a new Tensor over the producer's Storage (same shape, strides and
offset): acquiring allocates no device bytes. The report counts as saved the bytes of every view
served, i.e. what each consumer would have allocated for its own copy.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import AccelkitError
from ..tensor.tensor import Tensor


class SharingError(AccelkitError, LookupError):
    """A name that is not (or already) published, a released handle, or a value that is not a Tensor."""


@dataclass
class _Shared:
    name: str
    tensor: Tensor | None
    owner: str
    published_at: float
    holders: dict = field(default_factory=dict)  # handle serial -> (role, label)
    views: int = 0  # views served so far
    consumers: Counter = field(default_factory=Counter)  # consumer label -> views served to it

    @property
    def refcount(self) -> int:
        return len(self.holders)


class SharedTensor:
    """A hold on a published tensor: ``.tensor`` is a view of it (no copy), valid until ``release()``.

    Use it as a context manager to release on exit. ``role`` is "producer" (from ``publish``) or
    "consumer" (from ``acquire``). A consumer handle that is garbage-collected unreleased is released
    then; a producer's hold lasts until it is released (``handle.release()``, or
    ``registry.release(name)``), so ``publish(name, t)`` as a statement keeps ``t`` published.
    """

    def __init__(
        self, registry: Registry, name: str, role: str, holder: str, serial: int, view: Tensor
    ) -> None:
        self._registry = registry
        self.name, self.role, self.holder = name, role, holder
        self._serial = serial
        self._view: Tensor | None = view

    @property
    def tensor(self) -> Tensor:
        if self._view is None:
            raise SharingError(f"{self.role} handle of {self.name!r} ({self.holder}) was released")
        return self._view

    @property
    def released(self) -> bool:
        return self._view is None

    def release(self) -> None:
        """Let go of the tensor (idempotent); the last holder's release drops it from the registry."""
        if self._view is not None:
            self._view = None
            self._registry._release(self.name, self._serial)

    def __enter__(self) -> SharedTensor:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        if getattr(self, "_view", None) is not None and self.role == "consumer":
            self._view = None
            # no lock from a finaliser (it may run inside the registry's own critical section)
            self._registry._orphans.append((self.name, self._serial))

    def __repr__(self) -> str:
        state = "released" if self._view is None else f"{list(self._view.shape)} {self._view.dtype.name}"
        return f"<SharedTensor {self.name!r} {self.role} {self.holder}: {state}>"


class Registry:
    """Named shared tensors: ``publish``, ``acquire``, ``get_or_publish``, ``release``, ``report``.

    Thread-safe. ``accelkit.sharing`` has one process-wide registry; make your own to keep a set of
    models apart.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._entries: dict[str, _Shared] = {}
        self._pending: dict[str, threading.Event] = {}  # names being made by get_or_publish
        self._orphans: list = []
        self._serial = 0
        self.views_served = 0  # cumulative, over every name ever published
        self.bytes_saved = 0  # cumulative bytes of views served

    # ------------------------------------------------------------------ producers
    def publish(
        self, name: str, tensor: Tensor, owner: str | None = None, *, replace: bool = False
    ) -> SharedTensor:
        """Publish ``tensor`` under ``name``; returns the producer's handle (release it when done).

        A name already published raises SharingError unless ``replace=True`` (the old tensor stays
        valid for whoever holds it, but new acquires get the new one).
        """
        if not isinstance(tensor, Tensor):
            raise SharingError(f"publish {name!r}: expected an accelkit Tensor, got {type(tensor).__name__}")
        if not isinstance(name, str) or not name:
            raise SharingError(f"publish: the name must be a non-empty string, got {name!r}")
        owner = owner or "anonymous"
        with self._lock:
            self._reap()
            old = self._entries.get(name)
            if old is not None and not replace:
                raise SharingError(
                    f"{name!r} is already published by {old.owner} ({old.refcount} holders); "
                    "release it first or pass replace=True"
                )
            if old is not None:
                self._forget(old)
            entry = _Shared(name, tensor, owner, time.time())
            self._entries[name] = entry
            if tensor.storage.name is None:
                tensor.storage.name = name
            handle = self._hold(entry, "producer", owner)
            self._changed.notify_all()
            return handle

    def get_or_publish(
        self,
        name: str,
        make: Callable[[], Tensor],
        *,
        owner: str | None = None,
        consumer: str | None = None,
        timeout: float | None = None,
    ) -> SharedTensor:
        """A consumer handle on ``name``, running ``make()`` to publish it first if nobody has.

        Concurrent callers for the same name run ``make`` once: the others wait for it (up to
        ``timeout`` seconds). The tensor lives while any handle on it does; the one ``make`` returned
        is held by the registry only through those handles.
        """
        with self._lock:
            self._reap()
            if name in self._entries:
                return self.acquire(name, consumer=consumer)
            event = self._pending.get(name)
            maker = event is None
            if maker:
                event = self._pending[name] = threading.Event()
        if not maker:
            if not event.wait(timeout):
                raise SharingError(f"{name!r}: timed out after {timeout} s waiting for its producer")
            return self.acquire(name, consumer=consumer)
        try:
            tensor = make()
            with self._lock:
                producer = self.publish(name, tensor, owner=owner or consumer)
                handle = self.acquire(name, consumer=consumer)
                producer.release()  # the producer ran on behalf of this consumer: its hold is the consumer's
            return handle
        finally:
            with self._lock:
                self._pending.pop(name, None)
                event.set()

    # ------------------------------------------------------------------ consumers
    def acquire(
        self, name: str, consumer: str | None = None, *, timeout: float | None = None
    ) -> SharedTensor:
        """A consumer handle whose ``.tensor`` views the published tensor (no device bytes allocated).

        A name not published raises SharingError, or, with ``timeout``, waits that long for it.
        """
        consumer = consumer or "anonymous"
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._reap()
            while name not in self._entries:
                left = None if deadline is None else deadline - time.monotonic()
                if left is None or left <= 0:
                    known = ", ".join(sorted(self._entries)) or "none"
                    waited = f" after waiting {timeout} s" if timeout else ""
                    raise SharingError(f"nothing is published as {name!r}{waited} (published: {known})")
                self._changed.wait(left)
            entry = self._entries[name]
            handle = self._hold(entry, "consumer", consumer)
            entry.views += 1
            entry.consumers[consumer] += 1
            self.views_served += 1
            self.bytes_saved += entry.tensor.nbytes
            return handle

    def release(self, handle: SharedTensor | str) -> None:
        """Release a handle (the same as ``handle.release()``), or, given a name, its producer's holds."""
        if isinstance(handle, SharedTensor):
            handle.release()
            return
        with self._lock:
            entry = self._entries.get(handle)
            if entry is None:
                raise SharingError(f"nothing is published as {handle!r}")
            for serial, (role, _) in list(entry.holders.items()):
                if role == "producer":
                    self._drop(handle, serial)
            self._reap()

    # ------------------------------------------------------------------ inspection
    def names(self) -> list[str]:
        with self._lock:
            self._reap()
            return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        with self._lock:
            self._reap()
            return name in self._entries

    def __len__(self) -> int:
        return len(self.names())

    def refcount(self, name: str) -> int:
        """How many handles hold ``name`` now (0 when it is not published)."""
        with self._lock:
            self._reap()
            entry = self._entries.get(name)
            return entry.refcount if entry else 0

    def report(self, *, dedup: bool = True):
        """What is shared now, by whom, and the bytes saved (see :class:`SharingReport`)."""
        from .report import SharingReport

        with self._lock:
            self._reap()
            rows = []
            for entry in sorted(self._entries.values(), key=lambda e: e.name):
                t = entry.tensor
                holders = Counter(label for role, label in entry.holders.values() if role == "consumer")
                rows.append(
                    {
                        "name": entry.name,
                        "owner": entry.owner,
                        "device": t.device.spec,
                        "dtype": t.dtype.name,
                        "shape": tuple(t.shape),
                        "nbytes": t.nbytes,
                        "device_bytes": t.storage.device_bytes,
                        "refcount": entry.refcount,
                        "consumers": dict(sorted(holders.items())),
                        "views": entry.views,
                        "saved_bytes": entry.views * t.nbytes,
                    }
                )
            totals = {"views_served": self.views_served, "bytes_saved": self.bytes_saved}
        dedup_rows = []
        if dedup:
            from .dedup import dedup_entries

            dedup_rows = dedup_entries()
        return SharingReport(rows, dedup_rows, totals)

    # ------------------------------------------------------------------ internals
    def _hold(self, entry: _Shared, role: str, label: str) -> SharedTensor:
        self._serial += 1
        entry.holders[self._serial] = (role, label)
        t = entry.tensor
        view = Tensor(t.storage, t.shape, t.strides, t.offset, t.dtype)
        return SharedTensor(self, entry.name, role, label, self._serial, view)

    def _release(self, name: str, serial: int) -> None:
        with self._lock:
            self._drop(name, serial)
            self._reap()

    def _drop(self, name: str, serial: int) -> None:
        entry = self._entries.get(name)
        if entry is None or serial not in entry.holders:
            return  # a replaced entry's holder: its view already let go
        del entry.holders[serial]
        if not entry.holders:
            self._forget(entry)
            del self._entries[name]

    def _forget(self, entry: _Shared) -> None:
        t, entry.tensor = entry.tensor, None
        if t is not None and t.storage.name == entry.name:
            t.storage.name = None

    def _reap(self) -> None:
        while self._orphans:
            name, serial = self._orphans.pop()
            self._drop(name, serial)


__all__ = ["Registry", "SharedTensor", "SharingError"]
