"""Benchmarks behind ``accelkit bench ...``: one module per benchmark, each with ``run(...)`` and ``main(argv)``.

``ops`` is the matmul sweep and per-op timings with references in the same process. Every speed
claim accelkit makes comes from one of these, printed as a table and saved as JSON with the command
line and the devices that produced it; ``benchmarks/RESULTS.md`` quotes those runs.
"""

from __future__ import annotations

import re
import sys
import time


def plain(doc: str) -> str:
    """``doc`` (a docstring's first paragraph) as plain text for ``--help``: no reStructuredText markup."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", doc)  # :func:`x` -> x
    return re.sub(r"``([^`]+)``", r"\1", text).strip()


class Progress:
    """Progress of a benchmark sweep: a tqdm bar on a terminal, ``[i/n t s] text`` lines in a log."""

    def __init__(self, total: int, enabled: bool, desc: str = "accelkit bench") -> None:
        self.enabled, self.done, self.total, self.bar = enabled, 0, total, None
        self.t0 = time.perf_counter()
        if enabled and sys.stderr.isatty():
            try:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, desc=desc, unit="run", file=sys.stderr)
            except ImportError:
                self.bar = None

    def step(self, text: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(1)
        else:
            elapsed = time.perf_counter() - self.t0
            print(f"[{self.done}/{self.total} {elapsed:.0f}s] {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
