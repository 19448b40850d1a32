"""Models on compiled plans: replay equals eager exactly, host checks still raise first, plans are bounded,
counted, freed with the model and captured anew when weights change; compile off equals on."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import accelkit as ak
from accelkit.graph import Plan


def same(a, b) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(b))


def _bert_inputs(model, rng, batch=2, seq=7):
    ids = rng.integers(0, model.config.vocab_size, (batch, seq))
    mask = np.ones((batch, seq), np.int64)
    mask[0, seq - 2 :] = 0
    return {"input_ids": ids, "attention_mask": mask}


def _vit_inputs(model, rng, batch=1):
    s, c = model.config.image_size, model.config.num_channels
    return {"pixel_values": rng.standard_normal((batch, c, s, s)).astype(np.float32)}


def _whisper_features(model, rng, batch=1):
    cfg = model.config
    return rng.standard_normal((batch, cfg.num_mel_bins, 2 * cfg.max_source_positions)).astype(np.float32)


def _outputs(out) -> dict:
    return {k: v.numpy() for k, v in out.items() if isinstance(v, ak.Tensor)}


@pytest.fixture(scope="module")
def bert(request):
    from conftest import WEBGPU_SPECS

    if not WEBGPU_SPECS:
        pytest.skip("no WebGPU adapter")
    return ak.load("tiny-random-bert", device=WEBGPU_SPECS[0])


# ----------------------------------------------------------------------------------- replay == eager
@pytest.mark.parametrize("name", ["tiny-random-bert", "tiny-random-vit"])
def test_model_calls_replay_and_equal_eager_exactly(webgpu, rng, name):
    model = ak.load(name, device=webgpu)
    make = _bert_inputs if name.startswith("bert") else _vit_inputs
    for i in range(4):
        x = make(model, rng)
        got = _outputs(model(**x))
        assert (
            model.last_call
            == ("captured plan #1, " if i == 0 else "replayed plan #1, ") + model.last_call.split(", ", 1)[1]
        )
        with ak.options(compile=False):
            want = _outputs(model(**x))
        assert model.last_call == "eager (compile is off)"
        assert got.keys() == want.keys() and all(same(got[k], want[k]) for k in want)
    (plan,) = model.plans
    assert isinstance(plan, Plan) and plan.replays == 3
    assert plan.stats.slot_bytes < plan.stats.eager_peak_bytes  # the static memory plan beats eager's peak


def test_task_models_replay_their_heads_too(webgpu, rng):
    model = ak.load("tiny-random-vit", device=webgpu)
    x = _vit_inputs(model, rng)
    model(**x)
    out = model(**x)
    assert model.last_call.startswith("replayed plan #1")
    with ak.options(compile=False):
        assert same(out.last_hidden_state, model(**x).last_hidden_state)


def test_whisper_encoder_replays(webgpu, rng):
    model = ak.load("tiny-random-whisper", device=webgpu)
    feats = [_whisper_features(model, rng) for _ in range(3)]
    outs = [model.encode(f) for f in feats]
    assert model.last_call.startswith("replayed plan #1")
    with ak.options(compile=False):
        for f, out in zip(feats, outs):  # held outputs keep their values
            assert same(out, model.encode(f))


def test_hidden_states_and_device_tensor_inputs(bert, rng):
    x = _bert_inputs(bert, rng)
    ids = ak.tensor(x["input_ids"].astype(np.int32), device=bert.device)
    for _ in range(2):
        got = bert(ids, x["attention_mask"], output_hidden_states=True)
    assert bert.last_call.startswith("replayed")
    with ak.options(compile=False):
        want = bert(ids, x["attention_mask"], output_hidden_states=True)
    assert len(got.hidden_states) == len(want.hidden_states) == bert.config.num_hidden_layers + 1
    for g, w in zip(got.hidden_states, want.hidden_states):
        assert same(g, w)


# ----------------------------------------------------------------------------------- host checks, switches
def test_bad_inputs_raise_before_replay(bert, rng):
    x = _bert_inputs(bert, rng)
    bert(**x)
    bert(**x)
    replays = bert.plans[-1].replays
    bad = dict(x, input_ids=x["input_ids"].copy())
    bad["input_ids"][0, 0] = bert.config.vocab_size
    with pytest.raises(ak.InputError, match="token ids must be in"):
        bert(**bad)
    with pytest.raises(ak.InputError, match="attention_mask shape"):
        bert(x["input_ids"], x["attention_mask"][:, :3])
    assert bert.plans[-1].replays == replays


def test_compile_switches(webgpu, rng):
    off = ak.load("tiny-random-bert", device=webgpu, compile=False)
    x = _bert_inputs(off, rng)
    off(**x)
    off(**x)
    assert off.plans == [] and off.last_call == "eager (compile is off)"
    on = ak.load("tiny-random-bert", device=webgpu)
    with ak.options(compile=False):
        on(**x)
    assert on.plans == []
    assert same(on(**x).last_hidden_state, off(**x).last_hidden_state)
    assert "compile" in repr(ak.options())


def test_on_the_cpu_models_run_eagerly(cpu, rng):
    model = ak.load("tiny-random-bert", device=cpu)
    x = _bert_inputs(model, rng)
    a, b = model(**x), model(**x)
    assert same(a.last_hidden_state, b.last_hidden_state) and model.plans == []
    assert "eagerly" in model.last_call


# ----------------------------------------------------------------------------------- plans: bound, memory, weights
def test_plans_per_model_are_bounded_and_capture_per_signature(webgpu, rng):
    model = ak.load("tiny-random-bert", device=webgpu)
    model.max_plans = 2
    for seq in (3, 4, 5, 3):
        model(**_bert_inputs(model, rng, seq=seq))
    assert len(model.plans) == 2 and model.last_call.startswith("captured plan #4")
    model(**_bert_inputs(model, rng, batch=1, seq=5), output_hidden_states=True)
    assert len(model.plans) == 2


def test_plans_are_counted_and_freed_with_the_model(webgpu, rng):
    gc.collect()
    base = webgpu.memory()
    model = ak.load("tiny-random-bert", device=webgpu)
    x = _bert_inputs(model, rng)
    model(**x)
    model(**x)
    assert webgpu.memory()["plan_bytes"] - base["plan_bytes"] == model.plans[0].stats.plan_bytes > 0
    model.free()
    assert model.plans == [] and webgpu.memory()["plan_bytes"] == base["plan_bytes"]
    model(**x)
    model(**x)
    del model, x
    gc.collect()
    mem = webgpu.memory()
    assert mem["plan_bytes"] == base["plan_bytes"] and mem["allocated_bytes"] == base["allocated_bytes"]


def test_replacing_a_weight_captures_anew(webgpu, rng):
    model = ak.load("tiny-random-vit", device=webgpu)
    x = _vit_inputs(model, rng)
    before = model(**x).last_hidden_state.numpy()
    model(**x)
    param = next(p for name, p in model.named_parameters() if name.endswith("layernorm.weight"))
    version = model.weights_version
    param.tensor = ak.tensor(param.tensor.numpy() * 2.0, device=webgpu)
    assert model.weights_version != version
    after = model(**x)
    assert model.last_call.startswith("captured plan #2") and len(model.plans) == 1
    with ak.options(compile=False):
        assert same(after.last_hidden_state, model(**x).last_hidden_state)
    assert not same(after.last_hidden_state, before)


def test_model_repr_says_how_calls_run(bert, rng):
    x = _bert_inputs(bert, rng, seq=6)
    bert(**x)
    bert(**x)
    assert "replayed plan" in repr(bert)
