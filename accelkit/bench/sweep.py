"""What every benchmark run shares: the progress of its sweep, the environment its result records, its
command line, and its output (the table printed, the JSON written atomically)."""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np


def plain(doc: str) -> str:
    """``doc`` (a docstring's first paragraph) as plain text for ``--help``: no reStructuredText markup."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", doc)  # :func:`x` -> x
    return re.sub(r"``([^`]+)``", r"\1", text).strip()


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


def blas_name() -> str:
    """The BLAS numpy was built with (what the CPU figures depend on)."""
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        return f"{blas.get('name', '')} {blas.get('version', '')}".strip() or "BLAS"
    except Exception:  # pragma: no cover - older numpy
        return "BLAS"


def device_entry(dev) -> dict:
    """One device as a result records it."""
    info = dev.info
    entry = {
        "spec": dev.spec,
        "name": dev.name,
        "backend": dev.backend_name,
        "kind": dev.kind,
        "is_software": dev.is_software,
    }
    if dev.backend_name == "webgpu":
        entry.update(
            api=info.get("backend_type"),
            vendor=info.get("vendor"),
            driver=info.get("description"),
            timestamps="timestamp-query" in dev.adapter_features,
            f16="shader-f16" in dev.adapter_features,
        )
    else:
        entry.update(cores=info.get("cores"), blas=info.get("blas"), numpy=info.get("numpy"))
    return entry


def environment(command: str, devs) -> dict:
    """What a result records about where it ran: the date, the command line, versions, the devices."""
    import accelkit

    env = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command,
        "accelkit": accelkit.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "blas": blas_name(),
        "devices": [device_entry(d) for d in devs],
    }
    try:
        import wgpu

        env["wgpu"] = wgpu.__version__
    except Exception:  # pragma: no cover - wgpu is a dependency
        env["wgpu"] = None
    try:
        import torch

        env["torch"] = torch.__version__
    except Exception:
        env["torch"] = None
    return env


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> tuple[argparse.Namespace, str]:
    """A benchmark's arguments (``sys.argv``'s without ``argv``) and the command line that gave them."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return parser.parse_args(argv), " ".join([parser.prog, *argv])


def write_json(path: str | os.PathLike, result: dict) -> None:
    """Write ``result`` as JSON, atomically (a sweep cut short leaves the last complete file)."""
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=1, default=str)
    os.replace(tmp, path)


def run_options(args: argparse.Namespace, command: str) -> dict:
    """The ``run`` keywords of the flags every ``accelkit bench`` command has: --json, --quick,
    --no-progress, and the command line that gave them."""
    return dict(json_path=args.json, quick=args.quick, progress=not args.no_progress, command=command)


def finish(result: dict, format_table: Callable[[dict], str], json_path: str | None) -> dict:
    """The end of every ``run``: its table into ``result["table"]``, the JSON written if asked; returns ``result``."""
    result["table"] = format_table(result)
    if json_path:
        write_json(json_path, result)
    return result


def show(result: dict, json_path: str | None) -> int:
    """Print a run's table (and where its JSON went); the exit code."""
    print(result["table"])
    if json_path:
        print(f"\nresults written to {json_path}")
    return 0
