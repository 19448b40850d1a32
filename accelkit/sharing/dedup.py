"""Weight dedup on a device: identical tensors (same content hash, dtype and shape) share one Storage.

Loading a checkpoint uploads each weight through a :class:`CheckpointUploader` (the ``upload=`` hook
of ``Module.load_state_dict``): it looks the tensor up in the device's :class:`DedupTable` by
(sha256 of the stored bytes, dtype, shape) and returns a view of a live storage when there is one,
else uploads it in chunks with progress (a tqdm bar in a terminal, a widget in a notebook, through
``accelkit.io.progress``). The table holds only weak references, so a storage goes back to the
device when the last model using it goes. Fused q/k/v weights are keyed by their parts' digests
(:func:`fuse`), and a part of a live fused tensor is served as a view into it, so loading the same
checkpoint twice allocates nothing the second time.

    a = ak.load("tiny-random-bert"); b = ak.load("tiny-random-bert")     # b's weights are views of a's storages
    ak.sharing.dedup_report()                               # what is shared, by whom, bytes saved
    with ak.sharing.no_dedup(): c = ak.load("tiny-random-bert")    # a private copy
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from ..tensor.dtype import DType, narrow
from ..tensor.tensor import Storage, Tensor

#: bytes per write to the device while uploading weights (progress is reported per chunk)
CHUNK_BYTES = 8 * 1024 * 1024
#: uploads smaller than this show no terminal bar / notebook widget (callbacks still see them)
PROGRESS_MIN_BYTES = 32 * 1024 * 1024

_enabled = True
_enabled_lock = threading.Lock()


def dedup_enabled() -> bool:
    """Whether loads share identical weights with live storages (process-wide; on by default)."""
    return _enabled


def set_dedup(enabled: bool) -> bool:
    """Turn weight dedup on or off for later loads (process-wide); returns the previous setting."""
    global _enabled
    with _enabled_lock:
        previous, _enabled = _enabled, bool(enabled)
    return previous


@contextlib.contextmanager
def no_dedup() -> Iterator[None]:
    """Loads inside the block get private copies of their weights (benchmarks use it as the baseline)."""
    previous = set_dedup(False)
    try:
        yield
    finally:
        set_dedup(previous)


# ------------------------------------------------------------------------------------ the table


@dataclass
class _Slot:
    """One shared storage: what it first held, and which models use it (weakly)."""

    ref: weakref.ReferenceType
    what: str
    owner: str
    users: list = field(default_factory=list)  # [(label, weakref to model or None)]
    param: object = None  # weakref to the Parameter that first held it (its repr gets marked too)

    def storage(self) -> Storage | None:
        s = self.ref()
        return s if s is not None and s._live else None

    def live_users(self) -> list[str]:
        return [label for label, ref in self.users if ref is None or ref() is not None]


class DedupTable:
    """Per-device registry: (digest, dtype, shape) -> a weak reference to the Storage holding it."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.lock = threading.RLock()
        self._slots: dict[tuple, _Slot] = {}
        self._parts: dict[tuple, tuple[tuple, int]] = {}  # tensor key -> (fused key, element offset)
        self._labels: dict[str, int] = {}
        self.hits = 0
        self.hit_bytes = 0  # device bytes that loads did not allocate, cumulative

    def new_label(self, name: str) -> str:
        """``name#n``: the n-th model loaded from ``name`` on this device (deterministic, no ids)."""
        with self.lock:
            n = self._labels[name] = self._labels.get(name, 0) + 1
        return f"{name}#{n}"

    def lookup(self, key: tuple, shape: tuple, dtype: DType) -> tuple[Tensor, _Slot] | None:
        """A view of a live storage holding exactly this tensor, and its slot; None when there is none."""
        with self.lock:
            slot = self._slots.get(key)
            storage = slot.storage() if slot is not None else None
            if storage is not None and storage.backend is self.backend:
                return _view(storage, shape, dtype, 0), slot
            where = self._parts.get(key)
            if where is not None:
                fused = self._slots.get(where[0])
                storage = fused.storage() if fused is not None else None
                if storage is not None and storage.backend is self.backend:
                    return _view(storage, shape, dtype, where[1]), fused
            return None

    def add(self, key: tuple, tensor: Tensor, what: str, owner: str, model=None, param=None) -> _Slot:
        with self.lock:
            self._purge()
            slot = _Slot(weakref.ref(tensor.storage), what, owner, param=_weak(param))
            slot.users.append((owner, _weak(model)))
            self._slots[key] = slot
            return slot

    def add_parts(self, fused_key: tuple, parts: list[tuple[tuple, int]]) -> None:
        """Record that each part key lives at an element offset inside the fused tensor of ``fused_key``."""
        with self.lock:
            for key, offset in parts:
                self._parts[key] = (fused_key, offset)

    def record_hit(self, slot: _Slot, label: str, model, nbytes: int) -> None:
        with self.lock:
            if all(lab != label for lab, _ in slot.users):
                slot.users.append((label, _weak(model)))
            self.hits += 1
            self.hit_bytes += nbytes

    def slot_of(self, storage: Storage) -> _Slot | None:
        with self.lock:
            for slot in self._slots.values():
                if slot.ref() is storage:
                    return slot
        return None

    def _purge(self) -> None:
        dead = [k for k, s in self._slots.items() if s.storage() is None]
        for k in dead:
            del self._slots[k]
        if dead:
            self._parts = {k: v for k, v in self._parts.items() if v[0] in self._slots}

    def entries(self) -> list[dict]:
        """One row per storage that two or more live models share: what, dtype, device bytes, users, saved."""
        rows = []
        with self.lock:
            self._purge()
            for key, slot in self._slots.items():
                storage = slot.storage()
                if storage is None:
                    continue
                users = slot.live_users()
                if len(users) < 2:
                    continue
                rows.append(
                    {
                        "tensor": slot.what,
                        "kind": "fused" if key[0] == "fused" else "weight",
                        "dtype": storage.dtype.name,
                        "device_bytes": storage.device_bytes,
                        "users": users,
                        "saved_bytes": storage.device_bytes * max(len(users) - 1, 0),
                    }
                )
        return rows


