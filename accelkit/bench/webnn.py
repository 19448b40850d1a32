"""``accelkit bench webnn``: host time per ``MLContext.dispatch`` of a WebNN graph, beside the same
computation as eager accelkit op calls and as an ``ak.compile`` replay, in the same process.

The graph is BERT's first encoder layer built with the WebNN builder from ``tiny-random-bert``'s weights.
Three ways are timed: ``webnn dispatch`` (the graph's compiled plan, replayed on a device that
replays), ``eager layer call`` (the model's own ``encoder.layer[0]`` module called on accelkit
Tensors, one Python op call after another) and ``compiled layer replay`` (``ak.compile`` of that
same eager call: the compiled model replay the WebNN dispatch is measured against); a fourth,
``graph.run (same steps)``, replays the graph's own steps with fresh output tensors and no
dispatch validation, which separates what the graph's structure costs (its kernel count) from
what ``dispatch`` adds. Each way is
called ``--iterations`` times (default 1,000) in a loop after a warm-up; ``host_us`` is the wall
time of the loop divided by the iterations, measured up to the last call returning (recorded work
still in flight on a GPU), ``thread_cpu_us`` the CPU time of the calling thread alone (on a software
adapter such as lavapipe, whose submit can wait for the device's work, the cost of the host's own
work), and ``synced_us`` includes waiting for the device at the end. ``gpu_dispatches`` is the
replayed plan's kernel count, ``execution`` what the last call did ("replayed plan #1, 10
dispatches", or why it ran eagerly), and the per-dispatch columns divide the host and thread CPU
time by it. The verdict line compares the WebNN dispatch with the compiled layer replay (issue 12's
"no more host time per dispatch than a compiled model replay"): the ratio of host time per call, of
thread CPU time per call, and the two kernel counts.

    accelkit bench webnn --device cpu --json webnn.json
    accelkit bench webnn --device webgpu --iterations 200
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

import numpy as np

import accelkit as ak
from accelkit import webnn
from accelkit.bench.sweep import plain


def bert_layer_graph(ctx, model, x_shape):
    """BERT layer 0 of ``model`` as a WebNN graph on ``ctx`` (inputs: x (B, T, C))."""
    cfg = model.config
    prefix = "bert.encoder.layer.0."
    p = {k[len(prefix) :]: v.numpy() for k, v in model.state_dict().items() if k.startswith(prefix)}
    b, t, c = x_shape
    heads = cfg.num_attention_heads
    d = c // heads
    g = webnn.MLGraphBuilder(ctx)
    x = g.input("x", {"data_type": "float32", "shape": list(x_shape)})

    def const(a):
        return g.constant({"data_type": "float32", "shape": list(a.shape)}, a)

    def linear(h, name):
        return g.add(g.matmul(h, const(p[name + ".weight"].T.copy())), const(p[name + ".bias"]))

    def heads_of(h):
        return g.transpose(g.reshape(h, [b, t, heads, d]), permutation=[0, 2, 1, 3])

    q, k, v = (heads_of(linear(x, f"attention.self.{n}")) for n in ("query", "key", "value"))
    scores = g.mul(
        g.matmul(q, g.transpose(k, permutation=[0, 1, 3, 2])), g.constant("float32", 1 / np.sqrt(d))
    )
    attn = g.reshape(g.transpose(g.matmul(g.softmax(scores, 3), v), permutation=[0, 2, 1, 3]), [b, t, c])

    def norm(h, r, name):
        return g.layer_normalization(
            g.add(h, r),
            axes=[2],
            scale=const(p[name + ".weight"]),
            bias=const(p[name + ".bias"]),
            epsilon=cfg.layer_norm_eps,
        )

    h1 = norm(linear(attn, "attention.output.dense"), x, "attention.output.LayerNorm")
    h2 = norm(linear(g.gelu(linear(h1, "intermediate.dense")), "output.dense"), h1, "output.LayerNorm")
    return g.build({"y": h2})


def _timed(fn, iterations: int, device) -> tuple[float, float, float]:
    """(host, thread CPU, synced) microseconds per call of ``fn`` over ``iterations`` calls."""
    fn()
    fn()
    device.synchronize()
    t0, c0 = time.perf_counter(), time.thread_time()
    for _ in range(iterations):
        fn()
    t1, c1 = time.perf_counter(), time.thread_time()
    device.synchronize()
    t2 = time.perf_counter()
    per = 1e6 / iterations
    return (t1 - t0) * per, (c1 - c0) * per, (t2 - t0) * per


def _gpu_dispatches(plans) -> int | None:
    """Kernel dispatches per call of a compiled function's replayed plan (None: it does not replay)."""
    from ..graph import Plan

    found = [p.stats.dispatches for p in plans if isinstance(p, Plan)]
    return found[-1] if found else None


