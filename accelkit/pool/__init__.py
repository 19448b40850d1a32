"""Concurrent model execution: one worker thread per device, dynamic batching, a memory budget, futures.

    with ak.Pool(max_batch_size=16, memory_budget=512 * 2**20) as pool:
        fut = pool.submit("tiny-random-bert", input_ids=ids)           # a concurrent.futures.Future
        out = fut.result()                                      # ModelOutput of numpy arrays
        outs = list(pool.map(vit, [{"pixel_values": x} for x in images]))
        out = await pool.run(whisper, input_features=f, decoder_input_ids=d)   # from asyncio
        pool.stats()                                            # queue depth, p50/p95, throughput

A model is a loaded model (the caller owns it: the pool never evicts it), a source ``ak.load``
accepts ("tiny-random-bert", a directory, "hf:org/name"), or a name given to ``pool.add``; sources are
loaded by the pool on first use, on the device with the shortest queue, and may be evicted when
idle to keep the device within ``memory_budget`` (least recently used first), then reloaded on
demand.

Requests for one model that arrive within ``batch_window`` seconds of each other run as one batch
of up to ``max_batch_size`` rows: BERT inputs are padded on the right to the longest with an
attention mask and the outputs cut back, ViT and Whisper inputs are stacked. Results are copied to
the host (numpy) in the worker, so a future's value holds no device memory and its latency counts
the device work. A request that fails (bad shape, ids out of range, a failed load) fails its own
future only: a failing batch is rerun one request at a time. ``close(wait=True)`` drains the queue.

The memory budget counts device bytes allocated on the device since the pool started, measured
with ``device.memory()`` after each load and eviction (so it also sees what other code allocates).
"""

from __future__ import annotations

import asyncio
import gc
import queue
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass

from ..errors import AccelkitError, OutOfMemoryError
from .batching import Prepared, rule_for
from .futures import CallbackThread, PoolFuture, scrub
from .stats import PoolStats, StatsRecorder

#: seconds a worker waits for more requests to fill a batch (from the oldest request's arrival)
DEFAULT_BATCH_WINDOW = 0.002
#: text batches pad at most this fraction of their real tokens (requests of other lengths wait for their own)
DEFAULT_MAX_PADDING = 0.25


class PoolClosedError(AccelkitError, RuntimeError):
    """A request submitted to a pool that is closed (or closing)."""


_STOP = object()


@dataclass(eq=False)
class _Model:
    """One model the pool serves: its loader (None for caller-owned models), where it lives, its state."""

    name: str
    loader: Callable | None
    model: object | None = None
    device: object | None = None
    pinned: bool = False
    estimate: int | None = None
    bytes: int | None = None  # measured device bytes its last load added
    loads: int = 0
    evictions: int = 0
    requests: int = 0
    queued: int = 0  # submitted and not finished
    last_used: float = 0.0
    rule: object | None = None


@dataclass(eq=False)
class _Request:
    entry: _Model
    method: str | None
    args: tuple
    inputs: dict
    future: Future
    submitted: float
    prepared: Prepared | None = None
    signature: object = None
    checked: bool = False


