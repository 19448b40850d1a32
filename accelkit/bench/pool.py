"""``accelkit bench pool``: serving throughput and latency through ``accelkit.Pool``, with and without batching.

Workloads: ``bert`` (token sequences of random lengths, padded in batches), ``vit`` (images) and
``mixed`` (both models at once, requests interleaved). Each runs as ``direct`` (one thread calling
the model, no pool: the reference), then through a pool with each ``--batch-sizes`` value (1 = no
batching), with ``--threads`` threads submitting ``--requests`` requests in all. Reported: wall
time, throughput, p50/p95 latency (submit to result; for ``direct``, per call), the mean batch,
the peak device bytes above the baseline (``device.memory()``), and the largest difference from
the direct results (batched results agree to float rounding; 0 means bitwise equal).

    accelkit bench pool --device cpu --json pool.json
    accelkit bench pool --device webgpu --size base --requests 512 --batch-sizes 1,8,32
"""

from __future__ import annotations

import argparse
import gc
import threading
import time
from collections.abc import Sequence

import numpy as np

from .sharing import Checkpoints, add_common_arguments, common_options, wait
from .sweep import Progress, environment, parse, show, write_json

WORKLOADS = ("bert", "vit", "mixed")


def _requests(models: dict, workload: str, n: int, seed: int = 0) -> list[tuple[str, dict]]:
    """``n`` (model key, inputs) pairs: BERT ids of random lengths, ViT images, or both interleaved."""
    rng = np.random.default_rng(seed)
    keys = ["bert", "vit"] if workload == "mixed" else [workload]
    out = []
    for i in range(n):
        key = keys[i % len(keys)]
        cfg = models[key].config
        if key == "bert":
            top = min(cfg.max_position_embeddings, 128)
            length = int(rng.integers(max(2, top // 8), top + 1))
            ids = rng.integers(1, min(cfg.vocab_size, 512), size=(1, length))
            out.append((key, {"input_ids": ids}))
        else:
            shape = (1, cfg.num_channels, cfg.image_size, cfg.image_size)
            out.append((key, {"pixel_values": rng.standard_normal(shape).astype(np.float32)}))
    return out


def _main_output(out) -> np.ndarray:
    value = out.logits if out.logits is not None else out.last_hidden_state
    return (
        value.numpy() if hasattr(value, "numpy") and not isinstance(value, np.ndarray) else np.asarray(value)
    )


def _peak(dev, base: int) -> int:
    return dev.memory()["peak_bytes"] - base


def _baseline(dev) -> int:
    wait(dev)
    gc.collect()
    dev.reset_peak()
    return dev.memory()["allocated_bytes"]


def bench_direct(dev, models: dict, reqs: list) -> tuple[dict, list]:
    """One thread calls each model in turn: the reference results and the unpooled throughput."""
    base = _baseline(dev)
    lat, results = [], []
    t0 = time.perf_counter()
    for key, inputs in reqs:
        t1 = time.perf_counter()
        results.append(_main_output(models[key](**inputs)))
        lat.append(time.perf_counter() - t1)
    wall = time.perf_counter() - t0
    lat = np.array(lat)
    return {
        "config": "direct",
        "batch_size": None,
        "wall_s": wall,
        "throughput_rps": len(reqs) / wall,
        "p50_ms": float(np.percentile(lat, 50) * 1e3),
        "p95_ms": float(np.percentile(lat, 95) * 1e3),
        "mean_batch": 1.0,
        "peak_bytes": _peak(dev, base),
        "max_abs_diff": 0.0,
    }, results


def bench_pool(
    dev, models: dict, reqs: list, reference: list, batch_size: int, threads: int, window: float
) -> dict:
    """``threads`` threads submit ``reqs`` to one pool (max_batch_size=batch_size); compare with ``reference``."""
    import accelkit as ak

    with ak.Pool(dev, max_batch_size=batch_size, batch_window=window) as pool:  # warm-up: batched shapes
        for f in [pool.submit(models[k], **x) for k, x in reqs[: min(len(reqs), 2 * batch_size)]]:
            f.result()
    base = _baseline(dev)
    futures = [None] * len(reqs)
    with ak.Pool(dev, max_batch_size=batch_size, batch_window=window) as pool:
        start = threading.Barrier(threads + 1)

        def submit(k: int) -> None:
            start.wait()
            for i in range(k, len(reqs), threads):
                key, inputs = reqs[i]
                futures[i] = pool.submit(models[key], **inputs)

        workers = [threading.Thread(target=submit, args=(k,)) for k in range(threads)]
        for w in workers:
            w.start()
        start.wait()
        t0 = time.perf_counter()
        for w in workers:
            w.join()
        results = [_main_output(f.result()) for f in futures]
        wall = time.perf_counter() - t0
        stats = pool.stats()
    diff = max(
        float(np.abs(a - b).max()) if a.shape == b.shape else float("inf") for a, b in zip(results, reference)
    )
    return {
        "config": f"pool b={batch_size}",
        "batch_size": batch_size,
        "wall_s": wall,
        "throughput_rps": len(reqs) / wall,
        "p50_ms": stats.p50_ms,
        "p95_ms": stats.p95_ms,
        "mean_batch": stats.mean_batch_size,
        "batches": stats.batches,
        "failed": stats.failed,
        "peak_bytes": _peak(dev, base),
        "max_abs_diff": diff,
    }


def run(
    device=None,
    *,
    workloads: Sequence[str] = WORKLOADS,
    batch_sizes: Sequence[int] = (1, 8, 32),
    requests: int | None = None,
    threads: int = 8,
    size: str = "tiny",
    window: float = 0.002,
    quick: bool = False,
    json_path: str | None = None,
    progress: bool = True,
    command: str | None = None,
) -> dict:
    """Run every workload directly and through pools; returns {"env", "config", "rows", "table"}."""
    import accelkit as ak

    dev = ak.device(device)
    requests = int(requests) if requests else (64 if quick else 256)
    batch_sizes = [int(b) for b in batch_sizes]
    command = command or f"accelkit.bench.pool.run(device={dev.spec!r}, size={size!r}, quick={quick})"
    result = {
        "env": environment(command, [dev]),
        "config": {
            "size": size,
            "requests": requests,
            "threads": threads,
            "batch_sizes": batch_sizes,
            "window_s": window,
            "workloads": list(workloads),
            "quick": quick,
        },
        "rows": [],
    }
    ckpts = Checkpoints(size)
    try:
        models = {k: ak.load(ckpts(k), device=dev) for k in ("bert", "vit")}
        plan = [(w, b) for w in workloads for b in [None, *batch_sizes]]
        with Progress(len(plan), progress, f"accelkit bench pool on {dev.spec}") as bar:
            reference = {}
            for workload, b in plan:
                bar.step(f"{workload} {'direct' if b is None else f'pool b={b}'} on {dev.spec}")
                reqs = _requests(models, workload, requests)
                if b is None:
                    for key, inputs in reqs[: min(8, len(reqs))]:  # warm-up: pipelines, the buffer pool
                        models[key](**inputs)
                    row, reference[workload] = bench_direct(dev, models, reqs)
                else:
                    row = bench_pool(dev, models, reqs, reference[workload], b, threads, window)
                result["rows"].append({"workload": workload, "device": dev.spec, "requests": requests, **row})
    finally:
        ckpts.close()
        gc.collect()
    result["table"] = format_table(result)
    if json_path:
        write_json(json_path, result)
    return result


def format_table(result: dict) -> str:
    env, cfg = result["env"], result["config"]
    dev = env["devices"][0]
    lines = [
        f"accelkit bench pool on {dev['spec']} ({dev['name']}), size {cfg['size']}, {cfg['requests']} requests "
        f"from {cfg['threads']} threads, batch window {cfg['window_s'] * 1e3:g} ms, {env['date']}",
        "",
        f"{'workload':<8} {'config':<11} {'wall s':>8} {'req/s':>9} {'p50 ms':>9} {'p95 ms':>9} {'batch':>6} "
        f"{'peak MiB':>9} {'max |diff|':>11} {'vs direct':>9}",
    ]
    direct = {r["workload"]: r["throughput_rps"] for r in result["rows"] if r["config"] == "direct"}
    for r in result["rows"]:
        speed = r["throughput_rps"] / direct[r["workload"]] if r["workload"] in direct else float("nan")
        lines.append(
            f"{r['workload']:<8} {r['config']:<11} {r['wall_s']:>8.3f} {r['throughput_rps']:>9.1f} "
            f"{r['p50_ms']:>9.2f} {r['p95_ms']:>9.2f} {r['mean_batch']:>6.2f} {r['peak_bytes'] / 2**20:>9.2f} "
            f"{r['max_abs_diff']:>11.2g} {speed:>8.2f}x"
        )
    return "\n".join(lines)


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 1,8,32; got {text!r}") from None


def build_parser(prog: str = "accelkit bench pool") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    add_common_arguments(p, quick="fewer requests")
    p.add_argument("--workload", action="append", choices=WORKLOADS, help="run only these (repeatable)")
    p.add_argument(
        "--batch-sizes", type=_ints, default=[1, 8, 32], help="pool max_batch_size values, e.g. 1,8,32"
    )
    p.add_argument(
        "--requests", type=int, default=None, help="requests per run (default 256, 64 with --quick)"
    )
    p.add_argument("--threads", type=int, default=8, help="submitting threads")
    p.add_argument("--window-ms", type=float, default=2.0, help="the pool's batching window")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``accelkit bench pool`` (the CLI passes the arguments after ``pool``)."""
    args, command = parse(build_parser(), argv)
    result = run(
        workloads=args.workload or WORKLOADS,
        batch_sizes=args.batch_sizes,
        requests=args.requests,
        threads=args.threads,
        window=args.window_ms / 1e3,
        **common_options(args, command),
    )
    return show(result, args.json)


if __name__ == "__main__":  # python -m accelkit.bench.pool
    raise SystemExit(main())
