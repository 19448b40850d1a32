"""The matmul autotuner and its on-disk table: bad tables are ignored with one warning and rebuilt.

Nothing here times anything: the tuner takes a ``measure`` function, and the tests give it one that
returns made-up microseconds, so the choice is known in advance.
"""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest

import accelkit as ak
from accelkit.backends.webgpu import autotune as at
from accelkit.backends.webgpu import matmul as wm
from accelkit.backends.webgpu.wgsl import Caps

GPU = Caps(
    f16=True, timestamps=True, max_workgroup_storage=49152, max_invocations=1024, max_workgroup_size_x=1024
)
INFO = {
    "device": "Test GPU",
    "vendor_id": 4318,
    "device_id": 9013,
    "description": "580.1",
    "backend_type": "Vulkan",
}


class FakeBackend:
    def __init__(self, caps=GPU, info=INFO) -> None:
        self.caps = caps
        self.adapter_info = dict(info)


class FakeMeasure:
    """Made-up GPU time per candidate: the 32x64k16 tile is fastest, at its fewest split-K slices."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, backend, rows, n, k, dtype, b_k, cand) -> float:
        self.calls.append(dict(cand))
        if cand["tile"] == "32x64k16":
            return 5.0 + cand["split"] / 100
        return 10.0 + len(self.calls)


@pytest.fixture
def table_path(tmp_path):
    return tmp_path / "store" / at.TABLE_NAME


def tuner(path, measure=None, backend=None):
    return at.Autotuner(backend or FakeBackend(), path, measure=measure or FakeMeasure())


def test_tunes_once_then_reads_the_table(table_path):
    m = FakeMeasure()
    t = tuner(table_path, m)
    choice = t.choose(128, 768, 3072, "f32", True)
    assert choice["tile"] == "32x64k16" and choice["loads"] == "u"  # the rule's scheme for weight.T
    assert choice["split"] == min(c["split"] for c in m.calls if c["tile"] == "32x64k16")
    n_cands = len(at.candidates(GPU, 128, 768, 3072, 4))
    assert n_cands > 3 and len(m.calls) == n_cands + at.RETIME + 1  # + the fastest few and the rule, again
    assert t.choose(128, 768, 3072, "f32", True) == choice and len(m.calls) > 3  # memo: no new calls
    n_calls = len(m.calls)
    assert t.choose(128, 768, 3072, "f32", True) == choice and len(m.calls) == n_calls
    # a new process (a new tuner on the same file) reads the winner without measuring
    m2 = FakeMeasure()
    assert tuner(table_path, m2).choose(120, 768, 3072, "f32", True) == choice  # same class: M 120 -> 128
    assert m2.calls == []
    doc = json.loads(table_path.read_text())
    assert doc["format"] == at.FORMAT and doc["kernels"] == at.kernels_hash()
    entry = doc["devices"][at.device_key(INFO)][at.shape_class(128, 768, 3072, "f32", True)]
    assert entry["tile"] == "32x64k16" and entry["us"][f"32x64k16/s{choice['split']}/u"] < 6
    assert [p.name for p in table_path.parent.iterdir()] == [at.TABLE_NAME]  # no temporary files left


def test_other_shapes_dtypes_and_layouts_are_other_classes(table_path):
    m = FakeMeasure()
    t = tuner(table_path, m)
    t.choose(128, 768, 768, "f32", True)
    first = len(m.calls)
    t.choose(128, 768, 768, "f16", True)
    t.choose(128, 768, 768, "f32", False)
    t.choose(4096, 768, 768, "f32", True)
    assert len(m.calls) > 3 * first - 1
    assert len(json.loads(table_path.read_text())["devices"][at.device_key(INFO)]) == 4


@pytest.mark.parametrize(
    "text,why",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2, 3]", "not an accelkit autotune table"),
        ('{"format": 99, "devices": {}}', "not an accelkit autotune table"),
        ('{"format": 1, "kernels": "0000", "devices": {}}', "other matmul kernels"),
        ('{"format": 1, "kernels": "%s", "devices": {"x": 3}}', "not an accelkit autotune table"),
    ],
)
def test_a_bad_table_is_ignored_with_one_warning_and_rebuilt(table_path, text, why):
    table_path.parent.mkdir(parents=True)
    table_path.write_text(text.replace("%s", at.kernels_hash()))
    m = FakeMeasure()
    t = tuner(table_path, m)
    with pytest.warns(at.AutotuneWarning, match=why) as rec:
        choice = t.choose(128, 768, 768, "f32", True)
        t.choose(128, 3072, 768, "f32", True)
    assert len([w for w in rec if issubclass(w.category, at.AutotuneWarning)]) == 1
    assert choice and m.calls
    doc = json.loads(table_path.read_text())  # rebuilt: valid, ours
    assert doc["kernels"] == at.kernels_hash() and len(doc["devices"][at.device_key(INFO)]) == 2


def test_entries_of_another_driver_are_dropped_with_a_warning(table_path):
    cls = at.shape_class(128, 768, 768, "f32", True)
    old = at.device_key({**INFO, "description": "570.0"})
    other_gpu = at.device_key({**INFO, "device": "Other GPU", "device_id": 1})
    table_path.parent.mkdir(parents=True)
    entry = {cls: {"tile": "128x128k16", "split": 1, "loads": "u"}}
    doc = {"format": at.FORMAT, "kernels": at.kernels_hash(), "devices": {old: entry, other_gpu: entry}}
    table_path.write_text(json.dumps(doc))
    m = FakeMeasure()
    with pytest.warns(at.AutotuneWarning, match="another driver"):
        choice = tuner(table_path, m).choose(128, 768, 768, "f32", True)
    assert m.calls and choice["tile"] == "32x64k16"  # re-tuned, not the stale entry
    devices = json.loads(table_path.read_text())["devices"]
    assert old not in devices and other_gpu in devices and at.device_key(INFO) in devices


def test_invalid_entries_are_misses(table_path):
    cls = at.shape_class(128, 768, 768, "f32", True)
    table_path.parent.mkdir(parents=True)
    bad = {cls: {"tile": "999x999", "split": 1, "loads": "s"}}
    doc = {"format": at.FORMAT, "kernels": at.kernels_hash(), "devices": {at.device_key(INFO): bad}}
    table_path.write_text(json.dumps(doc))
    m = FakeMeasure()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tuner(table_path, m).choose(128, 768, 768, "f32", True)["tile"] == "32x64k16"
    assert m.calls


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="needs a directory this user cannot write")
def test_an_unwritable_table_warns_once_and_keeps_results_in_memory(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        t = tuner(ro / at.TABLE_NAME)
        with pytest.warns(at.AutotuneWarning, match="could not be written") as rec:
            a = t.choose(128, 768, 768, "f32", True)
            t.choose(128, 3072, 768, "f32", True)
        assert a and len(rec) == 1
        assert t.choose(128, 768, 768, "f32", True) == a
    finally:
        ro.chmod(0o700)


def test_without_timestamps_on_software_or_switched_off_the_rules_decide(table_path, monkeypatch):
    for caps in (Caps(timestamps=False), Caps(timestamps=True, is_software=True)):
        m = FakeMeasure()
        assert tuner(table_path, m, FakeBackend(caps)).choose(128, 768, 768, "f32", True) == {}
        assert m.calls == []
    monkeypatch.setenv(at.ENV_SWITCH, "0")
    m = FakeMeasure()
    assert tuner(table_path, m).choose(128, 768, 768, "f32", True) == {}
    assert m.calls == [] and not table_path.exists()
    monkeypatch.delenv(at.ENV_SWITCH)
    assert tuner(table_path, m).choose(4, 768, 768, "f32", True) == {}  # few rows: gemv, not tuned
    assert tuner(table_path, m).choose(128, 768, 768, "i32", True) == {}
    assert m.calls == []


def test_warm_up_then_retime_the_fastest_and_keep_the_rule_on_a_near_tie(table_path):
    """A clock still rising during the first pass: the re-timed best run decides, and a candidate
    barely faster than the planner's rule does not replace it."""
    cands = at.candidates(GPU, 128, 768, 3072, 4)
    rule = cands[0]
    order: list[str] = []
    warmed: list = []

    def warm(backend, rows, n, k, dtype, b_k, cand, ms):
        warmed.append((cand, ms))
        assert order == []  # before anything is timed

    def measure(backend, rows, n, k, dtype, b_k, cand):
        order.append(f"{cand['tile']}/s{cand['split']}/{cand['loads']}")
        first_pass = len(order) <= len(cands)
        if cand == rule:
            return 50.0 if first_pass else 10.0  # slow only while the clock was low
        if cand == cands[-1]:
            return 9.9  # 1% faster than the rule's second run: a near-tie
        return 20.0

    t = at.Autotuner(FakeBackend(), table_path, measure=measure, warm=warm)
    choice = t.choose(128, 768, 3072, "f32", True)
    assert warmed == [(rule, at.WARM_MS)]
    assert choice == rule
    entry = t.table.entries()[at.shape_class(128, 768, 3072, "f32", True)]
    assert entry["us"][f"{rule['tile']}/s{rule['split']}/{rule['loads']}"] == 10.0  # the better run
    # re-timed: the fastest RETIME of the first pass and the rule, in reverse order (the rule first)
    assert len(order) == len(cands) + at.RETIME + 1
    name = "{tile}/s{split}/{loads}".format
    assert order[len(cands)] == name(**rule) and order[-1] == name(**cands[-1])

    def clear_winner(backend, rows, n, k, dtype, b_k, cand):
        return 5.0 if cand == cands[-1] else 10.0

    t2 = at.Autotuner(FakeBackend(), table_path.with_name("t2.json"), measure=clear_winner)
    assert t2.warm is None  # a given measure gets no warm-up of the real GPU
    assert t2.choose(128, 768, 3072, "f32", True) == cands[-1]


