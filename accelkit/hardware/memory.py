"""The memory report of one or more devices (``%accel memory``): bytes allocated, at peak, cached."""

from __future__ import annotations

from ..display import Displayable, memory_report_html, memory_report_text


class MemoryReport(Displayable, text=memory_report_text, html=memory_report_html):
    """Memory of one or more devices: ``entries`` are (spec, name, ``Device.memory()``) per device."""

    def __init__(self, entries: list[tuple[str, str, dict]]) -> None:
        self.entries = entries

    @classmethod
    def of(cls, devices, reset_peak: bool = False) -> MemoryReport:
        """The memory of ``devices`` now; ``reset_peak`` then starts each device's peak afresh."""
        entries = []
        for d in devices:
            entries.append((d.spec, d.name, d.memory()))
            if reset_peak:
                d.reset_peak()
        return cls(entries)


__all__ = ["MemoryReport"]
