"""Benchmarks behind ``accelkit bench ...``: one module per benchmark, each with ``run(...)`` and ``main(argv)``.

``ops`` is the matmul sweep and per-op timings with references in the same process. Every speed
claim accelkit makes comes from one of these, printed as a table and saved as JSON with the command
line and the devices that produced it; ``benchmarks/RESULTS.md`` quotes those runs.
"""

from __future__ import annotations
