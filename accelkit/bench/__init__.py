"""Benchmarks behind ``accelkit bench ...``: one module per benchmark, each with ``run(...)`` and ``main(argv)``.

``ops`` is the matmul sweep and per-op timings with references in the same process. Every speed
claim accelkit makes comes from one of these, printed as a table and saved as JSON with the command
line and the devices that produced it; ``benchmarks/RESULTS.md`` quotes those runs. ``presets`` holds the
model sizes they run at, ``sweep`` what every benchmark run shares (progress, environment, command line,
JSON and table output).
"""

from .sweep import Progress

__all__ = ["Progress"]
