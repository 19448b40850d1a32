"""The sharing report: published tensors (owner, consumers, views, bytes saved) and deduplicated weights.

Text and static HTML (through ``accelkit.notebook.reprs`` when it is there), deterministic: no ids,
no addresses, no times of day.
"""

from __future__ import annotations

from ..notebook.reprs import fmt_bytes


def _consumers(row: dict) -> str:
    return ", ".join(f"{k} x{v}" if v > 1 else k for k, v in row["consumers"].items()) or "-"


class SharingReport:
    """``entries``: one dict per published name; ``dedup``: one per deduplicated weight storage;
    ``totals``: cumulative ``views_served`` and ``bytes_saved``. Shows itself as text and HTML."""

    def __init__(self, entries: list[dict], dedup: list[dict], totals: dict) -> None:
        self.entries = entries
        self.dedup = dedup
        self.totals = dict(totals)

    @property
    def shared_bytes_saved(self) -> int:
        """Bytes of views served by the published tensors live now (what consumers did not allocate)."""
        return sum(r["saved_bytes"] for r in self.entries)

    @property
    def dedup_bytes_saved(self) -> int:
        """Device bytes deduplicated weights save now: each storage once per extra model using it."""
        return sum(r["saved_bytes"] for r in self.dedup)

    def to_dict(self) -> dict:
        return {
            "entries": [dict(r, shape=list(r["shape"])) for r in self.entries],
            "dedup": self.dedup,
            "totals": dict(
                self.totals,
                shared_bytes_saved_now=self.shared_bytes_saved,
                dedup_bytes_saved_now=self.dedup_bytes_saved,
            ),
        }

    # ------------------------------------------------------------------ text
    def _summary(self) -> str:
        return (
            f"{len(self.entries)} published, {self.totals.get('views_served', 0)} views served "
            f"({fmt_bytes(self.totals.get('bytes_saved', 0))} not copied); "
            f"{len(self.dedup)} deduplicated weights saving {fmt_bytes(self.dedup_bytes_saved)} now"
        )

    def text(self, detail: bool = False) -> str:
        """The report as text; ``detail=True`` lists every deduplicated tensor, not only the totals."""
        lines = [f"sharing: {self._summary()}"]
        if self.entries:
            lines.append("published:")
            for r in self.entries:
                lines.append(
                    f"  {r['name']}  {list(r['shape'])} {r['dtype']} on {r['device']}  "
                    f"{fmt_bytes(r['device_bytes'])} on device  owner {r['owner']}  "
                    f"holders {r['refcount']}  consumers: {_consumers(r)}  views {r['views']}  "
                    f"saved {fmt_bytes(r['saved_bytes'])}"
                )
        if self.dedup:
            lines.append("deduplicated weights (by the models sharing them):")
            for users, rows in self.dedup_groups():
                lines.append(
                    f"  {', '.join(users)}: {len(rows)} tensors, "
                    f"{fmt_bytes(sum(r['device_bytes'] for r in rows))} on device once, "
                    f"saved {fmt_bytes(sum(r['saved_bytes'] for r in rows))}"
                )
                if detail:
                    for r in rows:
                        lines.append(
                            f"    {r['tensor']} ({r['kind']}, {r['dtype']})  {fmt_bytes(r['device_bytes'])}"
                        )
        return "\n".join(lines)

    def dedup_groups(self) -> list[tuple[tuple[str, ...], list[dict]]]:
        """The dedup rows grouped by the set of models that share them, in first-seen order."""
        groups: dict[tuple[str, ...], list[dict]] = {}
        for r in self.dedup:
            groups.setdefault(tuple(r["users"]), []).append(r)
        return list(groups.items())

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return self.text()

    # ------------------------------------------------------------------ html
    def _repr_html_(self) -> str | None:
        try:
            from ..notebook import reprs
            from ..notebook.options import html_enabled
        except ImportError:  # pragma: no cover - the notebook layer is optional
            import html

            return f"<pre>{html.escape(self.text())}</pre>"
        if not html_enabled():
            return None
        pub_rows = [
            [
                r["name"],
                str(list(r["shape"])),
                r["dtype"],
                r["device"],
                reprs.fmt_bytes(r["device_bytes"]),
                r["owner"],
                r["refcount"],
                _consumers(r),
                r["views"],
                reprs.fmt_bytes(r["saved_bytes"]),
            ]
            for r in self.entries
        ]
        pub = reprs.table(
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
        groups = reprs.table(
            [
                [
                    ", ".join(users),
                    len(rows),
                    reprs.fmt_bytes(sum(r["device_bytes"] for r in rows)),
                    reprs.fmt_bytes(sum(r["saved_bytes"] for r in rows)),
                ]
                for users, rows in self.dedup_groups()
            ],
            ["shared by", "tensors", "device bytes (once)", "saved"],
            numeric=(1, 2, 3),
        )
        tensors = reprs.table(
            [
                [
                    r["tensor"],
                    r["kind"],
                    r["dtype"],
                    reprs.fmt_bytes(r["device_bytes"]),
                    ", ".join(r["users"]),
                ]
                for r in self.dedup
            ],
            ["tensor", "kind", "dtype", "device bytes", "used by"],
            numeric=(3,),
        )
        body = reprs.header(
            "sharing",
            reprs.badge(f"{len(self.entries)} published"),
            reprs.badge(f"{reprs.fmt_bytes(self.totals.get('bytes_saved', 0))} not copied", "ok"),
            reprs.badge(f"dedup saves {reprs.fmt_bytes(self.dedup_bytes_saved)}", "accent"),
        )
        body += reprs.section(
            "published tensors", pub if pub_rows else "<i>none</i>", open=True, count=len(pub_rows)
        )
        dd = (
            groups + reprs.section("every tensor", tensors, count=len(self.dedup))
            if self.dedup
            else "<i>none</i>"
        )
        body += reprs.section("deduplicated weights", dd, open=bool(self.dedup), count=len(self.dedup))
        return reprs.repr_block(self.text(), body, "sharing")

    def _repr_mimebundle_(self, include=None, exclude=None):
        try:
            from ..notebook.reprs import mimebundle
        except ImportError:  # pragma: no cover
            return None
        return mimebundle(self, include, exclude)


__all__ = ["SharingReport"]
