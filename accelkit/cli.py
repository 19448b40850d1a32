"""accelkit from the command line: list devices, run the demo, benchmark, manage the weight store."""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def _devices(args) -> int:
    import accelkit as ak

    devs = ak.devices()
    best = ak.device()
    if args.json:
        print(json.dumps([d.describe() for d in devs], indent=2, default=str))
        return 0
    print("accelkit devices (best first):")
    for d in devs:
        mark = "*" if d is best else " "
        soft = " [software]" if d.is_software and d.kind != "software" else ""
        print(f" {mark} {d.spec:<10} {d.kind:<12} {d.name}{soft}")
        if d.backend_name == "webgpu":
            info = d.info
            print(
                f"     backend API {info.get('backend_type', '?')}, vendor {info.get('vendor') or '?'}, "
                f"driver {info.get('description') or '?'}"
            )
            wanted = ("shader-f16", "subgroup", "timestamp-query")
            print(
                "     features: "
                + ", ".join(f"{f}={'yes' if f in d.adapter_features else 'no'}" for f in wanted)
            )
            lim = d.adapter_limits
            print(
                f"     limits: max storage binding {lim.get('max-storage-buffer-binding-size', '?')} B, "
                f"workgroup storage {lim.get('max-compute-workgroup-storage-size', '?')} B, "
                f"invocations {lim.get('max-compute-invocations-per-workgroup', '?')}"
            )
        else:
            info = d.info
            print(f"     {info.get('cores')} cores, numpy {info.get('numpy')} on {info.get('blas')}")
    print(f"\nchosen: {best.spec}" + (f" ({best.fallback_reason})" if best.fallback_reason else ""))
    return 0


def _timed(fn, repeat: int = 5) -> float:
    fn()  # warm-up (pipeline compilation, caches)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _op_demo(dev) -> None:
    import accelkit as ak

    rng = np.random.default_rng(0)
    n = 256
    a_np = rng.standard_normal((n, n), dtype=np.float32)
    b_np = rng.standard_normal((n, n), dtype=np.float32)
    a, b = ak.tensor(a_np, device=dev), ak.tensor(b_np, device=dev)
    err = float(np.abs((a @ b).numpy() - a_np.astype(np.float64) @ b_np).max())
    t = _timed(lambda: (a @ b).numpy())
    print(
        f"  matmul {n}x{n}x{n}: {t * 1e3:.2f} ms ({2 * n**3 / t / 1e9:.1f} GFLOP/s incl. readback), "
        f"max error vs float64 {err:.1e}"
    )
    x = ak.tensor(rng.standard_normal((64, 768), dtype=np.float32), device=dev)
    t = _timed(lambda: ak.ops.softmax(x).numpy())
    print(f"  softmax 64x768: {t * 1e3:.2f} ms")


def _demo(args) -> int:
    import accelkit as ak

    dev = ak.device(args.device)
    print(f"accelkit {ak.__version__} demo on {dev.spec}: {dev.name}")
    if dev.fallback_reason:
        print(f"  (fallback: {dev.fallback_reason})")
    print("\nops:")
    _op_demo(dev)
    try:
        from .models.demo import run as run_models
    except ImportError:
        return 0
    print()
    return run_models(dev, quiet=False)


BENCHMARKS = {
    "ops": "matmul sweep (GFLOP/s) and per-op timings on every device, numpy/torch alongside",
    "models": "BERT/ViT/Whisper end to end vs transformers+torch on the same weights",
    "pool": "serving throughput and latency with and without batching",
    "sharing": "device memory and time with and without sharing",
    "replay": "host time per dispatch, recorded op by op (eager) vs replayed from a plan",
    "webnn": "host time per WebNN graph dispatch beside the same computation as eager op calls",
}


