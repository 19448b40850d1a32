"""``accelkit bench sharing``: device memory and time with and without sharing, measured side by side.

Scenarios, each run both ways on the same device in the same process:

- ``dedup``: load a checkpoint a second time, and load a fine-tune that shares the first one's
  embeddings, with weight dedup on (shared) and off (``no_dedup``, separate): device bytes each load adds.
- ``whisper``: transcribe + translate (+ more greedy candidates with ``--consumers``) of one audio
  clip: the encoder runs once and its output is shared, or each decoder encodes for itself.
- ``vit``: two classification heads (the checkpoint's and a linear probe) on one ViT's embeddings,
  or each head running the ViT.
- ``bert``: a classifier and a similarity search on one BERT's hidden states, or each running BERT.

Memory figures are ``device.memory()`` readings: ``held`` is what the consumers' inputs hold once
all are ready (bytes above the baseline), ``peak`` the high-water mark of the run above it. Times
are medians of ``--repeat`` runs and include reading the results back. ``equal`` says the two ways
gave the same outputs. ``--size small|base`` writes random checkpoints of real model dimensions
(BERT/ViT/Whisper small or base) to a temporary directory instead of the bundled tiny ones.

    accelkit bench sharing --device cpu --json sharing.json
    accelkit bench sharing --device webgpu --size base
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .presets import PRESETS, SIZES, TINY, random_state_dict, write_checkpoint
from .sweep import Progress, environment, finish, parse, plain, run_options, show

SCENARIOS = ("dedup", "whisper", "vit", "bert")


# ---------------------------------------------------------------------------------- checkpoints
def sized_checkpoint(
    family: str,
    size: str,
    directory: str | Path,
    *,
    seed: int = 0,
    share: tuple[dict, tuple[str, ...]] | None = None,
) -> Path:
    """A checkpoint directory of ``family`` ("bert", "vit", "whisper"): the bundled tiny one's config with
    the dimensions of ``size`` (presets.PRESETS; "tiny" keeps them), its tokenizer and preprocessor files,
    and random weights. ``share=(weights, prefixes)`` copies the tensors whose names start with a prefix
    from ``weights`` (a fine-tune with frozen embeddings). Returns the path."""
    from ..checkpoints import path as bundled_path

    src = Path(bundled_path(TINY[family]))
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = json.loads((src / "config.json").read_text())
    config.update(PRESETS.get(size, {}).get(family, {}))
    for f in src.iterdir():
        if f.is_file() and not f.name.startswith("model") and f.name != "config.json":
            shutil.copy(f, directory / f.name)
    pre = directory / "preprocessor_config.json"
    if family == "vit" and pre.is_file():
        pp = json.loads(pre.read_text())
        pp["size"] = {"height": config["image_size"], "width": config["image_size"]}
        pre.write_text(json.dumps(pp, indent=2))
    weights = random_state_dict(config, seed)
    if share is not None:
        source, prefixes = share
        for name in weights:
            if name.startswith(prefixes) and name in source:
                weights[name] = source[name]
    return write_checkpoint(directory, config, weights)


class Checkpoints:
    """The checkpoints a run uses: bundled ones for --size tiny, else written once to a temp dir."""

    def __init__(self, size: str) -> None:
        self.size = size
        self._tmp = None
        self._made: dict[str, Path] = {}
        self._weights: dict[str, dict] = {}

    def __call__(self, family: str) -> Path:
        if family not in self._made:
            if self.size == "tiny":
                from ..checkpoints import path as bundled_path

                self._made[family] = Path(bundled_path(TINY[family]))
            else:
                self._made[family] = sized_checkpoint(family, self.size, Path(self._temp().name) / family)
        return self._made[family]

    def fine_tune(self, family: str, prefixes: tuple[str, ...]) -> Path:
        """A second checkpoint of ``family`` that shares the tensors under ``prefixes`` with the first."""
        key = f"{family}-ft"
        if key not in self._made:
            from ..io import Checkpoint

            base = self(family)
            with Checkpoint.open(base) as ckpt:
                source = {n: np.array(ckpt.array(n)) for n in ckpt.names() if n.startswith(prefixes)}
            root = Path(self._temp().name)
            self._made[key] = sized_checkpoint(
                family, self.size, root / key, seed=1, share=(source, prefixes)
            )
        return self._made[key]

    def _temp(self):
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="accelkit-bench-")
        return self._tmp

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


# ---------------------------------------------------------------------------------- measuring
def wait(dev) -> None:
    """Wait until the device has finished everything submitted (a 4-byte readback where sync fails)."""
    from ..errors import DeviceError

    try:
        dev.synchronize()
    except DeviceError:  # wgpu 0.32's on_submitted_work_done_sync is broken: a readback waits as well
        from ..tensor.tensor import Tensor

        Tensor.empty((1,), "float32", dev).numpy()


class Meter:
    """Device memory of one run: the baseline, ``mark()`` for the bytes held at a point, the peak.

    ``mark()`` collects garbage to read exact figures; its time is kept in ``overhead`` so that the
    run's time can leave it out.
    """

    def __init__(self, dev) -> None:
        self.dev = dev
        gc.collect()
        wait(dev)
        gc.collect()
        self.base = dev.memory()["allocated_bytes"]
        dev.reset_peak()
        self.held: int | None = None
        self.peak_bytes: int | None = None
        self.overhead = 0.0

    def mark(self) -> None:
        t0 = time.perf_counter()
        gc.collect()
        self.held = self.dev.memory()["allocated_bytes"] - self.base
        self.overhead += time.perf_counter() - t0

    def peak(self) -> int:
        return self.dev.memory()["peak_bytes"] - self.base


def _timed(dev, fn: Callable[[Meter], object]) -> tuple[float, Meter, object]:
    meter = Meter(dev)
    t0 = time.perf_counter()
    out = fn(meter)
    seconds = time.perf_counter() - t0 - meter.overhead
    meter.peak_bytes = meter.peak()  # now, before another run moves the high-water mark
    return seconds, meter, out


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-5, atol=1e-5))


def _pair(scenario: str, dev, separate: Callable, shared: Callable, repeats: int, extra: dict) -> list[dict]:
    """Run both ways ``repeats`` times, alternating (after a warm-up of each); one row per way."""
    fns = {"separate": separate, "shared": shared}
    for fn in fns.values():
        fn(Meter(dev))  # warm-up: pipelines, caches, the buffer pool
    times: dict[str, list[float]] = {m: [] for m in fns}
    last: dict[str, tuple] = {}
    for _ in range(repeats):
        for mode, fn in fns.items():
            seconds, meter, out = _timed(dev, fn)
            times[mode].append(seconds)
            last[mode] = (meter, out)
    equal = _same(last["separate"][1], last["shared"][1])
    rows = []
    for mode in fns:
        meter = last[mode][0]
        rows.append(
            {
                "scenario": scenario,
                "mode": mode,
                "device": dev.spec,
                **extra,
                "time_ms": float(np.median(times[mode])) * 1e3,
                "times_ms": [t * 1e3 for t in times[mode]],
                "held_bytes": meter.held,
                "peak_bytes": meter.peak_bytes,
                "equal": equal,
            }
        )
    sep, sh = rows
    for r in rows:
        r["saved_bytes"] = (sep["held_bytes"] or 0) - (sh["held_bytes"] or 0)
        r["speedup"] = sep["time_ms"] / sh["time_ms"] if sh["time_ms"] else None
    return rows


# ---------------------------------------------------------------------------------- scenarios
def bench_dedup(dev, ckpts: Checkpoints, families: Sequence[str]) -> list[dict]:
    """Bytes (and time) a second load of the same checkpoint, and of a fine-tune sharing the
    embeddings, adds, with dedup on and off."""
    import accelkit as ak

    from ..sharing import no_dedup

    frozen = {"bert": ("bert.embeddings.",), "vit": ("vit.embeddings.",), "whisper": ("model.encoder.",)}
    rows = []
    for family in families:
        first, tune = ckpts(family), ckpts.fine_tune(family, frozen[family])
        for mode in ("separate", "shared"):
            ctx = no_dedup() if mode == "separate" else contextlib.nullcontext()
            with ctx:
                for label, second in (
                    ("same checkpoint", first),
                    (f"fine-tune sharing {frozen[family][0]}*", tune),
                ):
                    meter = Meter(ak.device(dev))
                    a = ak.load(first, device=dev)
                    meter.mark()
                    first_bytes = meter.held
                    t0 = time.perf_counter()
                    b = ak.load(second, device=dev)
                    load_s = time.perf_counter() - t0
                    meter.mark()
                    second_bytes = meter.held - first_bytes
                    del a, b
                    meter.mark()
                    rows.append(
                        {
                            "scenario": f"dedup {family}: {label}",
                            "mode": mode,
                            "device": dev.spec,
                            "first_load_bytes": first_bytes,
                            "second_load_bytes": second_bytes,
                            "second_load_ms": load_s * 1e3,
                            "ratio": second_bytes / first_bytes,
                            "after_both_freed_bytes": meter.held,
                            "peak_bytes": meter.peak(),
                        }
                    )
    return rows


def _audio(seconds: float = 4.0, rate: int = 16000) -> np.ndarray:
    from ..models.demo import _audio as demo_audio

    return demo_audio(seconds, rate)


def bench_whisper(dev, ckpts: Checkpoints, repeats: int, consumers: int, max_new_tokens: int) -> list[dict]:
    """K decoders (transcribe, translate, then more greedy candidates) on one clip's encoder output."""
    import accelkit as ak

    model = ak.load(ckpts("whisper"), device=dev)
    fe = model.feature_extractor
    features = fe([_audio()], sampling_rate=fe.sampling_rate)
    langs = list(model.generation_config.lang_to_id or {"<|en|>": 0})
    tasks = [("transcribe", "en"), ("translate", None)]
    for lang in langs:
        if len(tasks) >= consumers:
            break
        tasks.append(("transcribe", lang.strip("<|>")))
    tasks = tasks[:consumers]

    def decode(enc, task, lang):
        return model.generate(
            encoder_hidden_states=enc, task=task, language=lang, max_new_tokens=max_new_tokens
        )

    def separate(meter):
        encs = [model.encode(features) for _ in tasks]  # each decoder encodes the audio for itself
        meter.mark()
        return [decode(e, t, lang) for e, (t, lang) in zip(encs, tasks)]

    def shared(meter):
        with ak.sharing.publish("bench/whisper/encoder", model.encode(features), owner="whisper.encoder"):
            holds = [ak.sharing.acquire("bench/whisper/encoder", consumer=f"{t}:{lang}") for t, lang in tasks]
            meter.mark()
            out = [decode(h.tensor, t, lang) for h, (t, lang) in zip(holds, tasks)]
            for h in holds:
                h.release()
        return out

    return _pair(
        "whisper encoder output",
        dev,
        separate,
        shared,
        repeats,
        {"consumers": len(tasks), "max_new_tokens": max_new_tokens},
    )


