"""``accelkit bench models``: end-to-end latency and throughput of BERT, ViT and Whisper on each device, beside references.

For each model, size and device: load time, first-run time, warm median and p90 latency, throughput
(items/s), the GPU's own time per forward (the sum of every dispatch's timestamps, through
``accelkit.profile``), dispatches per forward, and device memory (weights, peak during a forward).
Whisper adds the encoder time and the greedy decode time per token (``generate``).

On a device that replays compiled plans (WebGPU), each case runs twice, side by side: ``eager`` (op
by op, ``ak.options(compile=False)``) and ``replay`` (the model's captured plan, the default), with
the host time of a call per dispatch (``host us/d``) and the capture's own time (``capture_ms``).

Sizes: ``tiny`` runs the bundled checkpoints; ``base`` writes BERT-base, ViT-base/16 (224x224) and
Whisper-base-like checkpoints with seeded random weights at real sizes to a temporary directory
(config.json + model.safetensors, Hugging Face layout) and loads them with ``accelkit.load``, so the
real loading path runs. No hub access is needed.

References run in the same process on the same weights: transformers + torch on CUDA (float32 with
TF32 off, and with torch's default settings), transformers on the torch CPU, and the accelkit CPU
backend. The torch models are built from the same config and load the same numpy arrays. Every
target's output is compared with a reference (torch fp32 on CUDA, else torch CPU, else the accelkit
CPU backend): a result whose largest error relative to the reference's largest magnitude is over
``TOL`` is flagged and its speed is not shown in the table. torch and transformers are optional.

    accelkit bench models --quick                       # tiny models, few repeats
    accelkit bench models --size base --json models.json
    accelkit bench models --device webgpu:0 --model bert --size base --batch 1,8 --seq 128

>>> from accelkit.bench import models
>>> result = models.run(devices=["cpu"], models=["bert"], quick=True, progress=False)  # doctest: +SKIP
>>> print(result["table"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import inspect
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .onnx_reference import FAMILIES as ORT_FAMILIES
from .onnx_reference import TARGET as ORT_TARGET
from .onnx_reference import OnnxRuntimeWebGPU
from .onnx_reference import measure_target as measure_ort
from .presets import FAMILIES, PRESETS, TINY, random_state_dict, write_checkpoint
from .sweep import Progress, environment, finish, parse, plain, run_options, show, write_json

MODELS = FAMILIES
SIZES = ("tiny", "base")
TOL = 1e-3  # float32 end to end lands far under this; a larger error means a wrong result
#: float16 models (``--dtype float16``: f16 weights and activations, f32 accumulation): 11 bits of
#: mantissa through 12 layers; a larger error than this means a wrong result, not rounding
TOL_F16 = 3e-2
DTYPES = ("float32", "float16")
DEFAULT_REPEAT = 20
QUICK_REPEAT = 2
BUDGET_S = 4.0  # at most this long per timed figure once MIN_MEASURES measurements are in
QUICK_BUDGET_S = 0.5
MIN_MEASURES = 3
SLOW_MS = 1000.0  # a first call slower than this is taken as the warm-up
TOP_KERNELS = 10

# Whisper-base's special tokens (multilingual vocabulary of 51865), so the prompt is the real one:
# <|startoftranscript|> <|en|> <|transcribe|> <|notimestamps|>
_WHISPER_SUPPRESS = [1, 2, 7, 8, 9, 10, 14, 25, 26, 27, 28, 29, 31, 58, 59, 60, 61, 62, 63, 90, 91, 92, 93]
_WHISPER_SUPPRESS += [50358, 50359, 50360, 50361, 50362]

#: config.json of each --size base model apart from its dimensions, which presets.PRESETS["base"] gives
#: (random weights are written beside it)
_ARCHITECTURES = {
    "bert": {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_act": "gelu",
        "type_vocab_size": 2,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
    },
    "vit": {
        "architectures": ["ViTModel"],
        "model_type": "vit",
        "hidden_act": "gelu",
        "num_channels": 3,
        "layer_norm_eps": 1e-12,
        "qkv_bias": True,
        "encoder_stride": 16,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "initializer_range": 0.02,
    },
    "whisper": {
        "architectures": ["WhisperForConditionalGeneration"],
        "model_type": "whisper",
        "num_mel_bins": 80,
        "max_source_positions": 1500,
        "activation_function": "gelu",
        "decoder_start_token_id": 50258,
        "bos_token_id": 50257,
        "eos_token_id": 50257,
        "pad_token_id": 50257,
        "begin_suppress_tokens": [220, 50257],
        "suppress_tokens": _WHISPER_SUPPRESS,
        "tie_word_embeddings": True,
        "scale_embedding": False,
        "is_encoder_decoder": True,
        "use_cache": True,
        "dropout": 0.0,
        "attention_dropout": 0.0,
        "activation_dropout": 0.0,
    },
}
BASE_CONFIGS = {family: {**_ARCHITECTURES[family], **PRESETS["base"][family]} for family in MODELS}
BASE_GENERATION = {
    "whisper": {
        "decoder_start_token_id": 50258,
        "bos_token_id": 50257,
        "eos_token_id": 50257,
        "pad_token_id": 50257,
        "max_length": 448,
        "begin_suppress_tokens": [220, 50257],
        "suppress_tokens": _WHISPER_SUPPRESS,
        "is_multilingual": True,
        "lang_to_id": {"<|en|>": 50259, "<|zh|>": 50260, "<|de|>": 50261, "<|es|>": 50262},
        "task_to_id": {"translate": 50358, "transcribe": 50359},
        "no_timestamps_token_id": 50363,
    }
}
BASE_NAMES = {"bert": "BERT-base", "vit": "ViT-base/16 224", "whisper": "Whisper-base"}


# ---------------------------------------------------------------------------------- checkpoints
def _read_state(directory: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    state = {}
    for f in sorted(directory.glob("*.safetensors")):
        state.update(load_file(str(f)))
    return state


class _Checkpoint:
    """One model at one size: its directory, config dict, and (on demand) the numpy state dict."""

    def __init__(self, family: str, size: str, tmp: Callable[[], Path]) -> None:
        self.family, self.size = family, size
        t0 = time.perf_counter()
        if size == "tiny":
            from ..models.auto import bundled_dir

            self.path = Path(bundled_dir(TINY[family]))
            self.name = TINY[family]
            self.config = json.loads((self.path / "config.json").read_text())
            self._state = None
        else:
            self.config = dict(BASE_CONFIGS[family])
            self.name = BASE_NAMES[family] + " (random weights)"
            self._state = random_state_dict(self.config, seed=MODELS.index(family))
            self.path = write_checkpoint(
                tmp() / family, self.config, self._state, BASE_GENERATION.get(family)
            )
        self.prepare_s = time.perf_counter() - t0

    @property
    def state(self) -> dict[str, np.ndarray]:
        if self._state is None:
            self._state = _read_state(self.path)
        return self._state

    def describe(self) -> dict:
        state = self.state
        return {
            "model": self.family,
            "size": self.size,
            "name": self.name,
            "architecture": (self.config.get("architectures") or [None])[0],
            "parameters": int(sum(a.size for a in state.values())),
            "checkpoint_bytes": int(sum(a.nbytes for a in state.values())),
            "path": str(self.path) if self.size == "tiny" else "(temporary)",
            "prepare_s": self.prepare_s,
        }


# ---------------------------------------------------------------------------------- inputs
def _inputs(family: str, config: dict, batch: int, seq: int, rng) -> dict[str, np.ndarray]:
    if family == "bert":
        vocab = config["vocab_size"]
        ids = rng.integers(min(1000, vocab // 2), vocab, size=(batch, seq)).astype(np.int64)
        ids[:, 0] = min(101, vocab - 1)  # [CLS]-like first token
        return {"input_ids": ids, "attention_mask": np.ones((batch, seq), np.int64)}
    if family == "vit":
        size, ch = config.get("image_size", 224), config.get("num_channels", 3)
        return {"pixel_values": rng.standard_normal((batch, ch, size, size), dtype=np.float32)}
    frames = 2 * config.get("max_source_positions", 1500)
    mels = config.get("num_mel_bins", 80)
    return {"input_features": rng.uniform(-1.0, 1.0, size=(batch, mels, frames)).astype(np.float32)}


def _max_rel(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max |want| (nan/inf count as a full error)."""
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    if got.shape != want.shape:
        return float("inf")
    if not np.all(np.isfinite(got)):
        return float("inf")
    scale = float(np.max(np.abs(want))) or 1.0
    return float(np.max(np.abs(got - want))) / scale


