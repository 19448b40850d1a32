"""``ak.Pool(client=client)``: the same pool on Dask distributed, one local pool per Dask worker.

    from distributed import Client, LocalCluster
    client = Client(LocalCluster(n_workers=2, processes=True, threads_per_worker=1))
    with ak.Pool(client=client, max_batch_size=16) as pool:
        fut = pool.submit("tiny-random-bert", input_ids=ids)    # a concurrent.futures.Future, as locally
        out = fut.result()                               # ModelOutput of numpy arrays
        pool.stats()                                     # per worker: device, models, queue, p50/p95

No scheduler of its own: each request is one Dask task pinned to one worker
(``client.submit(..., workers=[address], allow_other_workers=False, pure=False)``). On the worker
the task hands the request to that worker's local ``ak.Pool`` (created on first use, one per
client-side pool, on the worker's device: ``ACCELKIT_DEVICE`` in the worker's environment, or the
best one), then secedes from the worker's thread pool while it waits, so the next requests reach
the local pool at once and batch with it exactly as on one machine.

Models travel by name, never as weights: a bundled name, a directory every worker can read,
``"hf:org/name[@revision]"`` (each worker fills its weight store once, or shares one through
``ACCELKIT_CACHE``), or a loaded model, sent as its checkpoint's source (the ``hf:`` source and
revision of a weight-store snapshot, the bundled name, else the directory). Each worker loads a
model on its first request for it.

Routing happens on the client: a request goes to the worker with the fewest outstanding requests,
counting a worker that does not hold the model yet as ``max_batch_size`` requests busier (a load
costs about a batch), so requests for one model gather where it is loaded and spread to other
workers, new ones included, as queues grow. Where workers declare a ``GPU`` resource
(``dask-worker --resources GPU=1``), only those serve. Requests do not ask for the resource
themselves: a Dask task holds its resources until it ends, seceded or not, so one GPU unit per
request would let only one request at a time reach a worker, and nothing would batch.

Faults: a monitor thread watches the scheduler's worker list. When a worker leaves (killed,
crashed, restarted), each of its unfinished requests is sent to another worker, and a request runs
at most ``attempts`` times (2): then its future fails with ``WorkerLostError`` naming the workers.
An error raised by a model (bad input) fails that request's future only; it is not retried.
"""

from __future__ import annotations

import itertools
import json
import logging
import queue
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import AccelkitError
from . import DEFAULT_BATCH_WINDOW, DEFAULT_MAX_PADDING, Pool, PoolClosedError, _internal
from .futures import CallbackThread, PoolFuture
from .stats import ClusterStats, StatsRecorder

#: how many times a request may run (the first run and one retry after its worker was lost)
DEFAULT_ATTEMPTS = 2
#: seconds between looks at the scheduler's list of workers
WATCH_INTERVAL = 0.25
#: seconds a request waits for a worker to serve it (none left, or all tried) before it fails
NO_WORKER_TIMEOUT = 60.0
#: seconds ``stats()`` waits for the workers' local statistics
STATS_TIMEOUT = 5.0


class WorkerLostError(AccelkitError):
    """A request whose Dask worker left the cluster while running it, on every attempt it was given."""


@dataclass(frozen=True)
class ModelSpec:
    """What a worker needs to load a model: its name in the pool, the source, dtype and architecture."""

    key: str
    source: str
    dtype: str | None = None
    architecture: str | None = None

    def load(self, device):
        from ..models.auto import load

        return load(self.source, device=device, dtype=self.dtype, architecture=self.architecture)


@dataclass(eq=False)
class _Call:
    """One request, as the client tracks it across attempts."""

    number: int
    spec: ModelSpec
    method: str | None
    args: tuple
    inputs: dict
    future: Future
    submitted: float
    tried: list = field(default_factory=list)  # worker addresses, in order
    worker: str | None = None  # the worker running the current attempt
    task: object | None = None  # the current attempt's Dask future
    waiting_since: float | None = None  # parked: no worker it may run on


@dataclass(eq=False)
class _Worker:
    address: str
    name: str
    order: int
    outstanding: int = 0
    models: set = field(default_factory=set)
    alive: bool = True
    lost_requests: int = 0
    stats: StatsRecorder = field(default_factory=StatsRecorder)
    info: dict = field(default_factory=dict)  # the last local statistics it sent