def bench_vit(dev, ckpts: Checkpoints, repeats: int, batch: int) -> list[dict]:
    """Two heads (the checkpoint's classifier and a linear probe) on one ViT's [CLS] embeddings."""
    import accelkit as ak
    from accelkit import nn

    model = ak.load(ckpts("vit"), device=dev)
    cfg = model.config
    rng = np.random.default_rng(0)
    pixels = rng.standard_normal((batch, cfg.num_channels, cfg.image_size, cfg.image_size)).astype(np.float32)
    probe = nn.Linear(cfg.hidden_size, 10)
    probe.load_state_dict(
        {
            "weight": rng.standard_normal((10, cfg.hidden_size)).astype(np.float32) * 0.1,
            "bias": np.zeros(10, np.float32),
        },
        device=dev,
    )

    def separate(meter):
        h1 = model.vit(pixels).last_hidden_state  # head A runs the ViT
        h2 = model.vit(pixels).last_hidden_state  # head B runs it again
        meter.mark()
        return [model.classifier(h1[:, 0]).numpy(), probe(h2[:, 0]).numpy()]

    def shared(meter):
        with ak.sharing.publish("bench/vit/hidden", model.vit(pixels).last_hidden_state, owner="vit"):
            with (
                ak.sharing.acquire("bench/vit/hidden", consumer="classifier") as a,
                ak.sharing.acquire("bench/vit/hidden", consumer="probe") as b,
            ):
                meter.mark()
                return [model.classifier(a.tensor[:, 0]).numpy(), probe(b.tensor[:, 0]).numpy()]

    return _pair("vit embeddings, two heads", dev, separate, shared, repeats, {"batch": batch})