def _compare(got: dict, want: dict) -> tuple[float | None, dict]:
    """The largest error over the outputs both sides have, and the error of each."""
    errs = {k: _max_rel(got[k], want[k]) for k in got if k in want}
    return (max(errs.values()) if errs else None), errs


# ---------------------------------------------------------------------------------- timing
def _measure(
    fn: Callable[[], object],
    sync: Callable[[], None],
    repeats: int,
    budget_s: float,
    warmup: bool = True,
    keep: bool = False,
) -> dict:
    """One call, ``repeats`` times (fewer once ``budget_s`` is spent) after a warm-up call: ms per call.

    ``keep``: also return the last call's output under "last".
    """
    if warmup:
        fn()
        sync()
    times = []
    start = time.perf_counter()
    last = None
    for i in range(repeats):
        t0 = time.perf_counter()
        last = None  # the previous output is freed before the next call, as a caller's would be
        last = fn()
        sync()
        times.append(time.perf_counter() - t0)
        if i + 1 >= min(MIN_MEASURES, repeats) and time.perf_counter() - start > budget_s:
            break
    ms = np.array(times) * 1e3
    return {
        "median_ms": float(np.median(ms)),
        "p90_ms": float(np.percentile(ms, 90)),
        "min_ms": float(ms.min()),
        "times_ms": [float(t) for t in ms],
        **({"last": last} if keep else {}),
    }


def _first_run(fn: Callable[[], object], sync: Callable[[], None], rec: dict, cfg: dict, first: bool):
    """Call ``fn`` once, timed (``first_ms`` goes on the target's first record); returns its output and
    whether to warm up before the timed runs (a first call slower than SLOW_MS was warm-up enough)."""
    t0 = time.perf_counter()
    out = fn()
    sync()
    first_ms = (time.perf_counter() - t0) * 1e3
    if first:
        rec["first_ms"] = first_ms
    if rec.get("execution", "").startswith("replay"):
        rec["capture_ms"] = first_ms  # the first call with a new signature runs eagerly while recorded
    return out, cfg["warmup"] and first_ms < SLOW_MS


#: how to read a device's memory: (reset the peak, bytes allocated now, the peak since the reset)
MemoryProbe = tuple[Callable[[], None], Callable[[], int], Callable[[], int]]


def _timed_runs(fn: Callable[[], object], sync, rec: dict, cfg: dict, warm: bool, memory: MemoryProbe | None):
    """The timed runs of ``fn`` into ``rec``; with ``memory``, the device's peak during them too (above
    what was allocated before them, and in all)."""
    if memory is not None:
        reset_peak, allocated, peak = memory
        reset_peak()
        base = allocated()
    rec.update(_measure(fn, sync, cfg["repeats"], cfg["budget_s"], warm))
    if memory is not None:
        rec["memory"]["peak_forward_bytes"] = int(peak() - base)
        rec["memory"]["peak_bytes"] = int(peak())


# ---------------------------------------------------------------------------------- accelkit targets
def _ak_outputs(family: str, out) -> dict[str, np.ndarray]:
    keys = ("last_hidden_state", "pooler_output", "logits")
    return {k: out[k].numpy() for k in keys if k in out and out[k] is not None}


def _profile(ak, dev, fn: Callable[[], object], runs: int = 3) -> dict:
    """GPU time per call (the sum of the dispatches' timestamps, median of ``runs``), dispatches, top kernels."""
    sums, counts, hosts, walls = [], [], [], []
    for _ in range(runs):
        with ak.profile(dev) as prof:
            fn()
        counts.append(len(prof.records))
        hosts.append(prof.host_ns / 1e6)
        walls.append(prof.wall_ns / 1e6)
        if prof.has_gpu_times and dev.backend_name == "webgpu":
            sums.append(prof.gpu_ns / 1e6)
    rec = {
        "dispatches": int(np.median(counts)),
        "record_ms": float(np.median(hosts)),  # host time spent recording the dispatches (Python)
        "profiled_wall_ms": float(np.median(walls)),
        "gpu_ms": float(np.median(sums)) if sums else None,
    }
    if runs:
        total = prof.gpu_ns or 1
        rec["kernels"] = [
            {
                "kernel": s.kernel,
                "calls": s.calls,
                "gpu_ms": s.gpu_ms if rec["gpu_ms"] is not None else None,
                "host_ms": s.host_ms,
                "share": s.gpu_ns / total if rec["gpu_ms"] is not None else None,
            }
            for s in prof.kernels()[:TOP_KERNELS]
        ]
        by_label: dict[str, list] = {}  # the same kernel family split by shape/variant (its label)
        for r in prof.records:
            entry = by_label.setdefault(r.label, [0, 0, 0])
            entry[0] += 1
            entry[1] += (r.gpu_end_ns - r.gpu_start_ns) if r.gpu_start_ns is not None else 0
            entry[2] += r.host_dur_ns
        ranked = sorted(by_label.items(), key=lambda item: (item[1][1], item[1][2]), reverse=True)
        rec["labels"] = [
            {
                "label": label,
                "calls": calls,
                "gpu_ms": gpu / 1e6 if rec["gpu_ms"] is not None else None,
                "host_ms": host / 1e6,
            }
            for label, (calls, gpu, host) in ranked[:TOP_KERNELS]
        ]
    return rec