def test_a_candidate_that_fails_is_skipped(table_path):
    def measure(backend, rows, n, k, dtype, b_k, cand):
        if cand["tile"] == "32x64k16":
            raise ak.KernelError("does not compile here")
        return 3.0 if cand["tile"] == "64x64k16" else 9.0

    assert tuner(table_path, measure).choose(128, 768, 768, "f32", True)["tile"] == "64x64k16"

    def nothing(*args):
        return None

    assert tuner(table_path, nothing).choose(128, 3072, 768, "f32", True) == {}


def test_candidates_fit_and_include_the_rule():
    for rows, n, k, itemsize in [(128, 768, 768, 4), (4096, 2304, 768, 2), (197, 3072, 768, 4), (9, 9, 9, 4)]:
        cands = at.candidates(GPU, rows, n, k, itemsize)
        assert cands and len({json.dumps(c, sort_keys=True) for c in cands}) == len(cands)
        for c in cands:
            assert wm._fits(GPU, wm.TILES[c["tile"]], itemsize) and 1 <= c["split"] <= wm.MAX_SPLIT
            assert c["loads"] in wm.LOADS
        rule = wm.pick_tile(GPU, 1, rows, n, itemsize)
        assert any(wm.TILES[c["tile"]] is rule for c in cands)
    assert at.shape_class(128, 768, 768, "f32", True) == at.shape_class(97, 768, 768, "f32", True)
    assert at.shape_class(128, 768, 768, "f32", True) != at.shape_class(129, 768, 768, "f32", True)


