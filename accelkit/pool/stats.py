"""Live pool statistics: queue depth, latency percentiles, throughput, batches, models and device memory.

``StatsRecorder`` is updated by the pool's workers (thread-safe); ``snapshot()`` freezes it into a
``PoolStats``, which shows itself as text and static HTML.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

from ..notebook.reprs import fmt_bytes

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


def _ms(v) -> str:
    return "-" if v is None else f"{v:.2f} ms"


class PoolStats:
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
            f"  latency p50 {_ms(d['p50_ms'])}, p95 {_ms(d['p95_ms'])}, p99 {_ms(d['p99_ms'])}; throughput {rps}",
            f"  {d['batches']} batches, mean {d['mean_batch_size']:.2f} requests, largest {d['largest_batch']}",
        ]
        for m in d["models"]:
            state = "loaded" if m["loaded"] else "evicted" if m["loads"] else "not loaded"
            lines.append(
                f"  model {m['name']} on {m['device'] or '-'}: {state}{' (pinned)' if m['pinned'] else ''}, "
                f"{'-' if m['bytes'] is None else fmt_bytes(m['bytes'])} measured at load, {m['loads']} loads, {m['evictions']} evictions, "
                f"{m['requests']} requests, {m['queued']} queued"
            )
        for dev in d["devices"]:
            budget = f" of budget {fmt_bytes(dev['budget'])}" if dev["budget"] is not None else ""
            lines.append(
                f"  device {dev['device']}: queue {dev['queue']}, pool uses {fmt_bytes(dev['used_bytes'])}{budget}, "
                f"allocated {fmt_bytes(dev['allocated_bytes'])}, peak {fmt_bytes(dev['peak_bytes'])}"
            )
        return "\n".join(lines)

    __str__ = text

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str | None:
        try:
            from ..notebook import reprs
            from ..notebook.options import html_enabled
        except ImportError:  # pragma: no cover
            import html

            return f"<pre>{html.escape(self.text())}</pre>"
        if not html_enabled():
            return None
        d = self._data
        rps = "-" if d["throughput_rps"] is None else f"{d['throughput_rps']:.1f} req/s"
        head = reprs.header(
            "pool",
            reprs.badge(f"{d['completed']} done", "ok"),
            reprs.badge(f"{d['failed']} failed", "error" if d["failed"] else ""),
            reprs.badge(f"queue {d['queue_depth']}", "warn" if d["queue_depth"] else ""),
            reprs.badge(rps, "accent"),
        )
        summary = reprs.kv_table(
            [
                ("latency p50 / p95 / p99", f"{_ms(d['p50_ms'])} / {_ms(d['p95_ms'])} / {_ms(d['p99_ms'])}"),
                (
                    "batches",
                    f"{d['batches']} (mean {d['mean_batch_size']:.2f}, largest {d['largest_batch']})",
                ),
                (
                    "submitted / running / cancelled",
                    f"{d['submitted']} / {d['in_flight']} / {d['cancelled']}",
                ),
            ]
        )
        models = reprs.table(
            [
                [
                    m["name"],
                    m["device"] or "-",
                    "yes" if m["loaded"] else "no",
                    "-" if m["bytes"] is None else reprs.fmt_bytes(m["bytes"]),
                    m["loads"],
                    m["evictions"],
                    m["requests"],
                    m["queued"],
                ]
                for m in d["models"]
            ],
            ["model", "device", "loaded", "bytes at load", "loads", "evictions", "requests", "queued"],
            numeric=(3, 4, 5, 6, 7),
        )
        rows = []
        for dev in d["devices"]:
            budget = dev["budget"]
            fill = reprs.raw(reprs.bar(dev["used_bytes"] / budget)) if budget else ""
            rows.append(
                [
                    dev["device"],
                    dev["queue"],
                    reprs.fmt_bytes(dev["used_bytes"]),
                    reprs.fmt_bytes(budget) if budget is not None else "-",
                    fill,
                    reprs.fmt_bytes(dev["allocated_bytes"]),
                    reprs.fmt_bytes(dev["peak_bytes"]),
                ]
            )
        devices = reprs.table(
            rows, ["device", "queue", "pool uses", "budget", "", "allocated", "peak"], numeric=(1, 2, 3, 5, 6)
        )
        body = head + summary + reprs.section("models", models, open=True, count=len(d["models"]))
        body += reprs.section("devices", devices, open=True, count=len(d["devices"]))
        return reprs.repr_block(self.text(), body, "pool")

    def _repr_mimebundle_(self, include=None, exclude=None):
        try:
            from ..notebook.reprs import mimebundle
        except ImportError:  # pragma: no cover
            return None
        return mimebundle(self, include, exclude)


class ClusterStats(PoolStats):
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
            f"  latency p50 {_ms(d['p50_ms'])}, p95 {_ms(d['p95_ms'])}, p99 {_ms(d['p99_ms'])}; throughput {rps}",
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
                f"queue {w['queue']}, {w['completed']} done, {w['failed']} failed, p50 {_ms(w['p50_ms'])}, "
                f"p95 {_ms(w['p95_ms'])}, {wrps}, {w['batches']} batches (mean {w['mean_batch_size']:.2f})"
            )
        for m in d["models"]:
            lines.append(
                f"  model {m['name']}{'' if m['source'] in (None, m['name']) else ' = ' + m['source']}: "
                f"loaded on {', '.join(m['loaded_on']) or '-'}; {m['requests']} requests, {m['queued']} outstanding"
            )
        return "\n".join(lines)

    __str__ = text

    def _repr_html_(self) -> str | None:
        try:
            from ..notebook import reprs
            from ..notebook.options import html_enabled
        except ImportError:  # pragma: no cover
            import html

            return f"<pre>{html.escape(self.text())}</pre>"
        if not html_enabled():
            return None
        d = self._data
        rps = "-" if d["throughput_rps"] is None else f"{d['throughput_rps']:.1f} req/s"
        alive = sum(w["alive"] for w in d["workers"])
        head = reprs.header(
            "pool on Dask",
            reprs.badge(f"{alive} workers", "accent"),
            reprs.badge(f"{d['completed']} done", "ok"),
            reprs.badge(f"{d['failed']} failed", "error" if d["failed"] else ""),
            reprs.badge(f"{d['queue_depth']} outstanding", "warn" if d["queue_depth"] else ""),
            reprs.badge(rps, "accent"),
        )
        summary = reprs.kv_table(
            [
                ("scheduler", d.get("scheduler") or "-"),
                ("latency p50 / p95 / p99", f"{_ms(d['p50_ms'])} / {_ms(d['p95_ms'])} / {_ms(d['p99_ms'])}"),
                (
                    "batches",
                    f"{d['batches']} (mean {d['mean_batch_size']:.2f}, largest {d['largest_batch']})",
                ),
                ("submitted / cancelled / retried", f"{d['submitted']} / {d['cancelled']} / {d['retried']}"),
            ]
        )
        workers = reprs.table(
            [
                [
                    w["name"],
                    w["worker"],
                    (w["device"] or "-") if w["alive"] else "gone",
                    ", ".join(w["models"]) or "-",
                    w["queue"],
                    w["completed"],
                    w["failed"],
                    _ms(w["p50_ms"]),
                    _ms(w["p95_ms"]),
                    "-" if w["throughput_rps"] is None else f"{w['throughput_rps']:.1f}",
                    w["batches"],
                    f"{w['mean_batch_size']:.2f}",
                ]
                for w in d["workers"]
            ],
            [
                "worker",
                "address",
                "device",
                "models loaded",
                "queue",
                "done",
                "failed",
                "p50",
                "p95",
                "req/s",
                "batches",
                "mean batch",
            ],
            numeric=(4, 5, 6, 7, 8, 9, 10, 11),
        )
        models = reprs.table(
            [
                [
                    m["name"],
                    m["source"] or m["name"],
                    ", ".join(m["loaded_on"]) or "-",
                    m["requests"],
                    m["queued"],
                ]
                for m in d["models"]
            ],
            ["model", "source", "loaded on", "requests", "outstanding"],
            numeric=(3, 4),
        )
        body = head + summary + reprs.section("workers", workers, open=True, count=len(d["workers"]))
        body += reprs.section("models", models, open=True, count=len(d["models"]))
        return reprs.repr_block(self.text(), body, "pool")


__all__ = ["ClusterStats", "PoolStats", "StatsRecorder"]
