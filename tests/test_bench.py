"""``accelkit bench ops``: the runner's JSON and table have the promised shape (no timing assertions)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import WEBGPU_SPECS

from accelkit.bench import Progress, presets
from accelkit.bench import models as bench_models
from accelkit.bench import ops as bench_ops
from accelkit.bench import sharing as bench_sharing


def _devices() -> list[str]:
    return ["cpu"] + WEBGPU_SPECS[:1]


def test_quick_run_writes_json_and_table(tmp_path, capsys):
    path = tmp_path / "bench.json"
    argv = ["--quick", "--sizes", "32,48,1024", "--repeat", "1", "--json", str(path), "--no-progress"]
    for spec in _devices():
        argv += ["--device", spec]
    assert bench_ops.main(argv) == 0
    printed = capsys.readouterr().out
    result = json.loads(path.read_text())

    env = result["env"]
    assert env["command"].startswith("accelkit bench ops --quick")
    for key in ("date", "python", "numpy", "wgpu", "accelkit", "devices"):
        assert key in env
    assert [d["spec"] for d in env["devices"]] == _devices()
    for d in env["devices"]:
        if d["backend"] == "webgpu":
            assert d["driver"] and d["api"]

    targets = {r["target"] for r in result["matmul"]}
    assert set(_devices()) | {"numpy"} <= targets
    assert {(r["target"], r["layout"]) for r in result["matmul"]} >= {
        (d, lay) for d in _devices() for lay in ("b", "wT")
    }
    for r in result["matmul"]:
        assert r["size"] in (32, 48) and r["dtype"] == "float32"  # 1024 > the --quick limit
        if "error" not in r and "skipped" not in r:
            assert r["median_ms"] > 0 and r["gflops"] > 0 and len(r["times_ms"]) == 1
    assert any("1024" in note and "--quick" in note for note in result["notes"])
    for r in result["matmul"]:
        if r["target"] in _devices():
            assert "error" not in r, r
            assert r["rel_err"] < 1e-4

    ops = {(r["target"], r["op"]) for r in result["ops"]}
    for spec in _devices() + ["numpy"]:
        for op in ("softmax", "layer_norm", "gelu", "add", "attention", "matmul_linear_gelu", "linear_m1"):
            assert (spec, op) in ops
    for r in result["ops"]:
        assert r["shape"] == "small"
        if r["target"] in _devices() and r["op"] in ("matmul_linear_gelu", "linear_m1"):
            assert "error" not in r, r

    # the table: one matmul block (a row per size, a column per target) and one ops block
    assert result["table"] in printed
    lines = result["table"].splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("matmul float32"))
    columns = lines[head + 1].split()
    assert columns[:2] == ["N", "b"] and set(_devices()) <= set(columns[2:])
    rows = [line.split()[:2] for line in lines[head + 2 : head + 6]]
    assert rows == [["32", "b"], ["32", "wT"], ["48", "b"], ["48", "wT"]]
    assert any(line.startswith("attention") for line in lines)


def test_run_returns_the_same_structure_without_the_cli():
    result = bench_ops.run(
        devices=["cpu"], sizes=(16,), repeats=1, quick=True, progress=False, ops=False, references=False
    )
    assert [(r["target"], r["layout"]) for r in result["matmul"]] == [("cpu", "b"), ("cpu", "wT")]
    assert all(r["rel_err"] < 1e-5 for r in result["matmul"])
    assert result["ops"] == [] and "matmul float32" in result["table"]


def test_one_layout_only(tmp_path):
    path = tmp_path / "wt.json"
    argv = "--device cpu --sizes 8 --layout wT --no-ops --no-references --no-progress --repeat 1 --json"
    assert bench_ops.main([*argv.split(), str(path)]) == 0
    result = json.loads(path.read_text())
    assert [(r["size"], r["layout"]) for r in result["matmul"]] == [(8, "wT")]
    assert result["config"]["layouts"] == ["wT"]


BAD_ARGUMENTS = [
    (bench_ops, ["--sizes", "12,abc"]),
    (bench_ops, ["--repeat", "x"]),
    (bench_ops, ["--layout", "nt"]),
    (bench_ops, ["--layout", ","]),
    (bench_models, ["--model", "gpt2"]),
    (bench_models, ["--size", "huge"]),
    (bench_models, ["--batch", "x"]),
    (bench_models, ["--repeat", "y"]),
]


@pytest.mark.parametrize(
    ("bench", "bad"),
    BAD_ARGUMENTS,
    ids=[f"{m.__name__.rsplit('.', 1)[1]}:{' '.join(a)}" for m, a in BAD_ARGUMENTS],
)
def test_bad_arguments_exit_with_usage(bench, bad, capsys):
    """``accelkit bench ops`` and ``bench models``: a bad argument ends in argparse's usage exit (2)."""
    with pytest.raises(SystemExit) as info:
        bench.main(bad)
    assert info.value.code == 2


def test_progress_writes_a_line_per_step_where_no_bar_shows(capsys):
    with Progress(3, True, "sweep") as bar:
        bar.step("first")
        bar.step("second")
    err = capsys.readouterr().err.splitlines()
    assert [line.split("] ", 1)[1] for line in err] == ["first", "second"]
    assert err[0].startswith("[1/3 ") and err[1].startswith("[2/3 ")
    with Progress(2, False) as quiet:
        quiet.step("nothing")
    assert capsys.readouterr().err == "" and quiet.done == 1


def test_sharing_checkpoints_take_their_size_from_the_presets(tmp_path):
    import accelkit as ak
    from accelkit.io import Checkpoint

    path = bench_sharing.sized_checkpoint("vit", "small", tmp_path / "vit")
    config = json.loads((path / "config.json").read_text())
    assert {k: config[k] for k in presets.PRESETS["small"]["vit"]} == presets.PRESETS["small"]["vit"]
    pre = json.loads((path / "preprocessor_config.json").read_text())
    assert pre["size"] == {"height": 224, "width": 224}
    with Checkpoint.open(path) as ckpt:
        weights = {n: np.array(ckpt.array(n)) for n in ckpt.names()}
    tune = bench_sharing.sized_checkpoint(
        "vit", "small", tmp_path / "tune", seed=1, share=(weights, ("vit.embeddings.",))
    )
    with Checkpoint.open(tune) as ckpt:
        for name in ckpt.names():
            same = np.array_equal(np.array(ckpt.array(name)), weights[name])
            assert same == name.startswith("vit.embeddings."), name
    model = ak.load(tune, device="cpu")
    assert model.config.hidden_size == presets.PRESETS["small"]["vit"]["hidden_size"]
