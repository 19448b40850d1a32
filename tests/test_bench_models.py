"""``accelkit bench models``: the runner's JSON and table have the promised shape (no timing assertions).

``--quick`` runs on the tiny bundled models, shared by the tests of this module: BERT and ViT on the
cpu and the first WebGPU adapter (when there is one), Whisper on the cpu only (its 1500-position
encoder takes seconds per call on lavapipe). torch/transformers references join in when they import.
"""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from conftest import WEBGPU_SPECS

from accelkit.bench import models as bench_models
from accelkit.bench import presets

TIMED = ("median_ms", "p90_ms", "items_per_s", "load_s")


def _devices() -> list[str]:
    return ["cpu"] + WEBGPU_SPECS[:1]


def _devices_for(model: str) -> list[str]:
    return ["cpu"] if model == "whisper" else _devices()


def _quick(argv: list[str], path) -> tuple[dict, str]:
    out = io.StringIO()
    argv = ["--quick", "--repeat", "1", "--max-new-tokens", "2", "--json", str(path), "--no-progress", *argv]
    with contextlib.redirect_stdout(out):
        assert bench_models.main(argv) == 0
    return json.loads(path.read_text()), out.getvalue()


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """{"bert,vit": (result, printed), "whisper": (result, printed)}."""
    root = tmp_path_factory.mktemp("bench")
    devices = [a for spec in _devices() for a in ("--device", spec)]
    return {
        "bert,vit": _quick(["--model", "bert,vit", *devices], root / "encoders.json"),
        "whisper": _quick(["--model", "whisper", "--device", "cpu"], root / "whisper.json"),
    }


@pytest.fixture(scope="module")
def quick_result(quick_runs):
    """Both runs as one: the first run's env and config, every result, both tables."""
    first, printed = quick_runs["bert,vit"]
    second, printed2 = quick_runs["whisper"]
    merged = dict(first)
    merged["results"] = first["results"] + second["results"]
    merged["checkpoints"] = first["checkpoints"] + second["checkpoints"]
    merged["tables"] = [(first["table"], printed), (second["table"], printed2)]
    return merged, printed + printed2


def test_environment_and_config(quick_result):
    result, _ = quick_result
    env = result["env"]
    assert env["command"].startswith("accelkit bench models --quick")
    for key in ("date", "python", "numpy", "wgpu", "accelkit", "devices", "transformers", "torch"):
        assert key in env
    assert [d["spec"] for d in env["devices"]] == _devices()
    for d in env["devices"]:
        if d["backend"] == "webgpu":
            assert d["driver"] and d["api"]
    cfg = result["config"]
    assert cfg["quick"] and cfg["sizes"] == ["tiny"] and cfg["models"] == ["bert", "vit"]
    assert cfg["repeats"] == 1 and cfg["max_new_tokens"] == 2
    assert {c["model"] for c in result["checkpoints"]} == {"bert", "vit", "whisper"}
    for c in result["checkpoints"]:
        assert c["size"] == "tiny" and c["parameters"] > 0 and c["inputs"]


def test_every_model_ran_on_every_device(quick_result):
    result, _ = quick_result
    recs = {(r["target"], r["model"]): r for r in result["results"] if r.get("execution") != "replay"}
    for model in ("bert", "vit", "whisper"):
        for spec in _devices_for(model):
            r = recs[(spec, model)]
            assert "error" not in r, r
            assert r["kind"] == "accelkit" and r["size"] == "tiny" and r["batch"] == 1
            for key in TIMED + ("first_ms", "dispatches"):
                assert r[key] > 0, (spec, model, key)
            assert len(r["times_ms"]) == 1
            assert (
                r["memory"]["weights_bytes"] > 0 and r["memory"]["peak_bytes"] >= r["memory"]["weights_bytes"]
            )
            assert r.get("kernels") or model == "whisper"
            if r["target"].startswith("webgpu") and any(
                d["spec"] == spec and d.get("timestamps") for d in result["env"]["devices"]
            ):
                assert r["gpu_ms"] > 0 and r["gpu_share"] > 0
            if r["target"] == "cpu":
                assert r["gpu_ms"] is None
            if model == "whisper":
                assert r["new_tokens"] >= 1 and len(r["generated"][0]) == len(r["prompt"]) + r["new_tokens"]
                for part in ("encoder", "decode"):
                    assert r[part]["median_ms"] > 0 and r[part]["dispatches"] > 0
                assert r["decode_token_ms"] > 0 and r["decode_token_dispatches"] > 0
                step = r["decode_step"]  # one steady-state step: as many ops as a token of decode
                assert step["median_ms"] > 0 and step["host_ms"] > 0
                assert step["dispatches"] == round(r["decode_token_dispatches"]) or step["dispatches"] > 0