class DistributedPool(Pool):
    """``ak.Pool(client=...)``: see the module docstring. Same API as ``Pool``: ``submit``, ``map``,
    ``run``, ``add``, ``evict``, ``stats``, ``close``, a context manager; the batching options and
    ``memory_budget`` apply to each worker's local pool (per device)."""

    def __init__(
        self,
        devices=None,
        *,
        client,
        max_batch_size: int = 8,
        memory_budget: int | dict | None = None,
        batch_window: float = DEFAULT_BATCH_WINDOW,
        max_padding: float = DEFAULT_MAX_PADDING,
        attempts: int = DEFAULT_ATTEMPTS,
    ) -> None:
        if devices is not None:
            raise AccelkitError(
                "Pool(client=...): the devices are the Dask workers' (one worker per device, set with "
                "ACCELKIT_DEVICE in each worker's environment); leave devices out"
            )
        try:
            import distributed  # noqa: F401 - the optional dependency, imported only here and on workers
        except ImportError:
            raise AccelkitError(
                "Pool(client=...) runs on Dask distributed, which is not installed: "
                "pip install 'accelkit[distributed]'"
            ) from None
        if int(max_batch_size) < 1:
            raise AccelkitError(f"Pool: max_batch_size must be >= 1, got {max_batch_size}")
        if int(attempts) < 1:
            raise AccelkitError(f"Pool: attempts must be >= 1, got {attempts}")
        self.client = client
        self.devices = []
        self.max_batch_size = int(max_batch_size)
        self.batch_window = float(batch_window)
        self.max_padding = float(max_padding)
        self.memory_budget = memory_budget
        self.attempts = int(attempts)
        self.id = f"accelkit-pool-{uuid.uuid4().hex[:12]}"
        self._options = {
            "max_batch_size": self.max_batch_size,
            "memory_budget": memory_budget,
            "batch_window": self.batch_window,
            "max_padding": self.max_padding,
        }
        self._lock = threading.RLock()
        self._specs: dict[str, ModelSpec] = {}
        self._requests: dict[str, int] = {}
        self._workers: dict[str, _Worker] = {}
        self._calls: set[_Call] = set()
        self._numbers = itertools.count(1)
        self._order = itertools.count()
        self._stats = StatsRecorder()
        self._callbacks = CallbackThread("accelkit-pool-callbacks")
        self._retried = 0
        self._closed = False
        self._cancelling = False
        self._stop = threading.Event()
        self._ready: queue.SimpleQueue = queue.SimpleQueue()  # finished attempts whose results to fetch
        self._collector = threading.Thread(
            target=_collect,
            args=(weakref.ref(self), self._ready, self._stop),
            name=f"{self.id}-collector",
            daemon=True,
        )
        self._collector.start()
        self._refresh()
        self._monitor = threading.Thread(
            target=_watch, args=(weakref.ref(self), self._stop), name=f"{self.id}-monitor", daemon=True
        )
        self._monitor.start()

    # ------------------------------------------------------------------ models
    def _register(self, source, name: str | None, loader: Callable | None, device, dtype) -> str:
        if loader is not None:
            raise AccelkitError(
                "Pool(client=...).add: workers load models by source (a bundled name, a directory every "
                "worker can read, 'hf:org/name'); a loader function is not sent to them"
            )
        if device is not None:
            raise AccelkitError(
                "Pool(client=...).add: each worker serves on its own device; device= does not apply"
            )
        if source is None:
            raise AccelkitError(
                "Pool.add: pass a source (e.g. 'tiny-random-bert', 'hf:org/name' or a directory)"
            )
        spec = _spec_of(source, dtype)
        with self._lock:
            self._check_open()
            label = name or spec.key
            if label in self._specs:
                raise AccelkitError(f"Pool.add: a model named {label!r} is already in the pool")
            self._specs[label] = ModelSpec(label, spec.source, spec.dtype, spec.architecture)
        return label

    def _preload(self, label: str) -> None:
        """Load ``label`` on every live worker now."""
        with self._lock:
            workers = [w.address for w in self._workers.values() if w.alive]
        for f in [self._submit_to(label, "__pool_load__", addr) for addr in workers]:
            f.result()

    def _spec(self, model) -> ModelSpec:
        if isinstance(model, str) and model in self._specs:
            return self._specs[model]
        spec = _spec_of(model, None)
        return self._specs.setdefault(spec.key, spec)

    # ------------------------------------------------------------------ requests
    def submit(self, model, /, *args, method: str | None = None, **inputs) -> Future:
        """Queue ``model(*args, **inputs)`` (or ``model.<method>(...)``) on a worker; returns a Future of
        the output with every Tensor copied to numpy."""
        return self._submit_to(model, method, None, args, inputs)

    def _submit_to(self, model, method, address, args=(), inputs=None) -> Future:
        future = PoolFuture(self._callbacks)
        with self._lock:
            self._check_open()
            spec = self._spec(model)
            call = _Call(next(self._numbers), spec, method, args, inputs or {}, future, time.perf_counter())
            if not _internal(method):
                self._requests[spec.key] = self._requests.get(spec.key, 0) + 1
                self._stats.on_submit(call.submitted)
            self._calls.add(call)
            send = self._place(call, address)
        self._send(call, send)
        return future

    def _place(self, call: _Call, address: str | None = None) -> str | None:
        """Pick the worker for the call's next attempt (under the lock); None parks it until one joins."""
        if address is not None:
            worker = self._workers.get(address)
        else:
            free = [w for w in self._workers.values() if w.alive and w.address not in call.tried]
            key = call.spec.key

            def load(w: _Worker) -> tuple:
                holds = key in w.models
                return (w.outstanding + (0 if holds else self.max_batch_size), not holds, w.order)

            worker = min(free, key=load) if free else None
        if worker is None or not worker.alive:
            call.worker, call.waiting_since = None, call.waiting_since or time.monotonic()
            return None
        call.worker, call.waiting_since = worker.address, None
        call.tried.append(worker.address)
        worker.outstanding += 1
        worker.models.add(call.spec.key)
        if not _internal(call.method):
            worker.stats.on_submit(time.perf_counter())
        return worker.address

    def _send(self, call: _Call, address: str | None) -> None:
        """Submit the call's attempt to ``address`` as one Dask task (outside the lock: it talks to the scheduler)."""
        if address is None:
            return
        try:
            task = self._submit_task(call, address)
        except Exception as exc:  # noqa: BLE001 - the client cannot send (closed, no scheduler): fail the request
            with self._lock:
                worker = self._workers.get(address)
                if worker is not None and call.worker == address:
                    worker.outstanding -= 1
                call.worker = None
            self._finish_failed(
                call,
                PoolClosedError(f"request {call.number} ({call.spec.key}) could not be sent to Dask: {exc}"),
            )
            return
        with self._lock:
            if call.worker != address or call.future.done():  # cancelled meanwhile
                stale = True
                worker = self._workers.get(address)
                if call.worker == address and worker is not None:
                    worker.outstanding -= 1
                call.worker = None
                self._calls.discard(call)
            else:
                call.task, stale = task, False
                worker = self._workers.get(address)
                gone = worker is None or not worker.alive  # it left while the task was being sent
        if stale:
            task.cancel()
            return
        task.add_done_callback(lambda t, call=call: self._task_done(call, t))
        if gone:
            self._lost(call, task, "it left while the request was being sent")

    def _submit_task(self, call: _Call, address: str):
        return self.client.submit(
            serve,
            self.id,
            self._options,
            call.spec,
            call.method,
            call.args,
            call.inputs,
            key=f"accelkit-{call.spec.key.replace('/', '_')}-{uuid.uuid4().hex}",
            workers=[address],
            allow_other_workers=False,
            pure=False,
        )

    def _task_done(self, call: _Call, task) -> None:
        """A Dask attempt ended (on Dask's callback thread): set the result, fail it, or retry it."""
        with self._lock:
            if call.task is not task:
                return  # superseded: the worker was lost and the call sent elsewhere
        status = task.status
        if status == "finished":  # fetched by the collector, many at a time
            self._ready.put((call, task))
        elif status == "error":
            exc = task.exception()
            if _is_worker_loss(exc):
                self._lost(call, task, f"{type(exc).__name__}: {exc}")
            else:
                self._finish(call, task, exc=exc)
        elif not call.future.done():  # cancelled by someone else (client.restart, client.cancel)
            self._lost(call, task, "its Dask task was cancelled")

    def _collect(self, items: list) -> None:
        """Fetch the results of finished attempts in one ``gather`` (one round trip for many), then
        answer their futures; a result lost with its worker sends that request again."""
        try:
            results = self.client.gather([task for _, task in items])
        except Exception:  # noqa: BLE001 - some result is gone: fetch them one by one to find which
            results = None
        for i, (call, task) in enumerate(items):
            if results is not None:
                self._finish(call, task, result=results[i])
                continue
            try:
                result = task.result()
            except Exception as exc:  # noqa: BLE001 - the result was lost with its worker before we got it
                self._lost(call, task, f"its result could not be fetched ({type(exc).__name__}: {exc})")
            else:
                self._finish(call, task, result=result)

    def _finish(self, call: _Call, task, *, result=None, exc: BaseException | None = None) -> None:
        now = time.perf_counter()
        with self._lock:
            if call.task is not task:
                return
            call.task = None
            self._calls.discard(call)
            worker = self._workers.get(call.worker)
            if worker is not None:
                worker.outstanding -= 1
        if not call.future.set_running_or_notify_cancel():  # the caller cancelled it meanwhile
            self._stats.on_cancel()
            return
        if not _internal(call.method):
            if worker is not None:
                worker.stats.on_done(call.submitted, now, exc is None)
            self._stats.on_done(call.submitted, now, exc is None)
        if exc is not None:
            call.future.set_exception(exc)
        else:
            call.future.set_result(result)

    def _lost(self, call: _Call, task, reason: str) -> None:
        """The call's worker left (or its task vanished): send it elsewhere, or fail it after ``attempts`` runs."""
        with self._lock:
            if task is None or call.task is not task:
                return
            if call.future.done():  # cancelled by the caller: nothing to send again
                call.task = None
                self._calls.discard(call)
                if call.worker in self._workers:
                    self._workers[call.worker].outstanding -= 1
                return
            address = call.worker
            call.task = None
            worker = self._workers.get(address)
            if worker is not None:
                worker.outstanding -= 1
                worker.lost_requests += 1
            if len(call.tried) >= self.attempts or self._cancelling:
                self._calls.discard(call)
                fail = WorkerLostError(
                    f"request {call.number} ({call.spec.key}) was lost: worker {address} "
                    f"{'left the cluster' if worker is None or not worker.alive else 'failed'} while running it "
                    f"({reason}); it ran on {', '.join(call.tried)}, {len(call.tried)} of {self.attempts} "
                    "attempts a request gets"
                )
                send = None
            else:
                fail = None
                self._retried += 1
                send = self._place(call)
        if task is not None:
            try:
                task.cancel()
            except Exception:  # noqa: BLE001 - the client is closed: the call is still failed or sent below
                pass
        if fail is not None:
            self._finish_failed(call, fail)
        else:
            self._send(call, send)

    def _finish_failed(self, call: _Call, exc: BaseException) -> None:
        with self._lock:
            self._calls.discard(call)
            if not _internal(call.method):
                self._stats.on_done(call.submitted, time.perf_counter(), False)
        if call.future.set_running_or_notify_cancel():
            call.future.set_exception(exc)
        else:
            self._stats.on_cancel()

    # ------------------------------------------------------------------ workers
    def _serving(self, workers: dict) -> dict:
        """The scheduler's workers that serve this pool: those declaring a GPU resource, if any do."""
        gpu = {a: w for a, w in workers.items() if (w.get("resources") or {}).get("GPU")}
        return gpu or workers

    def _refresh(self) -> list[tuple[_Call, object]]:
        """Sync the worker table with the scheduler's; returns the (call, Dask task) pairs whose worker left."""
        listed = self._serving(_identity(self.client)["workers"])
        lost = []
        with self._lock:
            for address, w in listed.items():
                if address not in self._workers:
                    self._workers[address] = _Worker(address, str(w.get("name", address)), next(self._order))
            for address, w in self._workers.items():
                if w.alive and address not in listed:
                    w.alive = False
                    w.models.clear()
                    lost += [(c, c.task) for c in self._calls if c.worker == address and c.task is not None]
        return lost

    def _watch_once(self) -> bool:
        """One look of the monitor: find workers that left or joined; retry, place or time out what
        they concern. False when the client is closed (the monitor stops)."""
        try:
            lost = self._refresh()
        except Exception:  # noqa: BLE001 - the scheduler is briefly unreachable: look again later
            if getattr(self.client, "status", "running") in ("closed", "closing"):
                self._fail_all(PoolClosedError("the Dask client was closed while requests were running"))
                return False
            return True
        for call, task in lost:
            self._lost(call, task, "the scheduler no longer lists it")
        self._place_parked()
        return True

    def _place_parked(self) -> None:
        sends, expired = [], []
        with self._lock:
            for call in list(self._calls):
                if call.task is not None or call.waiting_since is None:
                    continue
                address = self._place(call)
                if address is not None:
                    sends.append((call, address))
                elif time.monotonic() - call.waiting_since > NO_WORKER_TIMEOUT:
                    expired.append(call)
        for call, address in sends:
            self._send(call, address)
        for call in expired:
            tried = f" (it ran on {', '.join(call.tried)}, which left)" if call.tried else ""
            self._finish_failed(
                call,
                WorkerLostError(
                    f"request {call.number} ({call.spec.key}): no worker could take it for "
                    f"{NO_WORKER_TIMEOUT:.0f} s{tried}; the cluster has no live worker it may run on"
                ),
            )

    def _fail_all(self, exc: BaseException) -> None:
        with self._lock:
            calls = list(self._calls)
        for call in calls:
            self._finish_failed(call, exc)

    # ------------------------------------------------------------------ control
    def evict(self, model) -> None:
        """Drop a model's weights on every worker that holds it (each reloads it on its next request)."""
        with self._lock:
            spec = self._spec(model)
            holders = [w.address for w in self._workers.values() if w.alive and spec.key in w.models]
        for f in [self._submit_to(spec.key, "__pool_evict__", a) for a in holders]:
            f.result()
        with self._lock:
            for a in holders:
                if a in self._workers:
                    self._workers[a].models.discard(spec.key)

    def stats(self) -> ClusterStats:
        """A snapshot: the pool's counts and client-side latency, and per worker its device, the models
        it holds, its queue, p50/p95 latency and throughput (from the client) and batches (its own)."""
        with self._lock:
            workers = list(self._workers.values())
        local = self._local_stats([w.address for w in workers if w.alive])
        rows, devices, models = [], [], {}
        batches = largest = done_in_batches = 0
        for w in workers:
            if w.address in local:
                w.info = local[w.address]
            info = w.info if w.alive else {}
            own = w.stats.snapshot(w.outstanding, 0, [], []).to_dict()
            loaded = [m["name"] for m in info.get("models", []) if m["loaded"]]
            rows.append(
                {
                    "worker": w.address,
                    "name": w.name,
                    "alive": w.alive,
                    "device": info.get("device"),
                    "device_name": info.get("device_name"),
                    "models": loaded,
                    "queue": w.outstanding,
                    "worker_queue": info.get("queue_depth"),
                    "completed": own["completed"],
                    "failed": own["failed"],
                    "lost_requests": w.lost_requests,
                    "p50_ms": own["p50_ms"],
                    "p95_ms": own["p95_ms"],
                    "throughput_rps": own["throughput_rps"],
                    "batches": info.get("batches", 0),
                    "mean_batch_size": info.get("mean_batch_size", 0.0),
                }
            )
            batches += info.get("batches", 0)
            largest = max(largest, info.get("largest_batch", 0))
            done_in_batches += info.get("completed", 0) + info.get("failed", 0)
            for dev in info.get("devices", []):
                devices.append({**dev, "device": f"{dev['device']} on {w.name}"})
            for m in info.get("models", []):
                entry = models.setdefault(m["name"], {"name": m["name"], "workers": [], "loaded_on": []})
                entry["workers"].append(w.name)
                if m["loaded"]:
                    entry["loaded_on"].append(w.name)
        with self._lock:
            for key, spec in self._specs.items():
                entry = models.setdefault(key, {"name": key, "workers": [], "loaded_on": []})
                entry["source"] = spec.source
                entry["requests"] = self._requests.get(key, 0)
                entry["queued"] = sum(1 for c in self._calls if c.spec.key == key)
            queued = len(self._calls)
        snap = self._stats.snapshot(queued, queued, [], devices).to_dict()
        snap.update(
            batches=batches,
            largest_batch=largest,
            mean_batch_size=(done_in_batches / batches) if batches else 0.0,
            models=[{"source": None, "requests": 0, "queued": 0, **m} for m in models.values()],
            workers=rows,
            retried=self._retried,
            attempts=self.attempts,
            scheduler=getattr(self.client, "scheduler", None) and self.client.scheduler.address,
        )
        return ClusterStats(snap)

    def _local_stats(self, addresses: list[str]) -> dict:
        """Each worker's local pool statistics (``{}`` for a worker that does not answer in time)."""
        if not addresses:
            return {}
        box: dict = {}

        def ask() -> None:
            box.update(self.client.run(local_stats, self.id, workers=addresses, on_error="return"))

        t = threading.Thread(target=ask, daemon=True)
        t.start()
        t.join(STATS_TIMEOUT)
        return {a: v for a, v in dict(box).items() if isinstance(v, dict)}

    def close(self, wait: bool = True, *, cancel_pending: bool = False) -> None:
        """Stop taking requests. ``wait``: block until every request is answered and the workers'
        local pools are closed. ``cancel_pending``: cancel the requests not answered yet."""
        with self._lock:
            first = not self._closed
            self._closed = True
            if cancel_pending:
                self._cancelling = True
            calls = list(self._calls)
        if cancel_pending:
            for call in calls:
                if call.future.cancel():
                    with self._lock:
                        task, call.task = call.task, None
                        self._calls.discard(call)
                        worker = self._workers.get(call.worker)
                        if worker is not None and task is not None:
                            worker.outstanding -= 1
                    self._stats.on_cancel()
                    if task is not None:
                        task.cancel()
        if first and sys.is_finalizing():
            # at interpreter exit (``__del__`` of a pool never closed) no thread can start: starting
            # one waits forever; stop the helper threads and leave the workers to the closing client
            self._stop.set()
            return
        if first:
            done = threading.Thread(
                target=self._shut_down, args=(cancel_pending,), name=f"{self.id}-close", daemon=True
            )
            done.start()
            if wait:
                done.join()
        if wait:
            self._callbacks.wait_idle()

    def _shut_down(self, cancel_pending: bool) -> None:
        """Drain (the monitor keeps retrying lost requests meanwhile), then close the workers' local pools."""
        while True:
            with self._lock:
                futures = [c.future for c in self._calls if not c.future.done()]
            if not futures:
                break
            wait_futures(futures)
        self._stop.set()
        self._monitor.join()
        self._collector.join()
        try:
            self.client.run(close_local, self.id, cancel_pending, on_error="return")
        except Exception:  # noqa: BLE001 - the client or cluster is gone already: nothing left to close
            pass

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        with self._lock:
            alive = sum(w.alive for w in self._workers.values())
        return (
            f"<accelkit.Pool {state} on Dask, {alive} workers, max_batch_size {self.max_batch_size}>\n"
            + self.stats().text()
        )


