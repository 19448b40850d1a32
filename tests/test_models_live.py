"""Live parity with transformers on fresh random BERT and ViT models that no fixture has seen.

Each test builds a transformers model from a config with awkward sizes (hidden 30 or 42 with 3
heads, odd intermediate sizes, 1-3 layers), randomises every parameter (LayerNorm included, so a
swapped weight/bias shows), saves it with ``save_pretrained`` (torch_reference.fresh_checkpoint), loads
it with ``ak.load`` on every device and compares with transformers run in float64. Skipped unless torch
and transformers import.
"""

from __future__ import annotations

import numpy as np
import pytest
from reference_error import rel_err

import accelkit as ak

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from torch_reference import fresh_checkpoint  # noqa: E402

pytestmark = pytest.mark.live
TOL = 2e-4


def assert_matches(got, expected, case: str, dev, **extra) -> None:
    """Every output transformers gave (last_hidden_state, pooler_output, logits, plus ``extra``) within TOL."""
    names = ("last_hidden_state", "pooler_output", "logits")
    checks = {n: getattr(expected, n, None) for n in names} | extra
    for name, want in checks.items():
        if want is not None:
            err = rel_err(got[name], want)
            assert err < TOL, f"{case} on {dev.spec}: {name} relative error {err:.2e}"


def run_case(checkpoints: dict, cases: dict, case: str, dev):
    """Load the case's checkpoint on ``dev`` (as the architecture the case names) and run its inputs:
    (accelkit's outputs, transformers' float64 outputs)."""
    path, expected, inputs = checkpoints[case]
    model = ak.load(path, device=dev)
    assert type(model).__name__ == cases[case][0]
    return model(**inputs), expected


# ------------------------------------------------------------------------------------ BERT

BERT_CASES = {
    # id: (architecture, config overrides)
    "seqcls-h30-l1": (
        "BertForSequenceClassification",
        dict(hidden_size=30, num_hidden_layers=1, intermediate_size=37, num_labels=4),
    ),
    "model-h42-l3-gelu_new": (
        "BertModel",
        dict(
            hidden_size=42,
            num_hidden_layers=3,
            intermediate_size=61,
            hidden_act="gelu_new",
            type_vocab_size=3,
        ),
    ),
    "mlm-h30-l2-tied": ("BertForMaskedLM", dict(hidden_size=30, num_hidden_layers=2, intermediate_size=43)),
}


@pytest.fixture(scope="module")
def bert_checkpoints(tmp_path_factory):
    """Built once per module: {case: (checkpoint dir, float64 transformers model, inputs)}."""
    out = {}
    rng = np.random.default_rng(7)
    for i, (case, (arch, overrides)) in enumerate(BERT_CASES.items()):
        config = transformers.BertConfig(
            vocab_size=97,
            num_attention_heads=3,
            max_position_embeddings=40,
            layer_norm_eps=1e-7,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            **overrides,
        )
        path = tmp_path_factory.mktemp("bert") / case
        model = fresh_checkpoint(getattr(transformers, arch)(config), 100 + i, path)
        lengths = [13, 7, 1]  # padded batch with a length-1 row
        ids = rng.integers(0, 97, size=(3, 13))
        mask = (np.arange(13)[None] < np.array(lengths)[:, None]).astype(np.int64)
        types = rng.integers(0, config.type_vocab_size, size=(3, 13)) * mask
        inputs = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        with torch.no_grad():
            expected = model(**{k: torch.from_numpy(v) for k, v in inputs.items()}, output_hidden_states=True)
        out[case] = (path, expected, inputs)
    return out


@pytest.mark.parametrize("case", list(BERT_CASES))
def test_fresh_bert_matches_transformers(dev, bert_checkpoints, case):
    got, expected = run_case(bert_checkpoints, BERT_CASES, case, dev)
    # task outputs carry no last_hidden_state; BERT's is the last of hidden_states (post-LN)
    assert_matches(got, expected, case, dev, last_hidden_state=expected.hidden_states[-1])


# ------------------------------------------------------------------------------------ ViT

VIT_CASES = {
    "model-h42-l2-pooler": (
        "ViTModel",
        dict(hidden_size=42, num_hidden_layers=2, intermediate_size=61, image_size=15, patch_size=5),
    ),
    "cls-h30-l3-noqkvbias": (
        "ViTForImageClassification",
        dict(
            hidden_size=30,
            num_hidden_layers=3,
            intermediate_size=47,
            image_size=14,
            patch_size=7,
            num_channels=2,
            qkv_bias=False,
            num_labels=7,
        ),
    ),
    "model-h30-l1-gelu_new": (
        "ViTModel",
        dict(
            hidden_size=30,
            num_hidden_layers=1,
            intermediate_size=29,
            image_size=12,
            patch_size=4,
            hidden_act="gelu_new",
        ),
    ),
}


@pytest.fixture(scope="module")
def vit_checkpoints(tmp_path_factory):
    out = {}
    rng = np.random.default_rng(11)
    for i, (case, (arch, overrides)) in enumerate(VIT_CASES.items()):
        config = transformers.ViTConfig(num_attention_heads=3, layer_norm_eps=1e-6, **overrides)
        path = tmp_path_factory.mktemp("vit") / case
        model = fresh_checkpoint(getattr(transformers, arch)(config), 200 + i, path)
        size = config.image_size
        pixels = rng.standard_normal((2, config.num_channels, size, size)).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(pixels).double(), output_hidden_states=True)
        out[case] = (path, expected, {"pixel_values": pixels})
    return out


@pytest.mark.parametrize("case", list(VIT_CASES))
def test_fresh_vit_matches_transformers(dev, vit_checkpoints, case):
    got, expected = run_case(vit_checkpoints, VIT_CASES, case, dev)
    assert_matches(got, expected, case, dev)  # (ViT's hidden_states[-1] precedes the final LayerNorm)
    if hasattr(expected, "logits"):  # a classification checkpoint has no pooler
        assert got.pooler_output is None
