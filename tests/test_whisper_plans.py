"""Whisper generation on compiled plans: one encoder plan, one decoder step plan for every token of every
``generate`` of a batch size (plus the prompt step's and language detection's), the same tokens as eager
decoding and as transformers' greedy generate (tests/fixtures/references/whisper-tiny.npz), on every backend.

The bundled whisper-tiny is random; its encoder runs over 3000 frames (slow on lavapipe), so a model is
loaded once per device and encoder outputs are reused where the test is not about the encoder plan.
"""

from __future__ import annotations

import dataclasses
import gc
import threading
from pathlib import Path

import numpy as np
import pytest

import accelkit as ak
from accelkit.graph import Plan

REFERENCES = Path(__file__).parent / "fixtures" / "references" / "whisper-tiny.npz"

_models: dict = {}
_encoded: dict = {}


@pytest.fixture(scope="module")
def ref() -> dict:
    with np.load(REFERENCES) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def features(ref) -> np.ndarray:
    """Two windows that decode differently: the reference audio's features and their negation."""
    f = ref["input_features"]
    return np.concatenate([f, -f]).astype(np.float32)


@pytest.fixture
def whisper(dev):
    model = _models.get(dev.spec)
    if model is None or model.proj_out.weight.storage.backend is not dev.backend:
        model = _models[dev.spec] = ak.load("whisper-tiny", device=dev)
    return model


def encoded(whisper, features) -> ak.Tensor:
    """Encoder outputs (2, S, C) of ``features``, computed once per model."""
    key = (id(whisper), whisper.device.spec)
    if key not in _encoded:
        _encoded[key] = whisper.encode(features)
    return _encoded[key]


def replays(whisper) -> bool:
    return whisper.device.runtime.replays


def state_of(whisper, batch: int):
    (state,) = [s for s in whisper.generation_states if s.cache.batch_size == batch]
    return state


def plans(compiled) -> list:
    return [p for p in compiled.plans if isinstance(p, Plan)]


def eager_generate(whisper, **kwargs) -> np.ndarray:
    with ak.options(compile=False):
        return whisper.generate(**kwargs)


# ----------------------------------------------------------------------------------- parity


@pytest.mark.parametrize("task", ["transcribe", "translate"])
def test_generate_on_plans_matches_transformers_and_eager(whisper, ref, task):
    """From features: the encoder plan, then the prompt plan, then one step plan for every other token."""
    expected = ref[f"generated_ids_{task}"]
    for _ in range(2):  # the second generate replays everything, the encoder included
        ids = whisper.generate(ref["input_features"], max_new_tokens=20, language="en", task=task)
        np.testing.assert_array_equal(ids, expected)
    if replays(whisper):
        state = state_of(whisper, 1)
        assert len(plans(state.encode)) == 1 and state.encode.replayed >= 1
        steps = expected.shape[1] - 4  # tokens generated per call: the first from the prompt step
        step_plans = plans(state.run)
        assert len(step_plans) == 2  # the prompt (4 tokens) and one step plan for every later token
        assert sorted(p.replays for p in step_plans)[-1] >= 2 * (steps - 1) - 1
        assert "replayed plan" in state.run.last
    np.testing.assert_array_equal(
        eager_generate(
            whisper, input_features=ref["input_features"], max_new_tokens=20, language="en", task=task
        ),
        expected,
    )


def test_one_decoder_plan_for_every_generate_with_changing_audio(whisper, features):
    """Audio changes between calls: nothing is captured again, and the tokens are those of eager decoding."""
    enc = encoded(whisper, features)
    first = [
        whisper.generate(encoder_hidden_states=enc[i : i + 1], max_new_tokens=12, language="de")
        for i in (0, 1)
    ]
    state = state_of(whisper, 1)
    captures = state.run.captures
    again = [
        whisper.generate(encoder_hidden_states=enc[i : i + 1], max_new_tokens=12, language="de")
        for i in (1, 0)
    ]
    np.testing.assert_array_equal(again[0], first[1])  # the cache was refilled from the new audio
    np.testing.assert_array_equal(again[1], first[0])
    assert not np.array_equal(first[0], first[1])  # the two windows decode differently
    for i in (0, 1):
        eager = eager_generate(
            whisper, encoder_hidden_states=enc[i : i + 1], max_new_tokens=12, language="de"
        )
        np.testing.assert_array_equal(first[i], eager)
    assert state.run.captures == captures  # no new capture for new audio
    if replays(whisper):
        assert len(plans(state.run)) == 2  # (fill: one plan per view offset of enc, a signature)


