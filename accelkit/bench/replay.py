"""``accelkit bench replay``: host time per dispatch, recorded op by op (eager) vs replayed from a plan.

A chain of ``n`` small elementwise ops (cycling relu, neg, abs, tanh, so the pipeline changes at every
dispatch, as in a model) runs on each WebGPU device, eagerly and through ``accelkit.compile``. What is
timed is the host side only: from the call until its work is submitted (the eager path's dispatches
are recorded by the op layer, then submitted; a replay writes its input, encodes every dispatch into
one pass and submits), then the device is waited for outside the timing. The per-dispatch figure is
the slope of a least-squares line through the chain lengths, so the fixed cost of a call (the input
copy, the output buffer, the submit) is reported apart, as ``call_us``.

    accelkit bench replay                       # every WebGPU device, chains of 1, 16, 92, 256
    accelkit bench replay --lengths 92 --json replay.json
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Sequence

import numpy as np

from .sweep import environment, finish, parse, plain, show

DEFAULT_LENGTHS = (1, 16, 92, 256)
DEFAULT_REPEAT = 30
OPS = ("relu", "neg", "abs", "tanh")


def _chain(ak, n: int):
    ops = [getattr(ak.ops, name) for name in OPS]

    def chain(x):
        for i in range(n):
            x = ops[i % len(ops)](x)
        return x

    return chain


def _host_us(call, submit, sync, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        out = call()
        submit()
        times.append((time.perf_counter() - t0) * 1e6)
        del out
    sync()
    return times


def _fit(lengths: list[int], medians: list[float]) -> tuple[float | None, float | None]:
    """(µs per dispatch, µs per call) of a line through (length, median µs); None with one length."""
    if len(set(lengths)) < 2:
        return None, None
    slope, intercept = np.polyfit(np.asarray(lengths, float), np.asarray(medians, float), 1)
    return float(slope), float(intercept)


def run(
    devices: Sequence | None = None,
    lengths: Sequence[int] = DEFAULT_LENGTHS,
    repeats: int = DEFAULT_REPEAT,
    json_path: str | None = None,
    command: str | None = None,
) -> dict:
    """Measure every device that replays (default: every WebGPU device); ``result["table"]`` is the text."""
    import accelkit as ak
    from accelkit.graph import compile

    if devices is None:
        devs = [d for d in ak.devices() if d.runtime.replays]
    else:
        devs = [ak.device(d) for d in ([devices] if isinstance(devices, str) else devices)]
    lengths = [int(n) for n in lengths]
    if not lengths or min(lengths) < 1:
        raise ValueError(f"lengths must be positive, got {lengths}")
    if command is None:
        command = f"accelkit.bench.replay.run(devices={[d.spec for d in devs]}, lengths={lengths}, repeats={repeats})"
    result = {
        "env": environment(command, devs),
        "config": {"lengths": lengths, "repeats": repeats, "ops": OPS},
    }
    records = []
    for dev in devs:
        be = dev.runtime
        if not be.replays:
            records.append({"target": dev.spec, "error": "this backend runs compiled calls eagerly"})
            continue
        x = ak.tensor(np.linspace(-1.0, 1.0, 256, dtype=np.float32), device=dev)
        for n in lengths:
            chain = _chain(ak, n)
            compiled = compile(chain)
            compiled(x)  # capture
            want = chain(x).numpy()
            got = compiled(x).numpy()
            eager = _host_us(lambda c=chain, x=x: c(x), be.flush, be.sync, repeats)
            replay = _host_us(lambda c=compiled, x=x: c(x), be.flush, be.sync, repeats)
            plan = compiled.plans[0]
            records.append(
                {
                    "target": dev.spec,
                    "device": dev.name,
                    "dispatches": n,
                    "replayed_equal": bool(np.array_equal(got, want)),
                    "plan_dispatches": plan.stats.dispatches,
                    "eager_us": float(np.median(eager)),
                    "replay_us": float(np.median(replay)),
                    "eager_us_per_dispatch": float(np.median(eager)) / n,
                    "replay_us_per_dispatch": float(np.median(replay)) / n,
                    "eager_times_us": eager,
                    "replay_times_us": replay,
                }
            )
            compiled.free()
            del compiled
            gc.collect()
        mine = [r for r in records if r.get("target") == dev.spec and "error" not in r]
        for kind in ("eager", "replay"):
            slope, intercept = _fit([r["dispatches"] for r in mine], [r[f"{kind}_us"] for r in mine])
            for r in mine:
                r[f"{kind}_fit_us_per_dispatch"], r[f"{kind}_fit_call_us"] = slope, intercept
    result["results"] = records
    return finish(result, format_table, json_path)


def format_table(result: dict) -> str:
    env = result["env"]
    lines = [f"accelkit bench replay  {env['date']}  ({env['command']})"]
    for d in env["devices"]:
        lines.append(f"  {d['spec']:<12} {d['name']}{' [software]' if d['is_software'] else ''}")
    lines.append("")
    lines.append(
        f"{'target':<12} {'dispatches':>10} {'eager us':>10} {'replay us':>10} {'eager us/d':>11} "
        f"{'replay us/d':>12} {'speed-up':>9} {'equal':>6}"
    )
    for r in result["results"]:
        if "error" in r:
            lines.append(f"{r['target']:<12} {r['error']}")
            continue
        lines.append(
            f"{r['target']:<12} {r['dispatches']:>10} {r['eager_us']:>10.1f} {r['replay_us']:>10.1f} "
            f"{r['eager_us_per_dispatch']:>11.2f} {r['replay_us_per_dispatch']:>12.2f} "
            f"{r['eager_us'] / r['replay_us']:>8.1f}x {'yes' if r['replayed_equal'] else 'NO':>6}"
        )
    fits = {r["target"]: r for r in result["results"] if r.get("replay_fit_us_per_dispatch") is not None}
    for target, r in fits.items():
        lines.append(
            f"  {target}: per dispatch (slope over chain lengths) eager {r['eager_fit_us_per_dispatch']:.2f} us, "
            f"replay {r['replay_fit_us_per_dispatch']:.2f} us; fixed per call eager {r['eager_fit_call_us']:.1f} us, "
            f"replay {r['replay_fit_call_us']:.1f} us"
        )
    lines.append("")
    lines.append(
        "us: median host microseconds from the call until its work is submitted (the device waited for "
        "outside the timing); eager: the op layer records each dispatch; replay: accelkit.compile's plan"
    )
    return "\n".join(lines)


def build_parser(prog: str = "accelkit bench replay") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=plain(__doc__.split("\n\n")[0]))
    p.add_argument("--device", action="append", help="device spec (repeatable); default: every WebGPU device")
    p.add_argument(
        "--lengths",
        default=",".join(str(n) for n in DEFAULT_LENGTHS),
        help="chain lengths (dispatches per call), comma list",
    )
    p.add_argument(
        "--repeat", type=int, default=DEFAULT_REPEAT, help=f"timed calls each (default {DEFAULT_REPEAT})"
    )
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``accelkit bench replay``."""
    parser = build_parser()
    args, command = parse(parser, argv)
    try:
        lengths = [int(s) for s in args.lengths.replace(",", " ").split()]
    except ValueError:
        parser.error(f"--lengths takes a comma list of ints, got {args.lengths!r}")
    if not lengths or min(lengths) < 1 or args.repeat < 1:
        parser.error("--lengths and --repeat take positive integers")
    result = run(
        devices=args.device, lengths=lengths, repeats=args.repeat, json_path=args.json, command=command
    )
    return show(result, args.json)


if __name__ == "__main__":  # python -m accelkit.bench.replay
    raise SystemExit(main())
