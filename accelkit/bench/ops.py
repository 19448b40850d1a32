"""``accelkit bench ops``: a matmul sweep (GFLOP/s) and per-op timings on each device, beside references.

Each figure is the median over ``repeats`` measurements. On WebGPU one measurement records R
dispatches, waits once and divides by R (after warm-up), and where the adapter has
``timestamp-query`` the GPU's own time per call is read too (``gpu_ms``). References run in the
same process: numpy always, torch on CUDA (float32 with TF32 off) and torch on the CPU when torch
is installed. Software adapters (lavapipe, SwiftShader) skip the large sizes, and the output says so.

>>> from accelkit.bench import ops
>>> result = ops.run(devices=["cpu"], sizes=(128,), quick=True, progress=False)
>>> print(result["table"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable, Sequence

import numpy as np

from .sweep import Progress, blas_name, environment, finish, parse, plain, run_options, show

DEFAULT_SIZES = (256, 512, 1024, 2048, 4096)
LAYOUTS = ("b", "wT")  # how the matmul's b is stored: row-major, or the transpose of an (N, K) weight
QUICK_MAX = 512  # --quick skips larger matmul sizes on every device
SOFTWARE_MAX = 512  # software adapters do a few GFLOP/s: larger sizes take minutes
TARGET_S = 0.25  # aim for this much work per measurement (0.05 with --quick)

# (batch, tokens, hidden, heads, ffn): BERT-base at batch 8 x 128 tokens; --quick and software adapters
# use the small one
OP_SHAPES = {"bert-base": (8, 128, 768, 12, 3072), "small": (1, 64, 256, 4, 1024)}


# ---------------------------------------------------------------------------------- timing
class _Timer:
    """Times a callable on one accelkit device: warm-up, R calls per measurement, one wait each."""

    def __init__(self, dev, repeats: int, target_s: float) -> None:
        self.dev = dev
        self.repeats = repeats
        self.target_s = target_s
        self.webgpu = dev.backend_name == "webgpu"
        self._probe = None
        if self.webgpu:
            from ..tensor.tensor import Tensor

            self._probe = Tensor.from_numpy(np.zeros(1, np.float32), device=dev)

    def wait(self) -> None:
        # reading back waits for every submitted dispatch (and collects GPU timestamps)
        if self._probe is not None:
            self._probe.numpy()

    def __call__(self, fn: Callable[[], object]) -> dict:
        fn()
        self.wait()  # compile pipelines, fill the buffer pool
        t0 = time.perf_counter()
        fn()
        self.wait()
        single = time.perf_counter() - t0
        inner = int(min(100, max(1, self.target_s / max(single, 1e-7))))
        times = []
        labels: list[str] = []
        for _ in range(self.repeats):
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            self.wait()
            times.append((time.perf_counter() - t0) / inner)
        rec = {
            "median_ms": float(np.median(times)) * 1e3,
            "times_ms": [t * 1e3 for t in times],
            "inner": inner,
        }
        gpu = self._gpu_times(fn, inner, labels) if self.webgpu else None
        rec["gpu_ms"] = gpu
        rec["kernels"] = sorted(set(labels))
        return rec

    def _gpu_times(self, fn, inner: int, labels: list) -> float | None:
        be = self.dev.backend
        sink: list = []
        be.listeners.append(sink)
        try:
            for _ in range(inner):
                fn()
            self.wait()
        finally:
            be.listeners.remove(sink)
        labels.extend(r.label for r in sink)
        if not sink or len(sink) % inner or any(r.gpu_start_ns is None for r in sink):
            return None
        per_call = len(sink) // inner
        sums = [
            sum(r.gpu_end_ns - r.gpu_start_ns for r in sink[i * per_call : (i + 1) * per_call])
            for i in range(inner)
        ]
        return float(np.median(sums)) / 1e6


def _time_host(
    fn: Callable[[], object], repeats: int, target_s: float, sync: Callable[[], None] = lambda: None
):
    fn()
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    single = time.perf_counter() - t0
    inner = int(min(100, max(1, target_s / max(single, 1e-7))))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        sync()
        times.append((time.perf_counter() - t0) / inner)
    return {"median_ms": float(np.median(times)) * 1e3, "times_ms": [t * 1e3 for t in times], "inner": inner}


# ---------------------------------------------------------------------------------- references
class _References:
    """numpy always; torch on CUDA and on the CPU when torch is importable."""

    def __init__(self, notes: list) -> None:
        self.torch = None
        self.targets: list[tuple[str, str, str]] = [
            ("numpy", "numpy", f"numpy {np.__version__} on {blas_name()}")
        ]
        try:
            import torch

            self.torch = torch
            self.targets.append(("torch:cpu", "cpu", f"torch {torch.__version__} CPU"))
            if torch.cuda.is_available():
                self.targets.append(
                    ("torch:cuda", "cuda", f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}")
                )
            else:
                notes.append("torch:cuda not measured: torch has no CUDA device here")
        except Exception as exc:  # ImportError, or a broken install
            notes.append(f"torch not measured: {type(exc).__name__}: {exc}")

    def sync(self, where: str) -> Callable[[], None]:
        if where == "cuda":
            return self.torch.cuda.synchronize
        return lambda: None

    def tf32_off(self):
        """Context: torch float32 matmuls in true float32 (TF32 off), restored afterwards."""
        torch = self.torch

        class _Ctx:
            def __enter__(self_inner):
                if torch is not None:
                    self_inner.saved = (
                        torch.backends.cuda.matmul.allow_tf32,
                        torch.backends.cudnn.allow_tf32,
                    )
                    torch.backends.cuda.matmul.allow_tf32 = False
                    torch.backends.cudnn.allow_tf32 = False

            def __exit__(self_inner, *exc):
                if torch is not None:
                    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = self_inner.saved

        return _Ctx()


# ---------------------------------------------------------------------------------- the ops
def _np_gelu(x):
    from ..backends.cpu import gelu

    return gelu(x)


def _np_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _np_layer_norm(x, w, b, eps=1e-5):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _op_specs(shape: tuple) -> list[dict]:
    """name, input shapes, work (flops or bytes), and how each target runs it."""
    bsz, t, h, heads, ffn = shape
    d = h // heads
    rows = bsz * t
    f4 = 4
    return [
        {
            "op": "matmul_linear_gelu",
            "what": f"({rows},{h}) @ W({ffn},{h}).T + b, gelu",
            "inputs": {"x": (rows, h), "w": (ffn, h), "b": (ffn,)},
            "flops": 2.0 * rows * h * ffn,
            "bytes": f4 * (rows * h + ffn * h + ffn + rows * ffn),
        },
        {
            "op": "linear_m1",
            "what": f"(1,{h}) @ W({ffn},{h}).T + b (one decoder token)",
            "inputs": {"x": (1, h), "w": (ffn, h), "b": (ffn,)},
            "flops": 2.0 * h * ffn,
            "bytes": f4 * (h + ffn * h + 2 * ffn),
        },
        {
            "op": "softmax",
            "what": f"({bsz},{heads},{t},{t}) over the last axis",
            "inputs": {"x": (bsz, heads, t, t)},
            "bytes": f4 * 2 * bsz * heads * t * t,
        },
        {
            "op": "layer_norm",
            "what": f"({rows},{h})",
            "inputs": {"x": (rows, h), "w": (h,), "b": (h,)},
            "bytes": f4 * (2 * rows * h + 2 * h),
        },
        {"op": "gelu", "what": f"({rows},{ffn})", "inputs": {"x": (rows, ffn)}, "bytes": f4 * 2 * rows * ffn},
        {
            "op": "add",
            "what": f"({rows},{h}) + ({rows},{h})",
            "inputs": {"x": (rows, h), "y": (rows, h)},
            "bytes": f4 * 3 * rows * h,
        },
        {
            "op": "attention",
            "what": f"q,k,v ({bsz},{heads},{t},{d})",
            "inputs": {"q": (bsz, heads, t, d), "k": (bsz, heads, t, d), "v": (bsz, heads, t, d)},
            "flops": 4.0 * bsz * heads * t * t * d,
            "bytes": f4 * 4 * bsz * heads * t * d,
        },
    ]


def _accel_op(ak, name: str, x: dict) -> Callable[[], object]:
    o = ak.ops
    return {
        "matmul_linear_gelu": lambda: o.linear(x["x"], x["w"], x["b"], activation="gelu"),
        "linear_m1": lambda: o.linear(x["x"], x["w"], x["b"]),
        "softmax": lambda: o.softmax(x["x"], -1),
        "layer_norm": lambda: o.layer_norm(x["x"], x["w"], x["b"]),
        "gelu": lambda: o.gelu(x["x"]),
        "add": lambda: o.add(x["x"], x["y"]),
        "attention": lambda: o.scaled_dot_product_attention(x["q"], x["k"], x["v"]),
    }[name]


def _numpy_op(name: str, x: dict) -> Callable[[], object]:
    return {
        "matmul_linear_gelu": lambda: _np_gelu(x["x"] @ x["w"].T + x["b"]),
        "linear_m1": lambda: x["x"] @ x["w"].T + x["b"],
        "softmax": lambda: _np_softmax(x["x"]),
        "layer_norm": lambda: _np_layer_norm(x["x"], x["w"], x["b"]),
        "gelu": lambda: _np_gelu(x["x"]),
        "add": lambda: x["x"] + x["y"],
        "attention": lambda: (
            _np_softmax(x["q"] @ np.swapaxes(x["k"], -1, -2) / math.sqrt(x["q"].shape[-1])) @ x["v"]
        ),
    }[name]


def _torch_op(torch, name: str, x: dict) -> Callable[[], object]:
    F = torch.nn.functional
    return {
        "matmul_linear_gelu": lambda: F.gelu(F.linear(x["x"], x["w"], x["b"])),
        "linear_m1": lambda: F.linear(x["x"], x["w"], x["b"]),
        "softmax": lambda: torch.softmax(x["x"], -1),
        "layer_norm": lambda: F.layer_norm(x["x"], x["x"].shape[-1:], x["w"], x["b"]),
        "gelu": lambda: F.gelu(x["x"]),
        "add": lambda: x["x"] + x["y"],
        "attention": lambda: F.scaled_dot_product_attention(x["q"], x["k"], x["v"]),
    }[name]


# ---------------------------------------------------------------------------------- the runner
def _resolve_devices(ak, devices) -> list:
    if devices is None:
        return list(ak.devices())
    if isinstance(devices, str):
        devices = [devices]
    return [ak.device(d) for d in devices]


def run(
    devices: Sequence | None = None,
    sizes: Sequence[int] = DEFAULT_SIZES,
    dtypes: Sequence[str] = ("float32",),
    repeats: int | None = None,
    json_path: str | os.PathLike | None = None,
    quick: bool = False,
    progress: bool = True,
    *,
    ops: bool = True,
    references: bool = True,
    command: str | None = None,
    layouts: Sequence[str] = LAYOUTS,
) -> dict:
    """Run the matmul sweep and the per-op timings; return everything as a dict (``result["table"]`` is the text).

    ``devices``: specs or Devices (default: every device of ``accelkit.devices()``). ``repeats``:
    measurements per figure (default 5, 3 with ``quick``). ``json_path``: also write the dict there.
    ``layouts``: how b is stored, "b" (row-major (K, N)) and/or "wT" (the transpose of an (N, K)
    weight: what every linear layer multiplies by).
    """
    import accelkit as ak

    repeats = int(repeats) if repeats else (3 if quick else 5)
    target_s = 0.05 if quick else TARGET_S
    devs = _resolve_devices(ak, devices)
    sizes = [int(s) for s in sizes]
    dtypes = [
        str(ak.float32 if d in ("f32", "float") else ak.float16 if d in ("f16", "half") else d)
        for d in dtypes
    ]
    notes: list[str] = []
    layouts = [str(x) for x in layouts]
    for lay in layouts:
        if lay not in LAYOUTS:
            raise ValueError(f"bench ops: unknown layout {lay!r}; expected some of {LAYOUTS}")
    if command is None:
        command = (
            f"accelkit.bench.ops.run(devices={[d.spec for d in devs]}, sizes={sizes}, dtypes={dtypes}, "
            f"layouts={layouts}, repeats={repeats}, quick={quick})"
        )
    refs = _References(notes) if references else None
    targets = [("accel", d) for d in devs] + ([("ref", t) for t in refs.targets] if refs else [])

    def sizes_for(kind: str, target) -> list[int]:
        limit = None
        why = ""
        if quick:
            limit, why = QUICK_MAX, "--quick"
        if kind == "accel" and target.is_software:
            limit, why = min(limit or SOFTWARE_MAX, SOFTWARE_MAX), f"software adapter ({target.name})"
        keep = [s for s in sizes if limit is None or s <= limit]
        skipped = [s for s in sizes if s not in keep]
        if skipped:
            spec = target.spec if kind == "accel" else target[0]
            notes.append(f"{spec}: matmul sizes {', '.join(map(str, skipped))} skipped ({why}; > {limit})")
        return keep

    plan = []
    for kind, target in targets:
        for dt in dtypes:
            for s in sizes_for(kind, target):
                for lay in layouts:
                    plan.append(("matmul", kind, target, dt, (s, lay)))
        if ops:
            plan.append(("ops", kind, target, "float32", None))
    bar = Progress(len(plan), progress, "accelkit bench ops")
    result = {
        "env": environment(command, devs),
        "config": {"sizes": sizes, "dtypes": dtypes, "layouts": layouts, "repeats": repeats, "quick": quick},
        "matmul": [],
        "ops": [],
        "notes": notes,
    }
    if refs:
        result["env"]["references"] = [{"target": t[0], "name": t[2]} for t in refs.targets]
    rng = np.random.default_rng(0)
    try:
        for what, kind, target, dt, size in plan:
            spec = target.spec if kind == "accel" else target[0]
            if what == "matmul":
                bar.step(f"{spec} matmul {size[0]} {size[1]} {dt}")
                rec = _bench_matmul(ak, kind, target, dt, size, repeats, target_s, refs, rng, notes)
                result["matmul"].append(rec)
            else:
                bar.step(f"{spec} ops")
                soft = kind == "accel" and target.is_software
                shape_name = "small" if (quick or soft) else "bert-base"
                result["ops"].extend(_bench_ops(ak, kind, target, shape_name, repeats, target_s, refs, rng))
    finally:
        bar.close()
        for d in devs:
            if d.is_open:
                d.empty_cache()
    return finish(result, format_table, json_path)


def _bench_matmul(
    ak, kind, target, dt: str, size_layout: tuple, repeats: int, target_s: float, refs, rng, notes
) -> dict:
    size, layout = size_layout
    spec = target.spec if kind == "accel" else target[0]
    flops = 2.0 * size**3
    rec = {"target": spec, "dtype": dt, "size": size, "layout": layout, "flops": flops}
    a_np = rng.standard_normal((size, size), dtype=np.float32)
    b_np = rng.standard_normal((size, size), dtype=np.float32)
    # "wT": b is the transpose of a contiguous (N, K) weight, as in a linear layer
    stored = b_np.T.copy() if layout == "wT" else b_np

    def b_of(t):
        return t.T if layout == "wT" else t

    try:
        if kind == "accel":
            if dt == "float16" and not target.supports_f16:
                rec["skipped"] = f"{spec} has no shader-f16"
                return rec
            a = ak.tensor(a_np, dtype=dt, device=target)
            b = b_of(ak.tensor(stored, dtype=dt, device=target))
            timer = _Timer(target, repeats, target_s)
            rec.update(timer(lambda: a @ b))
            got = (a @ b).numpy().astype(np.float32)
        else:
            name, where, _ = target
            if name == "numpy":
                if dt != "float32":
                    rec["skipped"] = "numpy has no BLAS path for float16"
                    return rec
                b = b_of(stored)
                rec.update(_time_host(lambda: a_np @ b, repeats, target_s))
                got = None
            else:
                torch = refs.torch
                if where == "cpu" and dt != "float32":
                    rec["skipped"] = "torch CPU float16 matmul is not a meaningful reference"
                    return rec
                tdt = getattr(torch, dt)
                a = torch.from_numpy(a_np).to(where, tdt)
                b = b_of(torch.from_numpy(stored).to(where, tdt))
                with refs.tf32_off():
                    rec.update(_time_host(lambda: a @ b, repeats, target_s, refs.sync(where)))
                    got = (a @ b).float().cpu().numpy()
        if got is not None:
            ref = a_np.astype(np.float16).astype(np.float32) if dt == "float16" else a_np
            refb = b_np.astype(np.float16).astype(np.float32) if dt == "float16" else b_np
            want = ref @ refb
            rec["rel_err"] = float(np.linalg.norm(got - want) / np.linalg.norm(want))
        rec["gflops"] = flops / (rec["median_ms"] * 1e-3) / 1e9
        if rec.get("gpu_ms"):
            rec["gpu_gflops"] = flops / (rec["gpu_ms"] * 1e-3) / 1e9
    except Exception as exc:  # a device that cannot run it: say so, keep going
        rec["error"] = f"{type(exc).__name__}: {exc}"[:500]
    return rec


def _bench_ops(ak, kind, target, shape_name: str, repeats: int, target_s: float, refs, rng) -> list[dict]:
    spec = target.spec if kind == "accel" else target[0]
    out = []
    timer = _Timer(target, repeats, target_s) if kind == "accel" else None
    for op in _op_specs(OP_SHAPES[shape_name]):
        rec = {"target": spec, "op": op["op"], "shape": shape_name, "what": op["what"]}
        host = {k: rng.standard_normal(s, dtype=np.float32) for k, s in op["inputs"].items()}
        try:
            if kind == "accel":
                x = {k: ak.tensor(v, device=target) for k, v in host.items()}
                rec.update(timer(_accel_op(ak, op["op"], x)))
            else:
                name, where, _ = target
                if name == "numpy":
                    rec.update(_time_host(_numpy_op(op["op"], host), repeats, target_s))
                else:
                    torch = refs.torch
                    x = {k: torch.from_numpy(v).to(where) for k, v in host.items()}
                    with refs.tf32_off(), torch.no_grad():
                        rec.update(
                            _time_host(_torch_op(torch, op["op"], x), repeats, target_s, refs.sync(where))
                        )
            best = rec.get("gpu_ms") or rec["median_ms"]
            if "flops" in op:
                rec["gflops"] = op["flops"] / (rec["median_ms"] * 1e-3) / 1e9
            rec["gbs"] = op["bytes"] / (rec["median_ms"] * 1e-3) / 1e9
            rec["gpu_gbs"] = op["bytes"] / (best * 1e-3) / 1e9 if rec.get("gpu_ms") else None
        except Exception as exc:
            rec["error"] = f"{type(exc).__name__}: {exc}"[:500]
        out.append(rec)
    return out


# ---------------------------------------------------------------------------------- the table
def _cell(rec: dict | None, key: str, gpu_key: str | None, fmt: str) -> str:
    if rec is None:
        return "-"
    if "error" in rec:
        return "error"
    if "skipped" in rec:
        return "skip"
    text = format(rec[key], fmt)
    if gpu_key and rec.get(gpu_key):
        text += f" [{format(rec[gpu_key], fmt)}]"
    return text


def format_table(result: dict) -> str:
    """The matmul sweep (GFLOP/s) and the per-op timings (ms) as plain text tables."""
    lines = []
    env = result["env"]
    lines.append(f"accelkit bench ops  {env['date']}  ({env['command']})")
    for d in env["devices"]:
        extra = f" ({d.get('api')}, driver {d.get('driver')})" if d["backend"] == "webgpu" else ""
        lines.append(f"  {d['spec']:<10} {d['name']}{extra}{' [software]' if d['is_software'] else ''}")
    for r in env.get("references", []):
        lines.append(f"  {r['target']:<10} {r['name']} (reference)")
    targets = list(dict.fromkeys(r["target"] for r in result["matmul"] + result["ops"]))
    for dt in result["config"]["dtypes"]:
        rows = [r for r in result["matmul"] if r["dtype"] == dt]
        if not rows:
            continue
        lines.append("")
        lines.append(
            f"matmul {dt}, square NxNxN: GFLOP/s from the median wall time per call [GPU timestamps]; "
            "b row-major (b) or a weight's transpose (wT)"
        )
        cols = [t for t in targets if any(r["target"] == t for r in rows)]
        widths = [max(len(t), 16) for t in cols]
        lines.append(f"{'N':>6} {'b':>3}  " + "  ".join(f"{t:>{w}}" for t, w in zip(cols, widths)))
        for s, lay in sorted({(r["size"], r.get("layout", "b")) for r in rows}):
            cells = []
            for t, w in zip(cols, widths):
                rec = next(
                    (r for r in rows if r["target"] == t and (r["size"], r.get("layout", "b")) == (s, lay)),
                    None,
                )
                cells.append(f"{_cell(rec, 'gflops', 'gpu_gflops', '.0f'):>{w}}")
            lines.append(f"{s:>6} {lay:>3}  " + "  ".join(cells))
    if result["ops"]:
        lines.append("")
        lines.append("ops, float32: ms per call, median wall time [GPU timestamps]")
        cols = [t for t in targets if any(r["target"] == t for r in result["ops"])]
        widths = [max(len(t), 16) for t in cols]
        names = list(dict.fromkeys(r["op"] for r in result["ops"]))
        lines.append(f"{'op':<20}  " + "  ".join(f"{t:>{w}}" for t, w in zip(cols, widths)))
        for name in names:
            cells = []
            for t, w in zip(cols, widths):
                rec = next((r for r in result["ops"] if r["target"] == t and r["op"] == name), None)
                cells.append(f"{_cell(rec, 'median_ms', 'gpu_ms', '.3f'):>{w}}")
            lines.append(f"{name:<20}  " + "  ".join(cells))
        shapes = {}
        for r in result["ops"]:
            shapes.setdefault(r["shape"], {})[r["op"]] = r["what"]
        for shape, ops in shapes.items():
            used = sorted({r["target"] for r in result["ops"] if r["shape"] == shape})
            lines.append(
                f"  shapes '{shape}' ({', '.join(used)}): " + "; ".join(f"{k} {v}" for k, v in ops.items())
            )
    errors = [r for r in result["matmul"] + result["ops"] if "error" in r]
    for r in errors:
        lines.append(f"  error: {r['target']} {r.get('op') or 'matmul ' + str(r.get('size'))}: {r['error']}")
    for note in result["notes"]:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- command line
def _sizes(text: str) -> list[int]:
    try:
        return [int(s) for s in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes takes integers like 256,512,1024; got {text!r}") from None


def _layouts(text: str) -> list[str]:
    got = [x for x in text.replace(",", " ").split() if x]
    bad = [x for x in got if x not in LAYOUTS]
    if bad or not got:
        raise argparse.ArgumentTypeError(
            f"--layout takes {' and/or '.join(LAYOUTS)} (comma list); got {text!r}"
        )
    return got


def build_parser(prog: str = "accelkit bench ops") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=plain(__doc__.split("\n\n")[0]))
    p.add_argument("--device", action="append", help="device spec (repeatable); default: every device")
    p.add_argument(
        "--sizes", type=_sizes, default=list(DEFAULT_SIZES), help="matmul sizes N (NxNxN), e.g. 256,1024"
    )
    p.add_argument(
        "--dtype", action="append", help="float32 (default) and/or float16 (repeatable or comma list)"
    )
    p.add_argument(
        "--layout",
        action="append",
        type=_layouts,
        help="how the matmul's b is stored: b (row-major) and/or wT (a linear layer's weight.T); default both",
    )
    p.add_argument("--repeat", type=int, default=None, help="measurements per figure; the median is reported")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument(
        "--quick", action="store_true", help=f"small sizes (<= {QUICK_MAX}) and shapes, fewer repeats"
    )
    p.add_argument("--no-ops", action="store_true", help="only the matmul sweep")
    p.add_argument("--no-references", action="store_true", help="skip numpy/torch references")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``accelkit bench ops`` (the CLI passes the arguments after ``ops``)."""
    args, command = parse(build_parser(), argv)
    dtypes = [d for item in (args.dtype or ["float32"]) for d in item.split(",") if d]
    layouts = list(dict.fromkeys(x for item in (args.layout or [list(LAYOUTS)]) for x in item))
    result = run(
        devices=args.device,
        sizes=args.sizes,
        dtypes=dtypes,
        repeats=args.repeat,
        ops=not args.no_ops,
        references=not args.no_references,
        layouts=layouts,
        **run_options(args, command),
    )
    return show(result, args.json)


if __name__ == "__main__":  # python -m accelkit.bench.ops
    raise SystemExit(main())