def run(device=None, iterations: int = 1000, seq: int = 16, quiet: bool = True) -> dict:
    """Time the WebNN dispatch and the eager layer call on ``device``; returns the JSON-able result."""
    dev = ak.device(device)
    model = ak.load("tiny-random-bert", device=dev)
    c = model.config.hidden_size
    x_np = np.random.default_rng(0).normal(0, 1, (1, seq, c)).astype(np.float32)
    ctx = webnn.ml.create_context(device=dev)
    graph = bert_layer_graph(ctx, model, x_np.shape)
    tx = ctx.create_tensor({"data_type": "float32", "shape": list(x_np.shape), "writable": True})
    ty = ctx.create_tensor({"data_type": "float32", "shape": list(x_np.shape), "readable": True})
    ctx.write_tensor(tx, x_np)
    x = ak.tensor(x_np, device=dev)
    layer = model.base.encoder.layer[0]
    compiled_layer = ak.compile(lambda h: layer(h, None))
    ways = (
        ("webnn dispatch", lambda: ctx.dispatch(graph, {"x": tx}, {"y": ty}), graph),
        ("eager layer call", lambda: layer(x, None), None),
        ("compiled layer replay", lambda: compiled_layer(x), compiled_layer),
        ("graph.run (same steps)", lambda: graph.run({"x": x}), graph),
    )
    rows = []
    for name, fn, compiled in ways:
        host, cpu, synced = _timed(fn, iterations, dev)
        plans = compiled.plans if compiled is not None else []
        kernels = _gpu_dispatches(plans)
        rows.append(
            {
                "way": name,
                "host_us": round(host, 1),
                "thread_cpu_us": round(cpu, 1),
                "synced_us": round(synced, 1),
                "gpu_dispatches": kernels,
                "host_us_per_dispatch": round(host / kernels, 2) if kernels else None,
                "thread_cpu_us_per_dispatch": round(cpu / kernels, 2) if kernels else None,
                "execution": compiled.last if compiled is not None else "eager (op calls)",
            }
        )
        if not quiet:
            print(f"  {name:22s} {host:10.1f} us/call host   {synced:10.1f} us/call synced", file=sys.stderr)
    eager = layer(x, None).numpy()
    same = np.allclose(ctx.read_tensor(ty), eager, atol=1e-4) and np.allclose(
        compiled_layer(x).numpy(), eager, atol=1e-4
    )
    return {
        "benchmark": "webnn",
        "command": "accelkit bench webnn",  # main() adds its arguments
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "device": dev.spec,
        "device_name": dev.name,
        "graph": f"tiny-random-bert layer 0, x (1, {seq}, {c})",
        "graph_steps": [s.op for s in graph.steps],
        "iterations": iterations,
        "equal_outputs": bool(same),
        "results": rows,
        "verdict": verdict(rows),
    }


def verdict(rows: list[dict]) -> dict:
    """WebNN dispatch against the compiled layer replay: ratios of host and thread CPU µs per call."""
    by = {r["way"]: r for r in rows}
    mine, ref = by["webnn dispatch"], by["compiled layer replay"]
    return {
        "host_ratio": round(mine["host_us"] / ref["host_us"], 3) if ref["host_us"] else None,
        "thread_cpu_ratio": round(mine["thread_cpu_us"] / ref["thread_cpu_us"], 3)
        if ref["thread_cpu_us"]
        else None,
        "gpu_dispatches": [mine["gpu_dispatches"], ref["gpu_dispatches"]],
    }


def table(result: dict) -> str:
    lines = [
        f"WebNN dispatch vs eager ops vs ak.compile on {result['device']} ({result['device_name']}): "
        f"{result['graph']}, {len(result['graph_steps'])} steps, {result['iterations']} iterations, "
        f"outputs equal: {result['equal_outputs']}",
        f"{'way':24s} {'host us/call':>13s} {'thread CPU us':>14s} {'synced us/call':>15s} "
        f"{'kernels':>8s} {'host us/kernel':>15s} {'CPU us/kernel':>14s}  execution",
    ]

    def per(value) -> str:
        return "-" if value is None else f"{value:.2f}"

    for r in result["results"]:
        kernels = "-" if r["gpu_dispatches"] is None else str(r["gpu_dispatches"])
        lines.append(
            f"{r['way']:24s} {r['host_us']:13.1f} {r['thread_cpu_us']:14.1f} {r['synced_us']:15.1f} "
            f"{kernels:>8s} {per(r.get('host_us_per_dispatch')):>15s} "
            f"{per(r.get('thread_cpu_us_per_dispatch')):>14s}  {r['execution']}"
        )
    v = result.get("verdict")
    if v is not None:
        mine, ref = ("-" if k is None else k for k in v["gpu_dispatches"])
        lines.append(
            f"WebNN dispatch / compiled layer replay: {_ratio(v['host_ratio'])} host time per call, "
            f"{_ratio(v['thread_cpu_ratio'])} thread CPU time per call; kernels {mine} vs {ref}"
        )
    return "\n".join(lines)


def _ratio(x) -> str:
    return "-" if x is None else f"{x:.2f}x"


def build_parser(prog: str = "accelkit bench webnn") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=plain(__doc__.split("\n\n")[0]))
    p.add_argument("--device", default=None, help="device spec (default: the best)")
    p.add_argument("--iterations", type=int, default=1000, help="dispatches per way (default 1000)")
    p.add_argument("--seq", type=int, default=16, help="sequence length of the layer input")
    p.add_argument("--json", default=None, help="also write the result here")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    result = run(args.device, args.iterations, args.seq, quiet=args.quiet)
    result["command"] = " ".join(["accelkit bench webnn", *argv])
    print(table(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":  # python -m accelkit.bench.webnn
    sys.exit(main())
