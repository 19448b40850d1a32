"""``accelkit tune``: run the matmul autotuner ahead of time for the bundled model presets.

For each preset (BERT-base, ViT-B/16, Whisper-base: ``bench.models.BASE_CONFIGS``) and batch size,
every distinct linear layer's shape (rows = batch x tokens, N, K, in the ``weight.T`` layout the
models use) is handed to the device's :class:`~accelkit.backends.webgpu.autotune.Autotuner`, which
times its candidates on the GPU's timestamps and writes the winners to the table beside the weight
store. Shapes already in the table are skipped unless ``--force``. Models then find their kernels in
the table at their first call instead of timing them there.

    accelkit tune [--device webgpu:0] [--model bert --model vit] [--batch 1,32] [--dtype float32,float16] [--force]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import Progress
from .models import BASE_CONFIGS, BASE_NAMES
from .sweep import plain

#: tokens per sequence the presets are tuned for: BERT at 128, ViT-B/16 at 224 px, Whisper's 30 s window
TOKENS = {"bert": 128, "vit": (224 // 16) ** 2 + 1, "whisper": 1500}


def linear_shapes(family: str, config: dict, batch: int) -> list[tuple[int, int, int]]:
    """(rows, N, K) of each distinct linear layer of a preset at ``batch`` (few-row decoder steps excluded)."""
    rows = batch * TOKENS[family]
    if family == "whisper":
        d, ff = config["d_model"], config["encoder_ffn_dim"]
        # encoder q/k/v/out (and the decoder's cross-attention k/v over the encoder output), the FFN, and
        # the conv stem as matmuls: conv2 (stride 2, kernel 3) over d channels, conv1 over 80 mel bins
        shapes = [(rows, d, d), (rows, ff, d), (rows, d, ff), (rows, d, 3 * d), (2 * rows, d, 80 * 3)]
    else:
        h, ff = config["hidden_size"], config["intermediate_size"]
        shapes = [(rows, 3 * h, h), (rows, h, h), (rows, ff, h), (rows, h, ff)]
        if family == "vit":  # patchify: (patches, 3*16*16) @ W.T
            shapes.append((batch * (TOKENS[family] - 1), h, 3 * 16 * 16))
    seen, out = set(), []
    for s in shapes:
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def run(
    device: str | None = None,
    models: Sequence[str] = ("bert", "vit", "whisper"),
    batches: Sequence[int] = (1, 32),
    dtypes: Sequence[str] = ("float32", "float16"),
    force: bool = False,
    progress: bool = True,
) -> list[dict]:
    """Tune every preset shape on ``device``; one record per shape (class, choice, GPU µs of each candidate)."""
    import accelkit as ak
    from accelkit.backends.webgpu.autotune import shape_class

    dev = ak.device(device)
    tuner = getattr(dev.backend, "autotuner", None)
    if tuner is None or not tuner.enabled:
        why = (
            "it is not a WebGPU device"
            if tuner is None
            else "it has no GPU timestamps (or is a software adapter)"
        )
        print(f"accelkit tune: nothing to tune on {dev.name}: {why}; the planner's rules apply there")
        return []
    wanted = [d for d in dtypes if d == "float32" or (d == "float16" and dev.backend.caps.f16)]
    jobs = []
    for family in models:
        for batch in batches:
            for rows, n, k in linear_shapes(family, BASE_CONFIGS[family], batch):
                for dt in wanted:
                    jobs.append((family, batch, rows, n, k, "f16" if dt == "float16" else "f32"))
    bar = Progress(len(jobs), progress, desc="accelkit tune")
    records = []
    try:
        for family, batch, rows, n, k, dt in jobs:
            cls = shape_class(rows, n, k, dt, True)
            cached = tuner.table.get(cls)
            if cached is not None and not force:
                choice, status = cached, "in table"
            else:
                choice, status = tuner.tune(rows, n, k, dt, True), "tuned"
            entry = tuner.table.entries().get(cls, {})
            records.append(
                {
                    "model": BASE_NAMES.get(family, family),
                    "batch": batch,
                    "shape": (rows, n, k),
                    "dtype": dt,
                    "class": cls,
                    "choice": choice,
                    "status": status if choice else "no timing",
                    "us": entry.get("us", {}),
                    "rule": entry.get("rule"),
                    "table": str(tuner.table.path),
                }
            )
            bar.step(f"{family} b{batch} {rows}x{n}x{k} {dt}")
    finally:
        bar.close()
    return records


def table(records: list[dict]) -> str:
    from accelkit.backends.webgpu.autotune import candidate_name

    lines = [f"autotune table: {records[0]['table']}" if records else "autotune table: -", ""]
    lines.append(
        f"{'model':16s} {'batch':>5s} {'rows x N x K':>18s} {'dtype':5s} {'chosen':24s} {'GPU µs':>8s} {'vs rule':>8s}"
    )
    for r in records:
        c = r["choice"] or {}
        name = candidate_name(c) if c else "(rules)"
        us = r["us"].get(name) if c else None
        rule = r["us"].get(r["rule"]) if r["rule"] else None
        shape = "x".join(map(str, r["shape"]))
        speed = f"{rule / us:7.2f}x" if us and rule else ""
        lines.append(
            f"{r['model']:16s} {r['batch']:5d} {shape:>18s} {r['dtype']:5s} {name:24s} "
            f"{us if us is not None else float('nan'):8.1f} {speed:>8s}  {r['status']}"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="accelkit tune", description=plain(__doc__.splitlines()[0]))
    p.add_argument("--device", default=None, help="device spec (default: the best)")
    p.add_argument("--model", action="append", choices=sorted(TOKENS), help="preset(s); default: all")
    p.add_argument("--batch", default="1,32", help="comma-separated batch sizes (default 1,32)")
    p.add_argument("--dtype", default="float32,float16", help="float32 and/or float16 (default both)")
    p.add_argument("--force", action="store_true", help="time again shapes already in the table")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``accelkit tune``."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        batches = [int(b) for b in args.batch.split(",") if b]
    except ValueError:
        build_parser().error(f"--batch: expected comma-separated integers, got {args.batch!r}")
    if not batches or min(batches) < 1:
        build_parser().error(f"--batch: expected positive integers, got {args.batch!r}")
    dtypes = [d for d in args.dtype.split(",") if d]
    if not dtypes or set(dtypes) - {"float32", "float16"}:
        build_parser().error(f"--dtype: expected float32 and/or float16, got {args.dtype!r}")
    records = run(
        args.device, args.model or sorted(TOKENS), batches, dtypes, args.force, not args.no_progress
    )
    if records:
        print(table(records))
    return 0


if __name__ == "__main__":  # python -m accelkit.bench.tune
    raise SystemExit(main())
