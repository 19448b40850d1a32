# ruff: noqa: E402, B023  (a device-side probe: imports after a fallback shim; lambdas are called at once)
"""H100 probe: correctness of every matmul variant vs numpy float64, then a timing sweep vs torch.

Run from the repo root (PYTHONPATH holds the repo). Writes JSON + log under $OUT; prints a short table last.
"""

import json
import math
import os
import sys
import time
import traceback
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("OUT", "/tmp/probe_out"))
OUT.mkdir(parents=True, exist_ok=True)
QUICK = "--quick" in sys.argv
ONLY = [a.split("=", 1)[1] for a in sys.argv if a.startswith("--only=")]

try:
    import accelkit  # noqa: F401
except Exception as exc:  # someone else's half-written file: load only what we need
    print("import accelkit failed, using stubs:", type(exc).__name__, exc)
    for name in list(sys.modules):
        if name == "accelkit" or name.startswith("accelkit."):
            del sys.modules[name]
    for name, sub in (("accelkit", "accelkit"), ("accelkit.tensor", "accelkit/tensor")):
        mod = types.ModuleType(name)
        mod.__path__ = [str(ROOT / sub)]
        sys.modules[name] = mod

import wgpu

from accelkit.backends.webgpu import WebGPUBackend
from accelkit.backends.webgpu import matmul as wm
from accelkit.backends.webgpu.wgsl import Layout
from accelkit.tensor.dtype import float16, float32

LOG = open(OUT / "probe.log", "w")


def log(*args):
    text = " ".join(str(a) for a in args)
    print(text, flush=True)
    LOG.write(text + "\n")
    LOG.flush()


adapters = [a for a in wgpu.gpu.enumerate_adapters_sync() if a.info.get("backend_type", "") == "Vulkan"]
adapters.sort(key=lambda a: 0 if "discrete" in str(a.info.get("adapter_type", "")).lower() else 1)
adapter = adapters[0]
be = WebGPUBackend(adapter)
info = dict(adapter.info)
log("adapter:", info)
log("features:", sorted(be.features))
log("caps:", be.caps)
env = {"adapter": info, "features": sorted(be.features), "caps": repr(be.caps), "wgpu": wgpu.__version__}

rng = np.random.default_rng(0)
_sync_buf = be.alloc(4)


def sync():
    """WebGPUBackend.sync() fails on wgpu 0.32 (on_submitted_work_done_sync); a read waits as well."""
    be.read(_sync_buf, 0, 4)


class Mat:
    """A device matrix: buffer + Layout (batch, rows, cols) and its float64 host value."""

    def __init__(self, value64, dtype, transposed=False, batch_stride0=False):
        self.dtype = dtype
        host = value64.astype(dtype.np)
        self.ref = host.astype(np.float64)
        store = np.ascontiguousarray(np.swapaxes(host, -1, -2) if transposed else host)
        if batch_stride0:
            store = store[:1]
        self.buf = be.alloc(store.nbytes)
        be.write(self.buf, 0, store)
        b, r, c = host.shape
        if transposed:
            strides = (r * c, 1, r)
        else:
            strides = (r * c, c, 1)
        if batch_stride0:
            strides = (0,) + strides[1:]
        self.layout = Layout(dtype, host.shape, strides, 0)


def run_plan(plan, bufs):
    be.launch(plan, bufs)


def matmul(a: Mat, b: Mat, bias=None, act=None, variant=None, tile=None, out=None):
    batch, m, k = a.layout.shape
    n = b.layout.shape[2]
    dt = a.dtype
    if out is None:
        obuf = be.alloc(batch * m * n * dt.itemsize)
        out = (obuf, Layout.contiguous(dt, (batch, m, n)))
    bias_l = bias_buf = None
    if bias is not None:
        bias_buf, bias_l = bias
    plan = wm.plan_matmul(be.caps, a.layout, b.layout, out[1], bias_l, act, variant=variant, tile=tile)
    be.launch(plan, [a.buf, b.buf, bias_buf, out[0]])
    return plan, out


def read(out, dtype):
    buf, lay = out
    raw = be.read(buf, 0, math.prod(lay.shape) * dtype.itemsize)
    return np.frombuffer(raw, dtype=dtype.np).reshape(lay.shape).astype(np.float64)


def poison(out, dtype):
    buf, lay = out
    be.write(buf, 0, np.full(math.prod(lay.shape), np.nan, dtype=dtype.np))


def erf64(x):
    return np.vectorize(math.erf)(x)


ACTS = {
    None: lambda x: x,
    "gelu": lambda x: 0.5 * x * (1 + erf64(x / math.sqrt(2))),
    "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
    "relu": lambda x: np.maximum(x, 0),
    "tanh": np.tanh,
}

