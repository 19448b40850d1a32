"""Live pool statistics: queue depth, latency percentiles, throughput, batches, models and device memory.

``StatsRecorder`` is updated by the pool's workers (thread-safe); ``snapshot()`` freezes it into a
``PoolStats``, which shows itself as text and static HTML.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

from ..display import Displayable, cluster_stats_html, format_bytes, format_ms, pool_stats_html

#: latencies kept for the percentiles (the most recent ones)
LATENCY_WINDOW = 2048
#: seconds over which ``recent_rps`` counts finished requests (a live rate that falls to 0 when idle)
RECENT_S = 10.0


class StatsRecorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.submitted = 0
        self.completed = 0
        self.failed = 0
        self.cancelled = 0
        self.batches = 0
        self.batched_requests = 0  # requests that ran in batches of two or more
        self.largest_batch = 0
        self.latencies: deque = deque(maxlen=LATENCY_WINDOW)
        self.done_at: deque = deque(maxlen=LATENCY_WINDOW)
        self.first_submit: float | None = None
        self.last_done: float | None = None
        self.busy_s = 0.0  # worker time spent running batches

    def on_submit(self, now: float) -> None:
        with self.lock:
            self.submitted += 1
            if self.first_submit is None:
                self.first_submit = now

    def on_batch(self, size: int, seconds: float) -> None:
        with self.lock:
            self.batches += 1
            self.busy_s += seconds
            self.largest_batch = max(self.largest_batch, size)
            if size > 1:
                self.batched_requests += size

    def on_done(self, submitted: float, now: float, ok: bool) -> None:
        with self.lock:
            if ok:
                self.completed += 1
            else:
                self.failed += 1
            self.latencies.append(now - submitted)
            self.done_at.append(now)
            self.last_done = now

    def on_cancel(self) -> None:
        with self.lock:
            self.cancelled += 1

    def snapshot(
        self, queue_depth: int, in_flight: int, models: list[dict], devices: list[dict]
    ) -> PoolStats:
        with self.lock:
            lat = np.array(self.latencies, dtype=np.float64)
            done = self.completed + self.failed
            span = (self.last_done - self.first_submit) if self.first_submit and self.last_done else 0.0
            now = time.perf_counter()
            window = min(RECENT_S, now - self.first_submit) if self.first_submit else 0.0
            recent = sum(1 for t in self.done_at if now - t <= RECENT_S)
            data = {
                "queue_depth": queue_depth,
                "in_flight": in_flight,
                "submitted": self.submitted,
                "completed": self.completed,
                "failed": self.failed,
                "cancelled": self.cancelled,
                "batches": self.batches,
                "mean_batch_size": (done / self.batches) if self.batches else 0.0,
                "largest_batch": self.largest_batch,
                "batched_requests": self.batched_requests,
                "p50_ms": float(np.percentile(lat, 50) * 1e3) if lat.size else None,
                "p95_ms": float(np.percentile(lat, 95) * 1e3) if lat.size else None,
                "p99_ms": float(np.percentile(lat, 99) * 1e3) if lat.size else None,
                "throughput_rps": (done / span) if span > 0 else None,
                "recent_rps": (recent / window) if window > 0 else None,
                "busy_s": self.busy_s,
                "models": models,
                "devices": devices,
                "taken_at": time.time(),
            }
        return PoolStats(data)


class PoolStats(Displayable, html=pool_stats_html):
    """A snapshot of a pool: request counts, queue depth, p50/p95/p99 latency (submit to result),
    throughput (requests finished per second since the first submit, idle time included) and
    ``recent_rps`` (over the last 10 s: the live rate, 0 when idle), batches, and per model and per
    device state (loaded, measured device bytes, loads, evictions; device memory from ``memory()``).
    Fields read as attributes (``stats.p95_ms``) or through ``to_dict()``."""

    def __init__(self, data: dict) -> None:
        self._data = data

    def __getattr__(self, name: str):
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(f"PoolStats has no field {name!r}") from None

    def to_dict(self) -> dict:
        return {k: v for k, v in self._data.items() if k != "taken_at"}

    def text(self) -> str:
        d = self._data
        rps = "-" if d["throughput_rps"] is None else f"{d['throughput_rps']:.1f} req/s"
        if d.get("recent_rps") is not None:
            rps += f" overall, {d['recent_rps']:.1f} req/s over the last {RECENT_S:.0f} s"
        lines = [
            f"pool: {d['completed']} done, {d['failed']} failed, {d['cancelled']} cancelled of {d['submitted']} "
            f"submitted; queue {d['queue_depth']}, running {d['in_flight']}",
            f"  latency p50 {format_ms(d['p50_ms'])}, p95 {format_ms(d['p95_ms'])}, p99 {format_ms(d['p99_ms'])}; throughput {rps}",
            f"  {d['batches']} batches, mean {d['mean_batch_size']:.2f} requests, largest {d['largest_batch']}",
        ]
        for m in d["models"]:
            state = "loaded" if m["loaded"] else "evicted" if m["loads"] else "not loaded"
            lines.append(
                f"  model {m['name']} on {m['device'] or '-'}: {state}{' (pinned)' if m['pinned'] else ''}, "
                f"{'-' if m['bytes'] is None else format_bytes(m['bytes'])} measured at load, {m['loads']} loads, {m['evictions']} evictions, "
                f"{m['requests']} requests, {m['queued']} queued"
            )
        for dev in d["devices"]:
            budget = f" of budget {format_bytes(dev['budget'])}" if dev["budget"] is not None else ""
            lines.append(
                f"  device {dev['device']}: queue {dev['queue']}, pool uses {format_bytes(dev['used_bytes'])}{budget}, "
                f"allocated {format_bytes(dev['allocated_bytes'])}, peak {format_bytes(dev['peak_bytes'])}"
            )
        return "\n".join(lines)

    __repr__ = __str__ = text


class ClusterStats(PoolStats, html=cluster_stats_html):
    """A snapshot of a pool on Dask (``Pool(client=...)``): the pool's counts and latency (submit to
    result, seen from the client), batches summed over the workers, and per worker its device, the
    models it holds loaded, its queue (requests sent and not answered), p50/p95 latency, throughput
    and batches; ``retried`` counts requests sent again after their worker was lost."""

    def text(self) -> str:
        d = self._data
        rps = "-" if d["throughput_rps"] is None else f"{d['throughput_rps']:.1f} req/s"
        alive = sum(w["alive"] for w in d["workers"])
        lines = [
            f"pool on Dask ({d.get('scheduler') or 'scheduler'}): {alive} workers; {d['completed']} done, "
            f"{d['failed']} failed, {d['cancelled']} cancelled of {d['submitted']} submitted; "
            f"{d['queue_depth']} outstanding, {d['retried']} retried after a worker was lost",
            f"  latency p50 {format_ms(d['p50_ms'])}, p95 {format_ms(d['p95_ms'])}, p99 {format_ms(d['p99_ms'])}; throughput {rps}",
            f"  {d['batches']} batches, mean {d['mean_batch_size']:.2f} requests, largest {d['largest_batch']}",
        ]
        for w in d["workers"]:
            if not w["alive"]:
                lines.append(
                    f"  worker {w['name']} ({w['worker']}): gone; {w['completed']} done, {w['lost_requests']} lost"
                )
                continue
            wrps = "-" if w["throughput_rps"] is None else f"{w['throughput_rps']:.1f} req/s"
            lines.append(
                f"  worker {w['name']} ({w['worker']}) on {w['device'] or '-'}: models {', '.join(w['models']) or '-'}; "
                f"queue {w['queue']}, {w['completed']} done, {w['failed']} failed, p50 {format_ms(w['p50_ms'])}, "
                f"p95 {format_ms(w['p95_ms'])}, {wrps}, {w['batches']} batches (mean {w['mean_batch_size']:.2f})"
            )
        for m in d["models"]:
            lines.append(
                f"  model {m['name']}{'' if m['source'] in (None, m['name']) else ' = ' + m['source']}: "
                f"loaded on {', '.join(m['loaded_on']) or '-'}; {m['requests']} requests, {m['queued']} outstanding"
            )
        return "\n".join(lines)

    __repr__ = __str__ = text


__all__ = ["ClusterStats", "PoolStats", "StatsRecorder"]
