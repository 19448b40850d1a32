"""Attention probe: every fused-attention variant checked against numpy float64, then timed beside torch SDPA.

Run from the repository root with the repository on the path::

    PYTHONPATH=$PWD python3 benchmarks/attention_probe.py [--quick] [--base DIR] [--only NAME,...]
        [--shape B,H,TQ,TK,D[,mask][,causal][,f16] ...] [--big-order NAME,...] [--no-torch]

1. Correctness: every kernel shape (each ``TILE_CONFIGS`` entry that fits the adapter, with and
   without subgroup reductions, the decode shape and the planner's own choice) on awkward cases:
   masks (-inf, finfo.min, boolean with empty rows), causal with Tq < Tk and Tq > Tk, strided fused-qkv
   views (element loads), reversed keys, out written into a permuted view, float16. Outputs are
   poisoned with NaN first; a case passes when every element is finite where the reference is and the
   relative error ||out - ref|| / ||ref|| is under 2e-5 (float32) or 5e-3 (float16).
2. Timing: model shapes (BERT-base, Whisper encoders, decoder steps), GPU time per dispatch from
   timestamp queries (median), for the same variants (each output checked too), the planner's choice
   ("auto"), the kernel this one replaced when ``--base DIR`` holds its ``attention.wgsl`` and
   ``webgpu_attention.py`` ("base"), and torch's scaled_dot_product_attention on CUDA in float32
   (TF32 off) with each backend that accepts the inputs (CUDA events, median). ``--shape`` times every
   tile variant at the shapes given instead; ``--big-order`` sets the planner's ``BIG_TILE_ORDER`` first,
   so that "auto" shows what its large-grid rule would pick.

Writes ``attn_probe.log`` and ``attn_probe.json`` under ``$OUT`` (default /tmp/attn_probe) and prints a
short table last.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as _dt
import functools
import importlib.util
import json
import math
import os
import re
import sys
import time
import traceback
from pathlib import Path

import numpy as np

import accelkit as ak
from accelkit.backends.webgpu import attention as wa

OUT = Path(os.environ.get("OUT", "/tmp/attn_probe"))
OUT.mkdir(parents=True, exist_ok=True)
LOG = open(OUT / "attn_probe.log", "w")  # noqa: SIM115


def log(*args) -> None:
    text = " ".join(str(a) for a in args)
    print(text, flush=True)
    LOG.write(text + "\n")
    LOG.flush()


# ---------------------------------------------------------------------------------- reference
def reference(q, k, v, mask=None, causal=False, scale=None) -> np.ndarray:
    """softmax(q k^T * scale + mask [causal]) v in float64; rows with nothing to attend give zeros."""
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ np.swapaxes(k, -1, -2) * scale
    if mask is not None:
        s = s + np.asarray(mask, dtype=np.float64)
    tq, tk = s.shape[-2:]
    if causal:
        s = np.where(np.arange(tk)[None, :] <= np.arange(tq)[:, None] + (tk - tq), s, -np.inf)
    top = s.max(axis=-1, keepdims=True)
    e = np.exp(s - np.where(np.isfinite(top), top, 0.0))
    z = e.sum(axis=-1, keepdims=True)
    return np.where(z > 0, e / np.where(z > 0, z, 1.0), 0.0) @ v


def rel_err(got: np.ndarray, ref: np.ndarray) -> float:
    got = np.asarray(got, dtype=np.float64)
    if not np.isfinite(got).all():
        return float("nan")
    return float(np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30))


# ---------------------------------------------------------------------------------- the baseline
def load_base(folder: Path):
    """The replaced planner (its module and WGSL from ``folder``), renamed so its pipelines stay apart."""
    spec = importlib.util.spec_from_file_location(
        "accelkit.backends._attention_base", folder / "webgpu_attention.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    text = (folder / "attention.wgsl").read_text()

    def render(name, **values):
        out = re.sub(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}", lambda m: str(values[m.group(1)]), text)
        if "f16" in {str(x) for x in values.values()} and "enable f16;" not in out:
            out = "enable f16;\n" + out
        return out

    mod.render = render
    mod._source.cache_clear()

    def plan(caps, q, k, v, mask, out, scale, causal, **_):
        p = mod.plan_attention(caps, q, k, v, mask, out, scale, causal)
        return dataclasses.replace(p, key=("attention-base",) + tuple(p.key[1:]), label="base " + p.label)

    return plan


# ---------------------------------------------------------------------------------- device side
class Runner:
    def __init__(self, dev) -> None:
        self.dev = dev
        self.be = dev.backend
        self.caps = self.be.caps

    def tensor(self, x):
        return ak.tensor(x, device=self.dev)

    def launch(self, planner, q, k, v, mask, out, scale, causal, **kw):
        plan = planner(self.caps, q, k, v, mask, out, scale, causal, **kw)
        bufs = [t.storage.handle if t is not None else None for t in (q, k, v, mask, out)]
        self.be.launch(plan, bufs)
        return plan

    def gpu_ms(self, fn, reps: int, warm_s: float = 0.05) -> tuple[float | None, float]:
        """(median GPU ms per dispatch from timestamps, wall ms per dispatch), after ``warm_s`` seconds of
        back-to-back dispatches (an idle GPU runs at low clocks: the first shape timed came out 4x slow)."""
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < warm_s:
            for _ in range(reps):
                fn()
            self.be.sync()
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        self.be.sync()
        wall = (time.perf_counter() - t0) / reps * 1e3
        if not self.caps.timestamps:
            return None, wall
        sink: list = []
        self.be.listeners.append(sink)
        try:
            for _ in range(reps):
                fn()
            self.be.sync()
        finally:
            self.be.listeners.remove(sink)
        ds = [(r.gpu_end_ns - r.gpu_start_ns) / 1e6 for r in sink if r.gpu_start_ns is not None]
        return (float(np.median(ds)) if ds else None), wall


def variants(runner: Runner, base_plan, quick: bool, only: list[str]) -> list[tuple[str, object, dict]]:
    """(name, planner, overrides) for every kernel shape worth checking on this adapter."""
    out = [("auto", wa.plan_attention, {})]
    out += [
        (n, wa.plan_attention, {"config": n}) for n in ("decode128", "decode256", "decode512", "decode1024")
    ]
    sg = wa.subgroup_width(runner.caps)
    for name in wa.TILE_CONFIGS:
        out.append((name, wa.plan_attention, {"config": name}))
        if runner.caps.subgroups and sg >= wa.TILE_CONFIGS[name][3] > 1:
            out.append((name + "-nosg", wa.plan_attention, {"config": name, "subgroups": False}))
    if base_plan is not None:
        out.append(("base", base_plan, {}))
    if only:
        out = [x for x in out if x[0] in only or x[0] == "auto"]
    return out


def check_case(runner: Runner, planner, kw, case: dict, rng) -> dict:
    """One correctness case through one planner; returns {ok, err, label} (or an error)."""
    b, h, tq, tk, d, dv = case["shape"]
    dt = case.get("dtype", np.float32)
    causal = case.get("causal", False)
    q = rng.standard_normal((b, h, tq, d)).astype(dt)
    k = rng.standard_normal((b, h, tk, d)).astype(dt)
    v = rng.standard_normal((b, h, tk, dv)).astype(dt)
    mask = None
    if case.get("mask") is not None:
        mask = case["mask"](rng, b, h, tq, tk).astype(dt)
    ref = reference(q, k, v, mask, causal)
    layout = case.get("layout", "plain")
    if layout == "fused":  # q, k, v as views of one (B, T, 3, H, D) projection (Tq == Tk, D == Dv)
        qkv = np.stack([q, k, v], axis=2).transpose(0, 3, 2, 1, 4).copy()  # (B, T, 3, H, D)
        x = runner.tensor(qkv)
        tq_, tk_, tv_ = (x[:, :, i].permute(0, 2, 1, 3) for i in range(3))
    elif layout == "reversed":  # keys and values in reverse order (negative strides)
        tq_ = runner.tensor(q)
        tk_, tv_ = (
            runner.tensor(k[:, :, ::-1].copy())[:, :, ::-1],
            runner.tensor(v[:, :, ::-1].copy())[:, :, ::-1],
        )
    else:
        tq_, tk_, tv_ = runner.tensor(q), runner.tensor(k), runner.tensor(v)
    m_ = None
    if mask is not None:
        m_ = runner.tensor(np.ascontiguousarray(mask)).expand(b, h, tq, tk)  # broadcast dims: stride 0
    if case.get("out") == "permuted":  # heads written into a (B, T, H, Dv) tensor through its view
        base = runner.tensor(np.full((b, tq, h, dv), np.nan, dt))
        out = base.permute(0, 2, 1, 3)
    else:
        out = runner.tensor(np.full((b, h, tq, dv), np.nan, dt))
    plan = runner.launch(planner, tq_, tk_, tv_, m_, out, 1.0 / math.sqrt(d), causal, **kw)
    got = out.numpy().astype(np.float64)
    err = rel_err(got, ref)
    zero_rows_ok = bool(np.all(got[np.all(ref == 0.0, axis=-1)] == 0.0))
    tol = 5e-3 if dt == np.float16 else 2e-5
    return {"ok": bool(err < tol and zero_rows_ok), "err": err, "label": plan.label}


def _pad_mask(kind):
    def make(rng, b, h, tq, tk):
        keep = rng.random((b, 1, 1, tk)) > 0.3
        keep[0] = False  # a batch entry with nothing to attend
        if kind == "bool":
            keep = rng.random((b, 1, tq, tk)) > 0.3
            keep[0, 0, tq // 2] = False
            return np.where(keep, 0.0, -np.inf)
        return np.where(keep, 0.0, -np.inf if kind == "-inf" else np.finfo(np.float32).min)

    return make


def _bias(rng, b, h, tq, tk):
    return rng.standard_normal((1, h, tq, tk)) * 3


CASES = [
    {"name": "causal 2x3 q77 k77 d64", "shape": (2, 3, 77, 77, 64, 64), "causal": True},
    {"name": "-inf pad mask q37 k131", "shape": (2, 2, 37, 131, 64, 64), "mask": _pad_mask("-inf")},
    {"name": "finfo.min pad mask q37 k131", "shape": (2, 2, 37, 131, 64, 64), "mask": _pad_mask("finfo")},
    {
        "name": "bool mask+causal q13 k29 d16",
        "shape": (2, 3, 13, 29, 16, 16),
        "mask": _pad_mask("bool"),
        "causal": True,
    },
    {"name": "bias q7 k70 d32", "shape": (1, 2, 7, 70, 32, 32), "mask": _bias},
    {"name": "causal q131>k97 d64 (empty rows)", "shape": (1, 2, 131, 97, 64, 64), "causal": True},
    {"name": "causal q37<k53 d10/14", "shape": (1, 2, 37, 53, 10, 14), "causal": True},
    {
        "name": "fused qkv views d64 causal",
        "shape": (2, 3, 45, 45, 64, 64),
        "layout": "fused",
        "causal": True,
    },
    {"name": "fused qkv views d62", "shape": (1, 2, 45, 45, 62, 62), "layout": "fused"},
    {"name": "reversed keys d64", "shape": (1, 2, 33, 70, 64, 64), "layout": "reversed"},
    {"name": "out into permuted view", "shape": (2, 3, 29, 40, 64, 64), "out": "permuted", "causal": True},
    {"name": "decode q1 k1500", "shape": (1, 2, 1, 1500, 64, 64)},
    {"name": "decode q3 k200 causal", "shape": (1, 2, 3, 200, 64, 64), "causal": True},
    {
        "name": "f16 mask causal q50 k70",
        "shape": (2, 2, 50, 70, 64, 64),
        "dtype": np.float16,
        "mask": _pad_mask("-inf"),
        "causal": True,
    },
    {"name": "d128 q70 k90", "shape": (1, 2, 70, 90, 128, 128)},
]

# (name, (B, H, Tq, Tk, D), causal, mask?, dtype)
TIMING = [
    ("bert-base 8x12 q128", (8, 12, 128, 128, 64), False, False, np.float32),
    ("bert-base +pad mask", (8, 12, 128, 128, 64), False, True, np.float32),
    ("tiny-random-whisper enc 1x6 q1500", (1, 6, 1500, 1500, 64), False, False, np.float32),
    ("whisper-large enc 1x20 q1500", (1, 20, 1500, 1500, 64), False, False, np.float32),
    ("causal 1x12 q512", (1, 12, 512, 512, 64), True, False, np.float32),
    ("decode 1x6 q1 k1500", (1, 6, 1, 1500, 64), False, False, np.float32),
    ("decode 1x20 q1 k1500", (1, 20, 1, 1500, 64), False, False, np.float32),
    ("decode 4x20 q1 k1500", (4, 20, 1, 1500, 64), False, False, np.float32),
    ("bert-base f16", (8, 12, 128, 128, 64), False, False, np.float16),
]
QUICK_TIMING = [
    ("small 1x4 q64", (1, 4, 64, 64, 64), False, False, np.float32),
    ("decode 1x4 q1 k300", (1, 4, 1, 300, 64), False, False, np.float32),
]
# variants timed on every prefill shape (the rest are checked for correctness only)
TIMED_TILES = (
    "auto",
    "base",
    "q64k64",
    "q64k32",
    "q32k32",
    "q64k64t2",
    "q64k64x16",
    "q64k64x16u1",
    "q64k64x16t2",
    "q32k64x16",
    "q32k64x16t2",
    "q32k64x16-nosg",
    "q64k32-nosg",
    "q64k64x16t8",
    "q64k64t8",
    "q64k32t8",
    "q100k32t5",
    "q72k32t6",
    "q50k64x16t5",
    "q64k64x16s",
    "q64k64x16t8s",
    "q64k64t8s",
    "q64k32t8s",
    "q100k32t5s",
    "q72k32t6s",
)
TIMED_DECODE = ("auto", "base", "decode128", "decode256", "decode512", "decode1024", "q16k64")


# ---------------------------------------------------------------------------------- torch
def torch_times(shape, causal, masked, dtype, reps: int) -> dict:
    out: dict = {}
    try:
        import torch
        import torch.nn.functional as F
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except Exception as exc:  # no torch
        return {"error": f"{type(exc).__name__}: {exc}"}
    if not torch.cuda.is_available():
        return {"error": "no CUDA"}
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    b, h, tq, tk, d = shape
    tdt = torch.float16 if dtype == np.float16 else torch.float32
    g = torch.Generator(device="cuda").manual_seed(0)
    q = torch.randn(b, h, tq, d, device="cuda", dtype=tdt, generator=g)
    k = torch.randn(b, h, tk, d, device="cuda", dtype=tdt, generator=g)
    v = torch.randn(b, h, tk, d, device="cuda", dtype=tdt, generator=g)
    mask = None
    if masked:
        keep = torch.rand(b, 1, 1, tk, device="cuda", generator=g) > 0.2
        keep[..., 0] = True
        mask = torch.where(keep, 0.0, float("-inf")).to(tdt)
    ref = reference(
        q.double().cpu().numpy(),
        k.double().cpu().numpy(),
        v.double().cpu().numpy(),
        None if mask is None else mask.double().cpu().numpy(),
        causal,
    )
    backends = [
        ("default", None),
        ("math", SDPBackend.MATH),
        ("efficient", SDPBackend.EFFICIENT_ATTENTION),
        ("flash", SDPBackend.FLASH_ATTENTION),
        ("cudnn", SDPBackend.CUDNN_ATTENTION),
    ]
    for name, kind in backends:
        ctx = sdpa_kernel([kind]) if kind is not None else contextlib.nullcontext()
        try:
            with ctx:

                def fn():
                    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)

                y = fn()
                torch.cuda.synchronize()
                err = rel_err(y.double().cpu().numpy(), ref)
                t0 = time.perf_counter()
                while time.perf_counter() - t0 < 0.05:  # as long a warm-up as ours
                    for _ in range(reps):
                        fn()
                    torch.cuda.synchronize()
                times = []
                for _ in range(5):
                    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    e0.record()
                    for _ in range(reps):
                        fn()
                    e1.record()
                    torch.cuda.synchronize()
                    times.append(e0.elapsed_time(e1) / reps)
            out[name] = {"ms": float(np.median(times)), "err": err}
        except Exception as exc:
            out[name] = {
                "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
            }
    return out


def cuda_warm() -> dict:
    """Initialise CUDA through torch and keep the GPU busy for a moment; the device's name and clocks."""
    try:
        import torch

        if not torch.cuda.is_available():
            return {"error": "no CUDA"}
        x = torch.randn(4096, 4096, device="cuda")
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 0.3:
            x = (x @ x).clamp_(-1, 1)
            torch.cuda.synchronize()
        return {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "gpu": nvidia_smi()}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def nvidia_smi() -> str:
    """The GPU's SM and memory clocks and performance state, as nvidia-smi reads them now."""
    try:
        import subprocess

        q = "clocks.sm,clocks.mem,pstate"
        cmd = ["nvidia-smi", f"--query-gpu={q}", "--format=csv,noheader"]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception as exc:  # no nvidia-smi
        return f"{type(exc).__name__}"


