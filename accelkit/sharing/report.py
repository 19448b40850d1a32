"""The sharing report: published tensors (owner, consumers, views, bytes saved) and deduplicated weights.

Text here, static HTML in ``accelkit.display.sharing``; both deterministic: no ids, no addresses, no
times of day.
"""

from __future__ import annotations

from ..display import Displayable, consumers_text, format_bytes, sharing_report_html


class SharingReport(Displayable, html=sharing_report_html):
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
            f"({format_bytes(self.totals.get('bytes_saved', 0))} not copied); "
            f"{len(self.dedup)} deduplicated weights saving {format_bytes(self.dedup_bytes_saved)} now"
        )

    def text(self, detail: bool = False) -> str:
        """The report as text; ``detail=True`` lists every deduplicated tensor, not only the totals."""
        lines = [f"sharing: {self._summary()}"]
        if self.entries:
            lines.append("published:")
            for r in self.entries:
                lines.append(
                    f"  {r['name']}  {list(r['shape'])} {r['dtype']} on {r['device']}  "
                    f"{format_bytes(r['device_bytes'])} on device  owner {r['owner']}  "
                    f"holders {r['refcount']}  consumers: {consumers_text(r)}  views {r['views']}  "
                    f"saved {format_bytes(r['saved_bytes'])}"
                )
        if self.dedup:
            lines.append("deduplicated weights (by the models sharing them):")
            for users, rows in self.dedup_groups():
                lines.append(
                    f"  {', '.join(users)}: {len(rows)} tensors, "
                    f"{format_bytes(sum(r['device_bytes'] for r in rows))} on device once, "
                    f"saved {format_bytes(sum(r['saved_bytes'] for r in rows))}"
                )
                if detail:
                    for r in rows:
                        lines.append(
                            f"    {r['tensor']} ({r['kind']}, {r['dtype']})  {format_bytes(r['device_bytes'])}"
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

    __repr__ = __str__


__all__ = ["SharingReport"]