_tables: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_tables_lock = threading.Lock()


def table_for(device) -> DedupTable:
    """The dedup table of a device's open backend (a reopened device starts a new one)."""
    backend = device.backend
    with _tables_lock:
        table = _tables.get(backend)
        if table is None:
            table = _tables[backend] = DedupTable(backend)
        return table


def _weak(obj):
    if obj is None:
        return None
    try:
        return weakref.ref(obj)
    except TypeError:
        return None


def _view(storage: Storage, shape: tuple, dtype: DType, offset: int) -> Tensor:
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc)
        acc *= max(n, 1)
    return Tensor(storage, tuple(shape), tuple(reversed(strides)), offset, dtype)


def _mark(param, note: str) -> None:
    """Add ``note`` to a Parameter's ``shared`` text (once)."""
    if param is None:
        return
    if not param.shared:
        param.shared = note
    elif note not in param.shared:
        param.shared = f"{param.shared}; {note}"


# ------------------------------------------------------------------------------------ loading


class CheckpointUploader:
    """The ``upload=`` hook ``from_checkpoint`` passes to ``load_state_dict``: dedup, then chunked upload.

    Use as a context manager around the load, so that one progress task covers the whole model::

        with CheckpointUploader(model, ckpt, mapping, device) as upload:
            model.load_state_dict(get, names, device=device, dtype=dtype, upload=upload)

    ``mapping`` is {module parameter name: checkpoint tensor name}. Every parameter gets
    ``Parameter.digest``; one served from a live storage is marked ``shared = "dedup: also in <label>"``
    (and the model that first loaded it ``"dedup: also in <this label>"``).
    """

    def __init__(
        self,
        model,
        ckpt,
        mapping: dict[str, str],
        device,
        *,
        name: str | None = None,
        callback=None,
        chunk_bytes: int | None = None,
    ) -> None:
        self.model, self.ckpt, self.mapping, self.device = model, ckpt, mapping, device
        self.table = table_for(device)
        self.label = self.table.new_label(
            name or getattr(ckpt.directory, "name", None) or type(model).__name__
        )
        self.dedup = dedup_enabled()
        self.chunk_bytes = max(int(chunk_bytes or CHUNK_BYTES), 4) // 4 * 4
        self.callback = callback
        self.uploaded_bytes = 0  # host bytes written to the device by this load
        self.reused_bytes = 0  # device bytes served from live storages instead
        self._owners: dict[int, object] = {}  # id(storage) -> the Parameter that first held it (this load)
        self._progress = None
        self._cm = None

    def __enter__(self) -> CheckpointUploader:
        from ..io import progress

        total = self._expected_bytes()
        self._cm = progress(
            total,
            f"uploading {self.label} to {self.device.spec}",
            callback=self.callback,
            min_total=PROGRESS_MIN_BYTES,
        )
        self._progress = self._cm.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        cm, self._cm, self._progress = self._cm, None, None
        if cm is not None:
            cm.__exit__(*exc)

    def _expected_bytes(self) -> int:
        params = dict(self.model.named_parameters())
        compute = getattr(self.model, "compute_dtype", None)
        total = 0
        for name, ckpt_name in self.mapping.items():
            p = params.get(name)
            if p is None:
                continue
            info = self.ckpt.info(ckpt_name)
            floating = info.numpy_dtype.kind == "f"
            itemsize = compute.itemsize if compute is not None and floating else p.dtype.itemsize
            total += int(np.prod(info.shape, dtype=np.int64)) * itemsize
        return total

    def key(self, name: str, param) -> tuple | None:
        ckpt_name = self.mapping.get(name)
        if ckpt_name is None:
            return None
        # the key must stand for verified bytes: Checkpoint.tensor_digest hashes a store snapshot's
        # file against the store's digest before it returns a remembered tensor digest
        digest = self.ckpt.tensor_digest(ckpt_name)
        param.digest = digest
        return (digest, param.dtype.name, tuple(int(n) for n in param.shape))

    def __call__(self, name: str, param, value) -> Tensor:
        key = self.key(name, param)
        shape = tuple(int(n) for n in param.shape)
        if key is None or not self.dedup:
            return self._upload(value, param.dtype, shape)
        with self.table.lock:  # two loads of the same weights at once upload them once
            found = self.table.lookup(key, shape, param.dtype)
            if found is not None:
                view, slot = found
                nbytes = view.nbytes
                self.table.record_hit(slot, self.label, self.model, nbytes)
                self.reused_bytes += nbytes
                _mark(param, f"dedup: also in {slot.owner}")
                owner_param = _first_param(slot)
                _mark(owner_param, f"dedup: also in {self.label}")
                if self._progress is not None:
                    self._progress.update(nbytes)
                return view
            tensor = self._upload(value, param.dtype, shape)
            tensor.storage.digest = key[0]
            self.table.add(key, tensor, name, self.label, self.model, param)
            return tensor

    def _upload(self, value, dtype: DType, shape: tuple) -> Tensor:
        if isinstance(value, Tensor):
            out = value.to(self.device, dtype=dtype)
            if self._progress is not None:
                self._progress.update(out.nbytes)
            return out
        data = narrow(np.asarray(value), dtype)
        out = Tensor.empty(shape, dtype, self.device, exact=True)
        flat = memoryview(data).cast("B") if data.size else memoryview(b"")
        backend = self.device.backend
        for start in range(0, flat.nbytes, self.chunk_bytes):
            chunk = flat[start : start + self.chunk_bytes]
            backend.write(out.storage.handle, start, chunk)
            self.uploaded_bytes += chunk.nbytes
            if self._progress is not None:
                self._progress.update(chunk.nbytes)
        return out