class _Worker:
    """The thread that runs every request for one device, in arrival order, batching what it can."""

    def __init__(self, pool: Pool, device) -> None:
        # a weak proxy: the pool must not sit in a reference cycle with its workers, or the models it
        # holds would be freed by the cycle collector (see Pool.__del__)
        self.pool, self.device = weakref.proxy(pool), device
        self.queue: queue.Queue = queue.Queue()
        self.pending: deque[_Request] = deque()
        self.current: list[_Request] = []  # requests taken from the queue and not finished yet
        self.running = 0
        self.baseline = device.memory()["allocated_bytes"]
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, name=f"accelkit-pool-{device.spec}", daemon=True)
        self.thread.start()

    @property
    def depth(self) -> int:
        return self.queue.qsize() + len(self.pending)

    # ------------------------------------------------------------------ the loop
    def _loop(self) -> None:
        try:
            self._serve()
        except ReferenceError:  # the pool was dropped without close(): nobody can be waiting for more
            for req in [*self.current, *self.pending]:
                if not req.future.done():
                    req.future.set_exception(
                        PoolClosedError("the pool was garbage-collected before this request ran")
                    )
        except BaseException as exc:  # noqa: BLE001 - a bug in the loop: fail what it held, never hang them
            for req in [*self.current, *self.pending]:
                if not req.future.done():
                    req.future.set_exception(scrub(exc))
            raise
        finally:
            self.pending.clear()
            self.current = []

    def _serve(self) -> None:
        while True:
            if not self.pending:
                if self.stopping:
                    self._unload_all()
                    return
                self._take(self.queue.get())
                continue
            self._drain()
            self.current = []
            try:
                self._run(self._next_batch())
            except ReferenceError:
                raise
            except BaseException as exc:  # noqa: BLE001 - the worker must outlive anything a request does
                for req in self.current:
                    if not req.future.done():
                        self._finish(req, exc=exc)
            finally:
                self.current = []
                self.running = 0

    def _take(self, item) -> None:
        if item is _STOP:
            self.stopping = True
        else:
            self.pending.append(item)

    def _drain(self) -> None:
        while True:
            try:
                self._take(self.queue.get_nowait())
            except queue.Empty:
                return

    def _start(self, req: _Request) -> bool:
        """Mark a request running; False (and it is accounted for) when it was or is to be cancelled."""
        if self.pool._cancelling:
            req.future.cancel()
        if req.future.set_running_or_notify_cancel():
            self.current.append(req)
            return True
        self.pool._stats.on_cancel()
        self._done(req)
        return False

    def _next_batch(self) -> list[_Request]:
        """The oldest request and those that can run with it (waiting up to the batch window for more)."""
        head = self.pending.popleft()
        if not self._start(head):
            return []
        if head.method == "__pool_evict__":
            if head.entry.model is not None:
                self._evict(head.entry)
            self._finish(head, result=None)
            return []
        if not self._ensure_loaded(head):
            return []
        if head.method == "__pool_load__":
            self._finish(head, result=None)
            return []
        self._check(head)
        batch = [head]
        rows, limit = (head.prepared.rows if head.prepared else 0), self.pool.max_batch_size
        if head.signature is None or rows >= limit:
            return batch
        longest, tokens = head.prepared.length, head.prepared.length * rows  # text: padding stays bounded

        def fits(req: _Request) -> bool:
            if not self._compatible(req, head):
                return False
            p = req.prepared
            if rows + p.rows > limit:
                return False
            padded = max(longest, p.length) * (rows + p.rows)
            return padded <= (1 + self.pool.max_padding) * (tokens + p.length * p.rows)

        def take(req: _Request) -> None:
            nonlocal rows, longest, tokens
            if self._start(req):
                batch.append(req)
                rows += req.prepared.rows
                longest = max(longest, req.prepared.length)
                tokens += req.prepared.length * req.prepared.rows

        # what is queued already, the closest in length first (a stable sort: oldest first among equals)
        waiting = [r for r in self.pending if self._compatible(r, head)]
        waiting.sort(key=lambda r: abs(r.prepared.length - head.prepared.length))
        for req in waiting:
            if rows >= limit:
                break
            if fits(req):
                self.pending.remove(req)
                take(req)
        deadline = head.submitted + self.pool.batch_window
        while rows < limit and not self.stopping:
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            try:
                item = self.queue.get(timeout=left)
            except queue.Empty:
                break
            self._take(item)  # pending first: if anything below raises, the request is not lost
            if item is not _STOP and fits(item):
                self.pending.remove(item)
                take(item)
        return batch

    def _compatible(self, req: _Request, head: _Request) -> bool:
        """Whether ``req`` can join ``head``'s batch at all (same model, same batch signature)."""
        if req.entry is not head.entry or req.method is not None:
            return False
        self._check(req)
        return req.signature == head.signature

    def _check(self, req: _Request) -> None:
        """Work out a request's batch signature once (None: it runs alone)."""
        if req.checked:
            return
        req.checked = True
        rule = req.entry.rule
        if req.method is not None or rule is None or len(req.args) > len(rule.names):
            return
        named = dict(zip(rule.names, req.args))  # positional inputs, in the order __call__ takes them
        if set(named) & set(req.inputs):
            return
        try:
            found = rule.prepare({**named, **req.inputs})
        except Exception:  # malformed input: let the model itself say what is wrong, alone
            found = None
        if found is not None:
            req.signature, req.prepared = found

    # ------------------------------------------------------------------ running
    def _run(self, batch: list[_Request]) -> None:
        if not batch:
            return
        self.running = len(batch)
        t0 = time.perf_counter()
        entry = batch[0].entry
        entry.last_used = time.monotonic()
        if len(batch) > 1:
            try:
                rule = entry.rule
                output = _to_host(entry.model(**rule.collate(entry.model, [r.prepared for r in batch])))
                results = rule.split(output, [r.prepared for r in batch])
            except Exception:  # one bad request spoils the batch: run each alone, so only it fails
                results = None
            if results is not None:
                self.pool._stats.on_batch(len(batch), time.perf_counter() - t0)
                for req, res in zip(batch, results):
                    self._finish(req, result=res)
                return
        for req in batch:
            t1 = time.perf_counter()
            try:
                fn = entry.model if req.method is None else getattr(entry.model, req.method)
                result = _to_host(fn(*req.args, **req.inputs))
            except Exception as exc:
                self._finish(req, exc=exc)
            else:
                self._finish(req, result=result)
            self.pool._stats.on_batch(1, time.perf_counter() - t1)

    def _finish(self, req: _Request, *, result=None, exc: BaseException | None = None) -> None:
        now = time.perf_counter()
        if not req.future.done():
            if exc is not None:
                req.future.set_exception(scrub(exc))
            else:
                req.future.set_result(result)
        if not _internal(req.method):
            self.pool._stats.on_done(req.submitted, now, exc is None)
        self._done(req)

    def _done(self, req: _Request) -> None:
        with self.pool._lock:
            req.entry.queued -= 1

    # ------------------------------------------------------------------ models and memory
    def used(self, collect: bool = True) -> int:
        """Device bytes allocated since this worker started (measured)."""
        if collect:
            gc.collect()
        return self.device.memory()["allocated_bytes"] - self.baseline

    def _ensure_loaded(self, req: _Request) -> bool:
        entry = req.entry
        if entry.model is not None:
            return True
        budget = self.pool._budget_for(self.device)
        try:
            if budget is not None:
                need = entry.bytes if entry.bytes is not None else (entry.estimate or 0)
                self._evict_until(budget - need, keep=entry)
            before = self.used(collect=budget is not None)
            # no local name for the model: a raised error's traceback must not keep it alive
            entry.model = entry.loader(self.device)
            entry.rule = rule_for(entry.model)
            entry.loads += 1
            entry.bytes = self.used(collect=budget is not None) - before
            if budget is not None:
                self._evict_until(budget, keep=entry)
                used = self.used()
                if used > budget:
                    self._evict(entry)
                    raise OutOfMemoryError(
                        f"pool memory budget: {entry.name} adds {entry.bytes} device bytes on {self.device.spec}; "
                        f"with what cannot be evicted the pool would use {used} bytes, over its budget of {budget}"
                    )
        except Exception as exc:
            self._finish(req, exc=exc)
            return False
        return True

    def _evict_until(self, target: int, keep: _Model) -> None:
        """Evict loaded, pool-owned models of this device, idle ones first, least recently used first."""
        while self.used() > target:
            victims = [
                e
                for e in self.pool._models_on(self.device)
                if e is not keep and e.model is not None and not e.pinned
            ]
            if not victims:
                return
            victims.sort(key=lambda e: (e.queued > 0, e.last_used))
            self._evict(victims[0])

    def _unload_all(self) -> None:
        """At close: let go of every model of this device (the pool's own are freed; the caller keeps theirs)."""
        for entry in self.pool._models_on(self.device):
            entry.model = None
        gc.collect()

    def _evict(self, entry: _Model) -> None:
        entry.model = None
        entry.evictions += 1
        gc.collect()


