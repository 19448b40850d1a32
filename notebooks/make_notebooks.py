"""Build the walkthrough notebooks (notebooks/NN_*.ipynb) from the cell sources in this file.

The notebooks are the documentation and run as tests (pytest collects them through
notebooks/conftest.py, with nbval in lax mode). Edit the cells here, not in the .ipynb files, then:

    python notebooks/make_notebooks.py                # rewrite every notebook (outputs dropped)
    python notebooks/make_notebooks.py --execute      # rewrite and run them, storing outputs and timing each
    python notebooks/make_notebooks.py --execute 04 07  # only the notebooks whose names start so

Outputs are stored so that the notebooks render with their pictures on GitHub and Binder. Cells
marked ``# NBVAL_CHECK_OUTPUT`` have their output compared by nbval (keep those deterministic:
no timings, no device names, no floats that depend on the BLAS); every other cell only has to run.
Cell ids are stable (``NN-cMM``), and no execution timestamps are recorded, so a rebuild diffs cleanly.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

SETUP = """\
import numpy as np
import matplotlib.pyplot as plt
import accelkit as ak

plt.rcParams.update({"figure.dpi": 72, "figure.figsize": (7, 3), "font.size": 9})"""

# the first WebGPU device, if any (notebooks that use one skip those cells without it, or fail under CI's
# ACCELKIT_REQUIRE_WEBGPU=1)
FIND_GPU = """\
# the first WebGPU device: cells that use it are skipped without one (or, under ACCELKIT_REQUIRE_WEBGPU=1, fail)
import os

gpus = [d for d in ak.devices() if d.backend_name == "webgpu"]
if not gpus and os.environ.get("ACCELKIT_REQUIRE_WEBGPU") == "1":
    raise RuntimeError("ACCELKIT_REQUIRE_WEBGPU=1 but no WebGPU adapter was found")
