"""The sharing report as static HTML: published tensors, and deduplicated weights grouped by the models
sharing them (its text is ``SharingReport.text()``).

Duck-typed: a report has ``entries`` and ``dedup`` (lists of dicts), ``totals`` (a dict),
``dedup_bytes_saved``, ``dedup_groups()`` and ``text()``.
"""

from __future__ import annotations

from .html import badge, header, repr_block, section, table
from .text import format_bytes


def consumers_text(row: dict) -> str:
    """A published tensor's consumers: 'bert x2, vit' ('-' for none)."""
    return ", ".join(f"{k} x{v}" if v > 1 else k for k, v in row["consumers"].items()) or "-"


def sharing_report_html(report) -> str:
    """Badges for the totals, the published tensors (open), the dedup groups with every tensor below."""
    pub_rows = [
        [
            r["name"],
            str(list(r["shape"])),
            r["dtype"],
            r["device"],
            format_bytes(r["device_bytes"]),
            r["owner"],
            r["refcount"],
            consumers_text(r),
            r["views"],
            format_bytes(r["saved_bytes"]),
        ]
        for r in report.entries
    ]
    pub = table(
        pub_rows,
        [
            "name",
            "shape",
            "dtype",
            "device",
            "device bytes",
            "owner",
            "holders",
            "consumers",
            "views",
            "saved",
        ],
        numeric=(4, 6, 8, 9),
    )
    groups = table(
        [
            [
                ", ".join(users),
                len(rows),
                format_bytes(sum(r["device_bytes"] for r in rows)),
                format_bytes(sum(r["saved_bytes"] for r in rows)),
            ]
            for users, rows in report.dedup_groups()
        ],
        ["shared by", "tensors", "device bytes (once)", "saved"],
        numeric=(1, 2, 3),
    )
    tensors = table(
        [
            [r["tensor"], r["kind"], r["dtype"], format_bytes(r["device_bytes"]), ", ".join(r["users"])]
            for r in report.dedup
        ],
        ["tensor", "kind", "dtype", "device bytes", "used by"],
        numeric=(3,),
    )
    body = header(
        "sharing",
        badge(f"{len(report.entries)} published"),
        badge(f"{format_bytes(report.totals.get('bytes_saved', 0))} not copied", "ok"),
        badge(f"dedup saves {format_bytes(report.dedup_bytes_saved)}", "accent"),
    )
    body += section("published tensors", pub if pub_rows else "<i>none</i>", open=True, count=len(pub_rows))
    n = len(report.dedup)
    dd = groups + section("every tensor", tensors, count=n) if report.dedup else "<i>none</i>"
    body += section("deduplicated weights", dd, open=bool(report.dedup), count=n)
    return repr_block(report.text(), body, "sharing")


__all__ = ["consumers_text", "sharing_report_html"]