def _memory(dev) -> dict:
    gc.collect()
    return dict(dev.memory())


def _ak_memory(dev) -> MemoryProbe:
    return dev.reset_peak, lambda: _memory(dev)["allocated_bytes"], lambda: dev.memory()["peak_bytes"]


def _ak_target(ak, dev, ckpt: _Checkpoint, batches, cfg: dict, dtype: str = "float32") -> list[dict]:
    """Load once on ``dev`` in ``dtype``; per batch: first run, warm timings, profile, memory, outputs."""
    sync = dev.backend.sync
    gc.collect()
    sync()
    before = _memory(dev)["allocated_bytes"]
    t0 = time.perf_counter()
    model = ak.load(ckpt.path, device=dev, dtype=dtype)
    sync()
    load_s = time.perf_counter() - t0
    weights = _memory(dev)["allocated_bytes"] - before
    records = []
    # where calls replay captured plans, each batch runs both ways: op by op, then replayed
    executions = ("eager", "replay") if dev.runtime.replays else ("eager",)
    suffix = "" if dtype == "float32" else " f16"
    for i, batch in enumerate(batches):
        for execution in executions:
            rec = {
                "target": dev.spec,
                "kind": "accelkit",
                "execution": execution + suffix,
                "dtype": dtype,
                "device": dev.name,
                "model": ckpt.family,
                "size": ckpt.size,
                "batch": batch,
                "load_s": load_s,
                "memory": {"weights_bytes": int(weights)},
            }
            try:
                with ak.options(compile=execution == "replay"):
                    _ak_batch(
                        ak, dev, model, ckpt.family, rec, cfg, first=i == 0 and execution == executions[0]
                    )
            except Exception as exc:  # a device that cannot run it: say so, keep going
                rec["error"] = f"{type(exc).__name__}: {exc}"[:500]
            records.append(rec)
    del model
    gc.collect()
    with contextlib.suppress(Exception):
        sync()
        dev.empty_cache()
    return records


def _ak_batch(ak, dev, model, family: str, rec: dict, cfg: dict, first: bool) -> None:
    sync = dev.backend.sync
    host = cfg["inputs"][rec["batch"]]
    x = {k: ak.tensor(v.astype(np.int32) if v.dtype.kind in "iu" else v, device=dev) for k, v in host.items()}
    if family == "whisper":
        _ak_whisper(ak, dev, model, x, rec, cfg, first)
        return
    outputs = functools.partial(_ak_outputs, family)
    forward = _checked_and_timed(model, x, sync, rec, cfg, first, outputs, _ak_memory(dev))
    rec.update(_profile(ak, dev, forward, cfg["profile_runs"] if dev.backend_name == "webgpu" else 1))
    rec["host_ms"] = _host_ms(forward, sync, cfg["repeats"])
    rec["host_us_per_dispatch"] = rec["host_ms"] * 1e3 / rec["dispatches"] if rec.get("dispatches") else None


def _checked_and_timed(model, x: dict, sync, rec: dict, cfg: dict, first: bool, outputs, memory) -> Callable:
    """``model(**x)`` run once (``outputs`` of it kept in ``rec`` for the reference check), then timed;
    returns the call."""

    def forward():
        return model(**x)

    out, warm = _first_run(forward, sync, rec, cfg, first)
    rec["outputs"] = outputs(out)
    del out
    _timed_runs(forward, sync, rec, cfg, warm, memory)
    return forward


def _host_ms(fn: Callable[[], object], sync: Callable[[], None], repeats: int) -> float:
    """Median host time of one call until it returns (its dispatches recorded, or replayed and submitted),
    the device waited for outside the timing."""
    times = []
    for _ in range(max(repeats, MIN_MEASURES)):
        sync()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        del out
    sync()
    return float(np.median(times)) * 1e3


def _ak_whisper(ak, dev, model, x: dict, rec: dict, cfg: dict, first: bool) -> None:
    """generate end to end (encode + greedy decode), the encoder alone, and decoding alone (per token)."""
    sync = dev.backend.sync
    feats = x["input_features"]
    lang = cfg["generation"]["language"]
    n_new = cfg["max_new_tokens"]
    prompt = [int(t) for t in model.prompt_ids(language=lang)]
    rec["prompt"] = prompt

    def encode():
        return model.encode(feats)

    def generate():
        return model.generate(feats, max_new_tokens=n_new, language=lang)

    ids, warm = _first_run(generate, sync, rec, cfg, first)
    ids = np.asarray(ids)
    rec["generated"] = ids.tolist()
    steps = ids.shape[1] - len(prompt)
    rec["new_tokens"] = int(steps)
    rec["encoder"] = _measure(encode, sync, cfg["repeats"], cfg["budget_s"], warm, keep=True)
    enc_out = rec["encoder"].pop("last")
    # outputs to check: the encoder output, and the logits of the prompt + 3 tokens in one decoder pass
    check_ids = np.asarray(cfg["check_ids"][rec["batch"]])
    rec["outputs"] = {
        "encoder_last_hidden_state": enc_out.numpy(),
        "logits": model(decoder_input_ids=check_ids, encoder_hidden_states=enc_out).logits.numpy(),
    }

    def decode():
        return model.generate(encoder_hidden_states=enc_out, max_new_tokens=n_new, language=lang)

    rec["decode"] = dec = _measure(decode, sync, cfg["repeats"], cfg["budget_s"], warm)
    rec["decode_token_ms"] = dec["median_ms"] / max(steps, 1)
    _timed_runs(generate, sync, rec, cfg, warm, _ak_memory(dev))  # end to end
    runs = cfg["profile_runs"] if dev.backend_name == "webgpu" else 1  # on the cpu: op counts only
    pe = _profile(ak, dev, encode, runs)
    pd = _profile(ak, dev, decode, runs)
    rec["encoder"].update({k: pe.get(k) for k in ("gpu_ms", "dispatches", "record_ms", "kernels")})
    rec["decode"].update({k: pd.get(k) for k in ("gpu_ms", "dispatches", "record_ms", "kernels")})
    both = pe["gpu_ms"] is not None and pd["gpu_ms"] is not None
    rec["gpu_ms"] = pe["gpu_ms"] + pd["gpu_ms"] if both else None
    rec["dispatches"] = pe["dispatches"] + pd["dispatches"]
    rec["record_ms"] = pe["record_ms"] + pd["record_ms"]
    rec["decode_token_gpu_ms"] = pd["gpu_ms"] / max(steps, 1) if pd["gpu_ms"] is not None else None
    rec["decode_token_dispatches"] = pd["dispatches"] / max(steps, 1)
    rec["decode_step"] = _ak_decode_step(ak, dev, model, enc_out, len(prompt), cfg)