SENTENCES = [
    "the cat sat on the mat",
    "a dog ran in the park",
    "the train leaves at noon",
    "we ate soup for dinner",
    "rain fell all night long",
    "she reads a book every week",
    "the market opens early today",
    "birds sing in the morning",
    "he fixed the old bicycle",
    "the lake froze in winter",
]


def bench_bert(dev, ckpts: Checkpoints, repeats: int, batch: int) -> list[dict]:
    """A classifier (logits) and a similarity search (cosine top-1 over the batch) on one BERT run."""
    import accelkit as ak
    from accelkit import ops

    model = ak.load(ckpts("bert"), device=dev)
    texts = [SENTENCES[i % len(SENTENCES)] + f" {i}" for i in range(batch)]
    enc = model.encode(texts)

    def search(hidden) -> np.ndarray:
        cls = hidden[:, 0]  # (B, C) view
        norm = ops.sqrt(ops.sum(cls * cls, axis=-1, keepdims=True))
        unit = cls / norm
        return ops.argmax(
            ops.matmul(unit, unit.T)
            - ops.mul(ak.tensor(np.eye(len(texts), dtype=np.float32), device=dev), 4.0),
            axis=-1,
        ).numpy()

    def separate(meter):
        out_a = model.bert(**enc)  # the classifier runs BERT
        out_b = model.bert(**enc)  # the search runs it again
        meter.mark()
        return [model.classifier(out_a.pooler_output).numpy(), search(out_b.last_hidden_state)]

    def shared(meter):
        out = model.bert(**enc)
        with (
            ak.sharing.publish("bench/bert/hidden", out.last_hidden_state, owner="bert"),
            ak.sharing.publish("bench/bert/pooled", out.pooler_output, owner="bert"),
        ):
            del out
            with (
                ak.sharing.acquire("bench/bert/pooled", consumer="classifier") as a,
                ak.sharing.acquire("bench/bert/hidden", consumer="search") as b,
            ):
                meter.mark()
                return [model.classifier(a.tensor).numpy(), search(b.tensor)]

    return _pair("bert hidden states, classifier + search", dev, separate, shared, repeats, {"batch": batch})