def _internal(method: str | None) -> bool:
    """The pool's own requests (preload, evict), which the stats leave out."""
    return method is not None and method.startswith("__pool_")


def _to_host(value):
    """Tensors (also inside ModelOutputs, lists, tuples, dicts) -> numpy arrays; anything else as is."""
    from ..models.outputs import ModelOutput
    from ..tensor.tensor import Tensor

    if isinstance(value, Tensor):
        return value.numpy()
    if isinstance(value, ModelOutput):
        return ModelOutput(id2label=value.id2label, **{k: _to_host(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return type(value)(_to_host(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_host(v) for k, v in value.items()}
    return value


class Pool:
    """Run models concurrently on a set of devices: ``submit`` / ``map`` / ``await run``, with batching.

    ``devices``: None (the best device), a spec, a Device, or a list of them; one worker thread
    each. ``max_batch_size``: rows per batch (1 turns batching off). ``memory_budget``: device
    bytes per device the pool may use (an int, or {spec: int}); None for no limit.
    ``client``: a ``distributed.Client``: the same pool on a Dask cluster, one local pool per
    worker (see ``accelkit.pool.distributed``; needs the ``[distributed]`` extra).
    ``batch_window``: seconds to wait for a batch to fill. ``max_padding``: a text batch takes a
    request only if padding stays within this fraction of the batch's real tokens (the closest
    lengths are taken first; inf: pad freely).
    """

    def __new__(cls, devices=None, *args, client=None, **kwargs):
        if client is not None and cls is Pool:  # the same pool on Dask distributed
            from .distributed import DistributedPool

            return super().__new__(DistributedPool)
        return super().__new__(cls)

    def __init__(
        self,
        devices=None,
        *,
        client=None,
        max_batch_size: int = 8,
        memory_budget: int | dict | None = None,
        batch_window: float = DEFAULT_BATCH_WINDOW,
        max_padding: float = DEFAULT_MAX_PADDING,
    ) -> None:
        from ..hardware import device as pick_device

        if client is not None:
            raise AccelkitError(
                "Pool: client= makes a pool on Dask distributed; create it as Pool(client=...)"
            )
        if isinstance(devices, (list, tuple)):
            devs = [pick_device(d) for d in devices]
        else:
            devs = [pick_device(devices)]
        if not devs:
            raise AccelkitError("Pool: devices is an empty list; pass None for the best device")
        if int(max_batch_size) < 1:
            raise AccelkitError(f"Pool: max_batch_size must be >= 1, got {max_batch_size}")
        self.devices = list(dict.fromkeys(devs))
        self.max_batch_size = int(max_batch_size)
        self.batch_window = float(batch_window)
        self.max_padding = float(max_padding)
        self.memory_budget = memory_budget
        self._lock = threading.RLock()
        self._models: dict[object, _Model] = {}
        self._names: dict[str, int] = {}
        self._workers: dict[object, _Worker] = {}
        self._stats = StatsRecorder()
        self._callbacks = CallbackThread("accelkit-pool-callbacks")
        self._closed = False
        self._cancelling = False
        for d in self.devices:
            self._worker(d)

    # ------------------------------------------------------------------ models
    def add(
        self,
        source=None,
        *,
        name: str | None = None,
        loader: Callable | None = None,
        device=None,
        dtype=None,
        preload: bool = False,
    ) -> str:
        """Register a pool-owned model and return its name (what ``submit`` takes).

        ``source`` is anything ``ak.load`` accepts; or pass ``loader(device) -> model``. The pool
        loads it on first use (``preload=True``: now), may evict it when idle, reloads it on demand.
        On a cluster (``Pool(client=...)``) workers load by source (no ``loader``, no ``device``) and
        ``preload=True`` loads it on every worker.
        """
        label = self._register(source, name, loader, device, dtype)
        if preload:
            self._preload(label)
        return label

    def _register(self, source, name: str | None, loader: Callable | None, device, dtype) -> str:
        if loader is None:
            if source is None:
                raise AccelkitError("Pool.add: pass a source (e.g. 'tiny-random-bert') or a loader(device)")
            loader = _source_loader(source, dtype)
        with self._lock:
            self._check_open()
            label = name or (str(source) if source is not None else getattr(loader, "__name__", "model"))
            if label in self._models:
                raise AccelkitError(f"Pool.add: a model named {label!r} is already in the pool")
            entry = _Model(label, loader, estimate=_estimate(source))
            if device is not None:
                from ..hardware import device as pick_device

                entry.device = pick_device(device)
                self._worker(entry.device)
            self._models[label] = entry
        return label

    def _preload(self, label: str) -> None:
        self.submit(label, method="__pool_load__").result()

    def _entry(self, model) -> _Model:
        with self._lock:
            if isinstance(model, str) and model in self._models:
                return self._models[model]
            if isinstance(model, str) or hasattr(model, "__fspath__"):
                self.add(model)
                return self._models[str(model)]
            entry = self._models.get(id(model))
            if entry is None or entry.model is not model:
                device = getattr(model, "device", None)
                if device is None:
                    raise AccelkitError(f"Pool: {type(model).__name__} has no device (is it loaded?)")
                label = _instance_label(model)
                n = self._names[label] = self._names.get(label, 0) + 1
                entry = _Model(
                    label if n == 1 else f"{label}#{n}",
                    None,
                    model=model,
                    device=device,
                    pinned=True,
                    rule=rule_for(model),
                )
                self._models[id(model)] = entry
                self._worker(device)
            return entry

    def _models_on(self, device) -> list[_Model]:
        with self._lock:
            return [e for e in self._models.values() if e.device is device]

    def _worker(self, device) -> _Worker:
        w = self._workers.get(device)
        if w is None:
            w = self._workers[device] = _Worker(self, device)
        return w

    def _budget_for(self, device) -> int | None:
        b = self.memory_budget
        if isinstance(b, dict):
            b = b.get(device.spec, b.get(device))
        return None if b is None else int(b)

    def _place(self, entry: _Model):
        """A device for a pool-owned model: the one with the shortest queue, then the fewest models."""
        if entry.device is None:
            entry.device = min(self.devices, key=lambda d: (self._workers[d].depth, len(self._models_on(d))))
        return entry.device

    # ------------------------------------------------------------------ requests
    def submit(self, model, /, *args, method: str | None = None, **inputs) -> Future:
        """Queue one call of ``model`` (``model(*args, **inputs)``, or ``model.<method>(...)``).

        Returns a Future whose result is the model's output with every Tensor copied to numpy. A
        request that fails sets its own future's exception; the pool keeps serving.
        """
        future: Future = PoolFuture(self._callbacks)
        now = time.perf_counter()
        with self._lock:
            self._check_open()
            entry = self._entry(model)
            device = self._place(entry)
            entry.queued += 1
            worker = self._worker(device)
            if not _internal(method):
                entry.requests += 1
                self._stats.on_submit(now)
            worker.queue.put(
                _Request(entry, method, args, inputs, future, now)
            )  # under the lock: before a close
        return future

    def map(
        self, model, inputs: Iterable, *, timeout: float | None = None, method: str | None = None
    ) -> Iterator:
        """Submit one request per item of ``inputs`` (a dict of keyword inputs, or one positional input),
        then yield the results in order (raising the first failure met, like ``Executor.map``)."""
        futures = [
            self.submit(model, method=method, **item)
            if isinstance(item, dict)
            else self.submit(model, item, method=method)
            for item in inputs
        ]
        deadline = None if timeout is None else time.monotonic() + timeout

        def results():
            try:
                for f in futures:
                    yield f.result(None if deadline is None else max(0.0, deadline - time.monotonic()))
            finally:
                for f in futures:
                    f.cancel()

        return results()

    async def run(self, model, /, *args, method: str | None = None, **inputs):
        """``await pool.run(model, **inputs)``: submit, then wait without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(model, *args, method=method, **inputs))

    # ------------------------------------------------------------------ control
    def evict(self, model) -> None:
        """Drop a pool-owned model's weights now (it is reloaded on its next request)."""
        entry = self._entry(model)
        if entry.pinned:
            raise AccelkitError(f"Pool.evict: {entry.name} belongs to the caller; the pool cannot unload it")
        if entry.device is not None:
            self.submit(entry.name, method="__pool_evict__").result()

    def stats(self) -> PoolStats:
        """A snapshot: queue depth, latency p50/p95/p99, throughput, batches, models, device memory."""
        with self._lock:
            workers = list(self._workers.values())
            entries = [e for e in self._models.values()]
        models = [
            {
                "name": e.name,
                "device": e.device.spec if e.device is not None else None,
                "loaded": e.model is not None,
                "pinned": e.pinned,
                "bytes": e.bytes,
                "loads": e.loads,
                "evictions": e.evictions,
                "requests": e.requests,
                "queued": e.queued,
            }
            for e in entries
        ]
        devices = []
        for w in workers:
            mem = w.device.memory()
            devices.append(
                {
                    "device": w.device.spec,
                    "queue": w.depth,
                    "used_bytes": mem["allocated_bytes"] - w.baseline,
                    "budget": self._budget_for(w.device),
                    "allocated_bytes": mem["allocated_bytes"],
                    "peak_bytes": mem["peak_bytes"],
                }
            )
        return self._stats.snapshot(
            sum(w.depth for w in workers), sum(w.running for w in workers), models, devices
        )

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self, wait: bool = True, *, cancel_pending: bool = False) -> None:
        """Stop taking requests. ``wait``: block until the queued requests are done (drained) and
        the workers have exited. ``cancel_pending``: cancel queued requests instead of running them."""
        with self._lock:
            first = not self._closed
            self._closed = True
            if cancel_pending:
                self._cancelling = True
            workers = list(self._workers.values())
            if first:
                for w in workers:
                    w.queue.put(_STOP)
        if wait:
            for w in workers:
                if w.thread is not threading.current_thread():
                    w.thread.join()
            self._callbacks.wait_idle()

    def _check_open(self) -> None:
        if self._closed:
            raise PoolClosedError("the pool is closed; make a new Pool")

    def __enter__(self) -> Pool:
        return self

    def __del__(self) -> None:
        # unreachable without close(): stop the workers (they hold only a weak proxy of the pool)
        if not getattr(self, "_closed", True):
            self.close(wait=False)

    def __exit__(self, *exc) -> None:
        self.close(wait=True)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<accelkit.Pool {state}, {len(self.devices)} devices, max_batch_size {self.max_batch_size}>\n"
            + self.stats().text()
        )

    def _repr_html_(self) -> str | None:
        return self.stats()._repr_html_()


def _source_loader(source, dtype) -> Callable:
    def load(device):
        from ..models.auto import load as load_model

        return load_model(source, device=device, dtype=dtype)

    load.__name__ = str(source)
    return load


def _estimate(source) -> int | None:
    """Bytes a source's checkpoint holds (a guide for evicting before a load; the budget uses measured bytes)."""
    if source is None or (isinstance(source, str) and source.startswith("hf:")):
        return None
    try:
        from ..io import Checkpoint
        from ..models.auto import resolve_source

        path = resolve_source(source)
        if not path.is_dir():
            return None
        with Checkpoint.open(path) as ckpt:
            return ckpt.nbytes
    except Exception:
        return None


def _instance_label(model) -> str:
    ckpt = getattr(model, "checkpoint", None)
    name = type(model).__name__
    return f"{name}({ckpt.name})" if ckpt is not None else name


__all__ = [
    "DEFAULT_BATCH_WINDOW",
    "DEFAULT_MAX_PADDING",
    "DistributedPool",
    "Pool",
    "PoolClosedError",
    "PoolStats",
    "WorkerLostError",
]


def __getattr__(name: str):
    if name in ("DistributedPool", "WorkerLostError"):  # without importing Dask: it is imported when used
        from . import distributed

        return getattr(distributed, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
