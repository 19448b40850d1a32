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

On Dask (``ak.Pool(client=...)``): ``--client SCHEDULER_ADDRESS`` uses a running cluster,
``--client local:N`` starts a local one of N worker processes (one per GPU where hardware GPUs
exist: each worker gets ``resources={"GPU": 1}``, ``CUDA_VISIBLE_DEVICES`` and ``ACCELKIT_DEVICE=webgpu:i``;
else CPU workers sharing the cores' BLAS threads). Repeat ``--client`` to compare clusters in one
run; ``--model`` names the model every worker loads (default ``tiny-random-bert``). Reported: the direct
reference, then per cluster the throughput and latency seen from the client, the mean batch, how
many requests each worker served, and the largest difference from the direct results.

    accelkit bench pool --client local:1 --client local:2 --requests 512 --json cluster.json
    accelkit bench pool --client tcp://10.0.0.5:8786 --model hf:google-bert/bert-base-uncased
"""

from __future__ import annotations

import argparse
import gc
import threading
import time
from collections.abc import Sequence

import numpy as np

from .sharing import Checkpoints, add_common_arguments, common_options, wait
from .sweep import Progress, environment, finish, parse, plain, run_options, show

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


def _submit_from_threads(pool, calls: list, threads: int) -> tuple[list, float]:
    """``threads`` threads submit ``calls`` ((model, inputs) pairs, interleaved) to ``pool`` from one start
    signal; returns each call's main output, in order, and the seconds from the start until the last."""
    futures = [None] * len(calls)
    start = threading.Barrier(threads + 1)

    def submit(k: int) -> None:
        start.wait()
        for i in range(k, len(calls), threads):
            model, inputs = calls[i]
            futures[i] = pool.submit(model, **inputs)

    workers = [threading.Thread(target=submit, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    start.wait()
    t0 = time.perf_counter()
    for w in workers:
        w.join()
    results = [_main_output(f.result()) for f in futures]
    return results, time.perf_counter() - t0


def _max_diff(results: list, reference: list) -> float:
    """The largest absolute difference from the reference outputs (inf where a shape differs)."""
    return max(
        float(np.abs(a - b).max()) if a.shape == b.shape else float("inf") for a, b in zip(results, reference)
    )


def _pooled_row(batch_size: int, n: int, wall: float, stats) -> dict:
    """What every pooled row reports: ``n`` requests served in ``wall`` s, the pool's latency and batching."""
    return {
        "batch_size": batch_size,
        "wall_s": wall,
        "throughput_rps": n / wall,
        "p50_ms": stats.p50_ms,
        "p95_ms": stats.p95_ms,
        "mean_batch": stats.mean_batch_size,
        "batches": stats.batches,
        "failed": stats.failed,
    }


def bench_pool(
    dev, models: dict, reqs: list, reference: list, batch_size: int, threads: int, window: float
) -> dict:
    """``threads`` threads submit ``reqs`` to one pool (max_batch_size=batch_size); compare with ``reference``."""
    import accelkit as ak

    with ak.Pool(dev, max_batch_size=batch_size, batch_window=window) as pool:  # warm-up: batched shapes
        for f in [pool.submit(models[k], **x) for k, x in reqs[: min(len(reqs), 2 * batch_size)]]:
            f.result()
    base = _baseline(dev)
    with ak.Pool(dev, max_batch_size=batch_size, batch_window=window) as pool:
        results, wall = _submit_from_threads(pool, [(models[key], inputs) for key, inputs in reqs], threads)
        stats = pool.stats()
    return {
        "config": f"pool b={batch_size}",
        **_pooled_row(batch_size, len(reqs), wall, stats),
        "peak_bytes": _peak(dev, base),
        "max_abs_diff": _max_diff(results, reference),
    }


def _load(requests: int | None, threads: int, window: float, quick: bool) -> dict:
    """What the clients of a pool benchmark do: ``requests`` (default 256, 64 with ``quick``) from
    ``threads`` threads, into pools batching over ``window`` s."""
    return {
        "requests": int(requests) if requests else (64 if quick else 256),
        "threads": threads,
        "window_s": window,
        "quick": quick,
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
    load = _load(requests, threads, window, quick)
    requests = load["requests"]
    batch_sizes = [int(b) for b in batch_sizes]
    command = command or f"accelkit.bench.pool.run(device={dev.spec!r}, size={size!r}, quick={quick})"
    result = {
        "env": environment(command, [dev]),
        "config": {"size": size, **load, "batch_sizes": batch_sizes, "workloads": list(workloads)},
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
    return finish(result, format_table, json_path)


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


# ---------------------------------------------------------------------------------- on Dask distributed
def _model_requests(model, n: int, seed: int = 0) -> list[dict]:
    """``n`` inputs for ``model`` (a loaded model): BERT ids of random lengths, ViT images, Whisper forwards."""
    rng = np.random.default_rng(seed)
    cfg = model.config
    kind = cfg.model_type
    out = []
    for _ in range(n):
        if kind == "bert":
            top = min(cfg.max_position_embeddings, 128)
            length = int(rng.integers(max(2, top // 8), top + 1))
            out.append({"input_ids": rng.integers(1, min(cfg.vocab_size, 512), size=(1, length))})
        elif kind == "vit":
            shape = (1, cfg.num_channels, cfg.image_size, cfg.image_size)
            out.append({"pixel_values": rng.standard_normal(shape).astype(np.float32)})
        elif kind == "whisper":
            feats = rng.standard_normal((1, cfg.num_mel_bins, 2 * cfg.max_source_positions)).astype(
                np.float32
            )
            out.append(
                {"input_features": feats, "decoder_input_ids": np.array([[cfg.decoder_start_token_id]])}
            )
        else:
            raise ValueError(f"bench pool --client: no inputs for model_type {kind!r}")
    return out


def local_cluster(n: int, device: str | None = None):
    """A LocalCluster-like SpecCluster of ``n`` single-threaded worker processes on 127.0.0.1, no dashboard.

    Where hardware GPUs exist (WebGPU adapters that are not software), worker i gets
    ``resources={"GPU": 1}``, ``CUDA_VISIBLE_DEVICES=i`` and ``ACCELKIT_DEVICE=webgpu:i`` (``webgpu`` when
    there is one adapter), unless ``device`` says otherwise. CPU workers split the machine's cores
    between their BLAS thread pools. Returns (cluster, description of each worker)."""
    import os

    from distributed import Nanny, Scheduler, SpecCluster

    gpus = _hardware_gpus() if device is None else []
    cores = os.cpu_count() or 1
    workers, described = {}, []
    for i in range(n):
        env, resources = {}, None
        if gpus:
            env["ACCELKIT_DEVICE"] = gpus[i % len(gpus)].spec if len(gpus) > 1 else "webgpu"
            env["CUDA_VISIBLE_DEVICES"] = str(i % len(gpus))
            resources = {"GPU": 1}
        else:
            env["ACCELKIT_DEVICE"] = device or "cpu"
            threads = str(max(1, cores // n))
            env.update(OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        options = {"nthreads": 1, "host": "127.0.0.1", "env": env, "dashboard_address": None}
        if resources:
            options["resources"] = resources
        workers[f"accelkit-{i}"] = {"cls": Nanny, "options": options}
        described.append({"name": f"accelkit-{i}", "env": env, "resources": resources})
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard_address": None}}
    import logging

    cluster = SpecCluster(workers=workers, scheduler=scheduler, silence_logs=logging.ERROR)
    return cluster, described


def bench_cluster(
    target: str, model: str, reqs: list, reference: list, batch_size: int, threads: int, window: float
) -> dict:
    """Start (``local:N``) or join (an address) a cluster; warm every worker; then ``threads`` threads
    submit ``reqs`` through ``Pool(client=...)``; compare with ``reference``."""
    from distributed import Client

    import accelkit as ak

    cluster, described = None, None
    if target.startswith("local"):
        n = target.partition(":")[2]
        cluster, described = local_cluster(int(n) if n else max(1, len(_hardware_gpus())))
        client = Client(cluster)
        client.wait_for_workers(len(described), timeout=300)
    else:
        client = Client(target)
    try:
        with ak.Pool(client=client, max_batch_size=batch_size, batch_window=window) as pool:
            pool.add(model, preload=True)  # every worker loads it now: the timed run measures serving
            per = max(1, len(pool.stats().workers))
            warm = [pool.submit(model, **x) for x in reqs[: min(len(reqs), 2 * batch_size * per)]]
            for f in warm:
                f.result()
        with ak.Pool(client=client, max_batch_size=batch_size, batch_window=window) as pool:
            pool.add(model, preload=True)
            results, wall = _submit_from_threads(pool, [(model, inputs) for inputs in reqs], threads)
            stats = pool.stats()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    alive = [w for w in stats.workers if w["alive"]]
    return {
        "config": f"dask {target}",
        "client": target,
        "workers": len(alive),
        "devices": sorted({w["device"] or "-" for w in alive}),
        **_pooled_row(batch_size, len(reqs), wall, stats),
        "retried": stats.retried,
        "served": {w["name"]: w["completed"] for w in alive},
        "worker_env": described,
        "max_abs_diff": _max_diff(results, reference),
    }


def _hardware_gpus() -> list:
    """The WebGPU adapters that are not software ones (a Dask worker each)."""
    import accelkit as ak

    return [d for d in ak.devices() if d.backend_name == "webgpu" and not d.is_software]


def run_clusters(
    targets: Sequence[str],
    *,
    model: str = "tiny-random-bert",
    batch_size: int = 8,
    requests: int | None = None,
    threads: int = 8,
    window: float = 0.002,
    quick: bool = False,
    json_path: str | None = None,
    progress: bool = True,
    command: str | None = None,
) -> dict:
    """The direct reference on the client's CPU, then ``model`` served through ``Pool(client=...)`` on
    each target (``local:N`` or a scheduler address); returns {"env", "config", "rows", "table"}."""
    import accelkit as ak

    load = _load(requests, threads, window, quick)
    requests = load["requests"]
    cpu = ak.device("cpu")
    command = command or f"accelkit.bench.pool.run_clusters({list(targets)!r}, model={model!r})"
    result = {
        "env": environment(command, [cpu]),
        "config": {"model": model, **load, "batch_size": batch_size, "clients": list(targets)},
        "rows": [],
    }
    reference_model = ak.load(model, device=cpu)
    reqs = _model_requests(reference_model, requests)
    for x in reqs[: min(8, len(reqs))]:
        reference_model(**x)
    bar = Progress(len(targets) + 1, progress, "accelkit bench pool --client")
    bar.step(f"{model} direct on cpu")
    row, reference = bench_direct(cpu, {"m": reference_model}, [("m", x) for x in reqs])
    result["rows"].append({**row, "client": None, "workers": 0, "devices": ["cpu"], "requests": requests})
    for target in targets:
        bar.step(f"{model} on Dask {target}")
        row = bench_cluster(target, model, reqs, reference, batch_size, threads, window)
        result["rows"].append({**row, "requests": requests})
    bar.close()
    return finish(result, format_cluster_table, json_path)


def format_cluster_table(result: dict) -> str:
    env, cfg = result["env"], result["config"]
    lines = [
        f"accelkit bench pool on Dask: {cfg['model']}, {cfg['requests']} requests from {cfg['threads']} threads, "
        f"max_batch_size {cfg['batch_size']}, batch window {cfg['window_s'] * 1e3:g} ms, {env['date']}",
        "",
        f"{'config':<22} {'workers':>7} {'device':<10} {'wall s':>8} {'req/s':>9} {'p50 ms':>9} {'p95 ms':>9} "
        f"{'batch':>6} {'served':<16} {'max |diff|':>11}",
    ]
    for r in result["rows"]:
        served = "/".join(str(v) for v in r.get("served", {}).values()) or "-"
        lines.append(
            f"{r['config']:<22} {r['workers']:>7} {','.join(r['devices']):<10} {r['wall_s']:>8.3f} "
            f"{r['throughput_rps']:>9.1f} {r['p50_ms']:>9.2f} {r['p95_ms']:>9.2f} {r['mean_batch']:>6.2f} "
            f"{served:<16} {r['max_abs_diff']:>11.2g}"
        )
    return "\n".join(lines)


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 1,8,32; got {text!r}") from None


def build_parser(prog: str = "accelkit bench pool") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=plain(__doc__.split("\n\n")[0]))
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
    p.add_argument(
        "--client",
        action="append",
        metavar="SCHEDULER_ADDRESS|local:N",
        help="serve through Pool(client=...) on this Dask cluster (repeatable); local:N starts N workers",
    )
    p.add_argument(
        "--model", default="tiny-random-bert", help="with --client: the model source the workers load"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``accelkit bench pool`` (the CLI passes the arguments after ``pool``)."""
    args, command = parse(build_parser(), argv)
    if args.client:
        result = run_clusters(
            args.client,
            model=args.model,
            batch_size=max(args.batch_sizes),
            requests=args.requests,
            threads=args.threads,
            window=args.window_ms / 1e3,
            **run_options(args, command),
        )
        return show(result, args.json)
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