@pytest.mark.webgpu
def test_measure_candidate_runs_on_the_device(webgpu):
    be = webgpu.backend
    if not be.caps.timestamps:
        pytest.skip("adapter lacks timestamp queries")
    us = at.measure_candidate(be, 33, 40, 24, "f32", True, {"tile": "32x32", "split": 2, "loads": "u"})
    assert us is not None and us > 0
    before = be.memory()["allocated_bytes"]
    at.warm_gpu(be, 33, 40, 24, "f32", True, {"tile": "32x32", "split": 2, "loads": "u"}, 0.01)
    assert be.memory()["allocated_bytes"] == before  # the scratch operands are freed


@pytest.mark.webgpu
def test_the_tuned_choice_reaches_the_dispatch_and_its_label(webgpu, rng, tmp_path):
    """A table entry decides the kernel of ak.ops.linear; the profiler's label names it."""
    be = webgpu.backend

    def measure(backend, rows, n, k, dtype, b_k, cand):
        return 1.0 if (cand["tile"], cand["split"]) == ("32x64k16", 2) else 9.0

    fake = at.Autotuner(FakeBackend(), tmp_path / at.TABLE_NAME, measure=measure)
    old = be.__dict__.get("_autotuner")
    be.__dict__["_autotuner"] = fake
    try:
        x = rng.standard_normal((37, 200)).astype(np.float32)
        w = rng.standard_normal((29, 200)).astype(np.float32)
        sink: list = []
        be.listeners.append(sink)
        try:
            y = ak.ops.linear(ak.tensor(x, device=webgpu), ak.tensor(w, device=webgpu)).numpy()
        finally:
            be.listeners.remove(sink)
    finally:
        if old is None:
            be.__dict__.pop("_autotuner", None)
        else:
            be.__dict__["_autotuner"] = old
    want = x.astype(np.float64) @ w.T.astype(np.float64)
    assert np.linalg.norm(y - want) / np.linalg.norm(want) < 1e-5
    labels = [r.label for r in sink]
    assert any("tiled 32x64x16/4x4 split2" in lab for lab in labels), labels
    assert any("splitk_reduce s2" in lab for lab in labels), labels