def _first_param(slot: _Slot):
    return slot.param() if slot.param is not None else None


# ------------------------------------------------------------------------------------ fused weights


def fuse(linears, attr: str, make: Callable[[], Tensor]) -> tuple[Tensor, str | None]:
    """The concatenation of ``linears``' ``attr`` ("weight" or "bias") along dim 0, deduplicated.

    ``make()`` builds it when no live tensor with the same parts (by digest; a Linear without that
    parameter counts as zeros) exists on the device. Returns the tensor and a note for the repr
    ("dedup: also in <label>") when it was shared, else None. Each part is recorded as living
    inside the fused tensor, so a later load gets its parts as views of it (no upload at all).
    """
    params = [lin._params.get(attr) for lin in linears]
    present = [p for p in params if p is not None]
    if not dedup_enabled() or not present or any(p.digest is None or p.tensor is None for p in present):
        return make(), None
    first = present[0].tensor
    dtype = first.dtype
    parts = tuple(
        (p.digest, tuple(p.shape)) if p is not None else ("zeros", (lin.out_features,))
        for p, lin in zip(params, linears)
    )
    fkey = ("fused", attr, dtype.name, parts)
    table = table_for(first.device)
    with table.lock:
        slot = table._slots.get(fkey)
        storage = slot.storage() if slot is not None else None
        if storage is not None and storage.backend is table.backend:
            shape = (sum(lin.out_features for lin in linears),) + tuple(first.shape[1:])
            fused = _view(storage, shape, dtype, 0)
            if first.storage is storage:  # the parts were served from it already (record_hit counted them)
                return fused, f"dedup: also in {slot.owner}"
            src = table.slot_of(first.storage)  # parts uploaded afresh by this load: it is a new user
            label = src.owner if src is not None else None
            if label is not None and all(lab != label for lab, _ in slot.users):
                slot.users.append((label, src.users[0][1] if src.users else None))
            table.hits += 1
            table.hit_bytes += fused.nbytes
            return fused, f"dedup: also in {slot.owner}"
        fused = make()
        src = table.slot_of(first.storage)
        new = table.add(
            fkey,
            fused,
            f"fused {attr} of {src.what if src else '?'} and {len(linears) - 1} more",
            src.owner if src is not None else "?",
        )
        if src is not None:
            new.users = list(src.users)
        width = int(np.prod(fused.shape[1:], dtype=np.int64)) if fused.ndim > 1 else 1
        at, offsets = 0, []
        for p, lin in zip(params, linears):
            if p is not None:
                offsets.append(((p.digest, p.tensor.dtype.name, tuple(int(n) for n in p.shape)), at * width))
            at += lin.out_features
        table.add_parts(fkey, offsets)
        return fused, None


# ------------------------------------------------------------------------------------ report


def dedup_entries(device=None) -> list[dict]:
    """Rows of the dedup table of ``device`` (None: every device with a table)."""
    if device is not None:
        return table_for(device).entries()
    with _tables_lock:
        tables = list(_tables.values())
    return [row for t in tables for row in t.entries()]


__all__ = [
    "CHUNK_BYTES",
    "CheckpointUploader",
    "DedupTable",
    "dedup_enabled",
    "dedup_entries",
    "fuse",
    "no_dedup",
    "set_dedup",
    "table_for",
]