def _bench(args, rest) -> int:
    what = args.what
    if what is None:  # `accelkit bench` or `accelkit bench --help`
        print(_bench_help())
        return 0 if args.help else 2
    if what == "ops":
        from .bench.ops import main as bench_main
    elif what == "pool":
        from .bench.pool import main as bench_main
    elif what == "sharing":
        from .bench.sharing import main as bench_main
    elif what == "models":
        from .bench.models import main as bench_main
    elif what == "webnn":
        from .bench.webnn import main as bench_main
    elif what == "replay":
        from .bench.replay import main as bench_main
    else:  # pragma: no cover - argparse guards
        raise SystemExit(f"unknown benchmark {what!r}")
    return int(bench_main(rest) or 0)


def _cache(args) -> int:
    import datetime as _dt

    from .io.store import WeightStore

    store = WeightStore(args.root)
    if args.action == "ls":
        entries = store.ls()
        print(f"weight store {store.root}: {len(entries)} snapshots, {_mib(store.size())} on disk")
        for e in entries:
            used = _dt.datetime.fromtimestamp(e.last_used).strftime("%Y-%m-%d %H:%M") if e.last_used else "-"
            print(f"  {e.source}@{e.revision}  {len(e.files)} files  {_mib(e.bytes)}  last used {used}")
        return 0
    if args.action == "verify":
        report = store.verify()
        print(
            f"verified {report.checked} blobs ({_mib(report.bytes)}): "
            f"{len(report.bad)} bad, {len(report.evicted)} evicted"
        )
        for digest in report.bad:
            print(f"  bad: {digest}")
        for path, why in report.failed:
            print(f"  not removed: {path} ({why}); it is still there: remove it by hand")
        return 0 if report.ok else 1
    report = store.prune(keep=args.keep, dry_run=args.dry_run)
    print(f"{store.root}: {report.summary()}")
    return 0 if report.ok else 1


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def _bench_help() -> str:
    lines = [f"usage: accelkit bench {{{','.join(BENCHMARKS)}}} [options]", "", "benchmarks (JSON + table):"]
    lines += [f"  {name:<9} {text}" for name, text in BENCHMARKS.items()]
    lines += ["", "accelkit bench NAME --help lists the options of one benchmark."]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .bench.sweep import plain

    p = argparse.ArgumentParser(prog="accelkit", description=plain(__doc__))
    p.add_argument("--version", action="version", version=f"accelkit {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("devices", help="list every usable device, best first")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=_devices)
    m = sub.add_parser("demo", help="device report, a timed op demo, and the bundled models end to end")
    m.add_argument("--device", default=None, help="device spec (default: the best)")
    m.set_defaults(func=_demo)
    b = sub.add_parser(
        "bench",
        add_help=False,
        help="benchmarks: ops | models | pool | sharing | replay | webnn (JSON + table)",
    )
    b.add_argument("what", nargs="?", choices=list(BENCHMARKS))
    b.add_argument("-h", "--help", action="store_true", help=argparse.SUPPRESS)
    b.set_defaults(func=None)
    t = sub.add_parser(
        "tune",
        add_help=False,
        help="time the matmul kernels for the bundled model presets, ahead of first use",
    )
    t.set_defaults(func=None)
    c = sub.add_parser("cache", help="the content-addressed weight store: ls | verify | prune")
    c.add_argument("action", choices=["ls", "verify", "prune"])
    c.add_argument(
        "--root", default=None, help="store directory (default: ACCELKIT_CACHE or the user cache dir)"
    )
    c.add_argument("--dry-run", action="store_true")
    c.add_argument("--keep", type=int, default=None, help="prune: revisions to keep per source (most recent)")
    c.set_defaults(func=_cache)
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    from .errors import AccelkitError

    try:
        if args.command == "bench":
            if args.help and args.what is not None:
                rest = ["--help", *rest]  # the benchmark's own options
            return _bench(args, rest)
        if args.command == "tune":
            from .bench.tune import main as tune_main

            return int(tune_main(rest) or 0)
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        return int(args.func(args) or 0)
    except AccelkitError as exc:
        print(f"accelkit: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