def _ak_decode_step(ak, dev, model, enc_out, position: int, cfg: dict) -> dict:
    """One greedy decoding step in steady state (the same step plan every token replays): token ids in, the
    B chosen ids back (wall ms, the readback included), the host time until the call returns, dispatches."""
    sync = dev.backend.sync
    ids = np.full((enc_out.shape[0], 1), model.generation_config.decoder_start_token_id, np.int32)
    with model.prepare_generation(encoder_hidden_states=enc_out) as state:

        def step():
            state.cache.length = position  # every measured step decodes the first position after the prompt
            return state.step(ids, "every")

        rec = _measure(step, sync, cfg["repeats"], cfg["budget_s"])
        positions = np.array([position], np.int32)
        rec["host_ms"] = _host_ms(lambda: state.run(ids, positions, "every", "ids"), sync, cfg["repeats"])
        rec.update({k: v for k, v in _profile(ak, dev, step, 1).items() if k in ("dispatches", "gpu_ms")})
    rec["host_us_per_dispatch"] = rec["host_ms"] * 1e3 / rec["dispatches"] if rec["dispatches"] else None
    return rec


# ---------------------------------------------------------------------------------- torch targets
class _Torch:
    """torch + transformers when importable: CUDA (TF32 off, and defaults) and CPU targets."""

    def __init__(self, notes: list, cpu: bool = True) -> None:
        self.torch = self.transformers = None
        self.targets: list[tuple[str, str, str]] = []  # (name, device, settings)
        try:
            import torch
            import transformers
        except Exception as exc:  # ImportError, or a broken install
            notes.append(f"torch/transformers not measured: {type(exc).__name__}: {exc}"[:300])
            return
        self.torch, self.transformers = torch, transformers
        if torch.cuda.is_available():
            self.targets.append(("torch:cuda", "cuda", "fp32"))
            self.targets.append(("torch:cuda-default", "cuda", "default"))
        else:
            notes.append("torch:cuda not measured: torch has no CUDA device here")
        if cpu or not self.targets:
            self.targets.append(("torch:cpu", "cpu", "fp32"))
        self.defaults = {
            "matmul.allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
            "cudnn.allow_tf32": bool(torch.backends.cudnn.allow_tf32),
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
        }

    def describe(self) -> list[dict]:
        torch = self.torch
        out = []
        for name, where, settings in self.targets:
            if where == "cuda":
                what = f"transformers {self.transformers.__version__}, torch {torch.__version__} on {torch.cuda.get_device_name(0)}"
                what += " fp32, TF32 off" if settings == "fp32" else f" with torch's defaults {self.defaults}"
            else:
                what = f"transformers {self.transformers.__version__}, torch {torch.__version__} CPU ({torch.get_num_threads()} threads)"
            out.append({"target": name, "name": what})
        return out

    @contextlib.contextmanager
    def settings(self, which: str):
        torch = self.torch
        saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        if which == "fp32":
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        try:
            with torch.no_grad():
                yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved

    def sync(self, where: str) -> Callable[[], None]:
        return self.torch.cuda.synchronize if where == "cuda" else (lambda: None)

    def memory(self, where: str) -> MemoryProbe | None:
        """CUDA's memory counters; None on the CPU (torch does not count its memory there)."""
        cuda = self.torch.cuda
        return (
            (cuda.reset_peak_memory_stats, cuda.memory_allocated, cuda.max_memory_allocated)
            if where == "cuda"
            else None
        )

    def build(self, ckpt: _Checkpoint, where: str):
        """transformers' model of the checkpoint (its config, the same safetensors arrays) on ``where``.

        Loaded through ``from_pretrained``, so transformers' own renaming of checkpoint names (which
        changes between versions) applies; any weight left missing, unexpected or mismatched raises.
        """
        torch, tr = self.torch, self.transformers
        arch = (ckpt.config.get("architectures") or [None])[0]
        cls = getattr(tr, arch)
        logging = tr.utils.logging
        bar = logging.is_progress_bar_enabled()
        logging.disable_progress_bar()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model, info = cls.from_pretrained(
                    str(ckpt.path), dtype=torch.float32, output_loading_info=True
                )
        finally:
            if bar:
                logging.enable_progress_bar()
        bad = {k: sorted(v)[:5] for k, v in info.items() if k != "error_msgs" and v}
        if bad:
            raise RuntimeError(f"transformers {arch} did not load every weight: {bad}")
        return model.to(where).eval()


def _torch_outputs(out) -> dict[str, np.ndarray]:
    keys = ("last_hidden_state", "pooler_output", "logits")
    return {
        k: getattr(out, k).detach().float().cpu().numpy() for k in keys if getattr(out, k, None) is not None
    }


def _torch_targets(tt: _Torch, ckpt: _Checkpoint, batches, cfg: dict) -> list[dict]:
    torch = tt.torch
    records = []
    by_device: dict[str, list] = {}
    for name, where, settings in tt.targets:
        by_device.setdefault(where, []).append((name, settings))
    for where, variants in by_device.items():
        sync = tt.sync(where)
        mem0 = 0
        if where == "cuda":
            torch.cuda.empty_cache()
            mem0 = torch.cuda.memory_allocated()
        t0 = time.perf_counter()
        try:
            model = tt.build(ckpt, where)
            sync()
        except Exception as exc:
            for name, _ in variants:
                records.append(
                    {
                        "target": name,
                        "kind": "reference",
                        "model": ckpt.family,
                        "size": ckpt.size,
                        "batch": batches[0],
                        "error": f"{type(exc).__name__}: {exc}"[:500],
                    }
                )
            continue
        load_s = time.perf_counter() - t0
        weights = torch.cuda.memory_allocated() - mem0 if where == "cuda" else None
        first = True
        for name, settings in variants:
            for batch in batches:
                rec = {
                    "target": name,
                    "kind": "reference",
                    "device": where,
                    "settings": settings,
                    "model": ckpt.family,
                    "size": ckpt.size,
                    "batch": batch,
                    "load_s": load_s,
                    "memory": {"weights_bytes": weights},
                }
                try:
                    with tt.settings(settings):
                        _torch_batch(tt, model, where, ckpt.family, rec, cfg, first)
                    first = False
                except Exception as exc:
                    rec["error"] = f"{type(exc).__name__}: {exc}"[:500]
                records.append(rec)
        del model
        gc.collect()
        if where == "cuda":
            torch.cuda.empty_cache()
    return records