def _identity(client) -> dict:
    """The scheduler's identity with every worker, asked afresh. Not ``client.scheduler_info()``: that
    returns the client's shared cache, which its periodic refresh replaces with one listing no workers."""
    try:
        return client.sync(client.scheduler.identity, n_workers=-1)
    except TypeError:  # older Dask: identity() takes no n_workers and lists every worker
        return client.sync(client.scheduler.identity)


def _collect(ref: weakref.ref, ready: queue.SimpleQueue, stop: threading.Event) -> None:
    """The collector thread: takes every finished attempt queued so far and fetches their results at once."""
    while not stop.is_set():
        try:
            items = [ready.get(timeout=0.5)]
        except queue.Empty:
            continue
        while True:
            try:
                items.append(ready.get_nowait())
            except queue.Empty:
                break
        pool = ref()
        if pool is None:
            return
        try:
            pool._collect(items)
        except Exception:  # noqa: BLE001 - a bug here must not stop the collecting: log it, go on
            logging.getLogger("accelkit.pool").exception("accelkit pool collector")
        del pool, items


def _watch(ref: weakref.ref, stop: threading.Event) -> None:
    """The monitor thread (it holds the pool weakly: a pool dropped without close() still goes)."""
    while not stop.wait(WATCH_INTERVAL):
        pool = ref()
        if pool is None:
            return
        try:
            if not pool._watch_once():
                return
        except Exception:  # noqa: BLE001 - a bug here must not stop the watching: log it, look again
            logging.getLogger("accelkit.pool").exception("accelkit pool monitor")
        del pool


