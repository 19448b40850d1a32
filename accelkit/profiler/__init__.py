"""The profiler layer: GPU timestamps and host timings per dispatch, gathered into a ``Profile``.

>>> with ak.profile() as prof:
...     model(**inputs)
>>> prof                       # a table: per-kernel GPU time, host time, calls, GPU busy share
>>> prof.save_trace("t.json")  # opens in Perfetto / chrome://tracing
>>> prof.plot()                # a timeline

Owns: ``profile`` (the context manager), ``Profile`` and ``KernelStat`` (``recording.py``), and the
timeline image (``TimelinePlot``, ``timeline_png`` in ``timeline.py``).

May import: every layer below it (``errors``, ``display``, ``backends``, ``hardware``, ...); nothing
of ``notebook``, ``bench`` or ``cli``.
"""

from __future__ import annotations

from .recording import KernelStat, Profile, profile
from .timeline import TimelinePlot, timeline_png

__all__ = ["KernelStat", "Profile", "TimelinePlot", "profile", "timeline_png"]
