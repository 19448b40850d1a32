"""Profiles: GPU timestamp queries and host timings per dispatch, gathered into a Profile.

>>> with ak.profile() as prof:
...     model(**inputs)
>>> prof                       # a table: per-kernel GPU time, host time, calls, GPU busy share
>>> prof.save_trace("t.json")  # opens in Perfetto / chrome://tracing
>>> prof.plot()                # a timeline

On WebGPU each dispatch runs in its own compute pass with timestamp writes while a profile is
listening (when the adapter offers ``timestamp-query``); on the CPU backend each op is timed on
the host, which is where it runs.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from ..backends.base import TimedDispatch
from ..display import Displayable, html_enabled, profile_html, profile_text
from ..errors import InputError
from ..hardware import device as pick_device


@dataclass
class KernelStat:
    """Totals for one kernel (by label family)."""

    kernel: str
    calls: int = 0
    gpu_ns: int = 0
    host_ns: int = 0
    flops: float = 0.0

    @property
    def gpu_ms(self) -> float:
        return self.gpu_ns / 1e6

    @property
    def host_ms(self) -> float:
        return self.host_ns / 1e6


class Profile(Displayable, text=profile_text, html=profile_html):
    """What ran while profiling: every dispatch with its host and device time, and summaries."""

    def __init__(self, device, records: list[TimedDispatch], wall_ns: int, label: str = "") -> None:
        self.device = device
        self.records = list(records)
        self.wall_ns = int(wall_ns)
        self.label = label

    # ------------------------------------------------------------------ summaries
    @property
    def has_gpu_times(self) -> bool:
        return any(r.gpu_start_ns is not None for r in self.records)

    @property
    def gpu_ns(self) -> int:
        return sum((r.gpu_end_ns - r.gpu_start_ns) for r in self.records if r.gpu_start_ns is not None)

    @property
    def host_ns(self) -> int:
        return sum(r.host_dur_ns for r in self.records)

    @property
    def gpu_busy(self) -> float:
        """Share of the profiled wall time that the device spent running kernels (0..1)."""
        return min(1.0, self.gpu_ns / self.wall_ns) if self.wall_ns else 0.0

    def kernels(self) -> list[KernelStat]:
        """Per-kernel totals, most device time first."""
        stats: OrderedDict[str, KernelStat] = OrderedDict()
        for r in self.records:
            s = stats.setdefault(r.kernel, KernelStat(r.kernel))
            s.calls += 1
            s.host_ns += r.host_dur_ns
            s.flops += r.flops
            if r.gpu_start_ns is not None:
                s.gpu_ns += r.gpu_end_ns - r.gpu_start_ns
        return sorted(stats.values(), key=lambda s: (s.gpu_ns, s.host_ns), reverse=True)

    def summary(self) -> dict:
        return {
            "device": getattr(self.device, "spec", str(self.device)),
            "dispatches": len(self.records),
            "wall_ms": self.wall_ns / 1e6,
            "gpu_ms": self.gpu_ns / 1e6,
            "host_ms": self.host_ns / 1e6,
            "gpu_busy": self.gpu_busy,
            "gpu_timestamps": self.has_gpu_times,
            "kernels": [
                {
                    "kernel": s.kernel,
                    "calls": s.calls,
                    "gpu_ms": s.gpu_ms,
                    "host_ms": s.host_ms,
                    "flops": s.flops,
                }
                for s in self.kernels()
            ],
        }

    def table(self, top: int | None = 15) -> str:
        """A text table of the top kernels by device time (``top=None``: every kernel)."""
        return profile_text(self, top or 0)

    def show(self, top: int | None = None) -> None:
        """Display the profile with its ``top`` kernels (None: the display default): as HTML in a
        notebook, as the text table elsewhere. ``prof.show(top=5)``."""
        if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 0):
            raise InputError(f"top must be an int >= 0 (0: every kernel), got {top!r}")
        shown = _ProfileShown(self, top)
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            get_ipython = None
        if get_ipython is not None and get_ipython() is not None:
            display(shown)
        else:
            print(repr(shown))

    # ------------------------------------------------------------------ exports
    def trace_events(self) -> list[dict]:
        """Chrome trace events (microseconds): a host lane and, with timestamps, a device lane."""
        events = [
            {"name": "process_name", "ph": "M", "pid": 0, "args": {"name": f"accelkit {self.label}".strip()}},
            {"name": "thread_name", "ph": "M", "pid": 0, "tid": 0, "args": {"name": "host (recording)"}},
            {"name": "thread_name", "ph": "M", "pid": 0, "tid": 1, "args": {"name": "device"}},
        ]
        if not self.records:
            return events
        h0 = min(r.host_ns for r in self.records)
        gpu = [r for r in self.records if r.gpu_start_ns is not None]
        g0 = min((r.gpu_start_ns for r in gpu), default=0)
        for r in self.records:
            args = {"kernel": r.kernel, "workgroups": list(r.workgroups), "flops": r.flops}
            events.append(
                {
                    "name": r.label,
                    "cat": "host",
                    "ph": "X",
                    "pid": 0,
                    "tid": 0,
                    "ts": (r.host_ns - h0) / 1e3,
                    "dur": max(r.host_dur_ns, 1) / 1e3,
                    "args": args,
                }
            )
            if r.gpu_start_ns is not None:
                events.append(
                    {
                        "name": r.label,
                        "cat": "device",
                        "ph": "X",
                        "pid": 0,
                        "tid": 1,
                        "ts": (r.gpu_start_ns - g0) / 1e3,
                        "dur": max(r.gpu_end_ns - r.gpu_start_ns, 1) / 1e3,
                        "args": args,
                    }
                )
        return events

    def save_trace(self, path) -> str:
        """Write a trace file that Perfetto and chrome://tracing open; returns the path."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(
            json.dumps({"traceEvents": self.trace_events(), "displayTimeUnit": "ms"}), encoding="utf-8"
        )
        tmp.replace(path)
        return str(path)

    def plot(self, ax=None, top: int = 8):
        """A timeline of device (and host) time per dispatch, coloured by kernel; returns the matplotlib Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(10, 2.6))
        ks = [k.kernel for k in self.kernels()[:top]]
        cmap = plt.get_cmap("tab10")
        colours = {k: cmap(i % 10) for i, k in enumerate(ks)}
        gpu = [r for r in self.records if r.gpu_start_ns is not None]
        g0 = min((r.gpu_start_ns for r in gpu), default=0)
        h0 = min((r.host_ns for r in self.records), default=0)
        for r in self.records:
            c = colours.get(r.kernel, (0.6, 0.6, 0.6, 1.0))
            ax.broken_barh([((r.host_ns - h0) / 1e6, max(r.host_dur_ns, 1) / 1e6)], (0.6, 0.8), color=c)
            if r.gpu_start_ns is not None:
                ax.broken_barh(
                    [((r.gpu_start_ns - g0) / 1e6, max(r.gpu_end_ns - r.gpu_start_ns, 1) / 1e6)],
                    (1.6, 0.8),
                    color=c,
                )
        ax.set_yticks([1.0, 2.0])
        ax.set_yticklabels(["host", "device"])
        ax.set_xlabel("ms since first dispatch")
        ax.set_title(
            f"{len(self.records)} dispatches on {getattr(self.device, 'spec', self.device)}"
            f" — device busy {self.gpu_busy:.0%} of {self.wall_ns / 1e6:.1f} ms"
        )
        handles = [plt.Rectangle((0, 0), 1, 1, color=colours[k]) for k in ks]
        if handles:
            ax.legend(
                handles, ks, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small", frameon=False
            )
        return ax


class _ProfileShown:
    """A profile shown with a chosen number of kernels (what ``Profile.show`` displays)."""

    def __init__(self, prof: Profile, top: int | None) -> None:
        self.prof, self.top = prof, top

    def __repr__(self) -> str:
        return profile_text(self.prof, self.top)

    def _repr_html_(self) -> str | None:
        top = max(len(self.prof.kernels()), 1) if self.top == 0 else self.top  # 0: every kernel
        return profile_html(self.prof, top) if html_enabled() else None


class profile:  # noqa: N801 - used as a context manager, like contextlib's
    """Context manager that records every dispatch on ``device`` (default: the current best) into a Profile."""

    def __init__(self, device=None, label: str = "") -> None:
        self.device = pick_device(device)
        self.label = label
        self.result: Profile | None = None
        self._sink: list = []

    def __enter__(self) -> Profile:
        be = self.device.backend
        be.sync()
        prepare = getattr(be, "prepare_profiling", None)
        if prepare is not None:
            prepare()
        be.listeners.append(self._sink)
        self._t0 = time.perf_counter_ns()
        self.result = Profile(self.device, [], 0, self.label)
        return self.result

    def __exit__(self, *exc) -> None:
        be = self.device.backend
        try:
            be.sync()  # collects the GPU timestamps into the records
        finally:
            wall = time.perf_counter_ns() - self._t0
            be.listeners[:] = [s for s in be.listeners if s is not self._sink]
        self.result.records = list(self._sink)
        self.result.wall_ns = wall


__all__ = ["KernelStat", "Profile", "profile"]