# ----------------------------------------------------------------------------- accelkit tune
def test_linear_shapes_of_the_presets():
    from accelkit.bench.models import BASE_CONFIGS
    from accelkit.bench.tune import linear_shapes

    assert linear_shapes("bert", BASE_CONFIGS["bert"], 1) == [
        (128, 2304, 768),
        (128, 768, 768),
        (128, 3072, 768),
        (128, 768, 3072),
    ]
    vit = linear_shapes("vit", BASE_CONFIGS["vit"], 32)
    assert (32 * 197, 3072, 768) in vit and (32 * 196, 768, 768) in vit  # patchify as a matmul
    whisper = linear_shapes("whisper", BASE_CONFIGS["whisper"], 1)
    assert (1500, 2048, 512) in whisper and (3000, 512, 240) in whisper
    assert len(set(whisper)) == len(whisper)


def test_tune_cli_says_why_without_a_gpu(capsys):
    from accelkit.cli import main

    assert main(["tune", "--device", "cpu", "--no-progress"]) == 0
    assert "nothing to tune" in capsys.readouterr().out


@pytest.mark.parametrize("bad", [["--batch", "x"], ["--batch", "0"], ["--dtype", "int8"]])
def test_tune_cli_rejects_bad_arguments(bad):
    from accelkit.cli import main

    with pytest.raises(SystemExit):
        main(["tune", *bad])


@pytest.mark.webgpu
def test_tune_run_fills_the_table_and_skips_known_shapes(webgpu, tmp_path, capsys):
    from accelkit.bench import tune

    be = webgpu.backend
    m = FakeMeasure()
    old = be.__dict__.get("_autotuner")
    be.__dict__["_autotuner"] = at.Autotuner(FakeBackend(), tmp_path / at.TABLE_NAME, measure=m)
    try:
        recs = tune.run("webgpu", ["bert"], [1], ["float32"], progress=False)
        assert [r["shape"] for r in recs] == [
            (128, 2304, 768),
            (128, 768, 768),
            (128, 3072, 768),
            (128, 768, 3072),
        ]
        assert all(r["status"] == "tuned" and r["choice"]["tile"] == "32x64k16" for r in recs)
        assert all(r["rule"] in r["us"] for r in recs)
        text = tune.table(recs)
        assert str(tmp_path) in text and "32x64k16" in text
        calls = len(m.calls)
        again = tune.run("webgpu", ["bert"], [1], ["float32"], progress=False)
        assert len(m.calls) == calls and all(r["status"] == "in table" for r in again)
        tune.run("webgpu", ["bert"], [1], ["float32"], force=True, progress=False)
        assert len(m.calls) == 2 * calls
    finally:
        if old is None:
            be.__dict__.pop("_autotuner", None)
        else:
            be.__dict__["_autotuner"] = old
