"""A profile's timeline as a PNG image (``%accel profile --plot`` shows it under the table)."""

from __future__ import annotations

import io


def timeline_png(p, top: int = 8, max_records: int = 5000) -> bytes | None:
    """``Profile.plot`` rendered to PNG bytes (None without matplotlib, without records, or with more
    than ``max_records`` dispatches). Uses no pyplot figure, so nothing is shown twice by the inline
    backend."""
    if not p.records or len(p.records) > max_records:
        return None
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    fig = Figure(figsize=(10, 2.6), dpi=100)
    p.plot(ax=fig.add_subplot(), top=top)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


class TimelinePlot:
    """A profile's timeline as a PNG image (``_repr_png_``) with a one-line text twin."""

    def __init__(self, p, png: bytes) -> None:
        self.text = (
            f"timeline: {len(p.records)} dispatches on {getattr(p.device, 'spec', p.device)}, "
            f"device busy {p.gpu_busy:.0%} of {p.wall_ns / 1e6:.1f} ms"
        )
        self.png = png

    def __repr__(self) -> str:
        return self.text

    def _repr_png_(self) -> bytes:
        return self.png


__all__ = ["TimelinePlot", "timeline_png"]