def test_batched_generate_on_plans(whisper, features):
    """B = 2: its own state and plans; each row equals that window decoded alone (eos-padded after it stops)."""
    enc = encoded(whisper, features)
    ids = whisper.generate(encoder_hidden_states=enc, max_new_tokens=30, language="en")
    again = whisper.generate(encoder_hidden_states=enc, max_new_tokens=30, language="en")
    np.testing.assert_array_equal(ids, again)
    np.testing.assert_array_equal(
        ids, eager_generate(whisper, encoder_hidden_states=enc, max_new_tokens=30, language="en")
    )
    eos = whisper.generation_config.eos_ids[0]
    for i in (0, 1):
        alone = whisper.generate(encoder_hidden_states=enc[i : i + 1], max_new_tokens=30, language="en")[0]
        np.testing.assert_array_equal(ids[i, : alone.size], alone)
        assert (ids[i, alone.size :] == eos).all()
    batch = state_of(whisper, 2)
    assert batch is not state_of(whisper, 1)
    if replays(whisper):
        assert len(plans(batch.run)) == 2 and batch.run.replayed >= 2 * (ids.shape[1] - 4 - 1) - 1


def test_language_detection_on_plans(whisper, ref, features):
    """language=None: a detection step (its own plan), then the prompt, then the step plan."""
    gen = whisper.generation_config
    ids = whisper.generate(ref["input_features"], max_new_tokens=4)
    # transformers' generate(input_features, max_new_tokens=4) on this random checkpoint (test_whisper.py)
    np.testing.assert_array_equal(ids, [[591, gen.lang_to_id["<|ru|>"], 604, 340, 332, 43, 44]])
    enc = encoded(whisper, features)
    detected = whisper.detect_language(encoder_hidden_states=enc)
    ids = whisper.generate(encoder_hidden_states=enc, max_new_tokens=6)
    assert [gen.lang_to_id[name] for name in detected] == ids[:, 1].tolist()
    np.testing.assert_array_equal(ids, eager_generate(whisper, encoder_hidden_states=enc, max_new_tokens=6))
    with ak.options(compile=False):
        assert whisper.detect_language(encoder_hidden_states=enc) == detected
    if replays(whisper):
        # detection (1 token), the rest of the prompt (2 tokens), the step: one plan each
        assert len(plans(state_of(whisper, 2).run)) >= 3


def test_timestamp_rules_on_plans(whisper, features):
    """return_timestamps reads each step's logits back (a plan whose output is the (B, vocab) row)."""
    enc = encoded(whisper, features)
    kept = whisper.generation_config
    # the bundled checkpoint has no timestamp tokens: let the ids after 560 play them
    whisper.generation_config = dataclasses.replace(kept, no_timestamps_token_id=560)
    try:
        kwargs = dict(encoder_hidden_states=enc, max_new_tokens=10, language="en", return_timestamps=True)
        ids = whisper.generate(**kwargs)
        assert (ids[:, 3] > 560).all()  # the first generated token is a timestamp
        np.testing.assert_array_equal(whisper.generate(**kwargs), ids)
        np.testing.assert_array_equal(eager_generate(whisper, **kwargs), ids)
    finally:
        whisper.generation_config = kept
    if replays(whisper):
        assert any("float" in p.signature or p.replays for p in plans(state_of(whisper, 2).run))


def test_compile_off_runs_eagerly_with_the_same_tokens(whisper, features):
    enc = encoded(whisper, features)[:1]
    on = whisper.generate(encoder_hidden_states=enc, max_new_tokens=8, language="es")
    state = state_of(whisper, 1)
    calls = (state.run.captures, state.run.replayed)
    with ak.options(compile=False):
        off = whisper.generate(encoder_hidden_states=enc, max_new_tokens=8, language="es")
    np.testing.assert_array_equal(on, off)
    assert (state.run.captures, state.run.replayed) == calls  # nothing captured or replayed while off
    assert state.run.last == "eager (compile is off)"


# ----------------------------------------------------------------------------------- behaviour


def test_concurrent_generates_get_their_own_state(whisper, features):
    enc = encoded(whisper, features)
    expected = [
        whisper.generate(encoder_hidden_states=enc[i : i + 1], max_new_tokens=6, language="en")
        for i in (0, 1)
    ]
    results: dict = {}

    def run(i):
        results[i] = whisper.generate(encoder_hidden_states=enc[i : i + 1], max_new_tokens=6, language="en")

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in (0, 1):
        np.testing.assert_array_equal(results[i], expected[i])