def test_outputs_are_checked_against_a_reference(quick_result):
    result, _ = quick_result
    has_torch = result["env"]["torch"] is not None and result["env"]["transformers"] is not None
    for r in result["results"]:
        assert "outputs" not in r  # arrays stay out of the JSON
        if "error" in r:
            continue
        assert "ok" in r and "max_rel_err" in r
        if r["checked_against"] not in (None, "(the reference)"):
            assert r["ok"] is True, r  # the tiny models agree to float32 rounding
            assert 0 <= r["max_rel_err"] < bench_models.TOL
    if has_torch:
        refs = {r["target"] for r in result["results"] if r["kind"] == "reference"}
        assert "torch:cpu" in refs
        for r in result["results"]:
            if r["kind"] == "accelkit":
                assert r["checked_against"] in ("torch:cuda", "torch:cpu")
                if r["model"] == "whisper":
                    agree, total = r["tokens_agree"].split("/")
                    assert int(total) >= 1


def test_webgpu_runs_eager_and_replayed_side_by_side(quick_result):
    result, _ = quick_result
    for model in ("bert", "vit"):
        for spec in WEBGPU_SPECS[:1]:
            recs = [r for r in result["results"] if r["target"] == spec and r["model"] == model]
            assert [r["execution"] for r in recs] == ["eager", "replay"], recs
            eager, replay = recs
            assert eager["dispatches"] == replay["dispatches"] and replay["capture_ms"] > 0
            for r in recs:
                assert r["host_us_per_dispatch"] > 0 and r.get("ok") is not False
    cpu = [r for r in result["results"] if r["target"] == "cpu" and r["kind"] == "accelkit"]
    assert cpu and all(r["execution"] == "eager" for r in cpu)
    text = "\n".join(table for table, _ in result["tables"])
    if WEBGPU_SPECS:
        assert f"{WEBGPU_SPECS[0]} replay" in text and "host us/d" in text


def test_table_has_a_block_per_model(quick_result):
    result, _ = quick_result
    for table, printed in result["tables"]:
        assert table in printed
    text = "\n".join(table for table, _ in result["tables"])
    lines = text.splitlines()
    for model in ("bert", "vit", "whisper"):
        head = next(i for i, line in enumerate(lines) if line.startswith(f"{model} tiny:"))
        assert lines[head + 1].split()[0] == "target"
        rows = {line.split()[0] for line in lines[head + 2 : head + 2 + 8] if line.strip()}
        assert set(_devices_for(model)) <= rows
    assert "median ms" in text and "generate ms" in text


def test_base_checkpoint_is_written_in_hf_layout(tmp_path):
    config = dict(
        bench_models.BASE_CONFIGS["bert"], hidden_size=24, num_attention_heads=2, num_hidden_layers=1
    )
    config.update(intermediate_size=40, vocab_size=50, max_position_embeddings=16)
    state = presets.random_state_dict(config, seed=3)
    assert "embeddings.word_embeddings.weight" in state or "bert.embeddings.word_embeddings.weight" in state
    again = presets.random_state_dict(config, seed=3)
    assert all(np.array_equal(state[k], again[k]) for k in state)  # seeded
    path = presets.write_checkpoint(tmp_path / "ckpt", config, state)
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    import accelkit as ak

    model = ak.load(path, device="cpu")
    out = model(input_ids=np.array([[1, 2, 3, 4]]))
    assert out.last_hidden_state.shape == (1, 4, 24)
    assert np.all(np.isfinite(out.last_hidden_state.numpy()))


