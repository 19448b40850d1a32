"""The pool's statistics as static HTML (``Pool.stats()`` in a notebook; its text is ``PoolStats.text()``).

Duck-typed: ``stats.to_dict()`` gives the fields ``PoolStats`` documents, ``stats.text()`` the text.
"""

from __future__ import annotations

from .html import badge, bar, header, kv_table, raw, repr_block, section, table
from .text import format_bytes, format_ms


def pool_stats_html(stats) -> str:
    """Counts as badges, latency percentiles and batching, then one table of models and one of devices
    (pool bytes against the budget as a bar)."""
    d = stats.to_dict()
    rps = "-" if d["throughput_rps"] is None else f"{d['throughput_rps']:.1f} req/s"
    head = header(
        "pool",
        badge(f"{d['completed']} done", "ok"),
        badge(f"{d['failed']} failed", "error" if d["failed"] else ""),
        badge(f"queue {d['queue_depth']}", "warn" if d["queue_depth"] else ""),
        badge(rps, "accent"),
    )
    latency = f"{format_ms(d['p50_ms'])} / {format_ms(d['p95_ms'])} / {format_ms(d['p99_ms'])}"
    summary = kv_table(
        [
            ("latency p50 / p95 / p99", latency),
            ("batches", f"{d['batches']} (mean {d['mean_batch_size']:.2f}, largest {d['largest_batch']})"),
            ("submitted / running / cancelled", f"{d['submitted']} / {d['in_flight']} / {d['cancelled']}"),
        ]
    )
    models = table(
        [
            [
                m["name"],
                m["device"] or "-",
                "yes" if m["loaded"] else "no",
                "-" if m["bytes"] is None else format_bytes(m["bytes"]),
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
        rows.append(
            [
                dev["device"],
                dev["queue"],
                format_bytes(dev["used_bytes"]),
                format_bytes(budget) if budget is not None else "-",
                raw(bar(dev["used_bytes"] / budget)) if budget else "",
                format_bytes(dev["allocated_bytes"]),
                format_bytes(dev["peak_bytes"]),
            ]
        )
    devices = table(
        rows, ["device", "queue", "pool uses", "budget", "", "allocated", "peak"], numeric=(1, 2, 3, 5, 6)
    )
    body = head + summary + section("models", models, open=True, count=len(d["models"]))
    body += section("devices", devices, open=True, count=len(d["devices"]))
    return repr_block(stats.text(), body, "pool")


__all__ = ["pool_stats_html"]


def cluster_stats_html(stats) -> str:
    """A pool on Dask (``ClusterStats``): counts as badges, latency and batching, one row per worker
    (device, models loaded, queue, p50/p95, throughput) and one per model."""
    d = stats.to_dict()
    rps = "-" if d["throughput_rps"] is None else f"{d['throughput_rps']:.1f} req/s"
    alive = sum(w["alive"] for w in d["workers"])
    head = header(
        "pool on Dask",
        badge(f"{alive} workers", "accent"),
        badge(f"{d['completed']} done", "ok"),
        badge(f"{d['failed']} failed", "error" if d["failed"] else ""),
        badge(f"{d['queue_depth']} outstanding", "warn" if d["queue_depth"] else ""),
        badge(rps, "accent"),
    )
    summary = kv_table(
        [
            ("scheduler", d.get("scheduler") or "-"),
            (
                "latency p50 / p95 / p99",
                f"{format_ms(d['p50_ms'])} / {format_ms(d['p95_ms'])} / {format_ms(d['p99_ms'])}",
            ),
            (
                "batches",
                f"{d['batches']} (mean {d['mean_batch_size']:.2f}, largest {d['largest_batch']})",
            ),
            ("submitted / cancelled / retried", f"{d['submitted']} / {d['cancelled']} / {d['retried']}"),
        ]
    )
    workers = table(
        [
            [
                w["name"],
                w["worker"],
                (w["device"] or "-") if w["alive"] else "gone",
                ", ".join(w["models"]) or "-",
                w["queue"],
                w["completed"],
                w["failed"],
                format_ms(w["p50_ms"]),
                format_ms(w["p95_ms"]),
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
    models = table(
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
    body = head + summary + section("workers", workers, open=True, count=len(d["workers"]))
    body += section("models", models, open=True, count=len(d["models"]))
    return repr_block(stats.text(), body, "pool")