# ---------------------------------------------------------------------- what runs on the workers
_local_lock = threading.Lock()
_local_pools: dict[tuple[str, str], Pool] = {}


def _local_pool(pool_id: str, options: dict, create: bool = True, address: str | None = None) -> Pool | None:
    if address is None:
        from distributed import get_worker

        address = get_worker().address
    key = (address, pool_id)
    with _local_lock:
        pool = _local_pools.get(key)
        if pool is None and create:
            pool = _local_pools[key] = Pool(None, **options)
        return pool


def serve(pool_id: str, options: dict, spec: ModelSpec, method: str | None, args: tuple, inputs: dict):
    """The Dask task of one request: hand it to this worker's local pool, secede while it runs (so the
    next requests reach the pool and batch with it), return the host result."""
    from distributed import secede

    pool = _local_pool(pool_id, options)
    with pool._lock:
        if spec.key not in pool._models:
            pool.add(spec.source, name=spec.key, loader=spec.load)
    future = pool.submit(spec.key, *args, method=method, **inputs)
    secede()
    return future.result()


def local_stats(pool_id: str, dask_worker=None) -> dict | None:
    """This worker's local pool statistics (run through ``client.run``), with its device."""
    pool = _local_pool(pool_id, {}, create=False, address=dask_worker.address)
    if pool is None:
        import os

        from ..hardware import device

        dev = device(None) if os.environ.get("ACCELKIT_DEVICE") else None
        return {"device": dev.spec if dev else None, "device_name": dev.name if dev else None}
    data = pool.stats().to_dict()
    dev = pool.devices[0]
    data.update(device=dev.spec, device_name=dev.name)
    return data


