"""Matmul autotuning: time the candidate kernels once per shape class on the GPU, keep the winner on disk.

At the first matmul of a (shape class, dtype, adapter, driver) the WebGPU backend asks
:meth:`Autotuner.choose`; on a miss, a handful of candidate configurations (tile, split-K,
load scheme, naga's run-time checks on or off; see ``candidates``) run on scratch operands of that shape, each timed by the GPU's
own timestamps (a few dispatches: a few ms of GPU time, plus compiling each candidate once), and
the fastest is kept in a small JSON table beside the weight store (``$ACCELKIT_CACHE`` or the user
cache directory, ``autotune.json``). Later calls, and later processes, look it up.

The table is one JSON object::

    {"format": 1, "kernels": "<hash of the matmul WGSL and planner>",
     "devices": {"<adapter | driver | backend>": {"<shape class>":
                 {"tile": ..., "split": ..., "loads": ..., "checks": ...}}}}

A GPU that sat idle runs at a fraction of its clock until it has been busy for some milliseconds
(an H200 read 345 MHz before a run, and a sweep timed at that clock kept a 32x64 tile at 4096^3
where 128x128 is 1.7x faster). So ``tune`` first keeps the device busy with the rule's candidate
for ``WARM_MS`` of GPU time, times every candidate once, then times the fastest few and the rule
again in reverse order and scores each by its better run; the rule is kept unless another
candidate beats it by ``MARGIN``, so noise does not swap a kernel for an equal one.

Writes are atomic (a temporary file in the same directory, then ``os.replace``). A table that is
not valid JSON or not of this form, or was made for other kernel sources, is ignored with one
warning and rebuilt; entries for this adapter under another driver version are dropped with a
warning. Without timestamps (or on a software adapter, or with ``ACCELKIT_AUTOTUNE=0``) nothing
is timed and the planner's rules decide.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from ...cache_dir import cache_root
from ...errors import AccelkitError
from .matmul import (
    F16_ARITHMETIC,
    LOADS,
    MAX_SPLIT,
    SCHEME_CHECKS,
    TILES,
    _fits,
    pick_split,
    pick_tile,
    scheme_checks,
)
from .wgsl import Caps, expanded_source

FORMAT = 1
TABLE_NAME = "autotune.json"
ENV_SWITCH = "ACCELKIT_AUTOTUNE"
REPEATS = 5  # timed dispatches per candidate (after one untimed)
WARM_MS = 30.0  # GPU time spent bringing the clocks up before a sweep
RETIME = 3  # the fastest this many candidates of the first pass are timed again, with the rule
MARGIN = 0.03  # another candidate replaces the rule only when this much faster


class AutotuneWarning(UserWarning):
    """The on-disk autotune table was unusable (corrupt, other kernels, other driver) and is rebuilt."""


def kernels_hash() -> str:
    """A hash of what decides the candidates' speed: the matmul WGSL and the planner's tile and load tables."""
    h = hashlib.sha256(expanded_source("matmul").encode())  # with the files it includes
    h.update(repr(sorted((name, tuple(vars(t).values())) for name, t in TILES.items())).encode())
    h.update(repr((LOADS, sorted(SCHEME_CHECKS))).encode())
    return h.hexdigest()[:16]


def device_key(info: dict) -> str:
    """``adapter | driver | backend`` from a wgpu adapter info dict (the driver is Vulkan's description)."""
    name = str(info.get("device", "") or "?")
    ids = f"{int(info.get('vendor_id', 0) or 0):04x}:{int(info.get('device_id', 0) or 0):04x}"
    return f"{name} [{ids}] | {info.get('description', '') or '?'} | {info.get('backend_type', '') or '?'}"


def shape_class(rows: int, n: int, k: int, dtype: str, b_k: bool) -> str:
    """Rows (batch x M) bucketed to the next power of two; N and K exact (a model has few of each)."""
    bucket = 1 << max(4, (max(rows, 1) - 1).bit_length())
    return f"{dtype} {'wT' if b_k else 'b'} M{bucket} N{n} K{k}"


def candidates(caps: Caps, rows: int, n: int, k: int, itemsize: int, b_k: bool = True) -> list[dict]:
    """The configurations worth timing at one shape: the planner's rule first, then its neighbours, each
    with naga's run-time checks as the rule has them (``scheme_checks``) and the other way round."""
    rule_tile = pick_tile(caps, 1, rows, n, itemsize, k)
    rule_split = pick_split(caps, rule_tile, 1, rows, n, k)
    names = {name for name, t in TILES.items() if t is rule_tile}
    out: list[dict] = []

    def add(tile: str, split: int, loads: str) -> None:
        if tile not in TILES or not _fits(caps, TILES[tile], itemsize):
            return
        split = max(1, min(split, MAX_SPLIT, max(1, k // 64)))
        rule_checks = scheme_checks(TILES[tile].bm, loads)
        for checks in (rule_checks, not rule_checks):
            c = {"tile": tile, "split": split, "loads": loads, "checks": checks}
            if c not in out:
                out.append(c)

    schemes = ("u", "s", "m") if b_k else ("s", "b")  # the rule's load scheme first
    for name in sorted(names):
        for loads in schemes:
            add(name, rule_split, loads)
    big = "128x128k32" if itemsize == 2 and _fits(caps, TILES["128x128k32"], 2) else "128x128k16"
    for tile in (big, "64x64k16", "128x64k16", "32x64k16"):
        t = TILES[tile]
        grid = -(-rows // t.bm) * -(-n // t.bn)
        split = pick_split(caps, t, 1, rows, n, k)
        if grid < 384:
            splits = {split, max(1, split // 2), split * 2}
        else:  # a few waves: two slices can even out the last one
            splits = {1, 2} if grid < 1152 and k >= 512 else {1}
        for s in sorted(splits):
            for loads in schemes[:2]:
                add(tile, s, loads)
    return out


def candidate_name(c: dict) -> str:
    """A candidate as the table's timings name it: ``tile/sSPLIT/LOADS``, ``+chk`` with naga's checks."""
    return f"{c['tile']}/s{c['split']}/{c['loads']}" + ("+chk" if c.get("checks") else "")


class TuneTable:
    """The JSON table on disk, for one device; loaded lazily, saved atomically after each new entry."""

    def __init__(self, path: Path, device: str) -> None:
        self.path = Path(path)
        self.device = device
        self.kernels = kernels_hash()
        self._doc: dict | None = None
        self._lock = threading.Lock()
        self._save_failed = False

    def _fresh(self) -> dict:
        return {"format": FORMAT, "kernels": self.kernels, "devices": {}}

    def _load(self) -> dict:
        if self._doc is not None:
            return self._doc
        doc = self._fresh()
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self._doc = doc
            return doc
        except OSError as exc:
            self._warn(f"cannot be read ({exc})")
            self._doc = doc
            return doc
        try:
            found = json.loads(text)
        except ValueError as exc:
            self._warn(f"is not valid JSON ({exc})")
            self._doc = doc
            return doc
        if not (
            isinstance(found, dict)
            and found.get("format") == FORMAT
            and isinstance(found.get("devices"), dict)
            and all(isinstance(v, dict) for v in found["devices"].values())
        ):
            self._warn(f"is not an accelkit autotune table of format {FORMAT}")
        elif found.get("kernels") != self.kernels:
            self._warn("was made for other matmul kernels")
        else:
            doc = found
            adapter = self.device.split(" | ")[0]
            stale = [d for d in doc["devices"] if d != self.device and d.split(" | ")[0] == adapter]
            for d in stale:
                del doc["devices"][d]
            if stale:
                self._warn(f"holds entries for this adapter under another driver ({stale[0]!r}); dropped")
        self._doc = doc
        return doc

    def _warn(self, what: str) -> None:
        warnings.warn(f"autotune table {self.path} {what}; it will be rebuilt", AutotuneWarning, stacklevel=4)

    def get(self, cls: str) -> dict | None:
        with self._lock:
            entry = self._load()["devices"].get(self.device, {}).get(cls)
        if not isinstance(entry, dict) or entry.get("tile") not in TILES:
            return None
        split, loads, checks = entry.get("split"), entry.get("loads"), entry.get("checks")
        if not (
            isinstance(split, int) and 1 <= split <= MAX_SPLIT and loads in LOADS and isinstance(checks, bool)
        ):
            return None
        return {"tile": entry["tile"], "split": split, "loads": loads, "checks": checks}

    def put(self, cls: str, choice: dict, timings: dict | None = None, rule: str | None = None) -> None:
        """Record ``choice`` for ``cls`` (with each candidate's GPU µs and which one was the planner's rule)."""
        with self._lock:
            doc = self._load()
            entry = dict(choice)
            if timings:
                entry["us"] = timings
            if rule:
                entry["rule"] = rule
            doc["devices"].setdefault(self.device, {})[cls] = entry
            self._save(doc)

    def entries(self) -> dict:
        with self._lock:
            return dict(self._load()["devices"].get(self.device, {}))

    def _save(self, doc: dict) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(doc, f, indent=1, sort_keys=True)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            if not self._save_failed:
                self._save_failed = True
                warnings.warn(
                    f"autotune table {self.path} could not be written ({exc}); results stay in memory",
                    AutotuneWarning,
                    stacklevel=4,
                )


#: measure(backend, rows, n, k, dtype, b_k, candidate) -> GPU microseconds per call, or None
Measure = Callable[..., "float | None"]
#: warm(backend, rows, n, k, dtype, b_k, candidate, ms) -> None: keep the GPU busy for about ms
Warm = Callable[..., None]


class Autotuner:
    """Chooses a matmul configuration per shape class for one WebGPU backend: table hit, or time and record."""

    def __init__(
        self,
        backend,
        path: Path | str | None = None,
        measure: Measure | None = None,
        warm: Warm | None = None,
    ) -> None:
        self.backend = backend
        caps: Caps = backend.caps
        self.enabled = (
            caps.timestamps and not caps.is_software and os.environ.get(ENV_SWITCH, "1") not in ("0", "off")
        )
        info = getattr(backend, "adapter_info", {}) or {}
        key = device_key(info)
        if getattr(backend, "shader_checks", False):  # naga's run-time checks change the timings
            key += " | shader checks"
        self.table = TuneTable(Path(path) if path is not None else cache_root() / TABLE_NAME, key)
        self.measure = measure or measure_candidate
        # a given measure (a test's) gets no warm-up unless one is given too
        self.warm = warm or (warm_gpu if measure is None else None)
        self._memo: dict[tuple, dict] = {}
        self._busy = False

    def choose(self, rows: int, n: int, k: int, dtype: str, b_k: bool, *, tune: bool = True) -> dict:
        """``plan_matmul`` keyword overrides (tile, split, loads) for this shape; {} = the planner's rules."""
        key = (rows, n, k, dtype, b_k)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        if not self.enabled or self._busy or min(rows, n) <= 8 or dtype not in ("f32", "f16"):
            return {}
        cls = shape_class(rows, n, k, dtype, b_k)
        choice = self.table.get(cls)
        if choice is None:
            if not tune:
                return {}
            choice = self.tune(rows, n, k, dtype, b_k)
            if choice is None:
                return {}
        self._memo[key] = choice
        return choice

    def tune(self, rows: int, n: int, k: int, dtype: str, b_k: bool) -> dict | None:
        """Time every candidate at this shape and record the fastest; None when nothing could be timed."""
        # tiles must fit the workgroup memory of the arithmetic the planner will use
        itemsize = 2 if dtype == "f16" and F16_ARITHMETIC else 4
        timings: dict[str, float] = {}
        cands = candidates(self.backend.caps, rows, n, k, itemsize, b_k)
        # the backend's lock for the whole sweep: another thread's dispatches would land in the timings
        lock = getattr(self.backend, "lock", None) or contextlib.nullcontext()
        with lock:
            self._busy = True
            try:
                best, best_us = self._sweep(cands, rows, n, k, dtype, b_k, timings)
            finally:
                self._busy = False
        if best is None:
            return None
        rule = cands[0]
        self.table.put(
            shape_class(rows, n, k, dtype, b_k),
            best,
            timings,
            candidate_name(rule),
        )
        return best

    def _sweep(self, cands, rows, n, k, dtype, b_k, timings: dict) -> tuple[dict | None, float]:
        """Warm up, time each candidate, re-time the fastest few and the rule; the rule wins near-ties."""

        def time_one(c: dict) -> float | None:
            try:
                us = self.measure(self.backend, rows, n, k, dtype, b_k, c)
            except AccelkitError:
                return None
            if us is None:
                return None
            key = candidate_name(c)
            best = min(float(us), timings.get(key, float("inf")))
            timings[key] = round(best, 2)
            return best

        if self.warm is not None and cands:
            with contextlib.suppress(AccelkitError):
                self.warm(self.backend, rows, n, k, dtype, b_k, cands[0], WARM_MS)
        first = {candidate_name(c): us for c in cands if (us := time_one(c)) is not None}
        timed = [c for c in cands if candidate_name(c) in first]
        if not timed:
            return None, float("inf")
        again = sorted(timed, key=lambda c: first[candidate_name(c)])[:RETIME]
        rule = cands[0] if candidate_name(cands[0]) in first else None
        if rule is not None and rule not in again:
            again.append(rule)
        for c in reversed(again):  # reverse: a clock still rising favours no one
            time_one(c)
        best = min(timed, key=lambda c: timings[candidate_name(c)])
        if (
            rule is not None
            and timings[candidate_name(best)] > (1.0 - MARGIN) * timings[candidate_name(rule)]
        ):
            best = rule
        return best, timings[candidate_name(best)]


@contextlib.contextmanager
def _scratch(backend, rows: int, n: int, k: int, dtype: str, b_k: bool, cand: dict):
    """One candidate's plan and scratch operands (a (1, rows, k) @ (1, k, n) + bias), freed after."""
    from .matmul import plan_matmul
    from .wgsl import Layout

    dt = _dtype(dtype)
    a = Layout.contiguous(dt, (1, rows, k))
    b = Layout(dt, (1, k, n), (0, 1, k) if b_k else (0, n, 1), 0)
    out = Layout.contiguous(dt, (1, rows, n))
    bias = Layout.contiguous(dt, (n,))
    plan = plan_matmul(backend.caps, a, b, out, bias, None, variant="tiled", **cand)
    size = dt.itemsize
    bufs = [backend.alloc(rows * k * size), backend.alloc(k * n * size), backend.alloc(n * size)]
    bufs.append(backend.alloc(rows * n * size))
    try:
        yield plan, bufs
    finally:
        for buf in bufs:
            backend.free(buf)


def warm_gpu(backend, rows: int, n: int, k: int, dtype: str, b_k: bool, cand: dict, ms: float) -> None:
    """Keep the GPU busy with ``cand`` for about ``ms`` of GPU time (its clocks rise), then wait."""
    from .matmul import launch_matmul

    with _scratch(backend, rows, n, k, dtype, b_k, cand) as (plan, bufs):
        launch_matmul(backend, plan, bufs[0], bufs[1], bufs[2], None, bufs[3])
        backend.sync()
        # about 0.5 TFLOP/s at the idle clock: enough launches for ms even before the clock rises
        calls = int(min(2000, max(4, ms * 1e-3 * 5e11 / max(plan.flops, 1.0))))
        for _ in range(calls):
            launch_matmul(backend, plan, bufs[0], bufs[1], bufs[2], None, bufs[3])
        backend.sync()


def measure_candidate(backend, rows: int, n: int, k: int, dtype: str, b_k: bool, cand: dict) -> float | None:
    """GPU microseconds per call of one candidate on scratch operands (median of REPEATS timed calls)."""
    from .matmul import launch_matmul

    sink: list = []
    with _scratch(backend, rows, n, k, dtype, b_k, cand) as (plan, bufs):
        per_call = 2 if plan.extra.get("splitk") else 1
        launch_matmul(backend, plan, bufs[0], bufs[1], bufs[2], None, bufs[3])
        backend.sync()
        backend.listeners.append(sink)
        try:
            for _ in range(REPEATS):
                launch_matmul(backend, plan, bufs[0], bufs[1], bufs[2], None, bufs[3])
            backend.sync()
        finally:
            backend.listeners.remove(sink)
    ds = [
        r.gpu_end_ns - r.gpu_start_ns for r in sink if r.gpu_start_ns is not None and r.gpu_end_ns is not None
    ]
    calls = sorted(sum(ds[i : i + per_call]) for i in range(0, len(ds) - per_call + 1, per_call))
    return calls[len(calls) // 2] / 1e3 if calls else None


class _DType(NamedTuple):
    """The part of a tensor dtype the planner reads (the tensor layer sits above the backends)."""

    name: str
    wgsl: str
    itemsize: int


def _dtype(name: str) -> _DType:
    return _DType("float16", "f16", 2) if name == "f16" else _DType("float32", "f32", 4)


__all__ = [
    "AutotuneWarning",
    "Autotuner",
    "TuneTable",
    "cache_root",
    "candidate_name",
    "candidates",
    "device_key",
    "kernels_hash",
    "measure_candidate",
    "shape_class",
    "warm_gpu",
]