# ---------------------------------------------------------------------------------- main
def parse_shape(text: str) -> tuple:
    """``B,H,TQ,TK,D[,mask][,causal][,f16]`` -> a TIMING entry (label, shape, causal, masked, dtype)."""
    words = {"mask", "causal", "f16"}
    fields = text.split(",")
    extra = set(fields[5:])
    try:
        b, h, tq, tk, d = (int(x) for x in fields[:5])
    except ValueError:
        extra.add("?")
    if extra - words:
        raise SystemExit(f"--shape {text!r}: expected B,H,TQ,TK,D (integers), then any of {sorted(words)}")
    label = f"{b}x{h} q{tq} k{tk} d{d}" + "".join(f" {w}" for w in sorted(extra))
    dtype = np.float16 if "f16" in extra else np.float32
    return (label, (b, h, tq, tk, d), "causal" in extra, "mask" in extra, dtype)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small shapes (a software adapter)")
    ap.add_argument("--base", type=Path, default=None, help="folder with the replaced kernel to time too")
    ap.add_argument("--only", default="", help="comma-separated variant names")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument(
        "--shape",
        action="append",
        default=[],
        help="time B,H,TQ,TK,D (float32, no mask) with every tile variant instead of the built-in shapes; "
        "add ',mask' for a (B, 1, 1, TK) -inf padding mask, ',causal', ',f16'; repeatable",
    )
    ap.add_argument(
        "--big-order",
        default="",
        help="comma-separated TILE_CONFIGS names for the planner's BIG_TILE_ORDER (what 'auto' runs)",
    )
    args = ap.parse_args()
    only = [x for x in args.only.split(",") if x]
    timing = QUICK_TIMING if args.quick else TIMING
    if args.shape:
        timing = [parse_shape(text) for text in args.shape]
    if args.big_order:
        order = tuple(x for x in args.big_order.split(",") if x)
        unknown = [x for x in order if x not in wa.TILE_CONFIGS]
        if unknown:
            ap.error(f"--big-order: {unknown} not in TILE_CONFIGS ({', '.join(wa.TILE_CONFIGS)})")
        wa.BIG_TILE_ORDER = order

    dev = ak.device(os.environ.get("ACCELKIT_PROBE_DEVICE", "webgpu"))
    runner = Runner(dev)
    caps = runner.caps
    import wgpu

    env = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": dev.name,
        "adapter": dict(runner.be.adapter_info),
        "caps": repr(caps),
        "subgroup_width": wa.subgroup_width(caps),
        "wgpu": wgpu.__version__,
    }
    log("env:", json.dumps(env, default=str))
    base_plan = None
    if args.base is not None and (args.base / "attention.wgsl").exists():
        base_plan = load_base(args.base)
    results: dict = {"env": env, "checks": [], "timings": [], "torch": {}}

    # 1. correctness
    rng = np.random.default_rng(int(time.time()))
    fails = 0
    for name, planner, kw in variants(runner, base_plan, args.quick, only):
        for case in CASES:
            if case.get("dtype") is np.float16 and not caps.f16:
                continue
            try:
                rec = check_case(runner, planner, kw, case, rng)
            except ak.KernelError as exc:
                if "does not fit" in str(exc):
                    continue
                rec = {"ok": False, "err": float("nan"), "label": f"KernelError: {str(exc)[:3000]}"}
            except Exception as exc:
                rec = {"ok": False, "err": float("nan"), "label": f"{type(exc).__name__}: {str(exc)[:3000]}"}
            rec.update(variant=name, case=case["name"])
            results["checks"].append(rec)
            fails += not rec["ok"]
            log(
                f"check {'ok  ' if rec['ok'] else 'FAIL'} {rec['err']:.1e} {name:14s} {case['name']:34s} {rec['label'][:200]}"
            )
    n_checks = len(results["checks"])
    log(f"correctness: {n_checks - fails}/{n_checks} ok")

    # 2. timing
    all_variants = variants(runner, base_plan, args.quick, [])
    tiles = tuple(name for name, *_ in all_variants if not name.startswith("decode"))

    def time_shape(label, shape, causal, masked, dtype, wanted, tag=""):
        b, h, tq, tk, d = shape
        flops = 2.0 * b * h * tq * tk * 2 * d * (0.5 if causal else 1.0)
        rng = np.random.default_rng(1)
        q = rng.standard_normal((b, h, tq, d)).astype(dtype)
        k = rng.standard_normal((b, h, tk, d)).astype(dtype)
        v = rng.standard_normal((b, h, tk, d)).astype(dtype)
        mask = None
        if masked:
            keep = rng.random((b, 1, 1, tk)) > 0.2
            keep[..., 0] = True
            mask = np.where(keep, 0.0, -np.inf).astype(dtype)
        ref = reference(q, k, v, mask, causal)
        tq_, tk_, tv_ = runner.tensor(q), runner.tensor(k), runner.tensor(v)
        m_ = runner.tensor(mask).expand(b, h, tq, tk) if masked else None
        out = runner.tensor(np.full((b, h, tq, d), np.nan, dtype))
        reps = int(min(100, max(10, 2e10 / flops)))
        for name, planner, kw in all_variants:
            if name not in wanted or (only and name not in only and name != "auto"):
                continue
            try:
                call = functools.partial(
                    runner.launch, planner, tq_, tk_, tv_, m_, out, 1.0 / math.sqrt(d), causal, **kw
                )
                plan = call()
                err = rel_err(out.numpy(), ref)
                gpu, wall = runner.gpu_ms(call, reps)
                rec = {
                    "shape": label,
                    "variant": name + tag,
                    "label": plan.label,
                    "gpu_ms": gpu,
                    "wall_ms": wall,
                    "tflops": flops / ((gpu or wall) * 1e-3) / 1e12,
                    "err": err,
                    "ok": bool(err < (5e-3 if dtype is np.float16 else 2e-5)),
                }
            except ak.KernelError as exc:
                if "does not fit" in str(exc):
                    continue
                rec = {"shape": label, "variant": name + tag, "error": str(exc)[:3000]}
            except Exception as exc:
                rec = {
                    "shape": label,
                    "variant": name + tag,
                    "error": f"{type(exc).__name__}: {str(exc)[:3000]}",
                }
            results["timings"].append(rec)
            log("time", json.dumps(rec))
        return reps

    if not args.no_torch:
        # The first run of this probe timed the first shape 3-4x slower than the same kernels a shape later,
        # warm-up or not, until torch had initialised CUDA in the process: time it once before ("-cold"),
        # then bring CUDA up so that both sides run with the GPU in the same state.
        label, shape, causal, masked, dtype = timing[0]
        time_shape(label, shape, causal, masked, dtype, ("auto", "base"), tag="-cold")
        results["env"]["gpu_before_cuda"] = nvidia_smi()
        results["env"]["cuda_warm"] = cuda_warm()
        log("cuda:", results["env"]["cuda_warm"])
    for label, shape, causal, masked, dtype in timing:
        if dtype is np.float16 and not caps.f16:
            continue
        if shape[2] <= wa.DECODE_MAX_TQ:
            wanted = TIMED_DECODE
        else:
            wanted = tiles if args.shape else TIMED_TILES
        reps = time_shape(label, shape, causal, masked, dtype, wanted)
        if not args.no_torch:
            results["torch"][label] = torch_times(shape, causal, masked, dtype, reps)
            log("torch", label, json.dumps(results["torch"][label]))
        (OUT / "attn_probe.json").write_text(json.dumps(results, indent=1, default=str))

    (OUT / "attn_probe.json").write_text(json.dumps(results, indent=1, default=str))

    # 3. the table
    log("\n=== summary ===")
    log(
        f"device: {dev.name} | subgroups {caps.subgroups} (width {wa.subgroup_width(caps)}) | "
        f"workgroup memory {caps.max_workgroup_storage}"
    )
    log(f"correctness: {n_checks - fails}/{n_checks} ok")
    for rec in results["checks"]:
        if not rec["ok"]:
            log(f"  FAIL {rec['variant']} / {rec['case']}: {rec['err']} {rec['label'][:300]}")
    log(
        "GPU before CUDA:", results["env"].get("gpu_before_cuda"), "| after:", results["env"].get("cuda_warm")
    )
    log(f"{'shape':30s} {'variant':12s} {'GPU ms':>8s} {'TFLOP/s':>8s} {'err':>8s}  kernel")
    for label, *_ in timing:
        rows = [r for r in results["timings"] if r["shape"] == label]
        for r in rows:
            if "error" in r:
                log(f"{label:30s} {r['variant']:12s} error: {r['error'][:100]}")
                continue
            g = r["gpu_ms"] if r["gpu_ms"] is not None else float("nan")
            log(
                f"{label:30s} {r['variant']:12s} {g:8.4f} {r['tflops']:8.2f} {r['err']:8.1e}  {r['label'][:60]}"
                + ("" if r["ok"] else "  WRONG")
            )
        tt = results["torch"].get(label, {})
        cells = " ".join(f"{n}={x['ms']:.4f}" for n, x in tt.items() if isinstance(x, dict) and "ms" in x)
        log(f"{label:30s} {'torch':12s} {cells}")
    log("\n=== auto vs torch (GPU ms) ===")
    for label, *_ in timing:
        rows = {r["variant"]: r for r in results["timings"] if r["shape"] == label and "gpu_ms" in r}
        good = [
            r
            for r in rows.values()
            if r["ok"] and r["gpu_ms"] and r["variant"] != "base" and "cold" not in r["variant"]
        ]
        best = min(good, key=lambda r: r["gpu_ms"]) if good else None
        tt = [x["ms"] for x in results["torch"].get(label, {}).values() if isinstance(x, dict) and "ms" in x]
        tbest = min(tt) if tt else float("nan")
        auto = rows.get("auto", {}).get("gpu_ms") or float("nan")
        base = rows.get("base", {}).get("gpu_ms") or float("nan")
        log(
            f"{label:30s} base {base:8.4f}  auto {auto:8.4f}  best {best['gpu_ms'] if best else float('nan'):8.4f} "
            f"({best['variant'] if best else '-'})  torch best {tbest:8.4f}  auto/torch {auto / tbest:5.2f}x"
        )
    return 1 if fails else 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except SystemExit:
        raise
    except Exception:
        log(traceback.format_exc())
        raise
