"""Benchmarks behind ``accelkit bench ...``: one module per benchmark, each with ``run(...)`` and ``main(argv)``.

``ops`` is the matmul sweep and per-op timings with references in the same process. Every speed
claim accelkit makes comes from one of these, printed as a table and saved as JSON with the command
line and the devices that produced it; ``benchmarks/RESULTS.md`` quotes those runs.
"""

from __future__ import annotations

import importlib.util
import sys
import time


class Progress:
    """Progress of a benchmark sweep of ``total`` steps, through ``accelkit.io.progress`` (a tqdm bar on a
    terminal, the progress widget in Jupyter); where no bar shows (a log, CI), a ``[i/n t s] text`` line
    on stderr per step. Call ``step(text)`` as each step starts; use as a context manager (or ``close()``).
    """

    def __init__(self, total: int, enabled: bool, desc: str = "accelkit bench", unit: str = "run") -> None:
        from ..io import progress

        self.enabled, self.total = enabled, total
        self.lines = enabled and not (sys.stderr.isatty() and importlib.util.find_spec("tqdm") is not None)
        self.t0 = time.perf_counter()
        # io.progress shows a task of at least min_total units: never, when progress is off
        self._cm = progress(total, desc, unit=unit, min_total=0 if enabled else total + 1)
        self._task = self._cm.__enter__()

    @property
    def done(self) -> int:
        return self._task.done

    def step(self, text: str) -> None:
        self._task.update(1)
        if self.lines:
            elapsed = time.perf_counter() - self.t0
            print(f"[{self.done}/{self.total} {elapsed:.0f}s] {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._cm is not None:
            cm, self._cm = self._cm, None
            cm.__exit__(None, None, None)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