# ---------------------------------------------------------------------------------- the runner
def run(
    device=None,
    *,
    scenarios: Sequence[str] = SCENARIOS,
    size: str = "tiny",
    repeats: int | None = None,
    quick: bool = False,
    consumers: int = 2,
    batch: int = 8,
    max_new_tokens: int | None = None,
    json_path: str | None = None,
    progress: bool = True,
    command: str | None = None,
) -> dict:
    """Run the scenarios on one device; returns {"env", "config", "rows", "table"} (and writes JSON)."""
    import accelkit as ak

    dev = ak.device(device)
    repeats = int(repeats) if repeats else (2 if quick else 5)
    max_new_tokens = max_new_tokens or (8 if quick else 24)
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    command = command or f"accelkit.bench.sharing.run(device={dev.spec!r}, size={size!r}, quick={quick})"
    result = {
        "env": environment(command, [dev]),
        "config": {
            "size": size,
            "repeats": repeats,
            "quick": quick,
            "consumers": consumers,
            "batch": batch,
            "max_new_tokens": max_new_tokens,
            "scenarios": list(scenarios),
        },
        "rows": [],
    }
    ckpts = Checkpoints(size)
    steps = {
        "dedup": lambda: bench_dedup(dev, ckpts, ("bert", "vit", "whisper")),
        "whisper": lambda: bench_whisper(dev, ckpts, repeats, consumers, max_new_tokens),
        "vit": lambda: bench_vit(dev, ckpts, repeats, batch),
        "bert": lambda: bench_bert(dev, ckpts, repeats, batch),
    }
    try:
        with Progress(len(scenarios), progress, f"accelkit bench sharing on {dev.spec}", "scenario") as bar:
            for name in scenarios:
                bar.step(f"{name} on {dev.spec}")
                result["rows"] += steps[name]()
    finally:
        ckpts.close()
        gc.collect()
    return finish(result, format_table, json_path)


