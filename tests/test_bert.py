"""BERT against transformers: the bundled tiny-random-bert / tiny-random-bert-mlm checkpoints vs tests/fixtures/references (float64).

Runs on every device (cpu + each WebGPU adapter): padded batches with token types, single
unpadded examples, inputs without a mask, device-resident inputs, the MLM head with its tied
decoder, ``embed`` (cls / mean pooling, batching) and ``classify``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from reference_error import rel_err

import accelkit as ak
from accelkit.models.bert import BertForMaskedLM, BertForSequenceClassification, BertModel

REFS = Path(__file__).parent / "fixtures" / "references"
TOL = 2e-4
_models: dict = {}


def model(name: str, dev):
    """One model per (checkpoint, device), reloaded when the device was reopened."""
    m = _models.get((name, dev.spec))
    if m is None or m.device is not dev:
        m = _models[(name, dev.spec)] = ak.load(name, device=dev)
    return m


@pytest.fixture(scope="module")
def ref():
    return np.load(REFS / "tiny-random-bert.npz")


@pytest.fixture(scope="module")
def ref_mlm():
    return np.load(REFS / "tiny-random-bert-mlm.npz")


def test_padded_batch_matches_transformers(dev, ref):
    bert = model("tiny-random-bert", dev)
    assert isinstance(bert, BertForSequenceClassification)
    out = bert(ref["input_ids"], ref["attention_mask"], ref["token_type_ids"], output_hidden_states=True)
    assert rel_err(out.last_hidden_state, ref["last_hidden_state"]) < TOL
    assert rel_err(out.pooler_output, ref["pooler_output"]) < TOL
    assert rel_err(out.logits, ref["logits"]) < TOL
    assert len(out.hidden_states) == bert.config.num_hidden_layers + 1
    for i, h in enumerate(out.hidden_states):
        assert rel_err(h, ref["hidden_states"][i]) < TOL, f"hidden_states[{i}]"
    assert out.id2label == {0: "negative", 1: "neutral", 2: "positive"}
    assert list(out.keys()) == ["last_hidden_state", "pooler_output", "hidden_states", "logits"]
    assert out["logits"] is out.logits and out.logits.device is dev


def test_single_unpadded_examples(dev, ref):
    bert = model("tiny-random-bert", dev)
    for i in range(len(ref["input_ids"])):
        n = int(ref["attention_mask"][i].sum())  # 8, 20 and 35 tokens: not multiples of anything
        # 1-D inputs: a batch of one
        out = bert(ref["input_ids"][i, :n], token_type_ids=ref["token_type_ids"][i, :n])
        assert rel_err(out.last_hidden_state[0], ref["last_hidden_state"][i, :n]) < TOL
        assert rel_err(out.pooler_output[0], ref["pooler_output"][i]) < TOL
        assert rel_err(out.logits[0], ref["logits"][i]) < TOL


def test_device_tensor_inputs_and_no_readback_in_forward(dev, ref, monkeypatch):
    bert = model("tiny-random-bert", dev)
    inputs = {
        k: ak.tensor(ref[k], dtype="int32", device=dev)
        for k in ("input_ids", "attention_mask", "token_type_ids")
    }
    reads = []
    monkeypatch.setattr(
        dev.backend, "read", lambda *a, **k: reads.append(a) or pytest.fail("readback in forward")
    )
    out = bert(**inputs)
    monkeypatch.undo()
    assert not reads
    assert rel_err(out.logits, ref["logits"]) < TOL


def test_masked_lm_with_tied_decoder(dev, ref_mlm):
    mlm = model("tiny-random-bert-mlm", dev)
    assert isinstance(mlm, BertForMaskedLM)
    decoder = mlm.cls.predictions.decoder.weight
    assert decoder.storage is mlm.bert.embeddings.word_embeddings.weight.storage  # shared, not copied
    out = mlm(ref_mlm["input_ids"], ref_mlm["attention_mask"], ref_mlm["token_type_ids"])
    assert rel_err(out.last_hidden_state, ref_mlm["last_hidden_state"]) < TOL
    assert rel_err(out.logits, ref_mlm["logits"]) < TOL
    assert out.pooler_output is None  # an MLM checkpoint has no pooler
    [best] = mlm.fill_mask(str(ref_mlm["texts"][1]), top_k=2)
    masked = int(np.flatnonzero(ref_mlm["input_ids"][1] == mlm.tokenizer.token_to_id("[MASK]"))[0])
    assert best[0][0] == mlm.tokenizer.id_to_token(int(ref_mlm["logits"][1, masked].argmax()))


def test_base_model_of_a_task_checkpoint(dev, ref):
    base = ak.load("tiny-random-bert", device=dev, architecture="BertModel")
    assert type(base) is BertModel and "classifier.weight" in base.load_report["skipped"]
    out = base(ref["input_ids"], ref["attention_mask"], ref["token_type_ids"])
    assert rel_err(out.last_hidden_state, ref["last_hidden_state"]) < TOL
    assert rel_err(out.pooler_output, ref["pooler_output"]) < TOL
    assert out.logits is None


def test_embed_pooling_and_batching(dev, ref):
    bert = model("tiny-random-bert", dev)
    texts = [str(t) for t in ref["texts"]]
    lhs, mask = ref["last_hidden_state"].astype(np.float64), ref["attention_mask"][..., None]
    single = [t for t, p in zip(texts, ref["text_pairs"]) if not p]  # texts 0 and 2 have no pair
    rows = [i for i, p in enumerate(ref["text_pairs"]) if not p]
    cls = bert.embed(single, pooling="cls", batch_size=1)
    assert cls.shape == (2, 42) and cls.dtype == np.float32
    assert rel_err(cls, lhs[rows, 0]) < TOL
    mean = bert.embed(single, pooling="mean")  # padded together: the mean covers real tokens only
    expected = (lhs * mask).sum(1) / mask.sum(1)
    assert rel_err(mean, expected[rows]) < TOL
    unit = bert.embed(single + single, pooling="mean", batch_size=3, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(unit[:2], unit[2:], atol=1e-5)
    assert bert.embed([]).shape == (0, 42)
    with pytest.raises(ak.InputError, match="pooling"):
        bert.embed(single, pooling="max")


def test_classify(dev, ref):
    bert = model("tiny-random-bert", dev)
    [top] = bert.classify(str(ref["texts"][0]), top_k=3)
    probs = np.exp(ref["logits"][0] - ref["logits"][0].max())
    probs /= probs.sum()
    order = np.argsort(-probs)
    assert [label for label, _ in top] == [bert.id2label[int(i)] for i in order]
    np.testing.assert_allclose([p for _, p in top], probs[order], rtol=1e-3)