def close_local(pool_id: str, cancel_pending: bool = False, dask_worker=None) -> bool:
    """Close this worker's local pool of ``pool_id`` (run through ``client.run``)."""
    with _local_lock:
        pool = _local_pools.pop((dask_worker.address, pool_id), None)
    if pool is not None:
        pool.close(wait=False, cancel_pending=cancel_pending)
    return pool is not None


# ---------------------------------------------------------------------- sources
def _spec_of(model, dtype) -> ModelSpec:
    """The ModelSpec of a source or a loaded model (its checkpoint, dtype and class)."""
    if isinstance(model, str):
        return ModelSpec(model, model, _dtype_name(dtype))
    if hasattr(model, "__fspath__"):
        path = str(Path(model).absolute())
        return ModelSpec(path, path, _dtype_name(dtype))
    checkpoint = getattr(model, "checkpoint", None)
    if checkpoint is None:
        raise AccelkitError(
            f"Pool(client=...): workers load models by source; {type(model).__name__} has no checkpoint "
            "to name (pass a bundled name, a directory every worker can read, or 'hf:org/name')"
        )
    source = checkpoint_source(checkpoint)
    dtype = _dtype_name(dtype or getattr(model, "compute_dtype", None))
    arch = type(model).__name__
    return ModelSpec(f"{arch}({source})", source, dtype, arch)