gpu = gpus[0] if gpus else None"""


def reference(name: str) -> str:
    """Load tests/fixtures/references/<name>.npz (found from the notebook's cwd) and define rel_error."""
    return f"""\
root = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "tests" / "fixtures" / "references").is_dir())
ref = np.load(root / "tests" / "fixtures" / "references" / "{name}.npz")

def rel_error(actual, expected):
    \"\"\"max |actual - expected| / max |expected|, against transformers' float64 reference\"\"\"
    return float(np.abs(np.asarray(actual, np.float64) - expected).max() / np.abs(expected).max())"""


def md(text: str) -> tuple[str, str]:
    return ("markdown", textwrap.dedent(text).strip("\n"))


def code(*parts: str, check: bool = False) -> tuple[str, str]:
    """A code cell from one or more parts (each dedented on its own, joined by a blank line)."""
    body = "\n\n".join(textwrap.dedent(part).strip("\n") for part in parts)
    return ("code", ("# NBVAL_CHECK_OUTPUT\n" + body) if check else body)


NOTEBOOKS: dict[str, list[tuple[str, str]]] = {}


def notebook(name: str):
    def add(fn):
        NOTEBOOKS[name] = fn()
        return fn

    return add


# ============================================================================================ 01
@notebook("01_quickstart")
def _quickstart():
    return [
        md(
            """
            # 01 · Quickstart

            **accelkit** runs transformer models (BERT, ViT, Whisper) on **WebGPU** from Python, through the
            [`wgpu`](https://github.com/pygfx/wgpu-py) package, with a numpy CPU backend as fallback. This notebook
            takes the shortest path through it: pick a device, make a tensor, run an op, load a model and embed
            a few sentences.

            Everything here runs offline on the tiny checkpoints bundled with accelkit. Their weights are
            **random**, so the numbers show that the machinery works, not what a trained model would say.
            """
        ),
        code(SETUP),
        md(
            """
            ## 1. Devices

            `ak.devices()` lists every device accelkit can use, best first: WebGPU adapters (a discrete GPU, then
            an integrated one), the CPU backend (numpy on BLAS), then software WebGPU adapters. In a notebook the
            list shows itself as a table; in a terminal, as text.
            """
        ),
        code("ak.devices()"),
        md(
            """
            `ak.device()` gives the best one. When that is not a GPU, it says why: on a machine whose only WebGPU
            adapter is a software rasteriser (Mesa's *lavapipe*, as on Binder and in CI), numpy on BLAS is faster,
            so the CPU backend wins and the software adapter stays available as `ak.device("webgpu")`.
            """
        ),
        code(
            """
            dev = ak.device()
            print("default device:", dev.spec, "-", dev.name)
            print("why:", dev.fallback_reason or "it is the best device on this machine")
            """
        ),
        md(
            """
            ## 2. A tensor

            `ak.tensor` copies an array to a device. The result's one-line summary (shape, dtype, device, bytes,
            range, mean and standard deviation, NaN/Inf flags) is what `print` shows; the notebook view adds a
            histogram and a preview of the values.
            """
        ),
        code(
            """
            x = ak.tensor(np.arange(12, dtype=np.float32).reshape(3, 4))
            x
            """
        ),
        code(
            """
            print(x.shape, x.dtype.name, x.nbytes, "bytes")
            print(x.numpy())
            """,
            check=True,
        ),
        md(
            """
            ## 3. One op

            Operators (`@`, `+`, `*`, ...) and the functions in `ak.ops` run on the tensor's device and return
            tensors that stay there. Nothing comes back to the host until `.numpy()` asks for it.
            """
        ),
        code(
            """
            gram = x @ x.T          # (3, 3); exact in float32 for these small integers
            print(gram.numpy())
            """,
            check=True,
        ),
        code(
            """
            p = ak.ops.softmax(gram / 100, axis=-1)     # each row sums to 1

            g = x.numpy().astype(np.float64) @ x.numpy().T.astype(np.float64) / 100
            expected = np.exp(g - g.max(axis=-1, keepdims=True))
            expected /= expected.sum(axis=-1, keepdims=True)
            assert np.allclose(p.numpy(), expected, rtol=1e-5, atol=1e-7)
            p
            """
        ),
        md(
            """
            ## 4. A model: `bert-tiny`

            `ak.load` takes a directory in Hugging Face layout (`config.json` + `*.safetensors`), `"hf:org/name"`
            for the Hub, or the name of a bundled checkpoint. The class comes from `config.json`: `bert-tiny` is a
            `BertForSequenceClassification` with 2 layers, 3 heads and a hidden size of 42. Its notebook view is
            the module tree, with parameter counts, bytes and which weights share storage (query, key and value
            are fused into one matrix after loading).
            """
        ),
        code(
            """
            bert = ak.load("bert-tiny")
            print(f"{type(bert).__name__}: {bert.num_parameters():,} parameters, "
                  f"{bert.nbytes() / 1024:.1f} KiB on {bert.device.spec}")
            bert
            """
        ),
        md(
            """
            ### Sentence embeddings and their similarities

            `bert.embed` tokenises, runs the encoder and pools each sentence into one vector: the mean of the
            last hidden states over the real (unpadded) tokens, or the `[CLS]` state. With `normalize=True` the
            vectors have unit length, so their dot products are cosine similarities.

            The sentences come in three pairs that differ by one word.
            """
        ),
        code(
            """
            sentences = [
                "The cat sat on the mat.",
                "The cat sat on a mat.",
                "Is the weather good today?",
                "Is the weather nice today?",
                "The train leaves at noon.",
                "The train leaves at nine.",
            ]
            emb = bert.embed(sentences, pooling="mean", normalize=True)   # (6, 42) numpy float32
            sims = emb @ emb.T

            centred = emb - emb.mean(axis=0)                   # see below
            centred /= np.linalg.norm(centred, axis=1, keepdims=True)
            sims_centred = centred @ centred.T

            assert emb.shape == (len(sentences), bert.config.hidden_size)
            assert np.allclose(np.diag(sims), 1.0, atol=1e-5)
            nearest = np.where(np.eye(len(sentences), dtype=bool), -np.inf, sims_centred).argmax(axis=1)
            assert list(nearest) == [1, 0, 3, 2, 5, 4]           # each sentence finds its pair
            """
        ),
        code(
            """
            fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.9), layout="constrained")
            for ax, m, title in [(axes[0], sims, "cosine similarity"), (axes[1], sims_centred, "after centring")]:
                im = ax.imshow(m, cmap="RdBu_r", vmin=-1, vmax=1)
                for i in range(len(sentences)):
                    for j in range(len(sentences)):
                        ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=7,
                                color="white" if abs(m[i, j]) > 0.6 else "black")
                ax.set_xticks(range(len(sentences)))
                ax.set_title(title)
            axes[0].set_yticks(range(len(sentences)), [f"{s}  {i}" for i, s in enumerate(sentences)])
            axes[1].set_yticks(range(len(sentences)))
            fig.colorbar(im, ax=axes, shrink=0.9)
            fig.suptitle("bert-tiny mean-pooled embeddings (random weights)");
            """
        ),
        md(
            """
            Left: every pair of sentences looks alike (cosine ~0.9). An encoder, random or trained, tends to put
            all its outputs in a narrow cone, so raw cosines are compressed near 1. Subtracting the mean embedding
            (right) removes the shared direction, and the structure shows: each sentence is closest to its
            one-word variant. A random encoder knows which tokens the sentences share, not what they mean; load a
            trained BERT from the Hub (`ak.load("hf:org/name")`, network needed once) and the same code gives
            meaningful similarities.

            ## Where next

            | notebook | what it shows |
            |---|---|
            | [02 hardware](02_hardware.ipynb) | how a device is chosen, features and limits, memory, the `%accel` magics |
            | [03 tensors and kernels](03_tensors_and_kernels.ipynb) | views that never copy, broadcasting, WebGPU vs CPU vs numpy, the WGSL kernels |
            | [04 BERT](04_bert.ipynb) | tokens, attention maps, pooled embeddings, classification, fidelity against transformers |
            | [05 ViT](05_vit.ipynb) | patches, attention from `[CLS]`, classification |
            | [06 Whisper](06_whisper.ipynb) | log-mel features, encoder, greedy decoding, long audio |
            | [07 sharing](07_sharing.ipynb) | one encoder output, several consumers; memory with and without sharing |
            | [08 pool](08_pool.ipynb) | concurrent requests, batching, latency and throughput |
            | [09 profiling](09_profiling.ipynb) | `%%accel profile`: kernel tables, timelines, traces |
            """
        ),
    ]


# ============================================================================================ 02
@notebook("02_hardware")
def _hardware():
    return [
        md(
            """
            # 02 · Hardware: which device, and why

            accelkit enumerates every WebGPU adapter (through `wgpu`: Vulkan, Metal or D3D12 underneath) plus its
            CPU backend, ranks them, and picks the best. This notebook shows that list, why the default device
            was chosen, what an adapter offers (features and limits), how to choose a device yourself, and how to
            watch device memory.
            """
        ),
        code(
            SETUP,
            FIND_GPU,
        ),
        md(
            """
            ## 1. Every device, best first

            The ranking is: a discrete GPU, an integrated GPU, the CPU backend (numpy on BLAS), then software
            WebGPU adapters (lavapipe/llvmpipe, SwiftShader, WARP). A software adapter compiles WebGPU's compute
            shaders to CPU code (llvmpipe through LLVM) and runs them on the CPU's cores, where a tuned BLAS is
            faster; it still runs every kernel for real, which is what CI uses it for.
            """
        ),
        code("ak.devices()"),
        code(
            """
            for d in ak.devices():
                print(f"{d.spec:<10} {d.kind:<12} backend={d.backend_name:<7} software={d.is_software!s:<5} {d.name}")
            """
        ),
        md(
            """
            ## 2. Why this device

            `ak.device()` returns the best device, or the one named by the environment variable `ACCELKIT_DEVICE`.
            When the best is not a GPU, `fallback_reason` says why, so a slow run is never a silent surprise.
            """
        ),
        code(
            """
            dev = ak.device()
            print("default:", dev.spec, "-", dev.name)
            print("fallback_reason:", dev.fallback_reason)
            """
        ),
        md(
            """
            ## 3. What an adapter offers: features and limits

            accelkit asks each adapter for its real features and limits rather than WebGPU's conservative
            defaults. The ones it uses:

            | feature / limit | what accelkit does with it |
            |---|---|
            | `shader-f16` | float16 tensors and models (`ak.load(..., dtype="float16")`); without it, float32 only |
            | `subgroup` | row reductions (softmax, layer norm) with subgroup shuffles instead of workgroup memory |
            | `timestamp-query` | device times per kernel in the profiler (see notebook 09) |
            | `max-storage-buffer-binding-size` | the largest tensor one kernel can bind |
            | `max-compute-workgroup-storage-size` | the tile sizes of the matmul and attention kernels |
            """
        ),
        code(
            """
            if gpu is not None:
                display(gpu)
                wanted = ["shader-f16", "subgroup", "timestamp-query"]
                print("features:", {f: f in gpu.features for f in wanted})
                for name in ["max-buffer-size", "max-storage-buffer-binding-size",
                             "max-compute-workgroup-storage-size", "max-compute-invocations-per-workgroup",
                             "max-compute-workgroups-per-dimension"]:
                    print(f"  {name:<40} {gpu.limits.get(name, 0):>14,}")
            """
        ),
        md(
            """
            ## 4. The `%accel` magics

            `%load_ext accelkit` registers `%accel`: `devices` (the table above, the default marked), `memory`
            (bytes held by live tensors on the default device and every open one), `use` (change the default
            device) and `profile` (notebook 09). `%accel help` lists them all.
            """
        ),
        code(
            """
            %load_ext accelkit
            %accel devices
            """
        ),
        code("%accel memory"),
        md(
            """
            ## 5. Choosing a device explicitly

            Ask by spec: `"cpu"`, `"webgpu"` (the best WebGPU adapter, even a software one), `"webgpu:N"`. Tensors
            and models take `device=`; `%accel use SPEC` (or `accelkit.hardware.set_default`) changes what
            `ak.device()` returns for the rest of the session, and `%accel use auto` restores the ranking.
            """
        ),
        code(
            """
            if gpu is not None:
                print(ak.device("webgpu") is gpu, ak.device(gpu.spec) is gpu)   # the same Device object
                t = ak.ones(2, 3, device="webgpu")
                print(t)
                del t
            """
        ),
        code(
            """
            if gpu is not None:
                %accel use webgpu
                print("ak.device() is now", ak.device().spec)
                %accel use auto
            assert ak.device() is dev
            """
        ),
        md("An unknown spec is an error that says what was expected:"),
        code(
            """
            try:
                ak.device("tpu")
            except ak.DeviceError as e:
                print("DeviceError:", e)
            """,
            check=True,
        ),
        md(
            """
            ## 6. Device memory, before and after

            `device.memory()` counts the bytes held by live tensors, exactly: `allocated_bytes` now, `peak_bytes`
            since the last `reset_peak()`, the number of `buffers`. On WebGPU, buffers come from a pool of size
            classes (powers of two), so a 4,000,000-byte tensor holds a 4 MiB buffer, and a freed buffer is
            kept (`cached_bytes`, part of `reserved_bytes`) for the next allocation of its size until
            `empty_cache()`.

            Below: allocate a 1000 x 1000 float32 tensor, take a strided, transposed view of it (no bytes), copy
            the view (half the bytes), delete the original (nothing is freed: the view still uses its storage),
            then delete everything.
            """
        ),
        code(
            """
            import gc

            def steps(d):
                def mem():
                    gc.collect()
                    m = d.memory()
                    return m["allocated_bytes"], m["reserved_bytes"]

                rows = [("start", *mem())]
                a = ak.zeros(1000, 1000, device=d);  rows.append(("a = zeros(1000, 1000)", *mem()))
                v = a[:, ::2].T;                     rows.append(("v = a[:, ::2].T  (view)", *mem()))
                c = v.contiguous();                  rows.append(("c = v.contiguous()", *mem()))
                del a;                               rows.append(("del a  (v still uses it)", *mem()))
                del v, c;                            rows.append(("del v, c", *mem()))
                d.empty_cache();                     rows.append(("empty_cache()", *mem()))
                return rows

            results = {d.spec: steps(d) for d in [ak.device("cpu")] + gpus[:1]}
            for spec, rows in results.items():
                print(spec)
                for label, alloc, reserved in rows:
                    print(f"  {label:<28} allocated {alloc:>10,}  reserved {reserved:>10,}")

            for rows in results.values():
                alloc = [r[1] for r in rows]
                assert alloc[2] == alloc[1]                 # the view allocated nothing
                assert alloc[3] > alloc[2] and alloc[4] == alloc[3]
                assert alloc[5] == alloc[0]                 # everything went back
            """
        ),
        code(
            """
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
            """
        ),
    ]


# ============================================================================================ 03
@notebook("03_tensors_and_kernels")
def _tensors():
    return [
        md(
            """
            # 03 · Tensors and kernels

            An `ak.Tensor` is a shape, a dtype, strides and an offset over a `Storage` (a device buffer). Slicing,
            transposing, reshaping and broadcasting make new tensors over the same storage, so they never copy.
            Ops dispatch to the tensor's backend: numpy on the CPU, WGSL compute shaders on WebGPU. This notebook
            shows both sides and checks the WebGPU results against numpy in float64.
            """
        ),
        code(
            SETUP,
            FIND_GPU,
            """
            import gc

            cpu = ak.device("cpu")
            """,
        ),
        md(
            """
            ## 1. Views never copy

            Strides are counted in elements. A step in a slice multiplies a stride, an integer index adds to the
            offset and drops the axis, a transpose permutes the strides, `None` inserts an axis of stride 0.
            """
        ),
        code(
            """
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
                print(f"{name:<20} {str(v.shape):<13} {str(v.strides):<13} {v.offset:>6}  {v.is_contiguous!s:<10}  "
                      f"{v.storage is t.storage}")
            print("bytes allocated by the views:", after["allocated_bytes"] - before["allocated_bytes"])
            """,
            check=True,
        ),
        code(
            """
            a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)   # the same views in numpy
            same = {"t": a, "t[1]": a[1], "t[:, ::2]": a[:, ::2], "t[..., ::-1]": a[..., ::-1], "t.T": a.T,
                    "t.permute(1, 0, 2)": a.transpose(1, 0, 2), "t.reshape(6, 4)": a.reshape(6, 4),
                    "t[:, None, 1]": a[:, None, 1]}
            for name, v in views.items():
                assert np.array_equal(v.numpy(), same[name]), name
            assert after["allocated_bytes"] == before["allocated_bytes"]
            assert after["buffers"] == before["buffers"]
            """
        ),
        md(
            """
            `contiguous()` copies only when it has to. Ops take strided views as they are: a matmul reads a
            transposed weight through its strides, so a linear layer never materialises `weight.T`.
            """
        ),
        code(
            """
            r = t.reshape(6, 4)
            assert r.contiguous() is r                       # already dense: no copy
            dense = t.T.contiguous()
            print("t.T.contiguous() copied", dense.nbytes, "bytes; same storage:", dense.storage is t.storage)
            """,
            check=True,
        ),
        md(
            """
            ## 2. Broadcasting, as numpy

            Shapes are aligned from the right; a dimension of 1 stretches. `expand` makes the stretched view
            explicit: the broadcast dimension gets stride 0, so no bytes are repeated.
            """
        ),
        code(
            """
            col = ak.tensor(np.arange(3, dtype=np.float32).reshape(3, 1))
            row = ak.tensor(np.arange(4, dtype=np.float32))
            print((col * 10 + row).numpy())
            print("row.expand(3, 4).strides =", row.expand(3, 4).strides)
            try:
                ak.tensor(np.ones(3)) + ak.tensor(np.ones(4))
            except ak.ShapeError as e:
                print("ShapeError:", e)
            """,
            check=True,
        ),
        md(
            """
            ## 3. The same matmul on every device, against numpy in float64

            Shapes are deliberately awkward (primes, not multiples of any tile size), with a transposed right-hand
            side and a batch. The error is the largest absolute difference from numpy's float64 result, relative
            to its largest magnitude. float32 accumulation over k = 129 terms should stay near 1e-7 to 1e-6;
            float16 storage (where the device has `shader-f16`) near 1e-3.
            """
        ),
        code(
            """
            rng = np.random.default_rng(0)
            A = rng.standard_normal((3, 67, 129))
            B = rng.standard_normal((71, 129))           # used transposed: (129, 71)
            reference = A @ B.T                          # float64

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
                np.abs(A.astype(np.float32) @ B.T.astype(np.float32) - reference).max() / np.abs(reference).max())

            for name, err in errors.items():
                print(f"{name:<18} max relative error {err:.2e}")
                assert err < (2e-3 if "16" in name else 1e-5), name
            """
        ),
        code(
            """
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
            """
        ),
        md(
            """
            ## 4. A WGSL kernel

            On WebGPU every op is a compute shader in WGSL, one op family per file in `kernels/` (shipped inside
            the wheel). Each file starts with a comment listing its bindings and its workgroup layout; the
            `{{...}}` placeholders (element type, workgroup size, ...) are filled in per call, and the compiled
            pipeline is cached by that specialisation. Here is the softmax kernel: its header, and its entry point.
            """
        ),
        code(
            """
            from IPython.display import Code
            from accelkit.backends.webgpu.wgsl import kernel_source, kernels_dir

            print("kernels:", ", ".join(sorted(p.name for p in kernels_dir().glob("*.wgsl"))))
            src = kernel_source("softmax")
            lines = src.splitlines()
            header = [l for l in lines[:25] if l.startswith("//")]
            start = next(i for i, l in enumerate(lines) if l.startswith("@compute"))
            Code("\\n".join(header + ["", "// ..."] + lines[start:start + 33] + ["    // ... (the streamed branch)"]),
                 language="wgsl")
            """
        ),
        md(
            """
            ## 5. Timing, for scale only

            A matmul of growing size on numpy (float32), on the CPU backend (numpy plus accelkit's dispatch), and
            on the WebGPU device, waiting for the result each time. **Where the WebGPU device is lavapipe (a
            software rasteriser, as here on CI and Binder), it runs the shader on the CPU: this measures
            correctness plumbing, not GPU speed.** On a real GPU the picture turns around at large sizes.
            Benchmarks proper live in `accelkit bench ops` (see `benchmarks/RESULTS.md`).
            """
        ),
        code(
            """
            import time

            def best_of(fn, reps=5, seconds=0.2):            # the fastest of >= reps runs over >= seconds
                fn()                                         # warm-up (pipeline compilation on WebGPU)
                times, until = [], time.perf_counter() + seconds
                while len(times) < reps or time.perf_counter() < until:
                    start = time.perf_counter()
                    fn()
                    times.append(time.perf_counter() - start)
                return min(times)

            sizes = [64, 256, 512]
            timings = {"numpy": [], "accelkit cpu": []}
            if gpu is not None:
                timings[f"accelkit {gpu.spec}" + (" (software)" if gpu.is_software else "")] = []
            for n in sizes:
                x = rng.standard_normal((n, n)).astype(np.float32)
                timings["numpy"].append(best_of(lambda: x @ x))
                xc = ak.tensor(x, device=cpu)
                timings["accelkit cpu"].append(best_of(lambda: (xc @ xc).numpy()))
                if gpu is not None:
                    xg = ak.tensor(x, device=gpu)
                    timings[list(timings)[-1]].append(best_of(lambda: (xg @ xg).numpy()))

            for name, ts in timings.items():
                print(f"{name:<32}", "  ".join(f"n={n}: {t * 1e3:7.2f} ms ({2 * n**3 / t / 1e9:5.1f} GFLOP/s)"
                                               for n, t in zip(sizes, ts)))
            """
        ),
        code(
            """
            fig, ax = plt.subplots(figsize=(6.5, 3))
            width = 0.8 / len(timings)
            for i, (name, ts) in enumerate(timings.items()):
                ax.bar(np.arange(len(sizes)) + (i - (len(timings) - 1) / 2) * width, np.array(ts) * 1e3, width,
                       label=name)
            ax.set_xticks(range(len(sizes)), [f"{n} x {n} @ {n} x {n}" for n in sizes])
            ax.set_yscale("log")
            ax.set_ylabel("ms (best run, incl. readback)")
            ax.set_title("matmul time; a software WebGPU adapter measures plumbing, not GPU speed")
            ax.legend(fontsize=8)
            fig.tight_layout()
            """
        ),
    ]


# ============================================================================================ 04
@notebook("04_bert")
def _bert():
    return [
        md(
            """
            # 04 · BERT, inside out

            `accelkit/models/bert.py` is BERT in one file, with transformers' module and weight names, so a
            checkpoint saved by `save_pretrained` loads as is. This notebook tokenises text, runs the encoder,
            recomputes one layer's attention probabilities from the model's own query and key projections,
            pools embeddings, classifies, and finally checks the outputs against transformers' (committed
            reference outputs for the same random weights).
            """
        ),
        code(
            SETUP,
            """
import math
from pathlib import Path
from accelkit import nn, ops

bert = ak.load("bert-tiny")
cfg = bert.config
print(type(bert).__name__, "on", bert.device.spec)
print(f"{cfg.num_hidden_layers} layers, {cfg.num_attention_heads} heads, hidden {cfg.hidden_size}, "
      f"vocab {cfg.vocab_size}, labels {bert.id2label}")""",
        ),
        md(
            """
            ## 1. Tokens

            `bert.encode` uses the checkpoint's `tokenizer.json` (WordPiece, lower-cased): `[CLS]` first, `[SEP]`
            after each text, `##` marking a piece that continues a word. A batch is padded on the right with
            `[PAD]` (id 0) and `attention_mask` marks the real tokens; a text pair gets `token_type_ids` 1 on its
            second part.
            """
        ),
        code(
            """
            texts = ["The cat sat on the mat.", "Is the weather good today?"]
            enc = bert.encode(texts)
            tokens = [[bert.tokenizer.id_to_token(int(i)) for i in row] for row in enc["input_ids"]]
            for row, mask in zip(tokens, enc["attention_mask"]):
                print(" ".join(tok for tok, m in zip(row, mask) if m), f"  ({mask.sum()} of {len(mask)} real)")
            print(enc["input_ids"])

            pair = bert.encode([("Is the weather good today?", "Tomorrow will be sunny.")])
            print("pair token types:", pair["token_type_ids"][0])
            """,
            check=True,
        ),
        md(
            """
            ## 2. Forward

            One call records every dispatch of the forward pass (on WebGPU, into one command encoder) and
            returns tensors that stay on the device. `output_hidden_states=True` also returns every layer's
            input: `hidden_states[i]` goes into layer `i` (counting from 0), so `hidden_states[0]` is the
            embedding output and the last one equals `last_hidden_state`.
            """
        ),
        code(
            """
            out = bert(**enc, output_hidden_states=True)
            for name, value in out.items():
                shapes = [tuple(h.shape) for h in value] if isinstance(value, list) else tuple(value.shape)
                print(f"{name:<18} {shapes}")
            """,
            check=True,
        ),
        md(
            """
            ## 3. Attention maps, recomputed from the model's query and key

            The model's attention runs as one fused kernel that never writes the attention probabilities to
            memory. To look at them, recompute one layer by hand from its modules:

            $$P_h = \\mathrm{softmax}\\Big(\\frac{Q_h K_h^\\top}{\\sqrt{d}} + M\\Big), \\qquad Q = x W_q^\\top + b_q,\\; K = x W_k^\\top + b_k$$

            where `x` is the layer's input, `d` the head size (14) and `M` the additive padding mask (0 for real
            tokens, -1e9 for padding). `nn.split_heads` reshapes (B, T, H·d) to (B, H, T, d) as a view. Then check
            that `P_h V_h` equals what the fused kernel computed.
            """
        ),
        code(
            """
            mask = bert.bert.additive_mask(enc["attention_mask"], enc["input_ids"].shape)   # (B, 1, 1, T)
            H = cfg.num_attention_heads
            D = cfg.hidden_size // H

            def attention_probs(layer_index):
                sa = bert.bert.encoder.layer[layer_index].attention.self
                x = out.hidden_states[layer_index]                                   # the layer's input
                q, k, v = (nn.split_heads(lin(x), H) for lin in (sa.query, sa.key, sa.value))   # (B, H, T, D)
                probs = ops.softmax(q @ k.mT * (1 / math.sqrt(D)) + mask, axis=-1)   # (B, H, T, T)
                by_hand = (probs @ v).permute(0, 2, 1, 3).reshape(x.shape)          # heads merged: (B, T, C)
                fused = sa(x, mask)                                                  # the model's own kernel
                err = np.abs(by_hand.numpy() - fused.numpy()).max()
                assert err < 1e-5, err
                return probs.numpy()

            probs = [attention_probs(i) for i in range(cfg.num_hidden_layers)]
            print("probabilities per layer:", probs[0].shape, "; rows sum to 1:", np.allclose(probs[0].sum(-1), 1, atol=1e-5))
            pad = enc["attention_mask"][1] == 0
            assert (probs[0][1][..., pad] == 0).all()                    # padding gets no attention
            """
        ),
        code(
            """
            n = int(enc["attention_mask"][0].sum())
            labels = tokens[0][:n]
            vmax = max(p[0, :, :n, :n].max() for p in probs)
            fig, axes = plt.subplots(cfg.num_hidden_layers, H, figsize=(3.1 * H, 3.0 * cfg.num_hidden_layers))
            for layer in range(cfg.num_hidden_layers):
                for head in range(H):
                    ax = axes[layer, head]
                    ax.imshow(probs[layer][0, head, :n, :n], cmap="Blues", vmin=0, vmax=vmax)
                    ax.set_xticks(range(n), labels, rotation=90, fontsize=7)
                    ax.set_yticks(range(n), labels, fontsize=7)
                    ax.set_title(f"layer {layer}, head {head}", fontsize=9)
            fig.suptitle(f"attention probabilities (query row -> key column): {texts[0]!r}")
            fig.tight_layout()
            """
        ),
        md(
            """
            ## 4. Pooled embeddings

            BERT's *pooler* is `tanh(W h_[CLS] + b)`: the classifier reads it. For sentence embeddings,
            `bert.embed` pools the last hidden states instead, either the `[CLS]` state or the mean over real
            tokens. Here, four pairs of sentences that differ by one word, their mean embeddings projected on
            their first two principal components, each pair joined by a line.
            """
        ),
        code(
            """
            print("pooler_output:", out.pooler_output)
            assert np.allclose(bert.embed(texts, pooling="cls"), out.last_hidden_state[:, 0].numpy(), atol=1e-6)

            corpus = ["The cat sat on the mat.", "The cat sat on a mat.",
                      "A dog ran in the park.", "A dog ran in the garden.",
                      "Is the weather good today?", "Is the weather nice today?",
                      "The train leaves at noon.", "The train leaves at nine."]
            e = bert.embed(corpus, pooling="mean")
            centred = e - e.mean(axis=0)
            _, s, vt = np.linalg.svd(centred, full_matrices=False)
            xy = centred @ vt[:2].T

            fig, ax = plt.subplots(figsize=(6.5, 3.6))
            for k in range(0, len(corpus), 2):
                colour = plt.cm.tab10(k // 2)
                ax.plot(xy[k:k + 2, 0], xy[k:k + 2, 1], "o-", color=colour)
                for i in (k, k + 1):
                    above = xy[i, 1] >= xy[k + (i == k), 1]
                    ax.annotate(corpus[i], xy[i], fontsize=8, color=colour, xytext=(6, 5 if above else -12),
                                textcoords="offset points")
            ax.set_xlabel(f"PC 1 ({s[0]**2 / (s**2).sum():.0%} of variance)")
            ax.set_ylabel(f"PC 2 ({s[1]**2 / (s**2).sum():.0%})")
            ax.set_title("mean-pooled bert-tiny embeddings (random weights)")
            ax.margins(x=0.45, y=0.15)
            fig.tight_layout()
            """
        ),
        md(
            """
            ## 5. Classification

            `bert-tiny` is a `BertForSequenceClassification` with three labels in its `config.json`
            (`id2label`). `out.logits` is (B, 3); `out.labels(top_k)` and `bert.classify(texts)` turn logits into
            (label, probability) pairs. The weights are random, so the labels are too.
            """
        ),
        code(
            """
            print(out.logits)
            for text, top in zip(texts, out.labels(top_k=3)):
                print(f"{text!r:32}", ", ".join(f"{label} {p:.2f}" for label, p in top))
            assert out.labels(top_k=3) == bert.classify(texts, top_k=3)

            probs_cls = np.exp(out.logits.numpy() - out.logits.numpy().max(-1, keepdims=True))
            probs_cls /= probs_cls.sum(-1, keepdims=True)
            fig, ax = plt.subplots(figsize=(6.5, 1.8))
            left = np.zeros(len(texts))
            for i, label in bert.id2label.items():
                ax.barh(texts, probs_cls[:, i], left=left, label=label)
                left += probs_cls[:, i]
            ax.set_xlim(0, 1)
            ax.invert_yaxis()
            ax.set_xlabel("probability")
            ax.legend(ncol=3, fontsize=8, loc="lower right", bbox_to_anchor=(1, 1))
            fig.tight_layout()
            """
        ),
        md(
            """
            ## 6. Fidelity: the same numbers as transformers

            `tests/fixtures/references/bert-tiny.npz` holds transformers' outputs (computed in float64) for this
            very checkpoint on three inputs: a short text, a text pair, and a long text with an out-of-vocabulary
            character, padded to 35 tokens. Run them on every device and compare; the error is the largest
            absolute difference relative to the largest reference value, and must stay under 2e-4.
            """
        ),
        code(
            reference("bert-tiny"),
            """
            inputs = {k: ref[k] for k in ("input_ids", "attention_mask", "token_type_ids")}

            devices = [ak.device("cpu")] + [d for d in ak.devices() if d.backend_name == "webgpu"][:1]
            fields = ["last_hidden_state", "pooler_output", "logits"]
            fidelity = {}
            for d in devices:
                model = bert if d is bert.device else ak.load("bert-tiny", device=d)
                o = model(**inputs)
                fidelity[d.spec] = {f: rel_error(o[f], ref[f]) for f in fields}
            for spec, errs in fidelity.items():
                print(f"{spec:<10}", "  ".join(f"{f} {e:.1e}" for f, e in errs.items()))
            """,
        ),
        code(
            """
            for f in fields:
                worst = max(errs[f] for errs in fidelity.values())
                print(f"{f:<18} within 2e-4 of transformers: {worst < 2e-4}")
                assert worst < 2e-4
            """,
            check=True,
        ),
    ]


# ============================================================================================ 05
@notebook("05_vit")
def _vit():
    return [
        md(
            """
            # 05 · ViT: an image as a sequence of patches

            A Vision Transformer cuts the image into square patches, embeds each patch with one matrix multiply,
            prepends a `[CLS]` token, adds position embeddings and runs a (pre-LayerNorm) transformer encoder; the
            classifier reads the final `[CLS]` state. The bundled `vit-tiny` takes 30 x 30 images in 6 x 6 patches:
            5 x 5 = 25 patches plus `[CLS]` = 26 tokens, 5 labels. Its weights are random.
            """
        ),
        code(
            SETUP,
            """
import math
from pathlib import Path
from accelkit import nn, ops

vit = ak.load("vit-tiny")
cfg = vit.config
side = cfg.image_size // cfg.patch_size
print(f"{type(vit).__name__}: image {cfg.image_size}, patch {cfg.patch_size} -> {side} x {side} patches, "
      f"hidden {cfg.hidden_size}, {cfg.num_hidden_layers} layers x {cfg.num_attention_heads} heads")
print("labels:", vit.id2label)""",
        ),
        md(
            """
            ## 1. An image, preprocessed

            `vit.preprocess` follows the checkpoint's `preprocessor_config.json` exactly as transformers'
            `ViTImageProcessor` does: resize (bilinear) to 30 x 30, scale to [0, 1], normalise with mean 0.5 and
            std 0.5, channels first. The picture is the sample photo that ships with matplotlib.
            """
        ),
        code(
            """
            from PIL import Image
            import matplotlib.cbook

            try:
                image = np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"))
            except (OSError, ValueError):                    # no sample data: a generated test card
                from accelkit.models.demo import _image
                image = _image(128)
            pixels = vit.preprocess(image)                    # (1, 3, 30, 30) float32
            print(image.shape, image.dtype, "->", pixels.shape, pixels.dtype,
                  f"range [{pixels.min():.2f}, {pixels.max():.2f}]")

            shown = (pixels[0].transpose(1, 2, 0) + 1) / 2    # undo the normalisation for display
            fig, axes = plt.subplots(1, 2, figsize=(6, 3))
            axes[0].imshow(image); axes[0].set_title(f"original {image.shape[1]} x {image.shape[0]}")
            axes[1].imshow(shown); axes[1].set_title("what the model sees: 30 x 30")
            for ax in axes:
                ax.axis("off")
            fig.tight_layout()
            """
        ),
        md(
            """
            ## 2. The patch grid

            The patch embedding is a convolution with kernel = stride = 6: each of the 25 patches (a 6 x 6 x 3
            block, 108 numbers) is flattened and multiplied by the same (108 -> 36) matrix. accelkit does it
            as a strided view of the image and one matmul. Token 0 is `[CLS]`; token `1 + r * 5 + c` is the patch in
            row `r`, column `c`.
            """
        ),
        code(
            """
            fig, ax = plt.subplots(figsize=(3.6, 3.6))
            ax.imshow(shown, extent=(0, cfg.image_size, cfg.image_size, 0))
            for k in range(1, side):
                ax.axhline(k * cfg.patch_size, color="white", lw=1)
                ax.axvline(k * cfg.patch_size, color="white", lw=1)
            for r in range(side):
                for c in range(side):
                    ax.text((c + 0.5) * cfg.patch_size, (r + 0.5) * cfg.patch_size, str(1 + r * side + c),
                            color="yellow", ha="center", va="center", fontsize=9, weight="bold")
            ax.set_title("tokens 1..25: one per 6 x 6 patch")
            ax.axis("off")
            fig.tight_layout()

            patches = vit.vit.embeddings.patch_embeddings(ak.tensor(pixels))     # (1, 25, 36)
            print("patch embeddings:", patches)
            """
        ),
        md(
            """
            ## 3. Classification

            `vit.classify(images, top_k)` preprocesses, runs the model and returns (label, probability) pairs;
            `vit(pixel_values).logits` gives the raw logits.
            """
        ),
        code(
            """
            out = vit(pixels, output_hidden_states=True)
            logits = out.logits.numpy()[0]
            probs = np.exp(logits - logits.max()); probs /= probs.sum()
            print(vit.classify(image, top_k=3))

            labels = [vit.id2label[i] for i in range(len(logits))]
            fig, axes = plt.subplots(1, 2, figsize=(7, 2.4))
            axes[0].bar(labels, logits, color=["#3182bd" if l >= 0 else "#e6550d" for l in logits])
            axes[0].axhline(0, color="black", lw=0.5)
            axes[0].set_title("logits")
            axes[1].bar(labels, probs, color="#31a354")
            axes[1].set_ylim(0, 1)
            axes[1].set_title("softmax probabilities (random weights)")
            fig.tight_layout()
            """
        ),
        md(
            """
            ## 4. Where `[CLS]` looks

            Recompute the last layer's attention from its own modules, as in notebook 04, but ViT is pre-LN: the
            layer normalises its input (`layernorm_before`) before projecting queries and keys. Row 0 of each
            head's probability matrix is how much `[CLS]` attends to each patch; reshaped to 5 x 5, it lies over
            the image. The check at the end confirms the recomputation matches the model's fused kernel.
            """
        ),
        code(
            """
            H = cfg.num_attention_heads
            D = cfg.hidden_size // H
            last = cfg.num_hidden_layers - 1
            layer = vit.vit.encoder.layer[last]
            sa = layer.attention.attention
            x = layer.layernorm_before(out.hidden_states[last])                      # (1, 26, 36)
            q, k, v = (nn.split_heads(lin(x), H) for lin in (sa.query, sa.key, sa.value))
            attn = ops.softmax(q @ k.mT * (1 / math.sqrt(D)), axis=-1)              # (1, H, 26, 26)
            by_hand = (attn @ v).permute(0, 2, 1, 3).reshape(x.shape)
            assert np.abs(by_hand.numpy() - sa(x).numpy()).max() < 1e-5

            cls_attn = attn.numpy()[0, :, 0, 1:].reshape(H, side, side)
            fig, axes = plt.subplots(1, H, figsize=(3 * H, 3))
            for h, ax in enumerate(axes):
                ax.imshow(shown.mean(axis=-1), extent=(0, 1, 1, 0), cmap="gray")
                ax.imshow(cls_attn[h], extent=(0, 1, 1, 0), cmap="inferno", alpha=0.55, interpolation="nearest")
                ax.set_title(f"layer {last}, head {h}: [CLS] -> patches", fontsize=9)
                ax.axis("off")
            fig.tight_layout()
            print(f"[CLS] keeps {attn.numpy()[0, :, 0, 0].round(3)} of its attention on itself, per head")
            """
        ),
        md(
            """
            ## 5. Position embeddings

            Each token gets a learnt position embedding added. Below, for every patch position, its cosine
            similarity to every other position's embedding, laid out on the 5 x 5 grid. In a trained ViT
            these maps show the image's 2-D layout (neighbours are similar, rows and columns stand out); with
            random weights each position is only similar to itself.
            """
        ),
        code(
            """
            pos = vit.vit.embeddings.position_embeddings.numpy()[0, 1:]             # (25, 36), [CLS] dropped
            unit = pos / np.linalg.norm(pos, axis=-1, keepdims=True)
            sim = unit @ unit.T
            fig, axes = plt.subplots(side, side, figsize=(4.2, 4.2))
            for i, ax in enumerate(axes.flat):
                ax.imshow(sim[i].reshape(side, side), cmap="viridis", vmin=-1, vmax=1)
                ax.set_xticks([]); ax.set_yticks([])
            fig.suptitle("position-embedding similarity (row r, col c: patch r*5+c vs all)", fontsize=9)
            fig.tight_layout()
            """
        ),
        md(
            """
            ## 6. Fidelity against transformers

            `tests/fixtures/references/vit-tiny.npz` holds two odd-sized images, transformers' preprocessing of
            them, and its outputs for this checkpoint. The preprocessing must match exactly, the outputs to 2e-4.
            """
        ),
        code(
            reference("vit-tiny"),
            """

            mine = vit.preprocess(list(ref["images"]))
            o = vit(mine)
            errors = {
                "pixel_values": rel_error(mine, ref["pixel_values"]),
                "last_hidden_state": rel_error(o.last_hidden_state.numpy(), ref["last_hidden_state"]),
                "logits": rel_error(o.logits.numpy(), ref["logits"]),
            }
            print({k: f"{v:.1e}" for k, v in errors.items()})
            """,
        ),
        code(
            """
            print("preprocessing identical:", errors["pixel_values"] < 1e-6)
            print("outputs within 2e-4:", errors["last_hidden_state"] < 2e-4 and errors["logits"] < 2e-4)
            assert errors["pixel_values"] < 1e-6 and errors["last_hidden_state"] < 2e-4 and errors["logits"] < 2e-4
            """,
            check=True,
        ),
    ]


# ============================================================================================ 06
@notebook("06_whisper")
def _whisper():
    return [
        md(
            """
            # 06 · Whisper: audio in, tokens out

            Whisper is an encoder-decoder transformer. The audio becomes a log-mel spectrogram (80 mel bands x 3000
            frames of 10 ms = a 30 s window); the encoder turns it into 1500 vectors; the decoder writes tokens one
            at a time, attending to them, after a prompt that names the language and the task. The bundled
            `whisper-tiny` has Whisper's structure at toy size (d_model 48, 2 + 2 layers) and random weights: the
            text it writes is gibberish, but every step is the real one.
            """
        ),
        code(
            SETUP,
            """
from pathlib import Path

whisper = ak.load("whisper-tiny")
cfg = whisper.config
fe = whisper.feature_extractor
print(f"d_model {cfg.d_model}, {cfg.encoder_layers} + {cfg.decoder_layers} layers, {cfg.num_mel_bins} mel bins, "
      f"{cfg.max_source_positions} encoder positions, {cfg.max_target_positions} decoder positions, "
      f"vocab {cfg.vocab_size}")
print(fe)""",
        ),
        md(
            """
            ## 1. A signal

            No recording ships with accelkit, so make a speech-like one: a voice whose pitch glides around 140 Hz,
            with harmonics, in syllable-like bursts, sampled at 16 kHz (Whisper's rate).
            """
        ),
        code(
            """
            rate = 16000

            def voice(seconds, f0=140.0, seed=0):
                rng = np.random.default_rng(seed)
                t = np.arange(int(seconds * rate)) / rate
                pitch = f0 + 30 * np.sin(2 * np.pi * 0.7 * t)
                phase = 2 * np.pi * np.cumsum(pitch) / rate
                wave = sum(np.sin(k * phase) / k for k in (1, 2, 3, 5, 8))
                syllables = 0.5 * (1 - np.cos(2 * np.pi * 3 * t)) * (t < seconds - 0.2)
                return (0.2 * wave * syllables + 0.003 * rng.standard_normal(t.size)).astype(np.float32)

            audio = voice(2.5)
            fig, ax = plt.subplots(figsize=(7, 1.8))
            ax.plot(np.arange(audio.size) / rate, audio, lw=0.4)
            ax.set_xlabel("seconds"); ax.set_title("2.5 s of synthetic voice at 16 kHz")
            fig.tight_layout()
            """
        ),
        md(
            """
            ## 2. The log-mel spectrogram

            The feature extractor (numpy, matching transformers' `WhisperFeatureExtractor`) pads the audio to 30 s,
            takes a 25 ms Hann-windowed FFT every 10 ms, maps the power onto 80 mel bands, takes log10, clips to
            8 (80 dB) below the maximum and rescales to roughly [-1, 1]. The padding is silence, which shows as
            the flat floor after 2.5 s.
            """
        ),
        code(
            """
            features = fe([audio], sampling_rate=rate)          # (1, 80, 3000) float32
            print(features.shape, features.dtype)

            fig, axes = plt.subplots(2, 1, figsize=(7, 4.2), gridspec_kw={"height_ratios": [2, 1]})
            axes[0].imshow(features[0, :, :300], origin="lower", aspect="auto", cmap="magma",
                           extent=(0, 3.0, 0, cfg.num_mel_bins), interpolation="nearest")
            axes[0].set_title("log-mel features, first 3 s"); axes[0].set_ylabel("mel band")
            axes[1].imshow(features[0], origin="lower", aspect="auto", cmap="magma", extent=(0, 30, 0, cfg.num_mel_bins),
                           interpolation="nearest")
            axes[1].set_title("the whole 30 s window the encoder sees (zero-padded)")
            axes[1].set_xlabel("seconds"); axes[1].set_ylabel("mel band")
            fig.tight_layout()
            """
        ),
        md(
            """
            ## 3. The encoder

            Two 1-D convolutions (the second with stride 2) take the 3000 frames to 1500 positions of 20 ms,
            position embeddings are added, then the transformer layers run. The output stays on the device; the
            decoder's cross-attention reads it at every step.
            """
        ),
        code(
            """
            encoded = whisper.encode(features)                  # (1, 1500, 48)
            print(encoded)
            fig, ax = plt.subplots(figsize=(7, 2.2))
            ax.imshow(encoded.numpy()[0, :150].T, aspect="auto", cmap="RdBu_r", extent=(0, 3.0, cfg.d_model, 0),
                      interpolation="nearest")
            ax.set_xlabel("seconds (first 150 of 1500 positions)"); ax.set_ylabel("channel")
            ax.set_title("encoder output")
            fig.tight_layout()
            """
        ),
        md(
            """
            ## 4. The prompt: language and task tokens

            The decoder starts from a prompt of special tokens, as in transformers' `generate`:
            `<|startoftranscript|>`, a language (`<|en|>`, `<|fr|>`, ...), a task (`<|transcribe|>` writes the
            spoken language, `<|translate|>` writes English), and `<|notimestamps|>` (no time tokens in the text).
            With no language given, Whisper detects it: the first decoder step's logits, restricted to the
            language tokens, pick one.
            """
        ),
        code(
            """
            tok = whisper.tokenizer
            for language, task in [("en", "transcribe"), ("fr", "translate"), ("fr", None), (None, None)]:
                ids = whisper.prompt_ids(language=language, task=task)
                shown = " ".join("<language: detected>" if i is None else tok.id_to_token(i) for i in ids)
                print(f"language={language!s:<5} task={task!s:<11} -> {shown}")
            """,
            check=True,
        ),
        code(
            """
            print("detected language:", whisper.detect_language(encoder_hidden_states=encoded))
            """
        ),
        md(
            """
            ## 5. Greedy decoding

            `generate` runs the decoder step by step on the device: per layer a key/value cache is filled in place,
            the encoder's keys and values are projected once, suppressed tokens are masked inside the logits matmul,
            and the argmax is taken on the device, so each step reads back only the chosen token id. It stops at
            `<|endoftext|>` or after `max_new_tokens`.
            """
        ),
        code(
            """
            ids = whisper.generate(encoder_hidden_states=encoded, language="en", task="transcribe", max_new_tokens=16)
            print(ids)
            print([tok.id_to_token(int(i)) for i in ids[0]])
            print("text:", repr(tok.decode(ids[0], skip_special_tokens=True)))
            """
        ),
        md(
            """
            ## 6. A longer recording: chunking and resampling

            `transcribe` takes audio of any length, rate and channel count: it mixes to mono, resamples to 16 kHz,
            cuts the audio into 30 s windows, decodes the windows in batches and joins their texts. Here: 70 s at
            44.1 kHz, so three windows (30 + 30 + 10 s).
            """
        ),
        code(
            """
            from accelkit.preprocess import chunk_audio, resample

            long_16k = np.concatenate([voice(10, f0=110 + 15 * i, seed=i) for i in range(7)])   # 70 s
            long_44k = resample(long_16k, 16000, 44100)
            chunks = chunk_audio(long_16k, 16000, fe.chunk_length)    # what transcribe() does after resampling
            print(f"{long_44k.size / 44100:.0f} s at 44.1 kHz -> windows of", [f"{c.size / 16000:.0f} s" for c in chunks])

            fig, ax = plt.subplots(figsize=(7, 1.8))
            ax.plot(np.arange(long_44k.size) / 44100, long_44k, lw=0.2)
            for edge in np.cumsum([c.size / 16000 for c in chunks])[:-1]:
                ax.axvline(edge, color="red", lw=1.5)
            ax.set_xlabel("seconds"); ax.set_title("70 s of audio; red: where transcribe() cuts 30 s windows")
            fig.tight_layout()

            text = whisper.transcribe(long_44k, sampling_rate=44100, language="en", max_new_tokens=12)
            print("transcript:", repr(text))
            """
        ),
        md(
            """
            ## 7. Fidelity against transformers

            `tests/fixtures/references/whisper-tiny.npz` holds 3.2 s of audio, transformers' features, encoder
            output and logits for it, and the token ids its greedy `generate` wrote for English transcription and
            translation. The features and outputs must match to 2e-4, and the ids exactly.
            """
        ),
        code(
            reference("whisper-tiny"),
            """

            feats = fe([ref["audio"]], sampling_rate=int(ref["sampling_rate"]))
            o = whisper(ref["input_features"], ref["decoder_input_ids"])
            errors = {
                "input_features": rel_error(feats, ref["input_features"]),
                "encoder_last_hidden_state": rel_error(o.encoder_last_hidden_state.numpy(), ref["encoder_last_hidden_state"]),
                "logits": rel_error(o.logits.numpy(), ref["logits"]),
            }
            print({k: f"{v:.1e}" for k, v in errors.items()})
            same_ids = {
                task: np.array_equal(
                    whisper.generate(encoder_hidden_states=o.encoder_last_hidden_state, language="en", task=task,
                                     max_new_tokens=20),
                    ref[f"generated_ids_{task}"])
                for task in ("transcribe", "translate")
            }
            """,
        ),
        code(
            """
            print("features and outputs within 2e-4:", all(e < 2e-4 for e in errors.values()))
            print("greedy ids identical to transformers':", same_ids)
            assert all(e < 2e-4 for e in errors.values()) and all(same_ids.values())
            """,
            check=True,
        ),
    ]


# ============================================================================================ 07
@notebook("07_sharing")
def _sharing():
    return [
        md(
            """
            # 07 · Sharing device memory between models

            Two patterns save device memory when several models, or several uses of one model, need the same
            tensors:

            * **named shared tensors**: a producer *publishes* a tensor (say, Whisper's encoder output); consumers
              *acquire* it and get a view, a new `Tensor` over the same device storage, so the work runs once and
              the bytes exist once. Every handle is counted; the storage is freed when the last one is released.
            * **weight dedup**: loading weights identical to those a live model on the same device holds (same
              content hash, dtype and shape) reuses that model's storage.

            All byte counts below are measured with `device.memory()`, not estimated.
            """
        ),
        code(
            SETUP,
            """
import gc
from accelkit import ops

dev = ak.device()

def allocated():
    gc.collect()
    return dev.memory()["allocated_bytes"]""",
        ),
        md(
            """
            ## 1. One Whisper encoder output, two decoders

            Transcribing and translating the same audio both need the encoder output: 1500 x 48 float32 here,
            1500 x 1280 (7.7 MB per 30 s) for whisper-large. Without sharing, each job encodes the audio and holds
            its own copy while it decodes; with sharing, the encoder runs once, and each job acquires a view of its
            output.
            """
        ),
        code(
            """
            whisper = ak.load("whisper-tiny", device=dev)
            t = np.arange(2 * 16000) / 16000
            audio = (0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(np.pi * t / 2)).astype(np.float32)
            features = whisper.feature_extractor([audio], sampling_rate=16000)
            jobs = {"transcribe": dict(language="en", task="transcribe"), "translate": dict(language="fr", task="translate")}
            for job in jobs.values():                        # warm-up: generate caches its token masks on the device
                whisper.generate(features, max_new_tokens=1, **job)

            encoder_runs = 0
            def encode(features):
                global encoder_runs
                encoder_runs += 1
                return whisper.encode(features)

            # without sharing: each job encodes and holds its own copy while both jobs are live
            base = allocated()
            own = {name: encode(features) for name in jobs}
            held_separately = allocated() - base
            texts_separate = {name: whisper.generate(encoder_hidden_states=own[name], max_new_tokens=8, **job)
                              for name, job in jobs.items()}
            runs_separate, encoder_runs = encoder_runs, 0
            del own
            assert allocated() == base

            # with sharing: publish once, every job acquires a view
            with ak.sharing.publish("audio/encoder", encode(features), owner="whisper.encoder"):
                held_shared = allocated() - base
                handles = {name: ak.sharing.acquire("audio/encoder", consumer=name) for name in jobs}
                assert allocated() - base == held_shared              # acquiring allocates nothing
                texts_shared = {name: whisper.generate(encoder_hidden_states=handles[name].tensor, max_new_tokens=8, **job)
                                for name, job in jobs.items()}
                report = ak.sharing.report()
                for h in handles.values():
                    h.release()
            runs_shared = encoder_runs
            assert allocated() == base                                 # freed with the last handle

            for name in jobs:
                assert np.array_equal(texts_separate[name], texts_shared[name])
                print(f"{name:<11}", repr(whisper.tokenizer.decode(texts_shared[name][0], skip_special_tokens=False)))
            print(f"encoder runs: {runs_separate} separately, {runs_shared} shared; "
                  f"bytes held: {held_separately:,} separately, {held_shared:,} shared")
            assert runs_shared == 1 and held_shared * 2 == held_separately
            """
        ),
        code(
            """
            print("encoder runs, separately / shared:", runs_separate, "/", runs_shared)
            print("shared holds half the bytes:", held_shared * 2 == held_separately)
            print("same token ids either way:", all(np.array_equal(texts_separate[k], texts_shared[k]) for k in jobs))
            """,
            check=True,
        ),
        md(
            """
            The report, taken while both consumers held their views: who published what, who holds it, how many
            views were served and the bytes they did not copy. (It also lists deduplicated weights; see section 3.)
            """
        ),
        code("report"),
        md(
            """
            ## 2. BERT hidden states, a classifier and a similarity search

            One BERT forward pass serves two consumers: a classifier reads the pooled output, a similarity search
            reads the `[CLS]` hidden states. Without sharing, each consumer runs its own forward pass and holds its
            own outputs.
            """
        ),
        code(
            """
            bert = ak.load("bert-tiny", device=dev)
            corpus = ["the cat sat on the mat", "a dog ran in the park", "the cat slept on a mat", "trains leave at noon"]
            enc = bert.encode(corpus)

            def classify(pooled):
                return bert.classifier(pooled)

            def similarities(hidden):
                cls = hidden[:, 0]
                unit = cls / ops.sqrt(ops.sum(cls * cls, axis=-1, keepdims=True))
                return ops.matmul(unit, unit.T)

            base = allocated()
            a, b = bert.bert(**enc), bert.bert(**enc)                     # one forward each
            logits_separate, sims_separate = classify(a.pooler_output), similarities(b.last_hidden_state)
            bert_separately = allocated() - base
            logits_separate, sims_separate = logits_separate.numpy(), sims_separate.numpy()
            del a, b
            gc.collect()

            base = allocated()
            out = bert.bert(**enc)                                          # one forward for both
            with ak.sharing.publish("text/hidden", out.last_hidden_state, owner="bert"), \\
                 ak.sharing.publish("text/pooled", out.pooler_output, owner="bert"):
                del out
                with ak.sharing.acquire("text/pooled", consumer="classifier") as p, \\
                     ak.sharing.acquire("text/hidden", consumer="search") as h:
                    logits, sims = classify(p.tensor), similarities(h.tensor)
                    bert_shared = allocated() - base
                    logits, sims = logits.numpy(), sims.numpy()

            assert np.array_equal(logits, logits_separate) and np.allclose(sims, sims_separate, atol=1e-6)
            print(f"device bytes while both consumers ran: {bert_separately:,} separately, {bert_shared:,} shared")
            np.fill_diagonal(sims, -np.inf)
            for i, j in enumerate(sims.argmax(axis=1)):
                print(f"{corpus[i]!r:26} is closest to {corpus[j]!r}")
            """
        ),
        md(
            """
            ## 3. Weight dedup: the same checkpoint loaded twice

            Dedup is on by default. A second `ak.load` of weights a live model already holds on that device adds
            (almost) nothing: its parameters are views of the first model's storages. `ak.sharing.no_dedup()` gives
            private copies, which is what the bars compare.
            """
        ),
        code(
            """
            def load_cost(make):
                before = allocated()
                model = make()
                return model, allocated() - before

            # `bert` (section 2) is alive, so its weights are on the device already
            with ak.sharing.no_dedup():
                private, private_bytes = load_cost(lambda: ak.load("bert-tiny", device=dev))
            second, second_bytes = load_cost(lambda: ak.load("bert-tiny", device=dev))
            print(f"loading bert-tiny again: {private_bytes:,} B without dedup, {second_bytes:,} B with dedup")
            assert second_bytes < 0.05 * private_bytes
            assert np.array_equal(second(**enc).logits.numpy(), bert(**enc).logits.numpy())
            """
        ),
        code(
            """
            fig, axes = plt.subplots(1, 3, figsize=(9, 2.8))
            panels = [
                ("Whisper encoder output\\n(transcribe + translate)", held_separately, held_shared),
                ("BERT outputs\\n(classifier + search)", bert_separately, bert_shared),
                ("second load of bert-tiny", private_bytes, second_bytes),
            ]
            for ax, (title, without, with_) in zip(axes, panels):
                bars = ax.bar(["without\\nsharing", "with\\nsharing"], [without / 1024, with_ / 1024],
                              color=["#bdbdbd", "#31a354"])
                ax.bar_label(bars, fmt="%.1f KiB", fontsize=8)
                ax.set_title(title, fontsize=9)
                ax.set_ylabel("device KiB (measured)")
                ax.margins(y=0.2)
            fig.suptitle(f"device.memory() on {dev.spec}")
            fig.tight_layout()
            """
        ),
        md(
            """
            The report now lists what the live models share; the module tree of either model marks each shared
            weight too (`shared: dedup: also in bert-tiny#...`).
            """
        ),
        code(
            """
            rep = ak.sharing.report()
            assert rep.dedup_bytes_saved > 0
            print(next(f"{name}: {p.shared}" for name, p in second.named_parameters() if p.shared and "dedup" in p.shared))
            rep
            """
        ),
    ]


# ============================================================================================ 08
@notebook("08_pool")
def _pool():
    return [
        md(
            """
            # 08 · A pool: many requests, several models, one device

            `ak.Pool` runs model calls concurrently from any number of threads (or an asyncio loop): one worker
            thread per device takes requests in arrival order, and requests for the same model that arrive within a
            short window run as one **batch** (BERT inputs padded to the longest and cut back after, ViT and
            Whisper inputs stacked). Every request gets a `concurrent.futures.Future` whose value is the model's
            output copied to numpy. A request that fails fails alone.
            """
        ),
        code(
            SETUP,
            """
import threading
import time

dev = ak.device()
bert = ak.load("bert-tiny", device=dev)
vit = ak.load("vit-tiny", device=dev)
rng = np.random.default_rng(0)

def bert_request():
    n = int(rng.integers(4, 40))
    return {"input_ids": rng.integers(5, bert.config.vocab_size, size=(1, n))}

def vit_request():
    return {"pixel_values": rng.standard_normal((1, 3, 30, 30)).astype(np.float32)}""",
        ),
        md(
            """
            ## 1. submit, map, await

            `submit(model, **inputs)` queues one call and returns a Future. `map` submits many and yields their
            results in order. `await pool.run(...)` does the same from asyncio without blocking the event loop
            (Jupyter runs top-level `await`). Models are loaded models (yours: the pool never unloads them) or
            names `ak.load` accepts, which the pool loads on first use.
            """
        ),
        code(
            """
            import asyncio

            pool = ak.Pool(dev, max_batch_size=16, batch_window=0.005)
            x = bert_request()
            future = pool.submit(bert, **x)
            result = future.result()
            print(type(future).__name__, "->", {k: (v.shape, v.dtype.name) for k, v in result.items() if hasattr(v, "shape")})
            assert np.allclose(result["logits"], bert(**x).logits.numpy(), atol=1e-5)

            images = [vit_request() for _ in range(6)]
            labels = [vit.id2label[int(o["logits"].argmax())] for o in pool.map(vit, images)]
            print("map:", labels)

            outs = await asyncio.gather(*(pool.run(vit, **im) for im in images))
            assert [vit.id2label[int(o["logits"].argmax())] for o in outs] == labels
            print("await: the same", len(outs), "results")

            by_name = pool.submit("bert-tiny", **x).result()      # the pool loads its own bert-tiny
            assert np.allclose(by_name["logits"], result["logits"], atol=1e-5)
            print("by name:", [m["name"] for m in pool.stats().models])
            """
        ),
        md(
            """
            ## 2. Batching

            Eight threads submit a burst of mixed BERT and ViT requests, first to a pool with
            `max_batch_size=1` (each request its own forward pass), then with batches of up to 16. A batch pays
            the fixed cost of a forward pass once (Python, op dispatch and, on WebGPU, recording and submitting
            every kernel), and on small models that fixed cost is most of the work, so batching raises
            throughput and, in a burst, cuts latency too; padding BERT inputs to the longest in the batch gives
            a little of it back. Latency is from `submit` to result: in a burst it is mostly time spent waiting
            in the queue. (Timings on a shared machine are noisy: the numbers are measured, not asserted.)
            """
        ),
        code(
            """
            def workload(pool, n, threads=8):
                requests = [(bert, bert_request()) if i % 2 else (vit, vit_request()) for i in range(n)]
                futures = [None] * n
                def work(k):
                    for i in range(k, n, threads):
                        model, inputs = requests[i]
                        futures[i] = pool.submit(model, **inputs)
                start = time.perf_counter()
                ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
                for t in ts: t.start()
                for t in ts: t.join()
                for f in futures: f.result()
                return time.perf_counter() - start

            runs = {}
            targets = [(ak.device("cpu"), 160)] + [(d, 64) for d in ak.devices() if d.backend_name == "webgpu"][:1]
            for device, n in targets:
                models = (bert, vit)
                if device is not dev:                                    # the same checkpoints on that device
                    bert, vit = ak.load("bert-tiny", device=device), ak.load("vit-tiny", device=device)
                for batch in (1, 16):
                    with ak.Pool(device, max_batch_size=batch, batch_window=0.003) as p:
                        workload(p, n=16)                                 # warm-up
                    with ak.Pool(device, max_batch_size=batch, batch_window=0.003) as p:
                        seconds = workload(p, n)
                        s = runs[device.spec, batch] = p.stats()
                    print(f"{device.spec:<9} max_batch_size={batch:>2}: {s.completed} requests in {seconds:.2f} s, "
                          f"{s.batches} batches (mean {s.mean_batch_size:.1f}), p50 {s.p50_ms:.0f} ms, "
                          f"p95 {s.p95_ms:.0f} ms, {s.throughput_rps:.0f} req/s")
                    assert s.completed == n and s.failed == 0
                bert, vit = models
            assert all(runs[spec, 16].batches < runs[spec, 16].completed for spec, _ in runs)
            """
        ),
        code(
            """
            specs = list(dict.fromkeys(spec for spec, _ in runs))
            fig, axes = plt.subplots(1, 2, figsize=(8, 2.8))
            x = np.arange(len(specs))
            for i, batch in enumerate((1, 16)):
                at, colour = x + (i - 0.5) * 0.4, ["#bdbdbd", "#31a354"][i]
                axes[0].bar(at, [runs[s, batch].throughput_rps for s in specs], 0.4, color=colour,
                            label=f"max_batch_size {batch}")
                axes[1].bar(at, [runs[s, batch].p50_ms for s in specs], 0.4, color=colour)
                axes[1].scatter(at, [runs[s, batch].p95_ms for s in specs], marker="_", s=600, color="black",
                                label="p95" if i else None)
            labels = [s + (" (software)" if ak.device(s).is_software else "") for s in specs]
            axes[0].set_xticks(x, labels); axes[0].set_ylabel("requests / s"); axes[0].set_title("throughput")
            axes[0].legend(fontsize=8)
            axes[1].set_xticks(x, labels); axes[1].set_ylabel("ms"); axes[1].set_title("latency: p50 (bars), p95")
            axes[1].legend(fontsize=8, loc="upper left")
            fig.suptitle("a burst of mixed BERT/ViT requests from 8 threads")
            fig.tight_layout()
            """
        ),
        md("The stats of the batched CPU run, as the pool shows them:"),
        code('runs["cpu", 16]'),
        md(
            """
            ## 3. A failing request fails alone

            A request with a token id outside the vocabulary lands in a batch with good ones. The batch fails, the
            pool reruns its requests one at a time, and only the bad request's future gets the exception
            (`ak.InputError`, with a message saying what was wrong). The others complete, and the pool keeps
            serving.
            """
        ),
        code(
            """
            good = [bert_request() for _ in range(6)]
            bad = {"input_ids": np.array([[2, 7, 70000, 3]])}
            futures = [pool.submit(bert, **x) for x in good[:3]] + [pool.submit(bert, **bad)] + \\
                      [pool.submit(bert, **x) for x in good[3:]]
            for i, f in enumerate(futures):
                error = f.exception()
                print(i, "ok" if error is None else f"{type(error).__name__}: {error}")
            assert sum(f.exception() is not None for f in futures) == 1
            assert isinstance(futures[3].exception(), ak.InputError)
            print("still serving:", pool.submit(vit, **vit_request()).result()["logits"].shape)
            """,
            check=True,
        ),
        md(
            """
            ## 4. A live view

            `LiveView` re-renders any HTML every `interval` seconds from a background thread while a kernel is
            attached (an ipywidgets `HTML`): here, the pool's stats while a load runs. In a static rendering of this
            notebook it shows the state when it was displayed; the cell after it shows the final stats (their
            throughput counts from the pool's first request, so the pauses between these cells are in it).
            """
        ),
        code(
            """
            from accelkit.notebook.reprs import html_of
            from accelkit.notebook.widgets import LiveView

            view = LiveView(lambda: html_of(pool.stats()), interval=0.2, text=lambda: pool.stats().text())
            display(view)
            with view:                                    # refreshes during the block and once at its end
                workload(pool, n=160)
            print("live view updates:", view.updates)
            """
        ),
        code(
            """
            pool.close()                                   # drains the queue, stops the worker
            stats = pool.stats()
            assert stats.failed == 1 and stats.completed == stats.submitted - 1
            stats
            """
        ),
    ]


# ============================================================================================ 09
@notebook("09_profiling")
def _profiling():
    return [
        md(
            """
            # 09 · Profiling: where the time goes

            `ak.profile()` records every dispatch on a device with its host time and, on WebGPU adapters with the
            `timestamp-query` feature, its device time (each dispatch gets its own compute pass with timestamp
            writes while a profile listens). On the CPU backend the op runs where it is recorded, so its host time
            *is* its device time. `%%accel profile` wraps a cell in it and shows the result: a kernel table, a
            timeline, and on request a Chrome trace.
            """
        ),
        code(
            SETUP,
            FIND_GPU,
            """
import json
import tempfile
from pathlib import Path

cpu = ak.device("cpu")

bert = ak.load("bert-tiny", device=cpu)
enc = bert.encode(["The cat sat on the mat.", "Is the weather good today?", "Trains leave at noon."])
bert(**enc).logits.numpy();   # warm-up""",
        ),
        md(
            """
            ## 1. `%%accel profile` on a BERT forward (CPU backend)

            `-o prof` keeps the `Profile` in the namespace; `--device` picks the device (default: the default
            device). In a notebook the timeline is drawn too.
            """
        ),
        code("%load_ext accelkit"),
        code(
            """
            %%accel profile --device cpu -o prof
            out = bert(**enc)
            out.logits.numpy()
            """
        ),
        md(
            """
            ## 2. The kernel table, as data

            `prof.kernels()` gives per-kernel totals (calls, device and host time, FLOPs) most expensive first;
            `prof.table(top)` the same as text; `prof.summary()` everything as plain data.
            """
        ),
        code(
            """
            print(prof.table(top=6))
            s = prof.summary()
            print(f"\\n{s['dispatches']} dispatches, device {s['gpu_ms']:.2f} ms of {s['wall_ms']:.2f} ms wall: busy {s['gpu_busy']:.0%}")
            assert s["dispatches"] == len(prof.records) > 0
            """
        ),
        md(
            """
            ## 3. The same forward on WebGPU, with device timestamps

            Warm up first: the first run on WebGPU compiles every kernel specialisation, and the first profile
            creates the timestamp query set. Here `device ms` comes from the adapter's timestamp queries. The
            **GPU busy share** is device time over wall time: how much of the cell the device spent running
            kernels, the rest being Python, recording, submission and the readback wait. Where the adapter is
            lavapipe, the "device" is software on the CPU, so these times say how the kernels compare with each
            other, not how fast a GPU is.
            """
        ),
        code(
            """
            if gpu is not None:
                bert_gpu = ak.load("bert-tiny", device=gpu)
                bert_gpu(**enc).logits.numpy()                 # compile the pipelines
                with ak.profile(gpu):                          # the first profile also creates the query set
                    bert_gpu(**enc).logits.numpy()
                with ak.profile(gpu, label="bert-tiny forward") as prof_gpu:
                    bert_gpu(**enc).logits.numpy()
                print(f"{gpu.spec}: timestamps {prof_gpu.has_gpu_times}, GPU busy {prof_gpu.gpu_busy:.0%}")
                assert prof_gpu.has_gpu_times == ("timestamp-query" in gpu.features)
                display(prof_gpu)
            """
        ),
        md(
            """
            The timelines: one bar per dispatch, in the host lane when it was recorded and in the device lane
            when it ran. The two lanes have different clocks (the host's and the adapter's), each starting at its
            own first event. On the CPU backend recording *is* running; on WebGPU the device runs the whole
            forward after the host has recorded and submitted it.
            """
        ),
        code(
            """
            profiles = {"cpu": prof} | ({gpu.spec: prof_gpu} if gpu is not None else {})
            fig, axes = plt.subplots(len(profiles), 1, figsize=(8, 2.2 * len(profiles)), squeeze=False)
            for ax, (name, p) in zip(axes[:, 0], profiles.items()):
                p.plot(ax=ax)
            fig.tight_layout()
            """
        ),
        md(
            """
            Per kernel family, side by side (the CPU backend's kernels are named `cpu.<op>`):
            """
        ),
        code(
            """
            def per_kernel(p):
                return {k.kernel.removeprefix("cpu."): k.gpu_ms for k in p.kernels()}

            tables = {name: per_kernel(p) for name, p in profiles.items()}
            kernels = sorted(set().union(*tables.values()), key=lambda k: -max(t.get(k, 0) for t in tables.values()))
            fig, ax = plt.subplots(figsize=(7, 2.6))
            width = 0.8 / len(tables)
            for i, (name, t) in enumerate(tables.items()):
                ax.bar(np.arange(len(kernels)) + (i - (len(tables) - 1) / 2) * width, [t.get(k, 0) for k in kernels],
                       width, label=name + (" (software)" if name != "cpu" and gpu.is_software else ""))
            ax.set_xticks(range(len(kernels)), kernels, rotation=20)
            ax.set_ylabel("device ms")
            ax.set_title("bert-tiny forward, batch of 3: device time per kernel")
            ax.legend(fontsize=8)
            fig.tight_layout()
            """
        ),
        md(
            """
            ## 4. A Chrome trace

            `--trace FILE` (or `prof.save_trace(FILE)`) writes the dispatches as Chrome trace events: a host lane
            and, with timestamps, a device lane. Open the file in [Perfetto](https://ui.perfetto.dev) or
            `chrome://tracing`. (Here it goes to a temporary directory; IPython expands `{...}` in magic lines.)
            The line form `%accel profile STATEMENT` profiles one statement.
            """
        ),
        code(
            """
            with tempfile.TemporaryDirectory() as tmp:
                trace_file = Path(tmp) / "bert_trace.json"
                %accel profile --device cpu --trace {trace_file} -q bert(**enc).logits.numpy()
                events = json.loads(trace_file.read_text())["traceEvents"]
            print(json.dumps(next(e for e in events if e.get("ph") == "X"), indent=1))
            """
        ),
        code(
            """
            lanes = sorted({e["args"]["name"] for e in events if e.get("name") == "thread_name"})
            spans = [e for e in events if e.get("ph") == "X"]
            print("lanes:", lanes)
            print("a host and a device span per dispatch:", len(spans) == 2 * len(prof.records))
            """,
            check=True,
        ),
        md(
            """
            ## 5. Profiling code of your own

            `ak.profile(device)` is a context manager; anything that runs ops inside it is recorded, e.g. one
            attention call and the softmax of a larger matrix:
            """
        ),
        code(
            """
            d = gpu or cpu
            rng = np.random.default_rng(0)
            q = ak.tensor(rng.standard_normal((2, 4, 128, 32)), device=d)
            ak.ops.scaled_dot_product_attention(q, q, q).numpy()           # warm-up
            with ak.profile(d) as p:
                ak.ops.scaled_dot_product_attention(q, q, q, is_causal=True)
                ak.ops.softmax(ak.tensor(rng.standard_normal((512, 1000)), device=d)).numpy()
            print(p.table())
            """
        ),
    ]


# ============================================================================================ build


def build(name: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python", "pygments_lexer": "ipython3"},
    }
    prefix = name.split("_", 1)[0]
    for i, (kind, source) in enumerate(cells):
        cell = (
            nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source)
        )
        cell.id = f"{prefix}-c{i:02d}"
        nb.cells.append(cell)
    return nb


def execute(nb: nbformat.NotebookNode, timeout: int = 600) -> float:
    from nbclient import NotebookClient

    if not os.environ.get("XDG_RUNTIME_DIR"):  # Mesa's Vulkan loader complains without one
        xdg = Path(tempfile.gettempdir()) / f"accelkit-xdg-{os.getuid()}"
        xdg.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(xdg)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(HERE)}},
    )
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("only", nargs="*", help="notebook name prefixes (default: all)")
    parser.add_argument("--execute", action="store_true", help="run each notebook and store its outputs")
    args = parser.parse_args(argv)
    total = 0.0
    for name, cells in NOTEBOOKS.items():
        if args.only and not any(name.startswith(p) for p in args.only):
            continue
        nb = build(name, cells)
        path = HERE / f"{name}.ipynb"
        if args.execute:
            seconds = execute(nb)
            total += seconds
            print(f"{name}: executed in {seconds:.1f} s", file=sys.stderr)
        nbformat.validate(nb)
        nbformat.write(nb, path)
        print(
            f"wrote {path.relative_to(HERE.parent)} ({path.stat().st_size / 1024:.0f} KiB)", file=sys.stderr
        )
    if args.execute:
        print(f"total {total:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
