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
# # 02 · Hardware: which device, and why
#
# accelkit enumerates every WebGPU adapter (through `wgpu`: Vulkan, Metal or D3D12 underneath) plus its
# CPU backend, ranks them, and picks the best. This notebook shows that list, why the default device
# was chosen, what an adapter offers (features and limits), how to choose a device yourself, and how to
# watch device memory.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

import accelkit as ak

plt.rcParams.update({"figure.dpi": 100, "figure.figsize": (7, 3), "font.size": 9})

# the first WebGPU device: cells that use it are skipped without one (or, under ACCELKIT_REQUIRE_WEBGPU=1, fail)
gpus = [d for d in ak.devices() if d.backend_name == "webgpu"]
if not gpus and os.environ.get("ACCELKIT_REQUIRE_WEBGPU") == "1":
    raise RuntimeError("ACCELKIT_REQUIRE_WEBGPU=1 but no WebGPU adapter was found")
gpu = gpus[0] if gpus else None

# %% [markdown]
# ## 1. Every device, best first
#
# The ranking is: a discrete GPU, an integrated GPU, the CPU backend (numpy on BLAS), then software
# WebGPU adapters (lavapipe/llvmpipe, SwiftShader, WARP). A software adapter compiles WebGPU's compute
# shaders to CPU code (llvmpipe through LLVM) and runs them on the CPU's cores, where a tuned BLAS is
# faster; it still runs every kernel for real, which is what CI uses it for.

# %%
ak.devices()

# %%
for d in ak.devices():
    print(f"{d.spec:<10} {d.kind:<12} backend={d.backend_name:<7} software={d.is_software!s:<5} {d.name}")

# %% [markdown]
# ## 2. Why this device
#
# `ak.device()` returns the best device, or the one named by the environment variable `ACCELKIT_DEVICE`.
# When the best is not a GPU, `fallback_reason` says why, so a slow run is never a silent surprise.

# %%
dev = ak.device()
print("default:", dev.spec, "-", dev.name)
print("fallback_reason:", dev.fallback_reason)

# %% [markdown]
# ## 3. What an adapter offers: features and limits
#
# accelkit asks each adapter for its real features and limits rather than WebGPU's conservative
# defaults. The ones it uses:
#
# | feature / limit | what accelkit does with it |
# |---|---|
# | `shader-f16` | float16 tensors and models (`ak.load(..., dtype="float16")`); without it, float32 only |
# | `subgroup` | row reductions (softmax, layer norm) with subgroup shuffles instead of workgroup memory |
# | `timestamp-query` | device times per kernel in the profiler (see notebook 09) |
# | `max-storage-buffer-binding-size` | the largest tensor one kernel can bind |
# | `max-compute-workgroup-storage-size` | the tile sizes of the matmul and attention kernels |

# %%
if gpu is not None:
    display(gpu)
    wanted = ["shader-f16", "subgroup", "timestamp-query"]
    print("features:", {f: f in gpu.features for f in wanted})
    for name in [
        "max-buffer-size",
        "max-storage-buffer-binding-size",
        "max-compute-workgroup-storage-size",
        "max-compute-invocations-per-workgroup",
        "max-compute-workgroups-per-dimension",
    ]:
        print(f"  {name:<40} {gpu.limits.get(name, 0):>14,}")

# %% [markdown]
# ## 4. The `%accel` magics
#
# `%load_ext accelkit` registers `%accel`: `devices` (the table above, the default marked), `memory`
# (bytes held by live tensors on the default device and every open one), `use` (change the default
# device) and `profile` (notebook 09). `%accel help` lists them all.

# %%
# %load_ext accelkit
# %accel devices

# %%
# %accel memory

# %% [markdown]
# ## 5. Choosing a device explicitly
#
# Ask by spec: `"cpu"`, `"webgpu"` (the best WebGPU adapter, even a software one), `"webgpu:N"`. Tensors
# and models take `device=`; `%accel use SPEC` (or `accelkit.hardware.set_default`) changes what
# `ak.device()` returns for the rest of the session, and `%accel use auto` restores the ranking.

# %%
if gpu is not None:
    print(ak.device("webgpu") is gpu, ak.device(gpu.spec) is gpu)  # the same Device object
    t = ak.ones(2, 3, device="webgpu")
    print(t)
    del t

# %%
if gpu is not None:
    # %accel use webgpu
    print("ak.device() is now", ak.device().spec)
    # %accel use auto
assert ak.device() is dev

# %% [markdown]
# An unknown spec is an error that says what was expected:

# %%
# NBVAL_CHECK_OUTPUT
try:
    ak.device("tpu")
except ak.DeviceError as e:
    print("DeviceError:", e)

# %% [markdown]
# ## 6. Device memory, before and after
#
# `device.memory()` counts the bytes held by live tensors, exactly: `allocated_bytes` now, `peak_bytes`
# since the last `reset_peak()`, the number of `buffers`. On WebGPU, buffers come from a pool of size
# classes (powers of two), so a 4,000,000-byte tensor holds a 4 MiB buffer, and a freed buffer is
# kept (`cached_bytes`, part of `reserved_bytes`) for the next allocation of its size until
# `empty_cache()`.
#
# Below: allocate a 1000 x 1000 float32 tensor, take a strided, transposed view of it (no bytes), copy
# the view (half the bytes), delete the original (nothing is freed: the view still uses its storage),
# then delete everything.

# %%
import gc


def steps(d):
    def mem():
        gc.collect()
        m = d.memory()
        return m["allocated_bytes"], m["reserved_bytes"]

    rows = [("start", *mem())]
    a = ak.zeros(1000, 1000, device=d)
    rows.append(("a = zeros(1000, 1000)", *mem()))
    v = a[:, ::2].T
    rows.append(("v = a[:, ::2].T  (view)", *mem()))
    c = v.contiguous()
    rows.append(("c = v.contiguous()", *mem()))
    del a
    rows.append(("del a  (v still uses it)", *mem()))
    del v, c
    rows.append(("del v, c", *mem()))
    d.empty_cache()
    rows.append(("empty_cache()", *mem()))
    return rows


results = {d.spec: steps(d) for d in [ak.device("cpu")] + gpus[:1]}
for spec, rows in results.items():
    print(spec)
    for label, alloc, reserved in rows:
        print(f"  {label:<28} allocated {alloc:>10,}  reserved {reserved:>10,}")

for rows in results.values():
    alloc = [r[1] for r in rows]
    assert alloc[2] == alloc[1]  # the view allocated nothing
    assert alloc[3] > alloc[2] and alloc[4] == alloc[3]
    assert alloc[5] == alloc[0]  # everything went back

# %%
fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.4), sharey=True, squeeze=False)
for ax, (spec, rows) in zip(axes[0], results.items()):
    labels = [r[0] for r in rows]
    y = np.arange(len(rows))
    ax.barh(y + 0.2, [r[2] / 2**20 for r in rows], height=0.4, color="#c6dbef", label="reserved")
    ax.barh(y - 0.2, [r[1] / 2**20 for r in rows], height=0.4, color="#2171b5", label="allocated")
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel("MiB")
    ax.set_title(spec)
    ax.legend(loc="lower right", fontsize=8)
fig.suptitle("device.memory() after each step")
fig.tight_layout()