def checkpoint_source(path) -> str:
    """A source string every worker can load for a checkpoint directory: ``hf:org/name@revision``
    for a weight-store snapshot, the bundled name for a bundled checkpoint, else the directory."""
    from ..io.store import MANIFEST, WeightStore
    from ..models.auto import BUNDLED, bundled_dir

    path = Path(path).absolute()
    if WeightStore.of_snapshot(path) is not None:
        try:
            manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
            source, revision = manifest["source"], manifest["revision"]
            if isinstance(source, str) and source.startswith("hf:"):
                return f"{source}@{revision}"
        except (OSError, ValueError, KeyError):
            pass
    for name in BUNDLED:
        try:
            if Path(bundled_dir(name)).resolve() == path.resolve():
                return name
        except Exception:  # noqa: BLE001 - a bundled name whose files are missing
            continue
    return str(path)


def _dtype_name(dtype) -> str | None:
    if dtype is None:
        return None
    name = getattr(dtype, "name", dtype)
    return None if name == "float32" else str(name)


def _is_worker_loss(exc: BaseException | None) -> bool:
    """Errors that say the worker (not the request) failed: a killed worker, a lost connection."""
    if exc is None:
        return False
    if isinstance(exc, (CancelledError, FutureTimeout)):
        return True
    names = {t.__name__ for t in type(exc).__mro__}
    return bool(
        names & {"KilledWorker", "CommClosedError", "FutureCancelledError", "WorkerLostError"}
    ) and not (isinstance(exc, AccelkitError))


__all__ = ["DistributedPool", "ModelSpec", "WorkerLostError", "checkpoint_source"]