def test_base_sizes_come_from_the_one_preset_table():
    for family in bench_models.MODELS:
        config = bench_models.BASE_CONFIGS[family]
        assert {k: config[k] for k in presets.PRESETS["base"][family]} == presets.PRESETS["base"][family]
        assert config["model_type"] == family


def test_run_without_references_is_accelkit_only():
    result = bench_models.run(
        devices=["cpu"], models=["vit"], quick=True, progress=False, references=False, repeats=1
    )
    assert [r["target"] for r in result["results"]] == ["cpu"]
    assert result["results"][0]["ok"] is None  # nothing to check against
    assert "vit tiny:" in result["table"]


def test_a_wrong_result_is_flagged_and_its_speed_left_out():
    ref = {"target": "torch:cpu", "batch": 1, "size": "tiny", "outputs": {"logits": np.ones((2, 3))}}
    good = {"target": "cpu", "batch": 1, "size": "tiny", "outputs": {"logits": np.ones((2, 3)) + 1e-7}}
    bad = {"target": "webgpu:0", "batch": 1, "size": "tiny", "outputs": {"logits": np.full((2, 3), 1.5)}}
    notes: list[str] = []
    bench_models._check([good, bad, ref], "bert", notes)
    assert good["ok"] is True and good["checked_against"] == "torch:cpu" and good["max_rel_err"] < 1e-6
    assert bad["ok"] is False and bad["max_rel_err"] == pytest.approx(0.5)
    assert ref["ok"] is None and ref["checked_against"] == "(the reference)"
    assert len(notes) == 1 and "webgpu:0" in notes[0]


def test_float16_models_run_beside_float32_and_are_checked_with_their_tolerance(tmp_path):
    spec = _devices()[-1]  # the WebGPU adapter when there is one (f16 where it has shader-f16)
    result, printed = _quick(
        ["--model", "vit", "--device", spec, "--dtype", "float32,float16", "--no-references"],
        tmp_path / "f.json",
    )
    assert result["config"]["dtypes"] == ["float32", "float16"]
    assert result["config"]["tolerance_float16"] == bench_models.TOL_F16 > bench_models.TOL
    got = {(r["dtype"], r["execution"]) for r in result["results"]}
    execs = {r["execution"] for r in result["results"] if r["dtype"] == "float32"}
    assert got == {("float32", e) for e in execs} | {("float16", f"{e} f16") for e in execs}
    assert all("error" not in r for r in result["results"]), result["results"]
    if len(execs) > 1:  # eager and replay rows are named in the table
        assert f"{spec} replay f16" in printed

    f32 = {"target": "torch:cpu", "batch": 1, "size": "tiny", "outputs": {"logits": np.ones((2, 3))}}
    half = {"target": spec, "batch": 1, "size": "tiny", "dtype": "float16"}
    half["outputs"] = {"logits": np.ones((2, 3)) * (1 + bench_models.TOL_F16 / 2)}
    full = dict(half, dtype="float32", outputs={"logits": half["outputs"]["logits"].copy()})
    notes: list[str] = []
    bench_models._check([half, full, f32], "vit", notes)
    assert half["ok"] is True and full["ok"] is False  # the same error: rounding in f16, wrong in f32


@pytest.mark.parametrize("bad", ["float64", "f16,int8"])
def test_bench_models_refuses_unknown_dtypes(bad):
    with pytest.raises(SystemExit) as info:
        bench_models.main(["--quick", "--dtype", bad])
    assert info.value.code == 2