# ------------------------------------------------------------------------------------ correctness
results = {"env": env, "checks": [], "timings": [], "torch": [], "gemv": []}
fails = 0
checks = [
    # (batch, M, N, K, aT, bT, bias, act, variant, tile, dtype, bcast)
    (1, 257, 131, 67, False, False, True, "gelu", "tiled", "128x128", float32, False),
    (1, 257, 131, 68, False, True, True, "gelu_tanh", "tiled", "128x128k16", float32, False),
    (2, 259, 140, 70, True, False, True, "gelu", "tiled", "128x128k16", float32, True),
    (2, 96, 200, 64, True, True, False, "relu", "tiled", "64x64", float32, True),
    (1, 129, 64, 256, True, False, True, "tanh", "tiled", "32x32", float32, False),
    (3, 64, 128, 37, False, True, True, None, "tiled", "64x64k16", float32, False),
    (1, 1, 1, 1, False, False, False, None, None, None, float32, False),
    (1, 1, 1536, 384, False, True, True, "gelu", None, None, float32, False),
    (1, 3, 51865, 384, False, True, False, None, None, None, float32, False),
    (2, 5, 1000, 4096, False, True, True, None, None, None, float32, False),
    (1, 7, 333, 129, False, True, False, None, "gemv_dot", None, float32, False),
    (1, 1, 4096, 4096, False, False, False, None, None, None, float32, False),
    (1, 8, 3001, 65, True, False, True, "relu", "gemv_axpy", None, float32, False),
    (1, 1000, 1, 384, False, False, False, None, None, None, float32, False),
    (4, 1031, 5, 130, False, True, True, "gelu", None, None, float32, True),
    (1, 512, 512, 512, False, False, True, "gelu", None, None, float16, False),
    (1, 300, 200, 96, False, True, True, None, None, None, float16, False),
    (1, 2, 1536, 384, False, True, True, None, None, None, float16, False),
]
if not be.caps.f16:
    checks = [c for c in checks if c[10] is float32]
for batch, m, n, k, aT, bT, has_bias, act, variant, tile, dt, bcast in checks:
    A = Mat(rng.standard_normal((batch, m, k)), dt, transposed=aT, batch_stride0=bcast)
    if bcast:
        A.ref = np.broadcast_to(A.ref[:1], (batch, m, k))
    B = Mat(rng.standard_normal((batch, k, n)), dt, transposed=bT)
    bias = None
    ref = A.ref @ B.ref
    if has_bias:
        bv = rng.standard_normal(n).astype(dt.np)
        bbuf = be.alloc(bv.nbytes)
        be.write(bbuf, 0, bv)
        bias = (bbuf, Layout.contiguous(dt, (n,)))
        ref = ref + bv.astype(np.float64)
    ref = ACTS[act](ref)
    obuf = be.alloc(batch * m * n * dt.itemsize)
    out = (obuf, Layout.contiguous(dt, (batch, m, n)))
    poison(out, dt)
    try:
        plan, _ = matmul(A, B, bias, act, variant, tile, out=out)
        got = read(out, dt)
        err = float(np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30))
        ok = bool(np.isfinite(got).all()) and err < (2e-3 if dt is float16 else 1e-5)
        label = plan.label
    except Exception as exc:
        err, ok, label = float("nan"), False, f"ERROR {type(exc).__name__}: {str(exc)[:2000]}"
    fails += not ok
    rec = dict(
        shape=(batch, m, n, k),
        aT=aT,
        bT=bT,
        bias=has_bias,
        act=act,
        dtype=dt.name,
        label=label,
        rel_err=err,
        ok=ok,
    )
    results["checks"].append(rec)
    log(f"check {'ok ' if ok else 'FAIL'} {err:.2e} {label}")
log(f"correctness: {len(checks) - fails}/{len(checks)} ok")


# ------------------------------------------------------------------------------------ timing
def time_plan(make, flops, repeats):
    """(median GPU ms per dispatch from timestamps or None, wall ms per dispatch)."""
    make()
    sync()
    make()
    sync()
    # wall: R dispatches, one sync
    walls = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeats):
            make()
        sync()
        walls.append((time.perf_counter() - t0) / repeats * 1e3)
    gpu = None
    if be.caps.timestamps:
        sink = []
        be.listeners.append(sink)
        try:
            for _ in range(repeats):
                make()
            sync()
        finally:
            be.listeners.remove(sink)
        ds = [(r.gpu_end_ns - r.gpu_start_ns) / 1e6 for r in sink if r.gpu_start_ns is not None]
        if ds:
            gpu = float(np.median(ds))
    return gpu, float(np.median(walls))


