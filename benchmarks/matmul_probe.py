"""Matmul probe: every matmul variant checked against numpy float64, then timed at transformer shapes beside torch.

Run from the repository root with the repository on the path::

    PYTHONPATH=$PWD python3 benchmarks/matmul_probe.py [--quick] [--no-torch] [--budget SECONDS] [--final]

Without ``--final`` (the full sweep): sections 1, 2 and 3 below. With ``--final``: section 1, then
the load schemes at 4096^3 and the BERT-base batch-32 shapes in three interleaved rounds, then
``accelkit tune`` for the presets and, shape by shape, the planner's rules against the tuned choice,
then section 3 for those shapes.

1. Correctness: forced variants (each tile, split-K including more slices than K has tiles, f16
   arithmetic, gemv, every epilogue with a residual) on awkward shapes (primes, M = 1, K not a tile
   multiple), outputs poisoned with NaN first; relative error ||out - ref|| / ||ref|| against
   float64 under 1e-5 (float32) or 2e-3 (float16).
2. Timing (GPU timestamps, median per call; a split-K call is its two dispatches): 4096^3 in both
   layouts of b ("nn": b row-major (K, N); "nt": b = weight.T of an (N, K) weight, the layout of a
   linear layer), every tile, float32 and float16 (f16 and f32 arithmetic); then the linear layers
   of BERT-base / ViT-B/16 / Whisper at batch 1 and 32: every tile x split-K candidate in the nt
   layout and the planner's choice in both, float32 and float16.
3. torch on CUDA in the same process: the same products (``F.linear`` with bias; float32 with TF32
   off, and float16), CUDA events, median. CUDA is started first (0.3 s of matmuls): the attention
   probe found the GPU at 360 MHz until then; the 2026-12-03 runs of this probe did not do that yet.

Writes ``matmul_probe.json`` and ``matmul_probe.log`` under ``$OUT`` (default /tmp/matmul_probe) and
prints a summary table last.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import time
import traceback
from pathlib import Path

import numpy as np

import accelkit as ak
from accelkit.backends.webgpu import matmul as wm
from accelkit.tensor import Tensor, float16, float32

OUT = Path(os.environ.get("OUT", "/tmp/matmul_probe"))
OUT.mkdir(parents=True, exist_ok=True)
LOG = open(OUT / "matmul_probe.log", "w")
T_START = time.time()


def log(*args) -> None:
    text = " ".join(str(a) for a in args)
    print(text, flush=True)
    LOG.write(text + "\n")
    LOG.flush()


def gelu64(x):
    from math import erf, sqrt

    return 0.5 * x * (1 + np.vectorize(erf)(x / sqrt(2)))


class Problem:
    """Device operands of one product: a (batch, M, K), b (batch, K, N) in layout nn or nt, bias, residual, out."""

    def __init__(self, dev, rng, batch, m, n, k, layout, dtype, *, res=False) -> None:
        self.dev, self.dtype = dev, dtype
        self.shape = (batch, m, n, k)
        a = rng.standard_normal((batch, m, k)).astype(dtype.np)
        b = (rng.standard_normal((1, k, n)) / np.sqrt(k)).astype(dtype.np)
        self.a64, self.b64 = a.astype(np.float64), b.astype(np.float64)
        self.a = ak.tensor(a, device=dev)
        if layout == "nt":  # an (N, K) weight, used as weight.T
            w = ak.tensor(np.ascontiguousarray(b[0].T), device=dev)
            self.b = w.transpose(0, 1).unsqueeze(0)
        else:
            self.b = ak.tensor(b, device=dev)
        self.b = self.b.expand((batch, k, n))
        bias = rng.standard_normal(n).astype(dtype.np)
        self.bias64 = bias.astype(np.float64)
        self.bias = ak.tensor(bias, device=dev)
        self.res = None
        if res:
            r = rng.standard_normal((batch, m, n)).astype(dtype.np)
            self.res64 = r.astype(np.float64)
            self.res = ak.tensor(r, device=dev)
        self.out = Tensor.empty((batch, m, n), dtype, dev)

    def plan(self, act=None, **force):
        caps = self.dev.backend.caps
        return wm.plan_matmul(caps, self.a, self.b, self.out, self.bias, act, residual=self.res, **force)

    def launch(self, plan) -> None:
        h = [None if t is None else t.storage.handle for t in (self.a, self.b, self.bias, self.res, self.out)]
        wm.launch_matmul(self.dev.backend, plan, *h)

    def want(self, act=None):
        y = self.a64 @ self.b64 + self.bias64
        if act == "gelu":
            y = gelu64(y)
        if self.res is not None:
            y = y + self.res64
        return y

    def poison(self) -> None:
        n = int(np.prod(self.out.shape))
        self.dev.backend.write(self.out.storage.handle, 0, np.full(n, np.nan, dtype=self.dtype.np))

    def rel_err(self, act=None) -> float:
        got = self.out.numpy().astype(np.float64)
        want = self.want(act)
        if not np.isfinite(got).all():
            return float("inf")
        return float(np.linalg.norm(got - want) / np.linalg.norm(want))


def cuda_warm() -> dict:
    """Start CUDA through torch and keep the GPU busy for 0.3 s; nvidia-smi's clocks before and after."""

    def clocks() -> str:
        import subprocess

        try:
            q = "--query-gpu=clocks.sm,clocks.mem,pstate"
            return subprocess.run(
                ["nvidia-smi", q, "--format=csv,noheader"], capture_output=True, text=True
            ).stdout.strip()
        except OSError as exc:
            return f"no nvidia-smi: {exc}"

    before = clocks()
    try:
        import torch

        if not torch.cuda.is_available():
            return {"error": "no CUDA", "clocks": before}
        x = torch.randn(4096, 4096, device="cuda")
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 0.3:
            x = (x @ x).clamp_(-1, 1)
            torch.cuda.synchronize()
    except Exception as exc:  # noqa: BLE001 - a probe reports and goes on
        return {"error": f"{type(exc).__name__}: {exc}", "clocks": before}
    return {"clocks_before": before, "clocks_after": clocks()}


