# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Tensors and kernels
#
# An `ak.Tensor` is a shape, a dtype, strides and an offset over a `Storage` (a device buffer). Slicing,
# transposing, reshaping and broadcasting make new tensors over the same storage, so they never copy.
# Ops dispatch to the tensor's backend: numpy on the CPU, WGSL compute shaders on WebGPU. This notebook
# shows both sides and checks the WebGPU results against numpy in float64.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

import accelkit as ak

plt.rcParams.update({"figure.dpi": 100, "figure.figsize": (7, 3), "font.size": 9})

# the first WebGPU device: cells that use it are skipped without one (or, under ACCELKIT_REQUIRE_WEBGPU=1, fail)
gpus = [d for d in ak.devices() if d.backend_name == "webgpu"]
if not gpus and os.environ.get("ACCELKIT_REQUIRE_WEBGPU") == "1":
    raise RuntimeError("ACCELKIT_REQUIRE_WEBGPU=1 but no WebGPU adapter was found")
gpu = gpus[0] if gpus else None

import gc

cpu = ak.device("cpu")

# %% [markdown]
# ## 1. Views never copy
#
# Strides are counted in elements. A step in a slice multiplies a stride, an integer index adds to the
# offset and drops the axis, a transpose permutes the strides, `None` inserts an axis of stride 0.

# %%
# NBVAL_CHECK_OUTPUT
t = ak.tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4), device=cpu)
gc.collect()
before = cpu.memory()

views = {
    "t": t,
    "t[1]": t[1],
    "t[:, ::2]": t[:, ::2],
    "t[..., ::-1]": t[..., ::-1],
    "t.T": t.T,
    "t.permute(1, 0, 2)": t.permute(1, 0, 2),
    "t.reshape(6, 4)": t.reshape(6, 4),
    "t[:, None, 1]": t[:, None, 1],
}
after = cpu.memory()
print(f"{'view':<20} {'shape':<13} {'strides':<13} offset  contiguous  same storage")
for name, v in views.items():
    print(
        f"{name:<20} {str(v.shape):<13} {str(v.strides):<13} {v.offset:>6}  {v.is_contiguous!s:<10}  "
        f"{v.storage is t.storage}"
    )
print("bytes allocated by the views:", after["allocated_bytes"] - before["allocated_bytes"])

# %%
a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)  # the same views in numpy
same = {
    "t": a,
    "t[1]": a[1],
    "t[:, ::2]": a[:, ::2],
    "t[..., ::-1]": a[..., ::-1],
    "t.T": a.T,
    "t.permute(1, 0, 2)": a.transpose(1, 0, 2),
    "t.reshape(6, 4)": a.reshape(6, 4),
    "t[:, None, 1]": a[:, None, 1],
}
for name, v in views.items():
    assert np.array_equal(v.numpy(), same[name]), name
assert after["allocated_bytes"] == before["allocated_bytes"]
assert after["buffers"] == before["buffers"]

# %% [markdown]
# `contiguous()` copies only when it has to. Ops take strided views as they are: a matmul reads a
# transposed weight through its strides, so a linear layer never materialises `weight.T`.

# %%
# NBVAL_CHECK_OUTPUT
r = t.reshape(6, 4)
assert r.contiguous() is r  # already dense: no copy
dense = t.T.contiguous()
print("t.T.contiguous() copied", dense.nbytes, "bytes; same storage:", dense.storage is t.storage)

# %% [markdown]
# ## 2. Broadcasting, as numpy
#
# Shapes are aligned from the right; a dimension of 1 stretches. `expand` makes the stretched view
# explicit: the broadcast dimension gets stride 0, so no bytes are repeated.

# %%
# NBVAL_CHECK_OUTPUT
col = ak.tensor(np.arange(3, dtype=np.float32).reshape(3, 1))
row = ak.tensor(np.arange(4, dtype=np.float32))
print((col * 10 + row).numpy())
print("row.expand(3, 4).strides =", row.expand(3, 4).strides)
try:
    ak.tensor(np.ones(3)) + ak.tensor(np.ones(4))
except ak.ShapeError as e:
    print("ShapeError:", e)

# %% [markdown]
# ## 3. The same matmul on every device, against numpy in float64
#
# Shapes are deliberately awkward (primes, not multiples of any tile size), with a transposed right-hand
# side and a batch. The error is the largest absolute difference from numpy's float64 result, relative
# to its largest magnitude. float32 accumulation over k = 129 terms should stay near 1e-7 to 1e-6;
# float16 storage (where the device has `shader-f16`) near 1e-3.

# %%
rng = np.random.default_rng(0)
A = rng.standard_normal((3, 67, 129))
B = rng.standard_normal((71, 129))  # used transposed: (129, 71)
reference = A @ B.T  # float64


def rel_error(out):
    return float(np.abs(out.numpy().astype(np.float64) - reference).max() / np.abs(reference).max())


