# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
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
# # 10 · WebNN: build a graph once, dispatch it many times
#
# `accelkit.webnn` is the W3C [WebNN API](https://www.w3.org/TR/webnn/) in Python spelling
# (snake_case methods, options and descriptor keys). A graph is built once with `MLGraphBuilder`,
# compiled with `build()`, and run many times with `MLContext.dispatch()` on `MLTensor`s, on the
# CPU (numpy) or on WebGPU. Here we build BERT's first encoder layer from `tiny-random-bert`'s weights and
# check it against `ak.load("tiny-random-bert")`, then a small CNN, on both devices.

# %%
import os

import numpy as np

import accelkit as ak
from accelkit import webnn

gpus = [d for d in ak.devices() if d.backend_name == "webgpu"]
if not gpus and os.environ.get("ACCELKIT_REQUIRE_WEBGPU") == "1":
    raise RuntimeError("ACCELKIT_REQUIRE_WEBGPU=1 but no WebGPU adapter was found")
contexts = {"cpu": webnn.ml.create_context(device="cpu")}
if gpus:
    contexts["webgpu"] = webnn.ml.create_context(device=gpus[0])
contexts

# %% [markdown]
# ## What each context supports
# `op_support_limits()` lists, per op and operand, the data types and ranks this context takes
# (float16 only where the device has `shader-f16`).

# %%
# NBVAL_CHECK_OUTPUT
limits = contexts["cpu"].op_support_limits()
print("ops:", len([k for k, v in limits.items() if isinstance(v, dict) and "data_types" not in v]))
print("conv2d input:", limits["conv2d"]["input"])
print("gather indices:", limits["gather"]["indices"])
print("input data types:", limits["input"]["data_types"])

# %% [markdown]
# ## A transformer block: BERT's first encoder layer
# The hidden states after `tiny-random-bert`'s embeddings go in; the layer's weights become graph
# constants (transposed to (in, out) for `matmul`). Post-LN BERT: self-attention, residual +
# layer norm, GELU MLP, residual + layer norm.

# %%
bert = ak.load("tiny-random-bert", device="cpu")
cfg = bert.config
ids = np.array([[2, 17, 93, 211, 8, 45, 300, 3]])
mask = np.ones_like(ids)
ref = bert.base(ids, attention_mask=mask, output_hidden_states=True)
x_in = ref.hidden_states[0].numpy()  # (1, T, C) after the embeddings
want = ref.hidden_states[1].numpy()  # after layer 0
sd = {k: v.numpy() for k, v in bert.state_dict().items()}
print("hidden states in:", x_in.shape, " heads:", cfg.num_attention_heads)


# %%
def bert_layer(g, x, p, heads, eps):
    """One post-LN BERT encoder layer on a (B, T, C) operand; p holds the layer's weights."""
    b, t, c = x.shape
    d = c // heads

    def const(name, transpose=False):
        a = p[name].T.copy() if transpose else p[name]
        return g.constant({"data_type": "float32", "shape": list(a.shape)}, a)

    def linear(h, name):
        return g.add(g.matmul(h, const(name + ".weight", True)), const(name + ".bias"))

    def split_heads(h):  # (B, T, C) -> (B, H, T, D)
        return g.transpose(g.reshape(h, [b, t, heads, d]), permutation=[0, 2, 1, 3])

    q = split_heads(linear(x, "attention.self.query"))
    k = split_heads(linear(x, "attention.self.key"))
    v = split_heads(linear(x, "attention.self.value"))
    scores = g.mul(
        g.matmul(q, g.transpose(k, permutation=[0, 1, 3, 2])), g.constant("float32", 1 / np.sqrt(d))
    )
    attn = g.matmul(g.softmax(scores, 3), v)  # (B, H, T, D)
    attn = g.reshape(g.transpose(attn, permutation=[0, 2, 1, 3]), [b, t, c])
    h1 = g.layer_normalization(
        g.add(linear(attn, "attention.output.dense"), x),
        axes=[2],
        scale=const("attention.output.LayerNorm.weight"),
        bias=const("attention.output.LayerNorm.bias"),
        epsilon=eps,
    )
    mlp = linear(g.gelu(linear(h1, "intermediate.dense")), "output.dense")
    return g.layer_normalization(
        g.add(mlp, h1),
        axes=[2],
        scale=const("output.LayerNorm.weight"),
        bias=const("output.LayerNorm.bias"),
        epsilon=eps,
    )


prefix = "bert.encoder.layer.0."
layer0 = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}
graphs = {}
for name, ctx in contexts.items():
    g = webnn.MLGraphBuilder(ctx)
    x = g.input("x", {"data_type": "float32", "shape": list(x_in.shape)})
    graphs[name] = g.build({"y": bert_layer(g, x, layer0, cfg.num_attention_heads, cfg.layer_norm_eps)})
graphs

# %% [markdown]
# Dispatch on each device through `MLTensor`s (write the input, dispatch, read the output) and
# compare with the layer output of `ak.load("tiny-random-bert")`:

# %%
outputs = {}
for name, ctx in contexts.items():
    tx = ctx.create_tensor({"data_type": "float32", "shape": list(x_in.shape), "writable": True})
    ty = ctx.create_tensor({"data_type": "float32", "shape": list(want.shape), "readable": True})
    ctx.write_tensor(tx, x_in)
    ctx.dispatch(graphs[name], {"x": tx}, {"y": ty})
    outputs[name] = ctx.read_tensor(ty)
    print(
        f"{name:7s} layer 0 output {outputs[name].shape}, max abs diff {np.abs(outputs[name] - want).max():.2e}"
    )