def _torch_batch(tt: _Torch, model, where: str, family: str, rec: dict, cfg: dict, first: bool) -> None:
    torch = tt.torch
    sync = tt.sync(where)
    x = {k: torch.from_numpy(v).to(where) for k, v in cfg["inputs"][rec["batch"]].items()}
    if family == "whisper":
        _torch_whisper(tt, model, where, x, rec, cfg, first)
        return
    _checked_and_timed(model, x, sync, rec, cfg, first, _torch_outputs, tt.memory(where))


def _torch_whisper(tt: _Torch, model, where: str, x: dict, rec: dict, cfg: dict, first: bool) -> None:
    """Encoder, then greedy decoding with transformers' KV cache, masking and stopping as accelkit's generate."""
    torch = tt.torch
    from transformers.modeling_outputs import BaseModelOutput

    sync = tt.sync(where)
    feats = x["input_features"]
    gen = cfg["generation"]
    prompt, n_new = gen["prompt"], cfg["max_new_tokens"]
    vocab = model.config.vocab_size
    mask = torch.zeros(vocab, device=where)
    mask[gen["suppress"]] = float("-inf")
    first_mask = mask.clone()
    first_mask[gen["begin_suppress"]] = float("-inf")
    eos = torch.tensor(gen["eos"], device=where)
    b = feats.shape[0]

    def encode():
        return model.model.encoder(feats).last_hidden_state

    params = inspect.signature(model.forward).parameters
    cache_kw = "cache" if "cache" in params else "past_key_values"  # renamed in transformers 5.2x

    def decode(enc):
        enc_out = BaseModelOutput(last_hidden_state=enc)
        ids = torch.tensor([prompt] * b, device=where)
        step_ids, past, bias = ids, None, first_mask
        finished = torch.zeros(b, dtype=torch.bool, device=where)
        for _ in range(n_new):
            kw = {cache_kw: past}
            out = model(encoder_outputs=enc_out, decoder_input_ids=step_ids, use_cache=True, **kw)
            past = getattr(out, cache_kw, None)
            tokens = (out.logits[:, -1] + bias).argmax(-1)
            tokens = torch.where(finished, torch.full_like(tokens, gen["pad"]), tokens)
            ids = torch.cat([ids, tokens[:, None]], dim=1)
            finished |= torch.isin(tokens, eos)
            if bool(finished.all()):  # one host read per step, as generate's stopping check
                break
            step_ids, bias = tokens[:, None], mask
        return ids

    def generate():
        return decode(encode())

    ids, warm = _first_run(generate, sync, rec, cfg, first)
    ids = ids.cpu().numpy()
    rec["prompt"] = list(prompt)
    rec["generated"] = ids.tolist()
    steps = ids.shape[1] - len(prompt)
    rec["new_tokens"] = int(steps)
    rec["encoder"] = _measure(encode, sync, cfg["repeats"], cfg["budget_s"], warm, keep=True)
    enc = rec["encoder"].pop("last")
    check = torch.from_numpy(np.asarray(cfg["check_ids"][rec["batch"]])).to(where)
    logits = model(encoder_outputs=BaseModelOutput(last_hidden_state=enc), decoder_input_ids=check).logits
    rec["outputs"] = {
        "encoder_last_hidden_state": enc.float().cpu().numpy(),
        "logits": logits.float().cpu().numpy(),
    }
    del logits
    rec["decode"] = _measure(lambda: decode(enc), sync, cfg["repeats"], cfg["budget_s"], warm)
    rec["decode_token_ms"] = rec["decode"]["median_ms"] / max(steps, 1)
    _timed_runs(generate, sync, rec, cfg, warm, tt.memory(where))


# ---------------------------------------------------------------------------------- checks
def _check(records: list[dict], family: str, notes: list) -> None:
    """Compare every target's outputs with the reference (torch fp32 CUDA > torch CPU > accelkit CPU)."""
    by_batch: dict[int, list[dict]] = {}
    for r in records:
        by_batch.setdefault(r["batch"], []).append(r)
    for batch, recs in by_batch.items():
        ok = [r for r in recs if "outputs" in r]
        ref = None
        for name in ("torch:cuda", "torch:cpu", "cpu"):
            ref = next((r for r in ok if r["target"] == name), None)
            if ref is not None:
                break
        for r in recs:
            if "outputs" not in r:
                continue
            if ref is None or r is ref:  # unchecked: nothing to compare with, or it is the reference
                r["checked_against"] = None if ref is None else "(the reference)"
                r["max_rel_err"] = None
                r["ok"] = None
                continue
            err, errs = _compare(r["outputs"], ref["outputs"])
            r["checked_against"] = ref["target"]
            r["max_rel_err"] = err
            r["rel_err"] = errs
            tol = TOL_F16 if r.get("dtype") == "float16" else TOL
            r["ok"] = err is not None and err <= tol
            if family == "whisper" and "generated" in r and "generated" in ref:
                a, b = np.asarray(r["generated"]), np.asarray(ref["generated"])
                n = min(a.shape[1], b.shape[1])
                same = a[:, :n] == b[:, :n]
                agree = int(np.argmin(np.all(same, axis=0))) if not same.all() else n
                r["tokens_agree"] = f"{agree}/{max(a.shape[1], b.shape[1])}"
            if r["ok"] is False:
                notes.append(
                    f"{r['target']} {family} {r['size']} batch {batch}: max relative error {err:.2e} "
                    f"against {ref['target']} is over {tol:g}; its speed is left out of the table"
                )


def _ort_targets(
    ref: OnnxRuntimeWebGPU, tt: _Torch, ckpt: _Checkpoint, batches, cfg: dict, work: Path
) -> list:
    """ONNX Runtime WebGPU on the ONNX export of transformers' model of the same checkpoint."""
    base = {
        "target": ORT_TARGET,
        "kind": "reference",
        "device": "webgpu",
        "model": ckpt.family,
        "size": ckpt.size,
    }
    build = lambda: tt.build(ckpt, "cpu")  # noqa: E731
    return measure_ort(ref, build, ckpt.family, batches, cfg, work, _first_run, _timed_runs, base)


