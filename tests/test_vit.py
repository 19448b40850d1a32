"""ViT against transformers: the bundled tiny-random-vit checkpoint (sharded) vs tests/fixtures/references (float64).

Runs on every device: a batch, single images (3-D input), every hidden state, the base model of
the classification checkpoint, preprocessing + ``classify``, and input shape errors.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from reference_error import rel_err

import accelkit as ak
from accelkit.models.vit import ViTForImageClassification, ViTModel

REFS = Path(__file__).parent / "fixtures" / "references"
TOL = 2e-4
_models: dict = {}


def vit(dev) -> ViTForImageClassification:
    m = _models.get(dev.spec)
    if m is None or m.device is not dev:
        m = _models[dev.spec] = ak.load("tiny-random-vit", device=dev)
    return m


@pytest.fixture(scope="module")
def ref():
    return np.load(REFS / "tiny-random-vit.npz")


def test_batch_matches_transformers(dev, ref):
    model = vit(dev)
    assert isinstance(model, ViTForImageClassification)
    out = model(ref["pixel_values"], output_hidden_states=True)
    assert rel_err(out.last_hidden_state, ref["last_hidden_state"]) < TOL
    assert rel_err(out.logits, ref["logits"]) < TOL
    for i, h in enumerate(out.hidden_states):
        assert rel_err(h, ref["hidden_states"][i]) < TOL, f"hidden_states[{i}]"
    assert out.pooler_output is None  # ViTForImageClassification has no pooler
    assert out.id2label[0] == "cat" and out.logits.shape == (2, 5)


def test_single_images(dev, ref):
    model = vit(dev)
    for i in range(2):
        out = model(ref["pixel_values"][i])  # (3, H, W): a batch of one
        assert rel_err(out.logits[0], ref["logits"][i]) < TOL
        tensor_in = ak.tensor(ref["pixel_values"][i : i + 1], device=dev)
        assert rel_err(model(tensor_in).last_hidden_state[0], ref["last_hidden_state"][i]) < TOL


def test_base_model_of_a_classification_checkpoint(dev, ref):
    base = ak.load("tiny-random-vit", device=dev, architecture="ViTModel")
    assert type(base) is ViTModel and base.pooler is None
    out = base(ref["pixel_values"])
    assert rel_err(out.last_hidden_state, ref["last_hidden_state"]) < TOL
    assert list(out.keys()) == ["last_hidden_state"]


def test_classify_preprocesses_like_transformers(dev, ref):
    model = vit(dev)
    np.testing.assert_allclose(model.preprocess(list(ref["images"])), ref["pixel_values"], atol=1e-6)
    result = model.classify(list(ref["images"]), top_k=3)
    assert len(result) == 2 and all(len(r) == 3 for r in result)
    for row, logits in zip(result, ref["logits"]):
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        assert row[0][0] == model.id2label[int(probs.argmax())]
        assert abs(row[0][1] - probs.max()) < 1e-3
        assert [p for _, p in row] == sorted((p for _, p in row), reverse=True)
    [single] = model.classify(ref["images"][0], top_k=99)  # top_k larger than the label count
    assert sorted(label for label, _ in single) == sorted(model.id2label.values())


@pytest.mark.parametrize(
    "shape, what",
    [((2, 3, 32, 30), "size"), ((1, 1, 30, 30), "channels"), ((2, 30, 30, 3), "channels"), ((900,), "size")],
)
def test_wrong_image_shapes_name_both_shapes(shape, what):
    model = vit(ak.device("cpu"))
    with pytest.raises(
        ak.InputError, match=rf"\(batch, 3, 30, 30\), got {re.escape(str(shape))} \(wrong {what}\)"
    ):
        model(np.zeros(shape, np.float32))