# %%
# NBVAL_CHECK_OUTPUT
print(
    "on every device, matches ak.load('tiny-random-bert') layer 0 (max abs diff < 1e-4):",
    all(np.abs(out - want).max() < 1e-4 for out in outputs.values()),
)

# %% [markdown]
# The graph is a list of steps in topological order; `graph.run` is the whole graph as one
# function of accelkit Tensors, compiled by `build()` with `ak.compile`: a dispatch replays its plan.

# %%
steps = graphs["cpu"].summary()
print(len(steps), "steps:", " ".join(s["op"] for s in steps))

# %% [markdown]
# With the profiler listening, one dispatch on WebGPU shows its kernels: `build()` fused the graph
# into as many as `ak.compile` of the model's own layer runs (one matmul for q, k and v against their
# weights concatenated at build time, one attention kernel writing the heads back in (B, T, H, D),
# the other matmuls with their bias and GELU epilogues, two layer norms with their residuals):

# %%
if "webgpu" in contexts:
    ctx = contexts["webgpu"]
    tx = ctx.tensor_from(ak.tensor(x_in, device=ctx.device))  # an accelkit Tensor as an MLTensor, no copy
    ty = ctx.create_tensor({"data_type": "float32", "shape": list(want.shape), "readable": True})
    ctx.dispatch(graphs["webgpu"], {"x": tx}, {"y": ty})  # warm up: pipelines compile on first use
    with ak.profile(ctx.device) as prof:
        ctx.dispatch(graphs["webgpu"], {"x": tx}, {"y": ty})
        ctx.read_tensor(ty)
    display(prof)  # noqa: F821 - IPython's display

# %% [markdown]
# ## A small CNN
# conv2d (padding 1) → relu → max pool → grouped conv2d with bias → relu → global average pool →
# gemm → softmax, with random weights, checked against a numpy float64 reference.

# %%
rng = np.random.default_rng(0)
img = rng.uniform(0, 1, (2, 1, 12, 12)).astype(np.float32)
w1 = rng.normal(0, 0.5, (4, 1, 3, 3)).astype(np.float32)
w2 = rng.normal(0, 0.5, (8, 2, 3, 3)).astype(np.float32)
b2 = rng.normal(0, 0.1, (8,)).astype(np.float32)
wf = rng.normal(0, 0.5, (8, 3)).astype(np.float32)


def cnn(g, x):
    def c(a):
        return g.constant({"data_type": "float32", "shape": list(a.shape)}, a)

    h = g.relu(g.conv2d(x, c(w1), padding=[1, 1, 1, 1]))
    h = g.max_pool2d(h, window_dimensions=[2, 2], strides=[2, 2])
    h = g.relu(g.conv2d(h, c(w2), groups=2, bias=c(b2)))
    h = g.reshape(g.average_pool2d(h), [2, 8])
    return g.softmax(g.gemm(h, c(wf)), 1)


def cnn_reference(x):
    def conv(x, w, pad=0, groups=1):
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        n, cin, h, wd = x.shape
        o, cg, kh, kw = w.shape
        out = np.zeros((n, o, h - kh + 1, wd - kw + 1))
        og = o // groups
        for gi in range(groups):
            for i in range(kh):
                for j in range(kw):
                    patch = x[:, gi * cg : (gi + 1) * cg, i : i + out.shape[2], j : j + out.shape[3]]
                    out[:, gi * og : (gi + 1) * og] += np.einsum(
                        "nchw,oc->nohw", patch, w[gi * og : (gi + 1) * og, :, i, j]
                    )
        return out

    h = np.maximum(conv(x.astype(np.float64), w1, 1), 0)
    h = h.reshape(2, 4, 6, 2, 6, 2).max(axis=(3, 5))
    h = np.maximum(conv(h, w2, groups=2) + b2[None, :, None, None], 0)
    z = h.mean(axis=(2, 3)) @ wf
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


# %%
expected = cnn_reference(img)
probs = {}
for name, ctx in contexts.items():
    g = webnn.MLGraphBuilder(ctx)
    graph = g.build({"probs": cnn(g, g.input("img", {"data_type": "float32", "shape": [2, 1, 12, 12]}))})
    probs[name] = ctx.compute(graph, {"img": img})["probs"]  # convenience: numpy in, numpy out
    print(
        f"{name:7s} probs {probs[name].shape}, max abs diff from numpy float64 {np.abs(probs[name] - expected).max():.2e}"
    )

# %%
# NBVAL_CHECK_OUTPUT
print(
    "on every device: rows sum to 1 and match numpy float64 (atol 1e-5):",
    all(np.allclose(p.sum(1), 1) and np.allclose(p, expected, atol=1e-5) for p in probs.values()),
)

# %% [markdown]
# ## Errors are the spec's
# Bad arguments raise `MLTypeError` (a `TypeError` and an `ak.AccelkitError`) naming the op, the
# argument and what was expected; a builder builds once (`InvalidStateError` after that).

# %%
# NBVAL_CHECK_OUTPUT
g = webnn.MLGraphBuilder(contexts["cpu"])
x = g.input("x", {"data_type": "float32", "shape": [2, 3]})
for bad in (
    lambda: g.matmul(x, x),
    lambda: g.softmax(x, 2),
    lambda: g.input("ids", {"dataType": "float64", "shape": [1]}),
):
    try:
        bad()
    except webnn.MLTypeError as exc:
        print(type(exc).__name__, "-", exc)
g.build({"y": g.relu(x)})
try:
    g.build({"z": x})
except webnn.InvalidStateError as exc:
    print(type(exc).__name__, "-", exc)