errors = {}
for d in [cpu] + gpus[:1]:
    for dtype in ["float32", "float16"]:
        if dtype == "float16" and not d.supports_f16:
            continue
        a = ak.tensor(A, dtype=dtype, device=d)
        b = ak.tensor(B, dtype=dtype, device=d)
        errors[f"{d.spec} {dtype}"] = rel_error(a @ b.T)
errors["numpy float32"] = float(
    np.abs(A.astype(np.float32) @ B.T.astype(np.float32) - reference).max() / np.abs(reference).max()
)

for name, err in errors.items():
    print(f"{name:<18} max relative error {err:.2e}")
    assert err < (2e-3 if "16" in name else 1e-5), name

# %%
fig, ax = plt.subplots(figsize=(6.5, 2.8))
names = list(errors)
ax.barh(names, [errors[n] for n in names], color=["#e6550d" if "16" in n else "#3182bd" for n in names])
ax.set_xscale("log")
ax.axvline(np.finfo(np.float32).eps, color="#3182bd", ls="--", lw=1, label="float32 eps")
ax.axvline(np.finfo(np.float16).eps, color="#e6550d", ls="--", lw=1, label="float16 eps")
ax.invert_yaxis()
ax.set_xlabel("max |error| / max |reference|  (vs numpy float64)")
ax.set_title("(3, 67, 129) @ (129, 71): every device agrees with float64 numpy")
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
fig.tight_layout()

# %% [markdown]
# ## 4. A WGSL kernel
#
# On WebGPU every op is a compute shader in WGSL, one op family per file in `kernels/` (shipped inside
# the wheel). Each file starts with a comment listing its bindings and its workgroup layout; the
# `{{...}}` placeholders (element type, workgroup size, ...) are filled in per call, and the compiled
# pipeline is cached by that specialisation; WGSL that several kernels share (an entry point, row
# reductions, float helpers) comes in through a `//# include` line. Here is the softmax kernel: its
# header, and the work of one row (the entry point and the row reductions are `row_reduce.wgsl`'s).

# %%
from IPython.display import Code

from accelkit.backends.webgpu.wgsl import kernel_source, kernels_dir

print("kernels:", ", ".join(sorted(p.name for p in kernels_dir().glob("*.wgsl"))))
src = kernel_source("softmax")
lines = src.splitlines()
header = [l for l in lines[:25] if l.startswith("//")]
start = next(i for i, l in enumerate(lines) if l.startswith("fn row_kernel"))
Code(
    "\n".join(header + ["", "// ..."] + lines[start : start + 33] + ["    // ... (the streamed branch)"]),
    language="wgsl",
)

# %% [markdown]
# ## 5. Timing, for scale only
#
# A matmul of growing size on numpy (float32), on the CPU backend (numpy plus accelkit's dispatch), and
# on the WebGPU device, waiting for the result each time. **Where the WebGPU device is lavapipe (a
# software rasteriser, as here on CI and Binder), it runs the shader on the CPU: this measures
# correctness plumbing, not GPU speed.** On a real GPU the picture turns around at large sizes.
# Benchmarks proper live in `accelkit bench ops` (see `benchmarks/RESULTS.md`).

# %%
import time


def best_of(fn, x, reps=5, seconds=0.2):  # the fastest of >= reps runs of fn(x) over >= seconds
    fn(x)  # warm-up (pipeline compilation on WebGPU)
    times, until = [], time.perf_counter() + seconds
    while len(times) < reps or time.perf_counter() < until:
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return min(times)


sizes = [64, 256, 512]
timings = {"numpy": [], "accelkit cpu": []}
if gpu is not None:
    timings[f"accelkit {gpu.spec}" + (" (software)" if gpu.is_software else "")] = []
for n in sizes:
    x = rng.standard_normal((n, n)).astype(np.float32)
    timings["numpy"].append(best_of(lambda a: a @ a, x))
    xc = ak.tensor(x, device=cpu)
    timings["accelkit cpu"].append(best_of(lambda a: (a @ a).numpy(), xc))
    if gpu is not None:
        xg = ak.tensor(x, device=gpu)
        timings[list(timings)[-1]].append(best_of(lambda a: (a @ a).numpy(), xg))

for name, ts in timings.items():
    print(
        f"{name:<32}",
        "  ".join(f"n={n}: {t * 1e3:7.2f} ms ({2 * n**3 / t / 1e9:5.1f} GFLOP/s)" for n, t in zip(sizes, ts)),
    )

# %%
fig, ax = plt.subplots(figsize=(6.5, 3))
width = 0.8 / len(timings)
for i, (name, ts) in enumerate(timings.items()):
    ax.bar(
        np.arange(len(sizes)) + (i - (len(timings) - 1) / 2) * width, np.array(ts) * 1e3, width, label=name
    )
ax.set_xticks(range(len(sizes)), [f"{n} x {n} @ {n} x {n}" for n in sizes])
ax.set_yscale("log")
ax.set_ylabel("ms (best run, incl. readback)")
ax.set_title("matmul time; a software WebGPU adapter measures plumbing, not GPU speed")
ax.legend(fontsize=8)
fig.tight_layout()