# ---------------------------------------------------------------------------------- the runner
def _environment(command: str, devs, tt: _Torch | None) -> dict:
    env = environment(command, devs)
    try:
        import transformers

        env["transformers"] = transformers.__version__
    except Exception:
        env["transformers"] = None
    if tt is not None and tt.torch is not None:
        torch = tt.torch
        env["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            env["cuda_device"] = torch.cuda.get_device_name(0)
            env["cuda"] = torch.version.cuda
            env["torch_defaults"] = tt.defaults
    env["cpu_count"] = os.cpu_count()
    return env


def _default_devices(ak) -> list:
    """The best device and every WebGPU device."""
    out = [ak.device()]
    for d in ak.devices():
        if d.backend_name == "webgpu" and all(d is not o and d.spec != o.spec for o in out):
            out.append(d)
    return out


def run(
    devices: Sequence | None = None,
    models: Sequence[str] = MODELS,
    sizes: Sequence[str] = SIZES,
    batches: Sequence[int] | None = None,
    seq: int = 128,
    repeats: int | None = None,
    json_path: str | os.PathLike | None = None,
    quick: bool = False,
    progress: bool = True,
    *,
    max_new_tokens: int | None = None,
    references: bool = True,
    cpu_references: bool = True,
    command: str | None = None,
    dtypes: Sequence[str] = ("float32",),
) -> dict:
    """Benchmark each model at each size on each device and the references; return a dict (``result["table"]`` is the text).

    ``devices``: specs or Devices (default: the best device and every WebGPU device). ``batches``:
    batch sizes (default 1 and 8 for BERT/ViT, 1 for Whisper; 1 with ``quick``). ``seq``: BERT
    tokens (capped at the model's positions). ``repeats``: timed calls per figure (default 20, 2
    with ``quick``; fewer once a figure has taken a few seconds). ``quick`` runs tiny models only.
    ``dtypes``: "float32" and/or "float16" (the models loaded with ``dtype=``; checked against the
    float32 reference within ``TOL_F16``).
    """
    import accelkit as ak

    dtypes = [str(d) for d in dtypes]
    for d in dtypes:
        if d not in DTYPES:
            raise ValueError(f"unknown dtype {d!r}; choose from {', '.join(DTYPES)}")
    models = [m for m in models]
    for m in models:
        if m not in MODELS:
            raise ValueError(f"unknown model {m!r}; choose from {', '.join(MODELS)}")
    sizes = ["tiny"] if quick else [s for s in sizes]
    for s in sizes:
        if s not in SIZES:
            raise ValueError(f"unknown size {s!r}; choose from {', '.join(SIZES)}")
    repeats = int(repeats) if repeats else (QUICK_REPEAT if quick else DEFAULT_REPEAT)
    budget_s = QUICK_BUDGET_S if quick else BUDGET_S
    max_new_tokens = int(max_new_tokens) if max_new_tokens else (8 if quick else 32)
    if devices is None:
        devs = _default_devices(ak)
    else:
        devs = [ak.device(d) for d in ([devices] if isinstance(devices, str) else devices)]
    notes: list[str] = []
    tt = _Torch(notes, cpu=cpu_references) if references else None
    ort_ref = OnnxRuntimeWebGPU(notes) if references and tt is not None and tt.torch is not None else None
    if ort_ref is not None and not ort_ref.available:
        ort_ref = None
    ak_targets = list(devs)
    gpu_reference = tt is not None and any(t[1] == "cuda" for t in tt.targets)
    if (
        references
        and (cpu_references or not gpu_reference)
        and not any(d.backend_name == "cpu" for d in devs)
    ):
        ak_targets.append(ak.device("cpu"))  # the accelkit CPU backend, as a reference
    if command is None:
        command = (
            f"accelkit.bench.models.run(devices={[d.spec for d in devs]}, models={models}, sizes={sizes}, "
            f"batches={batches}, seq={seq}, dtypes={dtypes}, repeats={repeats}, quick={quick})"
        )
    result = {
        "env": _environment(command, ak_targets, tt),
        "config": {
            "models": models,
            "sizes": sizes,
            "batches": list(batches) if batches else None,
            "seq": seq,
            "repeats": repeats,
            "budget_s": budget_s,
            "max_new_tokens": max_new_tokens,
            "quick": quick,
            "tolerance": TOL,
            "tolerance_float16": TOL_F16,
            "dtypes": dtypes,
        },
        "checkpoints": [],
        "results": [],
        "notes": notes,
    }
    if tt is not None:
        result["env"]["references"] = (
            tt.describe()
            + ([ort_ref.describe()] if ort_ref else [])
            + [
                {"target": d.spec, "name": f"accelkit CPU backend ({d.name})"}
                for d in ak_targets
                if d not in devs
            ]
        )
    plan = []
    for size in sizes:
        for family in models:
            for d in ak_targets:
                for dt in dtypes if d in devs else ["float32"]:  # the CPU reference in float32
                    plan.append((size, family, "ak", (d, dt)))
            if tt is not None and tt.targets:
                plan.append((size, family, "torch", None))
            if ort_ref is not None and family in ORT_FAMILIES:
                plan.append((size, family, "ort", None))
    tmp = None

    def tmpdir() -> Path:
        nonlocal tmp
        if tmp is None:
            tmp = tempfile.TemporaryDirectory(prefix="accelkit-bench-models-")
        return Path(tmp.name)

    rng_seed = 1234
    bar = Progress(len(plan), progress, "accelkit bench models")
    try:
        for size in sizes:
            for family in models:
                ckpt = _Checkpoint(family, size, tmpdir)
                desc = ckpt.describe()
                result["checkpoints"].append(desc)
                fam_batches = list(batches) if batches else ([1] if quick or family == "whisper" else [1, 8])
                cfg = _case_config(
                    family, ckpt, fam_batches, seq, repeats, budget_s, max_new_tokens, rng_seed, notes, quick
                )
                desc["inputs"] = cfg["describe"]
                recs = []
                for _, _, kind, target in [p for p in plan if p[0] == size and p[1] == family]:
                    d, dt = target if kind == "ak" else (None, None)
                    label = d.spec + ("" if dt == "float32" else f" {dt}") if kind == "ak" else kind
                    bar.step(f"{family} {size} on {label}")
                    if kind == "ak":
                        if size != "tiny" and d.is_software:
                            notes.append(
                                f"{d.spec}: {family} {size} skipped (software adapter {d.name}; tiny only)"
                            )
                            continue
                        recs.extend(_ak_target(ak, d, ckpt, fam_batches, cfg, dt))
                    elif kind == "ort":
                        recs.extend(_ort_targets(ort_ref, tt, ckpt, fam_batches, cfg, tmpdir()))
                    else:
                        recs.extend(_torch_targets(tt, ckpt, fam_batches, cfg))
                _check(recs, family, notes)
                for r in recs:
                    r.pop("outputs", None)
                    _derive(r)
                result["results"].extend(recs)
                del ckpt
                gc.collect()
                if json_path:  # what is done so far, in case a long sweep is cut short
                    write_json(json_path, result)
    finally:
        bar.close()
        if tmp is not None:
            tmp.cleanup()
    return finish(result, format_table, json_path)


def _case_config(family, ckpt, batches, seq, repeats, budget_s, max_new_tokens, seed, notes, quick) -> dict:
    """Inputs per batch (the same arrays for every target) and what the Whisper reference loop needs."""
    config = ckpt.config
    rng = np.random.default_rng(seed)
    cfg = {
        "repeats": repeats,
        "budget_s": budget_s,
        "max_new_tokens": max_new_tokens,
        "inputs": {},
        "warmup": not quick,  # the first run warms up; a full run adds one more untimed call
        "profile_runs": 1 if quick else 3,
    }
    if family == "bert":
        limit = int(config.get("max_position_embeddings", 512))
        if seq > limit:
            notes.append(f"bert {ckpt.size}: --seq {seq} capped at the model's {limit} positions")
        seq = min(seq, limit)
        cfg["describe"] = f"{seq} tokens"
    elif family == "vit":
        s = config.get("image_size", 224)
        cfg["describe"] = f"{config.get('num_channels', 3)}x{s}x{s} pixels, patch {config.get('patch_size')}"
    else:
        frames = 2 * config.get("max_source_positions", 1500)
        limit = config.get("max_target_positions", 448)
        from ..models.registry import model_class
        from ..models.whisper import WhisperGenerationConfig

        cls = model_class("whisper", (config.get("architectures") or [None])[0])
        shell = cls(cls.config_class.from_dict(config))  # the module tree only, for its prompt logic
        gen_path = ckpt.path / "generation_config.json"
        gen_dict = json.loads(gen_path.read_text()) if gen_path.is_file() else None
        gen = WhisperGenerationConfig.for_model(gen_dict, shell.config, "generation_config.json")
        shell.generation_config = gen
        language = "en" if gen.lang_to_id and "<|en|>" in gen.lang_to_id else None
        prompt = [int(t) for t in shell.prompt_ids(language=language)]
        room = limit - len(prompt)
        if max_new_tokens > room:
            notes.append(f"whisper {ckpt.size}: --max-new-tokens {max_new_tokens} capped at {room}")
            cfg["max_new_tokens"] = max_new_tokens = room
        suppress = [int(t) for t in gen.suppress_tokens or []]
        cfg["generation"] = {
            "language": language,
            "prompt": prompt,
            "suppress": suppress,
            "begin_suppress": suppress + [int(t) for t in gen.begin_suppress_tokens or []],
            "eos": gen.eos_ids,
            "pad": gen.pad_id,
        }
        extra = rng.integers(0, min(shell.config.vocab_size, 50000), size=3).tolist()
        cfg["check_ids"] = {b: [prompt + extra] * b for b in batches}  # logits checked on prompt + 3 tokens
        cfg["describe"] = (
            f"{config.get('num_mel_bins', 80)} mels x {frames} frames (30 s), greedy decode of up to "
            f"{max_new_tokens} tokens after the prompt {prompt}"
        )
    for b in batches:
        cfg["inputs"][b] = _inputs(family, config, b, seq, rng)
    return cfg


def _derive(r: dict) -> None:
    """items/s and GPU share of the wall time, from the measured figures."""
    if "median_ms" in r and r["median_ms"]:
        r["items_per_s"] = r["batch"] / (r["median_ms"] / 1e3)
    if r.get("gpu_ms") and r.get("median_ms"):
        r["gpu_share"] = r["gpu_ms"] / r["median_ms"]


# ---------------------------------------------------------------------------------- the table
def _mib(n) -> str:
    return "-" if n is None else f"{n / 2**20:.1f}"


def _f(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _err(r: dict) -> str:
    if r.get("checked_against") == "(the reference)":
        return "ref"
    e = r.get("max_rel_err")
    return "-" if e is None else f"{e:.1e}"


def format_table(result: dict) -> str:
    """One block per model, size and batch: a row per target."""
    env = result["env"]
    lines = [f"accelkit bench models  {env['date']}  ({env['command']})"]
    for d in env["devices"]:
        extra = f" ({d.get('api')}, driver {d.get('driver')})" if d["backend"] == "webgpu" else ""
        lines.append(f"  {d['spec']:<18} {d['name']}{extra}{' [software]' if d['is_software'] else ''}")
    for r in env.get("references", []):
        lines.append(f"  {r['target']:<18} {r['name']} (reference)")
    ckpts = {(c["model"], c["size"]): c for c in result["checkpoints"]}
    groups: dict[tuple, list] = {}
    for r in result["results"]:
        groups.setdefault((r["model"], r["size"], r["batch"]), []).append(r)
    for (model, size, batch), recs in groups.items():
        c = ckpts.get((model, size), {})
        lines.append("")
        lines.append(
            f"{model} {size}: {c.get('name')}, {c.get('parameters', 0) / 1e6:.1f}M parameters, "
            f"batch {batch} x {c.get('inputs')}"
        )
        if model == "whisper":
            head = (
                f"{'target':<19} {'load s':>7} {'first ms':>9} {'generate ms':>12} {'p90':>8} {'items/s':>8} "
                f"{'enc ms':>8} {'[GPU]':>8} {'tok ms':>7} {'[GPU]':>7} {'step ms':>8} {'host us/d':>9} "
                f"{'disp enc/tok':>13} "
                f"{'MiB w/peak':>14} {'rel err':>8} {'tokens':>7}"
            )
        else:
            head = (
                f"{'target':<19} {'load s':>7} {'first ms':>9} {'median ms':>10} {'p90':>8} {'items/s':>9} "
                f"{'GPU ms':>8} {'GPU/wall':>8} {'disp':>5} {'host us/d':>9} {'MiB w/peak':>14} {'rel err':>8}"
            )
        lines.append(head)
        replaying = {r["target"] for r in recs if r.get("execution", "").startswith("replay")}
        for r in recs:
            name = r["target"] + (f" {r['execution']}" if r["target"] in replaying else "")
            if "error" in r:
                lines.append(f"{name:<19} error: {r['error'][:150]}")
                continue
            mem = r.get("memory", {})
            mib = f"{_mib(mem.get('weights_bytes'))}/{_mib(mem.get('peak_bytes'))}"
            if r.get("ok") is False:
                lines.append(
                    f"{name:<19} WRONG RESULT: max relative error {_err(r)} vs {r['checked_against']}"
                )
                continue
            if model == "whisper":
                enc = r.get("encoder", {})
                tok_gpu = r.get("decode_token_gpu_ms")
                step = r.get("decode_step") or {}
                disp = (
                    f"{enc.get('dispatches')}/{r.get('decode_token_dispatches', 0):.0f}"
                    if enc.get("dispatches") is not None
                    else "-"
                )
                lines.append(
                    f"{name:<19} {r['load_s']:>7.2f} {_f(r.get('first_ms'), '.1f'):>9} {r['median_ms']:>12.2f} "
                    f"{r['p90_ms']:>8.2f} {r['items_per_s']:>8.2f} {_f(enc.get('median_ms'), '.2f'):>8} "
                    f"{_f(enc.get('gpu_ms'), '.2f'):>8} {r['decode_token_ms']:>7.2f} {_f(tok_gpu, '.2f'):>7} "
                    f"{_f(step.get('median_ms'), '.3f'):>8} {_f(step.get('host_us_per_dispatch'), '.1f'):>9} "
                    f"{disp:>13} {mib:>14} {_err(r):>8} {r.get('tokens_agree', '-'):>7}"
                )
            else:
                lines.append(
                    f"{name:<19} {r['load_s']:>7.2f} {_f(r.get('first_ms'), '.1f'):>9} {r['median_ms']:>10.3f} "
                    f"{r['p90_ms']:>8.3f} {r['items_per_s']:>9.1f} {_f(r.get('gpu_ms'), '.3f'):>8} "
                    f"{_f(r.get('gpu_share'), '.0%'):>8} {_f(r.get('dispatches'), 'd'):>5} "
                    f"{_f(r.get('host_us_per_dispatch'), '.1f'):>9} {mib:>14} {_err(r):>8}"
                )
        for r in recs:  # where the GPU time goes
            kernels = r.get("kernels") or (r.get("encoder") or {}).get("kernels")
            if r.get("gpu_ms") and kernels and r.get("ok") is not False:
                what = "encoder " if model == "whisper" else ""
                top = ", ".join(
                    f"{k['kernel']} {k['gpu_ms']:.3f} ms ({k['share']:.0%}, {k['calls']}x)"
                    for k in kernels[:5]
                    if k.get("gpu_ms") is not None
                )
                name = r["target"] + (f" {r['execution']}" if r["target"] in replaying else "")
                lines.append(f"  {name} {what}top kernels by GPU time: {top}")
    lines.append("")
    lines.append(
        "ms: median wall time per call, inputs already on the device, outputs left there (the wait included);"
        " GPU: sum of the dispatches' timestamps per call (profiled separately); disp: dispatches (ops on cpu)"
        " per call; host us/d: host time of a call until it returns, per dispatch (eager: the op layer records"
        " each dispatch; replay: a captured plan is encoded and submitted); MiB w/peak: weights / peak device bytes;"
        " rel err: max |out - ref| / max |ref|;"
        " whisper: generate = encode + greedy decode, tok = decode ms per token, step = one steady-state decoding"
        " step (ids in, chosen ids read back; replay: the one step plan every token uses) and its host us per"
        " dispatch, tokens = prefix agreeing with the reference"
    )
    for r in result["results"]:
        if "error" in r:
            lines.append(f"  error: {r['target']} {r['model']} {r['size']} batch {r['batch']}: {r['error']}")
    for note in result["notes"]:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- command line
def _csv(kind: Callable, name: str):
    def parse(text: str) -> list:
        try:
            return [kind(s) for s in text.replace(",", " ").split()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} takes a comma list; got {text!r}") from None

    return parse


def build_parser(prog: str = "accelkit bench models") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=plain(__doc__.split("\n\n")[0]))
    p.add_argument(
        "--device",
        action="append",
        help="device spec (repeatable); default: the best and every WebGPU device",
    )
    p.add_argument(
        "--model",
        action="append",
        type=_csv(str, "--model"),
        help=f"{', '.join(MODELS)} (repeatable or comma list; default all)",
    )
    p.add_argument(
        "--size",
        action="append",
        type=_csv(str, "--size"),
        help="tiny (bundled) and/or base (random weights, real sizes); default both",
    )
    p.add_argument(
        "--batch",
        type=_csv(int, "--batch"),
        default=None,
        help="batch sizes, e.g. 1,8 (default 1,8; Whisper 1)",
    )
    p.add_argument("--seq", type=int, default=128, help="BERT tokens per sequence (default 128)")
    p.add_argument(
        "--dtype",
        action="append",
        type=_csv(str, "--dtype"),
        help="float32 (default) and/or float16: the accelkit models' dtype (comma list)",
    )
    p.add_argument(
        "--max-new-tokens", type=int, default=None, help="Whisper greedy tokens (default 32; 8 with --quick)"
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=None,
        help=f"timed calls per figure (default {DEFAULT_REPEAT}, {QUICK_REPEAT} with --quick)",
    )
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--quick", action="store_true", help="tiny models only, few repeats")
    p.add_argument(
        "--no-references", action="store_true", help="accelkit only: no torch, no CPU-backend reference"
    )
    p.add_argument(
        "--no-cpu-references",
        action="store_true",
        help="where torch has a CUDA device, skip the CPU references (torch CPU, the accelkit CPU backend)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``accelkit bench models`` (the CLI passes the arguments after ``models``)."""
    parser = build_parser()
    args, command = parse(parser, argv)
    models = [m for group in (args.model or [list(MODELS)]) for m in group]
    sizes = [s for group in (args.size or [list(SIZES)]) for s in group]
    for m in models:
        if m not in MODELS:
            parser.error(f"--model {m!r}: choose from {', '.join(MODELS)}")
    for s in sizes:
        if s not in SIZES:
            parser.error(f"--size {s!r}: choose from {', '.join(SIZES)}")
    for group in args.dtype or []:
        for d in group:
            if d not in DTYPES:
                parser.error(f"--dtype {d!r}: choose from {', '.join(DTYPES)}")
    if args.batch is not None and (not args.batch or min(args.batch) < 1):
        parser.error("--batch takes positive integers")
    result = run(
        devices=args.device,
        models=models,
        sizes=sizes,
        batches=args.batch,
        seq=args.seq,
        repeats=args.repeat,
        max_new_tokens=args.max_new_tokens,
        dtypes=[d for group in (args.dtype or [["float32"]]) for d in group],
        references=not args.no_references,
        cpu_references=not args.no_cpu_references,
        **run_options(args, command),
    )
    return show(result, args.json)


if __name__ == "__main__":  # python -m accelkit.bench.models
    raise SystemExit(main())