def _mib(n) -> str:
    return "-" if n is None else f"{n / 2**20:.3f} MiB" if abs(n) >= 2**20 else f"{n / 1024:.1f} KiB"


def _speedup(row: dict) -> str:
    return f"{row['speedup']:.2f}x" if row["mode"] == "shared" and row["speedup"] else ""


def format_table(result: dict) -> str:
    env, cfg = result["env"], result["config"]
    dev = env["devices"][0]
    lines = [
        f"accelkit bench sharing on {dev['spec']} ({dev['name']}), size {cfg['size']}, "
        f"median of {cfg['repeats']} runs, {env['date']}"
    ]
    dedup = [r for r in result["rows"] if r["scenario"].startswith("dedup")]
    if dedup:
        lines.append("")
        lines.append(
            f"{'load (dedup)':<52} {'mode':<9} {'1st load':>12} {'2nd load adds':>14} {'ratio':>7} "
            f"{'2nd ms':>8} {'after del':>10}"
        )
        for r in dedup:
            lines.append(
                f"{r['scenario'][6:]:<52} {r['mode']:<9} {_mib(r['first_load_bytes']):>12} "
                f"{_mib(r['second_load_bytes']):>14} {r['ratio']:>7.1%} {r['second_load_ms']:>8.1f} "
                f"{_mib(r['after_both_freed_bytes']):>10}"
            )
    other = [r for r in result["rows"] if not r["scenario"].startswith("dedup")]
    if other:
        lines.append("")
        lines.append(
            f"{'consumers of one output':<42} {'mode':<9} {'time ms':>9} {'held':>12} {'peak':>12} "
            f"{'saved':>12} {'speedup':>8} {'equal':>6}"
        )
        for r in other:
            lines.append(
                f"{r['scenario']:<42} {r['mode']:<9} {r['time_ms']:>9.2f} {_mib(r['held_bytes']):>12} "
                f"{_mib(r['peak_bytes']):>12} {_mib(r['saved_bytes']) if r['mode'] == 'shared' else '':>12} "
                f"{_speedup(r):>8} "
                f"{'yes' if r['equal'] else 'NO':>6}"
            )
    return "\n".join(lines)


def add_common_arguments(p: argparse.ArgumentParser, quick: str) -> None:
    """--device, --size, --json, --quick, --no-progress: what ``bench sharing`` and ``bench pool`` share."""
    p.add_argument("--device", default=None, help="device spec (default: the best)")
    p.add_argument(
        "--size",
        choices=SIZES,
        default="tiny",
        help="bundled tiny checkpoints, or random ones of small/base dimensions",
    )
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--quick", action="store_true", help=quick)
    p.add_argument("--no-progress", action="store_true", help="no progress output")


def common_options(args: argparse.Namespace, command: str) -> dict:
    """The ``run`` keywords of the options ``add_common_arguments`` adds (and the command line)."""
    return dict(device=args.device, size=args.size, **run_options(args, command))


def build_parser(prog: str = "accelkit bench sharing") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=plain(__doc__.split("\n\n")[0]))
    add_common_arguments(p, quick="fewer repeats and tokens")
    p.add_argument("--scenario", action="append", choices=SCENARIOS, help="run only these (repeatable)")
    p.add_argument("--repeat", type=int, default=None, help="timed runs per figure (the median is reported)")
    p.add_argument("--consumers", type=int, default=2, help="Whisper decoders sharing one encoder output")
    p.add_argument("--batch", type=int, default=8, help="images / texts per ViT and BERT run")
    p.add_argument("--max-new-tokens", type=int, default=None, help="Whisper tokens per decoder")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``accelkit bench sharing`` (the CLI passes the arguments after ``sharing``)."""
    args, command = parse(build_parser(), argv)
    result = run(
        scenarios=args.scenario or SCENARIOS,
        repeats=args.repeat,
        consumers=args.consumers,
        batch=args.batch,
        max_new_tokens=args.max_new_tokens,
        **common_options(args, command),
    )
    return show(result, args.json)


if __name__ == "__main__":  # python -m accelkit.bench.sharing
    raise SystemExit(main())
