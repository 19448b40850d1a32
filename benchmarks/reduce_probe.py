"""Full reductions of a long axis on WebGPU: one pass (a workgroup per output) vs the two-pass split.

Run from the repository root: ``python3 benchmarks/reduce_probe.py`` (torch on CUDA, if present,
is timed alongside). Prints ms per call (median of 20, after warm-up, each call synced).
"""

import time

import numpy as np

import accelkit as ak
from accelkit import ops

dev = ak.device("webgpu")
x = np.random.default_rng(0).standard_normal(1 << 24).astype(np.float32)
t = ak.tensor(x, device=dev)


def timed(fn, reps=20):
    """Median ms of ``fn()`` (which must wait for its own result)."""
    fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return float(np.median(out)) * 1e3


try:
    import torch

    tt = torch.from_numpy(x).cuda() if torch.cuda.is_available() else None
except ImportError:
    torch = tt = None

rows = []
for op in ("sum", "max", "mean"):
    f = getattr(ops, op)
    split = timed(lambda f=f: f(t).numpy())
    saved = ops.reduce.SPLIT_REDUCE_CHUNK
    ops.reduce.SPLIT_REDUCE_CHUNK = 1 << 40  # disables the split (the axis is never long enough)
    one = timed(lambda f=f: f(t).numpy())
    ops.reduce.SPLIT_REDUCE_CHUNK = saved
    err = abs(float(f(t).numpy()) - float(getattr(np, op)(x.astype(np.float64))))
    ref = None
    if tt is not None:
        g = getattr(torch, op)
        ref = timed(lambda g=g: g(tt).item())
    rows.append((op, one, split, ref, err))
print(f"device {dev.name}; 16M float32 elements reduced to one value; ms per call incl. readback")
print(f"{'op':<5} {'one pass':>9} {'two passes':>11} {'torch':>8} {'abs err':>9}")
for op, one, split, ref, err in rows:
    torch_ms = "-" if ref is None else f"{ref:.3f}"
    print(f"{op:<5} {one:>9.3f} {split:>11.3f} {torch_ms:>8} {err:>9.2e}")