def reps_for(flops):
    return int(min(50, max(5, 2e11 / max(flops, 1))))


sizes = [256, 512, 1024, 2048, 4096] if not QUICK else [64, 128]
extra_tiles = {
    "x128x64k16": wm.Tile(128, 64, 16, 8, 8),
    "x64x128k16": wm.Tile(64, 128, 16, 8, 8),
    "x64x64k32": wm.Tile(64, 64, 32, 4, 4),
}
for name, t in extra_tiles.items():
    if t.storage_bytes <= be.caps.max_workgroup_storage:
        wm.TILES[name] = t
tile_names = list(wm.TILES)
if ONLY:
    tile_names = [t for t in tile_names if t in ONLY]

mats = {}
for dt in [float32, float16] if be.caps.f16 else [float32]:
    for s in sizes:
        for layout in ("nn", "nt"):
            A = Mat(rng.standard_normal((1, s, s)), dt)
            B = Mat(rng.standard_normal((1, s, s)), dt, transposed=(layout == "nt"))
            flops = 2.0 * s**3
            ref = A.ref[0] @ B.ref[0]
            names = tile_names if (dt is float32) else ["128x128k16", "64x64k16", "32x32"]
            for tname in names + ["auto"]:
                if tname not in wm.TILES and tname != "auto":
                    continue
                tile = None if tname == "auto" else tname
                obuf = be.alloc(s * s * dt.itemsize)
                out = (obuf, Layout.contiguous(dt, (1, s, s)))
                try:
                    t0 = time.perf_counter()
                    plan, _ = matmul(A, B, None, None, "tiled", tile, out=out)
                    sync()
                    compile_s = time.perf_counter() - t0
                    got = read(out, dt)
                    err = float(np.linalg.norm(got[0] - ref) / np.linalg.norm(ref))
                    gpu, wall = time_plan(
                        lambda: matmul(A, B, None, None, "tiled", tile, out=out), flops, reps_for(flops)
                    )
                    best = gpu if gpu is not None else wall
                    rec = dict(
                        dtype=dt.name,
                        size=s,
                        layout=layout,
                        tile=tname,
                        label=plan.label,
                        gpu_ms=gpu,
                        wall_ms=wall,
                        tflops=flops / best / 1e9,
                        wall_tflops=flops / wall / 1e9,
                        rel_err=err,
                        compile_s=compile_s,
                    )
                except Exception as exc:
                    rec = dict(
                        dtype=dt.name,
                        size=s,
                        layout=layout,
                        tile=tname,
                        error=f"{type(exc).__name__}: {str(exc)[:3000]}",
                    )
                results["timings"].append(rec)
                log("time", json.dumps(rec))
                be.free(obuf)
            be.free(A.buf)
            be.free(B.buf)
        be.empty_cache()

# grouped tile order: GROUP_M (Params only) at 4096, auto tile
for gm in (1, 4, 16):
    wm.GROUP_M = gm
    wm._plan.cache_clear()
    for layout in ("nn", "nt"):
        s = 4096 if not QUICK else 128
        A = Mat(rng.standard_normal((1, s, s)), float32)
        B = Mat(rng.standard_normal((1, s, s)), float32, transposed=(layout == "nt"))
        obuf = be.alloc(s * s * 4)
        out = (obuf, Layout.contiguous(float32, (1, s, s)))
        gpu, wall = time_plan(lambda: matmul(A, B, out=out), 2.0 * s**3, 10)
        rec = dict(
            dtype="float32",
            size=s,
            layout=layout,
            tile=f"auto-g{gm}",
            gpu_ms=gpu,
            wall_ms=wall,
            tflops=2.0 * s**3 / gpu / 1e9,
        )
        results["timings"].append(rec)
        log("time", json.dumps(rec))
        for x in (A.buf, B.buf, obuf):
            be.free(x)
wm.GROUP_M = 8
wm._plan.cache_clear()