def test_bad_inputs_raise_before_any_plan(whisper, features):
    enc = encoded(whisper, features)
    whisper.generate(encoder_hidden_states=enc[:1], max_new_tokens=2, language="en")
    state = state_of(whisper, 1)
    before = (state.run.calls, state.fill.calls, state.encode.calls)
    with pytest.raises(ak.InputError, match="input_features must have shape"):
        whisper.generate(np.zeros((1, 80, 100), np.float32), language="en")
    with pytest.raises(ak.InputError, match="encoder_hidden_states must have shape"):
        whisper.generate(encoder_hidden_states=np.zeros((1, 7, 48), np.float32))
    with pytest.raises(ak.InputError, match="max_new_tokens"):
        whisper.generate(encoder_hidden_states=enc[:1], max_new_tokens=61, language="en")
    assert (state.run.calls, state.fill.calls, state.encode.calls) == before


def test_states_are_bounded_and_their_plans_counted(whisper, features):
    from accelkit.models.whisper_decoding import MAX_GENERATION_STATES

    enc = encoded(whisper, features)
    for b in range(1, MAX_GENERATION_STATES + 3):
        batch = ak.ops.concat([enc[i % 2 : i % 2 + 1] for i in range(b)])
        whisper.generate(encoder_hidden_states=batch, max_new_tokens=1, language="en")
    states = whisper.generation_states
    assert len(states) == MAX_GENERATION_STATES
    assert [s.cache.batch_size for s in states][-1] == MAX_GENERATION_STATES + 2
    cache = states[-1].cache
    assert cache.max_length == whisper.config.max_target_positions  # room for any generate
    assert cache.nbytes == sum(t.nbytes for t in cache.cross) + sum(t.nbytes for t in cache.self_kv)
    held = sum(s.cache.nbytes for s in states)
    if replays(whisper):
        assert whisper.device.memory()["plan_bytes"] >= sum(
            c.plan_bytes for s in states for c in s.calls.values()
        )
    before = whisper.device.memory()["allocated_bytes"]
    del states, cache
    whisper.free_generation_states()
    gc.collect()
    assert whisper.generation_states == []
    assert before - whisper.device.memory()["allocated_bytes"] >= held


def test_replacing_a_weight_captures_the_step_anew(dev, features):
    whisper = ak.load("whisper-tiny", device=dev)
    enc = encoded(_models.get(dev.spec) or whisper, features)[:1]
    kwargs = dict(encoder_hidden_states=enc, max_new_tokens=8, language="en")
    before = whisper.generate(**kwargs)
    state = state_of(whisper, 1)
    captures = state.run.captures
    ln = whisper.model.decoder.layer_norm.param("bias")
    ln.tensor = ak.tensor(ln.tensor.numpy() + np.linspace(-3, 3, ln.shape[0], dtype=np.float32), device=dev)
    after = whisper.generate(**kwargs)
    np.testing.assert_array_equal(after, eager_generate(whisper, **kwargs))
    assert not np.array_equal(after, before)  # the new weights decode differently
    if replays(whisper):
        assert state.run.captures > captures  # the plans that bound the old bias were captured anew


def test_model_free_and_repr_cover_the_generation_plans(dev, features):
    whisper = ak.load("whisper-tiny", device=dev)
    whisper.generate(
        encoder_hidden_states=encoded(_models.get(dev.spec) or whisper, features), max_new_tokens=3
    )
    if replays(whisper):
        assert len(whisper.plans) >= 3 and "plans" in repr(whisper)
    whisper.free()
    assert whisper.generation_states == [] and whisper.plans == []


def test_forward_with_decoder_ids_replays_and_equals_eager(whisper, ref, features):
    """whisper(decoder_input_ids=..., encoder_hidden_states=...) runs through the model's plans too."""
    enc = encoded(whisper, features)
    rng = np.random.default_rng(5)
    for _ in range(3):  # changing ids, one signature
        ids = rng.integers(0, whisper.config.vocab_size, (2, 9))
        logits = whisper(decoder_input_ids=ids, encoder_hidden_states=enc).logits.numpy()
        with ak.options(compile=False):
            eager = whisper(decoder_input_ids=ids, encoder_hidden_states=enc).logits.numpy()
        np.testing.assert_array_equal(logits, eager)
    full = whisper(ref["input_features"], ref["decoder_input_ids"]).logits.numpy()
    rel = np.abs(full - ref["logits"]).max() / np.abs(ref["logits"]).max()
    assert rel < 2e-4  # transformers' float64 logits
    if replays(whisper):
        assert any(p.replays >= 2 and "int32[2, 9]" in p.signature for p in whisper.plans)