def save(results: dict) -> None:
    """Write what is measured so far (a run cut short by its time limit still leaves its JSON)."""
    (OUT / "matmul_probe.json").write_text(json.dumps(results, indent=1, default=str))


def gpu_ms(be, fn, reps: int, per_call: int, warm_s: float = 0.03):
    """(median GPU ms per call from timestamps, wall ms per call) after warm_s of back-to-back calls."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < warm_s:
        for _ in range(max(1, reps // 4)):
            fn()
        be.sync()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    be.sync()
    wall = (time.perf_counter() - t0) / reps * 1e3
    if not be.caps.timestamps:
        return None, wall
    sink: list = []
    be.listeners.append(sink)
    try:
        for _ in range(reps):
            fn()
        be.sync()
    finally:
        be.listeners.remove(sink)
    ds = [(r.gpu_end_ns - r.gpu_start_ns) / 1e6 for r in sink if r.gpu_start_ns is not None]
    calls = [sum(ds[i : i + per_call]) for i in range(0, len(ds) - per_call + 1, per_call)]
    return (float(np.median(calls)) if calls else None), wall


# ------------------------------------------------------------------------------------ shapes
def model_shapes(quick: bool):
    """(model, batch, M, N, K, epilogue): each distinct linear layer of the model at that batch."""
    if quick:
        return [("tiny", 1, 64, 96, 80, "bias"), ("tiny", 1, 64, 96, 80, "gelu")]
    out = []
    for model, tokens, d, ff in (("bert-base", 128, 768, 3072), ("vit-b16", 197, 768, 3072)):
        for batch in (1, 32):
            m = batch * tokens
            out += [
                (model, batch, m, 3 * d, d, "bias"),  # fused qkv
                (model, batch, m, d, d, "res"),  # attention output + residual
                (model, batch, m, ff, d, "gelu"),  # FFN in
                (model, batch, m, d, ff, "res"),  # FFN out + residual
            ]
    # whisper-base encoder (1500 frames, d 512, ff 2048) and the decoder's vocabulary projection
    out += [
        ("whisper-base", 1, 1500, 512, 512, "bias"),
        ("whisper-base", 1, 1500, 2048, 512, "gelu"),
        ("whisper-base", 1, 1500, 512, 2048, "res"),
        ("whisper-base", 1, 4, 51865, 512, "none"),
    ]
    return out


def candidates(caps, m, n, k, dtype, quick):
    """(tile, split, compute) forced configurations to time at one shape."""
    out = []
    itemsize = 2 if dtype is float16 else 4
    tiles = [t for t, tile in wm.TILES.items() if wm._fits(caps, tile, itemsize)]
    for t in tiles:
        tile = wm.TILES[t]
        grid = -(-m // tile.bm) * -(-n // tile.bn)
        splits = [1]
        if grid < 256 and not quick:
            splits += [s for s in (2, 3, 4, 6, 8, 12, 16) if k // s >= 64 and grid * s <= 1024]
        elif quick:
            splits += [3]
        for s in splits:
            out.append((t, s, "f16" if dtype is float16 else "f32"))
    return out


B32 = [(4096, 2304, 768), (4096, 768, 768), (4096, 3072, 768), (4096, 768, 3072)]


def final_sections(args, dev, rng, dtypes, results, timed) -> list[tuple]:
    """--final: load schemes in interleaved rounds; ``accelkit tune``; rules vs tuned per preset shape."""
    be, caps = dev.backend, dev.backend.caps
    # F1. load schemes at 4096^3 and the BERT-base batch-32 shapes, 3 interleaved rounds -------------
    s = 128 if args.quick else 4096
    configs = []
    for dt in dtypes:
        probs = {lay: Problem(dev, rng, 1, s, s, s, lay, dt) for lay in ("nn", "nt")}
        variants = [("128x128k16", "f32", "sbum")]
        if (
            dt is float16
        ):  # f16 arithmetic, opt-in (compute="f16"): half the workgroup memory, so BK = 32 fits
            variants += [("128x128k16", "f16", "su"), ("128x128k32", "f16", "su")]
        for t, compute, schemes in variants:
            if not wm._fits(caps, wm.TILES[t], 2 if compute == "f16" else 4):
                continue
            for lay in ("nn", "nt"):
                nn_schemes = "sb" if compute == "f32" else "s"
                for ld in schemes if lay == "nt" else nn_schemes:
                    force = dict(variant="tiled", tile=t, split=1, loads=ld, compute=compute)
                    configs.append(
                        (f"{dt.name} {s}^3 {lay} {t} {compute} ld{ld}", probs[lay], force, 2.0 * s**3)
                    )
        for m, n, k in B32 if not args.quick else [(64, 96, 80)]:
            probs = {lay: Problem(dev, rng, 1, m, n, k, lay, dt) for lay in ("nn", "nt")}
            for lay, schemes in (("nn", "s"), ("nt", "sum")):
                for ld in schemes:
                    configs.append(
                        (
                            f"{dt.name} {m}x{n}x{k} {lay} rule ld{ld}",
                            probs[lay],
                            dict(loads=ld),
                            2.0 * m * n * k,
                        )
                    )
    times: dict[str, list] = {name: [] for name, *_ in configs}
    labels = {}
    for _ in range(3):
        for name, pr, force, _flops in configs:
            try:
                rec = timed(pr, None, **force)
                times[name].append(rec["gpu_ms"] or rec["wall_ms"])
                labels[name] = rec["config"]
            except Exception as exc:  # noqa: BLE001 - a probe reports and goes on
                labels[name] = f"{type(exc).__name__}: {str(exc)[:200]}"
    results["loads"] = []
    for name, _pr, _force, flops in configs:
        ms = float(np.median(times[name])) if times[name] else None
        rec = dict(name=name, config=labels.get(name), ms=ms, rounds=times[name])
        rec["tflops"] = flops / ms / 1e9 if ms else None
        results["loads"].append(rec)
        log("loads", json.dumps(rec))
    save(results)
    del configs
    be.empty_cache()

    # F2. accelkit tune for the presets, then the planner's rules vs the tuned choice, shape by shape -----
    from accelkit.bench import tune

    t0 = time.time()
    if args.quick:
        jobs = [(["bert"], [1], ["float32"])]
    else:  # what fits the device time of one run: float32 for the three presets, float16 for BERT
        jobs = [(["bert", "vit"], [1, 32], ["float32"]), (["whisper"], [1], ["float32"])]
        if float16 in dtypes:
            jobs.append((["bert"], [1, 32], ["float16"]))
    recs = []
    for models, batches, names in jobs:
        recs += tune.run("webgpu", models, batches, names, force=True, progress=True)
    results["tune_s"] = time.time() - t0
    if recs:
        log(tune.table(recs))
    results["tune"] = recs
    save(results)
    results["rules_vs_tuned"] = []
    torch_shapes = [("square", 1, s, 0, 0, "none")]
    for r in recs:
        if time.time() - T_START > args.budget:
            log("budget spent: skipping rules vs tuned for", r["shape"])
            continue
        rows, n, k = r["shape"]
        dt = float16 if r["dtype"] == "f16" else float32
        pr = Problem(dev, rng, 1, rows, n, k, "nt", dt)
        rule = timed(pr, None)
        tuned = timed(pr, None, variant="tiled", **r["choice"]) if r["choice"] else rule
        rec = dict(
            model=r["model"], batch=r["batch"], shape=r["shape"], dtype=dt.name, rule=rule, tuned=tuned
        )
        results["rules_vs_tuned"].append(rec)
        log(
            f"shape {r['model']} b{r['batch']} {rows}x{n}x{k} {dt.name}: rule {rule['gpu_ms']} ms ({rule['config']}) "
            f"tuned {tuned['gpu_ms']} ms ({tuned['config']})"
        )
        save(results)
        key = (r["model"], r["batch"], rows, n, k, "bias")
        if key not in torch_shapes:
            torch_shapes.append(key)
        del pr
        be.empty_cache()
    return torch_shapes


# ------------------------------------------------------------------------------------ main
def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small shapes (a software adapter)")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--budget", type=float, default=240.0, help="seconds; later sections are skipped past it")
    ap.add_argument(
        "--final",
        action="store_true",
        help="instead of the full sweep: load schemes in interleaved rounds, then accelkit tune and rules vs tuned",
    )
    args = ap.parse_args()
    if not args.no_torch:
        results_cuda = cuda_warm()  # the GPU idles at low clocks until CUDA starts (see attention_probe.py)
        log("cuda warm-up:", results_cuda)
    dev = ak.device("webgpu")
    be = dev.backend
    caps = be.caps
    rng = np.random.default_rng(0)
    results = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "adapter": {k: str(v) for k, v in be.adapter_info.items()},
        "caps": repr(caps),
        "checks": [],
        "square": [],
        "models": [],
        "torch": [],
    }
    if not args.no_torch:
        results["cuda_warm"] = results_cuda
    log("adapter:", be.adapter_info)
    log("caps:", caps)
    dtypes = [float32, float16] if caps.f16 else [float32]

    # 1. correctness -----------------------------------------------------------------------------
    checks = [
        # (batch, M, N, K, layout, dtype, act, res, force)
        (1, 131, 67, 37, "nn", float32, "gelu", True, dict(variant="tiled", tile="128x128k16")),
        (2, 67, 131, 40, "nt", float32, None, True, dict(variant="tiled", tile="64x64k16")),
        (1, 1, 29, 13, "nt", float32, "gelu", True, dict(variant="tiled", tile="32x32")),
        (1, 130, 96, 3, "nt", float32, None, True, dict(variant="tiled", tile="64x128k16", split=4)),
        (2, 129, 257, 500, "nt", float32, "gelu", True, dict(variant="tiled", tile="128x64k16", split=5)),
        (1, 128, 768, 768, "nt", float32, None, True, {}),
        (1, 128, 3072, 768, "nt", float32, "gelu", False, {}),
        (1, 1, 1536, 384, "nt", float32, "gelu", True, {}),
        (1, 7, 333, 129, "nn", float32, None, True, {}),
        (1, 131, 67, 37, "nt", float16, "gelu", True, dict(variant="tiled", tile="64x64k16")),
        (1, 128, 768, 3072, "nt", float16, None, True, {}),
        (1, 257, 300, 1000, "nn", float16, "gelu", True, dict(variant="tiled", tile="128x128k16", split=3)),
    ]
    fails = 0
    for batch, m, n, k, layout, dt, act, res, force in checks:
        if dt not in dtypes:
            continue
        tile = force.get("tile")
        if tile is not None and not wm._fits(caps, wm.TILES[tile], dt.itemsize):
            continue
        pr = Problem(dev, rng, batch, m, n, k, layout, dt, res=res)
        pr.poison()
        try:
            plan = pr.plan(act, **force)
            pr.launch(plan)
            err = pr.rel_err(act)
            ok = err < (2e-3 if dt is float16 else 1e-5)
            label = plan.label
        except Exception as exc:  # noqa: BLE001 - a probe reports and goes on
            err, ok, label = float("nan"), False, f"ERROR {type(exc).__name__}: {str(exc)[:1500]}"
        fails += not ok
        results["checks"].append(
            dict(shape=[batch, m, n, k], layout=layout, dtype=dt.name, label=label, rel_err=err, ok=ok)
        )
        log(f"check {'ok  ' if ok else 'FAIL'} {err:.2e} {label}")
    log(f"correctness: {len(results['checks']) - fails}/{len(results['checks'])} ok")
    save(results)

    def timed(pr: Problem, act, **force) -> dict:
        plan = pr.plan(act, **force)
        per_call = 2 if plan.extra.get("splitk") else 1
        pr.launch(plan)
        be.sync()
        flops = plan.flops
        reps = int(min(100, max(10, 5e10 / max(flops, 1))))
        g, w = gpu_ms(be, lambda: pr.launch(plan), reps, per_call)
        rec = dict(label=plan.label, config=plan.extra.get("config"), gpu_ms=g, wall_ms=w)
        rec["tflops"] = flops / (g or w) / 1e9
        return rec

    torch_shapes = [("square", 1, 128 if args.quick else 4096, 0, 0, "none")] + model_shapes(args.quick)
    if args.final:
        torch_shapes = final_sections(args, dev, rng, dtypes, results, timed)
    else:
        # 2a. square ------------------------------------------------------------------------------------
        s = 128 if args.quick else 4096
        for dt in dtypes:
            for layout in ("nn", "nt"):
                pr = Problem(dev, rng, 1, s, s, s, layout, dt)
                computes = ["f16", "f32"] if dt is float16 else ["f32"]
                for compute in computes:
                    for t, tile in wm.TILES.items():
                        if not wm._fits(caps, tile, 2 if compute == "f16" else 4):
                            continue
                        try:
                            rec = timed(pr, None, variant="tiled", tile=t, split=1, compute=compute)
                            if t == "128x128k16":
                                rec["rel_err"] = pr.rel_err()
                        except Exception as exc:  # noqa: BLE001
                            rec = dict(error=f"{type(exc).__name__}: {str(exc)[:800]}")
                        rec.update(size=s, layout=layout, dtype=dt.name, tile=t, compute=compute)
                        results["square"].append(rec)
                        log("square", json.dumps(rec))
                rec = timed(pr, None)
                rec.update(size=s, layout=layout, dtype=dt.name, tile="auto", compute="auto")
                results["square"].append(rec)
                log("square", json.dumps(rec))
                del pr
                be.empty_cache()

        # 2b. model shapes ------------------------------------------------------------------------------
        for model, batch, m, n, k, epi in model_shapes(args.quick):
            if time.time() - T_START > args.budget:
                log("budget spent: skipping", model, batch, m, n, k)
                continue
            act = "gelu" if epi == "gelu" else None
            for dt in dtypes:
                for layout in ("nt", "nn"):
                    pr = Problem(dev, rng, 1, m, n, k, layout, dt, res=(epi == "res"))
                    rows = []
                    rec = timed(pr, act)
                    rec.update(tile="auto", split=0)
                    rec["rel_err"] = pr.rel_err(act)
                    rows.append(rec)
                    if layout == "nt" and min(m, n) > 8:
                        for t, sp, compute in candidates(caps, m, n, k, dt, args.quick):
                            try:
                                r = timed(pr, act, variant="tiled", tile=t, split=sp, compute=compute)
                            except Exception as exc:  # noqa: BLE001
                                r = dict(error=f"{type(exc).__name__}: {str(exc)[:300]}")
                            r.update(tile=t, split=sp)
                            rows.append(r)
                    best = min(
                        (r for r in rows if r.get("gpu_ms") or r.get("wall_ms")),
                        key=lambda r: r.get("gpu_ms") or r["wall_ms"],
                    )
                    entry = dict(
                        model=model,
                        batch=batch,
                        m=m,
                        n=n,
                        k=k,
                        epilogue=epi,
                        dtype=dt.name,
                        layout=layout,
                        rows=rows,
                        best=best,
                    )
                    results["models"].append(entry)
                    auto = rows[0]
                    log(
                        f"model {model} b{batch} {m}x{n}x{k} {epi} {dt.name} {layout}: auto {auto.get('gpu_ms')} ms "
                        f"{auto['tflops']:.1f} TF ({auto['config']}, err {auto['rel_err']:.1e}); best {best.get('gpu_ms')} ms "
                        f"{best['tflops']:.1f} TF ({best.get('config')})"
                    )
                    del pr
                    be.empty_cache()

    # 3. torch ------------------------------------------------------------------------------------
    if not args.no_torch:
        try:
            import torch
            import torch.nn.functional as F

            if torch.cuda.is_available():
                torch.backends.cuda.matmul.allow_tf32 = False
                torch.backends.cudnn.allow_tf32 = False
                results["torch_version"] = torch.__version__
                for tdt in (torch.float32, torch.float16):
                    for model, batch, m, n, k, epi in torch_shapes:
                        if model == "square":
                            n = k = m
                        x = torch.randn(m, k, device="cuda", dtype=tdt)
                        w = torch.randn(n, k, device="cuda", dtype=tdt)
                        bias = torch.randn(n, device="cuda", dtype=tdt)
                        res = torch.randn(m, n, device="cuda", dtype=tdt)

                        def fn(x=x, w=w, bias=bias, res=res, epi=epi):
                            y = F.linear(x, w, bias)
                            if epi == "gelu":
                                y = F.gelu(y)
                            elif epi == "res":
                                y = y + res
                            return y

                        for _ in range(3):
                            fn()
                        torch.cuda.synchronize()
                        flops = 2.0 * m * n * k
                        reps = int(min(100, max(10, 5e10 / flops)))
                        times = []
                        for _ in range(5):
                            e0 = torch.cuda.Event(enable_timing=True)
                            e1 = torch.cuda.Event(enable_timing=True)
                            e0.record()
                            for _ in range(reps):
                                fn()
                            e1.record()
                            torch.cuda.synchronize()
                            times.append(e0.elapsed_time(e1) / reps)
                        ms = float(np.median(times))
                        rec = dict(
                            model=model,
                            batch=batch,
                            m=m,
                            n=n,
                            k=k,
                            epilogue=epi,
                            dtype=str(tdt).split(".")[1],
                            ms=ms,
                            tflops=flops / ms / 1e9,
                        )
                        results["torch"].append(rec)
                        log("torch", json.dumps(rec))
        except Exception:  # noqa: BLE001
            log("torch failed:", traceback.format_exc())

    save(results)

    # summary -------------------------------------------------------------------------------------
    log("\n=== summary ===")
    log(f"correctness: {len(results['checks']) - fails}/{len(results['checks'])} ok")
    for r in results["checks"]:
        if not r["ok"]:
            log("  FAIL", r["label"][:400], r["rel_err"])
    log("-- square TFLOP/s (GPU)")
    for r in results["square"]:
        log(
            f"  {r['dtype']:8s} {r['layout']} {r['tile']:>11s} {r['compute']:>4s} {r.get('tflops', float('nan')):6.1f}  {r.get('config', r.get('error', ''))}"
        )
    tq = {(r["model"], r["m"], r["n"], r["k"], r["dtype"]): r for r in results["torch"]}
    log("-- model shapes: ms (GPU) auto / best-forced / torch; TFLOP/s")
    for e in results["models"]:
        t = tq.get((e["model"], e["m"], e["n"], e["k"], e["dtype"]))
        a, b = e["rows"][0], e["best"]
        log(
            f"  {e['model']:12s} b{e['batch']:<3d} {e['m']:5d}x{e['n']:5d}x{e['k']:4d} {e['epilogue']:4s} {e['dtype']:7s} {e['layout']} "
            f"auto {a.get('gpu_ms') or float('nan'):.4f} ({a['tflops']:5.1f})  best {b.get('gpu_ms') or float('nan'):.4f} ({b['tflops']:5.1f}) "
            f"{b.get('config')}  torch {t['ms'] if t else float('nan'):.4f} ({t['tflops'] if t else float('nan'):5.1f})"
        )
    if results.get("loads"):
        log("-- load schemes (median of 3 interleaved rounds, GPU ms / TFLOP/s)")
        for r in results["loads"]:
            log(
                f"  {r['name']:45s} {r['ms'] or float('nan'):8.4f} {r['tflops'] or float('nan'):6.1f}  {r['config']}"
            )
    if results.get("rules_vs_tuned"):
        tq2 = {(r["m"], r["n"], r["k"], r["dtype"]): r for r in results["torch"]}
        log("-- rules vs tuned vs torch (GPU ms; TFLOP/s)")
        for r in results["rules_vs_tuned"]:
            rows, n, k = r["shape"]
            t = tq2.get((rows, n, k, r["dtype"]))
            ru, tu = r["rule"], r["tuned"]
            log(
                f"  {r['model']:16s} b{r['batch']:<3d} {rows:5d}x{n:5d}x{k:5d} {r['dtype']:7s} rule {ru['gpu_ms'] or float('nan'):.4f} "
                f"({ru['tflops']:5.1f}) tuned {tu['gpu_ms'] or float('nan'):.4f} ({tu['tflops']:5.1f}) {tu['config']:34s} "
                f"torch {t['ms'] if t else float('nan'):.4f} ({t['tflops'] if t else float('nan'):5.1f})"
            )
        for model in ("BERT-base", "ViT-base/16 224"):
            for batch in (1, 32):
                for dt in ("float32", "float16"):
                    rows = [
                        r
                        for r in results["rules_vs_tuned"]
                        if r["model"] == model and r["batch"] == batch and r["dtype"] == dt
                    ]
                    rows = rows[:4]  # qkv, out, FFN in, FFN out (tune.linear_shapes' order)
                    if len(rows) < 4:
                        continue
                    flops = 12 * sum(2.0 * a * b * c for a, b, c in (r["shape"] for r in rows))
                    for which in ("rule", "tuned"):
                        ms = 12 * sum(r[which]["gpu_ms"] or 0 for r in rows)
                        log(
                            f"  {model} b{batch} {dt}: 12 layers x 4 linears, {which}: {ms:.3f} ms, {flops / ms / 1e9:.1f} TFLOP/s"
                        )
                    tms = [tq2.get((*r["shape"], dt)) for r in rows]
                    if all(tms):
                        ms = 12 * sum(t["ms"] for t in tms)
                        log(
                            f"  {model} b{batch} {dt}: torch F.linear: {ms:.3f} ms, {flops / ms / 1e9:.1f} TFLOP/s"
                        )
    log(f"elapsed {time.time() - T_START:.0f} s")
    return 0 if fails == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