# gemv shapes (M, N, K, weight layout): whisper-tiny decode, a big square, the vocab projection
for m, n, k, bt in [
    (1, 384, 384, True),
    (1, 1536, 384, True),
    (1, 384, 1536, True),
    (1, 51865, 384, True),
    (1, 4096, 4096, True),
    (1, 4096, 4096, False),
    (4, 4096, 4096, True),
    (8, 768, 768, True),
]:
    dt = float32
    A = Mat(rng.standard_normal((1, m, k)), dt)
    B = Mat(rng.standard_normal((1, k, n)), dt, transposed=bt)
    obuf = be.alloc(m * n * 4)
    out = (obuf, Layout.contiguous(dt, (1, m, n)))
    try:
        plan, _ = matmul(A, B, out=out)
        got = read(out, dt)
        err = float(np.linalg.norm(got[0] - A.ref[0] @ B.ref[0]) / np.linalg.norm(A.ref[0] @ B.ref[0]))
        gpu, wall = time_plan(lambda: matmul(A, B, out=out), 2.0 * m * n * k, 50)
        gbs = 4.0 * (m * k + k * n + m * n) / ((gpu or wall) * 1e-3) / 1e9
        rec = dict(m=m, n=n, k=k, bt=bt, label=plan.label, gpu_ms=gpu, wall_ms=wall, gbs=gbs, rel_err=err)
    except Exception as exc:
        rec = dict(m=m, n=n, k=k, bt=bt, error=f"{type(exc).__name__}: {str(exc)[:2000]}")
    results["gemv"].append(rec)
    log("gemv", json.dumps(rec))

# ------------------------------------------------------------------------------------ torch
try:
    import torch

    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        env["torch"] = torch.__version__
        env["cuda_device"] = torch.cuda.get_device_name(0)
        for tdt in (torch.float32, torch.float16):
            for s in sizes:
                x = torch.randn(s, s, device="cuda", dtype=tdt)
                y = torch.randn(s, s, device="cuda", dtype=tdt)
                for _ in range(3):
                    x @ y
                torch.cuda.synchronize()
                r = reps_for(2.0 * s**3)
                times = []
                for _ in range(5):
                    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    e0.record()
                    for _ in range(r):
                        x @ y
                    e1.record()
                    torch.cuda.synchronize()
                    times.append(e0.elapsed_time(e1) / r)
                ms = float(np.median(times))
                rec = dict(dtype=str(tdt).replace("torch.", ""), size=s, ms=ms, tflops=2.0 * s**3 / ms / 1e9)
                results["torch"].append(rec)
                log("torch", json.dumps(rec))
        # bandwidth ceiling
        z = torch.empty(1 << 28, dtype=torch.float32, device="cuda")
        w = torch.empty_like(z)
        w.copy_(z)
        torch.cuda.synchronize()
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        for _ in range(10):
            w.copy_(z)
        e1.record()
        torch.cuda.synchronize()
        env["copy_TBs"] = 2 * z.numel() * 4 * 10 / (e0.elapsed_time(e1) * 1e-3) / 1e12
        del z, w
except Exception:
    log("torch failed:", traceback.format_exc())

(OUT / "probe.json").write_text(json.dumps(results, indent=1, default=str))

# ------------------------------------------------------------------------------------ table
log("\n=== summary ===")
log("env:", info.get("device"), info.get("description"), "| copy TB/s", env.get("copy_TBs"))
log(f"correctness: {len(checks) - fails}/{len(checks)} ok")
for rec in results["checks"]:
    if not rec["ok"]:
        log("  FAIL", rec["label"][:300], rec["rel_err"])
tq = {(r["dtype"], r["size"]): r["tflops"] for r in results["torch"]}
for dt in ("float32", "float16"):
    rows = [r for r in results["timings"] if r["dtype"] == dt]
    if not rows:
        continue
    log(f"-- {dt} TFLOP/s (gpu timestamps) by tile; torch last")
    tiles = sorted(
        {r["tile"] for r in rows if not r["tile"].startswith("auto-g")}, key=lambda t: (t != "auto", t)
    )
    log("size lay " + " ".join(f"{t:>11s}" for t in tiles) + "  torch")
    for s in sizes:
        for lay in ("nn", "nt"):
            cells = []
            if s == sizes[-1] and dt == "float32":
                g = [
                    r
                    for r in rows
                    if r["size"] == s and r["layout"] == lay and r["tile"].startswith("auto-g")
                ]
                log("     group_m: " + " ".join(f"{r['tile']}={r['tflops']:.2f}" for r in g))
            for t in tiles:
                r = next((r for r in rows if r["size"] == s and r["layout"] == lay and r["tile"] == t), None)
                cells.append(f"{r['tflops']:11.2f}" if r and "tflops" in r else f"{'err' if r else '-':>11s}")
            log(f"{s:4d} {lay:3s} " + " ".join(cells) + f"  {tq.get((dt, s), float('nan')):.2f}")
log("-- gemv (GB/s)")
for r in results["gemv"]:
    log(
        f"  {r.get('m')}x{r.get('n')}x{r.get('k')} bt={r.get('bt')} {r.get('label', r.get('error', ''))[:60]} "
        f"{r.get('gpu_ms') or float('nan'):.4f} ms {r.get('gbs', float('nan')):.0f} GB/s err {r.get('rel_err', float('nan')):.1e}"
    )
