"""Loading models: every broken checkpoint or bad input raises a clear AccelkitError; f16/bf16 weights and f16 compute.

Each case copies the bundled tiny-random-bert (or tiny-random-vit) to a temporary directory and breaks one thing:
the weight file (truncated, garbage header), a tensor (missing, unexpected, wrong shape),
config.json (malformed JSON, a wrong type, a missing field, an unknown model_type). Then come the
sources ``ak.load`` understands, the base-model prefix rules, and the dtype policy.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from reference_error import rel_err

import accelkit as ak
from accelkit.io import Checkpoint
from accelkit.models import registry
from accelkit.models.auto import bundled_dir, bundled_name
from accelkit.models.bert import BertConfig, BertForSequenceClassification, BertModel
from accelkit.models.outputs import ModelOutput
from accelkit.models.registry import model_class

REFS = Path(__file__).parent / "fixtures" / "references"


@pytest.fixture(scope="module")
def ref():
    return np.load(REFS / "tiny-random-bert.npz")


def weights(name: str = "tiny-random-bert") -> dict[str, np.ndarray]:
    with Checkpoint.open(bundled_dir(name)) as ckpt:
        return {n: np.array(ckpt.array(n)) for n in ckpt.names()}


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], bf16: bool = False) -> None:
    """A safetensors file; with ``bf16`` float arrays are stored as bfloat16 (rounded to nearest even)."""
    header, blobs, at = {}, [], 0
    for name, arr in tensors.items():
        if bf16:
            bits = np.ascontiguousarray(arr, np.float32).view(np.uint32)
            raw = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2").tobytes()
            code = "BF16"
        else:
            raw = np.ascontiguousarray(arr).tobytes()
            code = {"float32": "F32", "float16": "F16", "int64": "I64"}[str(arr.dtype)]
        header[name] = {"dtype": code, "shape": list(arr.shape), "data_offsets": [at, at + len(raw)]}
        blobs.append(raw)
        at += len(raw)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def bf16_round(arr: np.ndarray) -> np.ndarray:
    bits = arr.astype(np.float32).view(np.uint32)
    return (((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16).astype(np.uint32).view(np.float32)


@pytest.fixture
def bert_dir(tmp_path) -> Path:
    """A writable copy of the bundled tiny-random-bert."""
    return Path(shutil.copytree(bundled_dir("tiny-random-bert"), tmp_path / "bert"))


def edit_config(directory: Path, **changes) -> None:
    path = directory / "config.json"
    config = json.loads(path.read_text())
    for key, value in changes.items():
        if value is ...:
            config.pop(key, None)
        else:
            config[key] = value
    path.write_text(json.dumps(config))


# ------------------------------------------------------------------------------------ broken weights


def test_truncated_safetensors(bert_dir):
    f = bert_dir / "model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(ak.WeightsError, match="truncated"):
        ak.load(bert_dir, device="cpu")


def test_garbage_header(bert_dir):
    (bert_dir / "model.safetensors").write_bytes(struct.pack("<Q", 12) + b"{not json!!}" + b"\0" * 64)
    with pytest.raises(ak.WeightsError, match="header is not valid JSON"):
        ak.load(bert_dir, device="cpu")


def test_missing_tensor_is_named(bert_dir):
    tensors = weights()
    del tensors["bert.encoder.layer.1.output.dense.weight"]
    write_safetensors(bert_dir / "model.safetensors", tensors)
    with pytest.raises(
        ak.WeightsError, match=r"missing: bert\.encoder\.layer\.1\.output\.dense\.weight \(42, 74\)"
    ):
        ak.load(bert_dir, device="cpu")


def test_unexpected_tensor_is_named(bert_dir):
    tensors = weights()
    tensors["bert.encoder.layer.7.extra.weight"] = np.zeros((3,), np.float32)
    write_safetensors(bert_dir / "model.safetensors", tensors)
    with pytest.raises(ak.WeightsError, match=r"unexpected: bert\.encoder\.layer\.7\.extra\.weight"):
        ak.load(bert_dir, device="cpu")


def test_shape_mismatch_names_both_shapes(bert_dir):
    tensors = weights()
    tensors["classifier.weight"] = np.zeros((4, 42), np.float32)
    write_safetensors(bert_dir / "model.safetensors", tensors)
    with pytest.raises(
        ak.WeightsError,
        match=r"classifier\.weight is \(4, 42\) in the checkpoint, the model expects \(3, 42\)",
    ):
        ak.load(bert_dir, device="cpu")


# ------------------------------------------------------------------------------------ broken configs


def test_malformed_config_json(bert_dir):
    (bert_dir / "config.json").write_text('{"model_type": "bert", "hidden_size": 42,,}')
    with pytest.raises(ak.ConfigError, match="malformed JSON"):
        ak.load(bert_dir, device="cpu")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"hidden_size": "42"}, r"field 'hidden_size' must be an integer, got '42'"),
        ({"num_attention_heads": ...}, r"missing required field 'num_attention_heads'"),
        ({"layer_norm_eps": [1e-12]}, r"field 'layer_norm_eps' must be a number"),
        ({"num_attention_heads": 5}, r"hidden_size 42 is not a multiple of num_attention_heads 5"),
        ({"hidden_act": "swiglu"}, r"unsupported activation 'swiglu'"),
        ({"max_position_embeddings": 0}, r"'max_position_embeddings' must be positive"),
        ({"id2label": {"zero": "a"}}, r"'id2label' must map integer ids"),
        ({"architectures": "BertModel"}, r"'architectures' must be a list"),
        ({"model_type": ...}, r"no 'model_type'"),
    ],
)
def test_bad_config_field_is_named(bert_dir, changes, message):
    edit_config(bert_dir, **changes)
    with pytest.raises(ak.ConfigError, match=message):
        ak.load(bert_dir, device="cpu")


def test_unknown_model_type_lists_supported(bert_dir):
    edit_config(bert_dir, model_type="gpt2", architectures=["GPT2LMHeadModel"])
    with pytest.raises(ak.WeightsError, match=r"unsupported model_type 'gpt2'.*bert.*vit.*whisper") as info:
        ak.load(bert_dir, device="cpu")
    assert "BertForSequenceClassification" in str(info.value)


def test_config_from_dict_keeps_unknown_keys():
    config = BertConfig.from_dict(
        {
            "vocab_size": 9,
            "hidden_size": 6,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 5,
            "foo": 1,
        }
    )
    assert config.extra == {"foo": 1} and config.layer_norm_eps == 1e-12
    assert config.to_dict()["foo"] == 1 and config.to_dict()["model_type"] == "bert"


# ------------------------------------------------------------------------------------ bad inputs


def test_token_ids_out_of_range():
    bert = ak.load("tiny-random-bert", device="cpu")
    with pytest.raises(ak.InputError, match=r"input_ids: token ids must be in \[0, 512\).*e\.g\. 512"):
        bert(np.array([[2, 512, 3]]))
    with pytest.raises(ak.InputError, match=r"e\.g\. -1"):
        bert(np.array([[2, -1, 3]]))
    with pytest.raises(ak.InputError, match=r"token_type_ids: token ids must be in \[0, 2\)"):
        bert(np.array([[2, 5, 3]]), token_type_ids=np.array([[0, 2, 0]]))
    with pytest.raises(ak.InputError, match="must hold integers"):
        bert(np.array([[2.0, 5.0]]))


def test_sequence_longer_than_position_table():
    bert = ak.load("tiny-random-bert", device="cpu")
    bert(np.full((1, 64), 5))  # exactly max_position_embeddings is fine
    with pytest.raises(ak.InputError, match=r"sequence length 65 is longer than max_position_embeddings 64"):
        bert(np.full((1, 65), 5))


def test_mismatched_input_shapes():
    bert = ak.load("tiny-random-bert", device="cpu")
    with pytest.raises(ak.InputError, match=r"attention_mask shape \(1, 3\) differs from input_ids \(1, 4\)"):
        bert(np.array([[2, 5, 6, 3]]), attention_mask=np.array([[1, 1, 1]]))
    with pytest.raises(ak.InputError, match="token_type_ids shape"):
        bert(np.array([[2, 5, 6, 3]]), token_type_ids=np.array([[0, 0]]))


# ------------------------------------------------------------------------------------ sources and names


def test_sources(bert_dir):
    assert (
        bundled_name("tiny:bert") == "tiny-random-bert"
        and bundled_name("tiny:bert-mlm") == "tiny-random-bert-mlm"
    )
    assert bundled_name("tiny-random-vit") == "tiny-random-vit" and bundled_name("some/dir") is None
    assert type(ak.load(str(bert_dir), device="cpu")) is BertForSequenceClassification
    assert ak.load("tiny:bert", device="cpu").checkpoint == bundled_dir("tiny-random-bert")
    with pytest.raises(ak.WeightsError, match="no bundled checkpoint 'tiny:gpt'"):
        ak.load("tiny:gpt", device="cpu")
    with pytest.raises(ak.WeightsError, match="does not exist"):
        ak.load(bert_dir / "nowhere", device="cpu")


def test_base_checkpoint_without_prefix(bert_dir, ref):
    """A checkpoint saved from BertModel has no "bert." prefix; it loads as BertModel, not as a classifier."""
    tensors = {k[len("bert.") :]: v for k, v in weights().items() if k.startswith("bert.")}
    write_safetensors(bert_dir / "model.safetensors", tensors)
    edit_config(bert_dir, architectures=["BertModel"])
    base = ak.load(bert_dir, device="cpu")
    assert type(base) is BertModel
    out = base(ref["input_ids"], ref["attention_mask"], ref["token_type_ids"])
    assert rel_err(out.pooler_output, ref["pooler_output"]) < 2e-4
    with pytest.raises(ak.WeightsError, match=r"missing: classifier\.weight \(3, 42\), classifier\.bias"):
        ak.load(bert_dir, device="cpu", architecture="BertForSequenceClassification")


def test_legacy_layer_norm_names(bert_dir, ref):
    renamed = {}
    for k, v in weights().items():
        if "LayerNorm" in k:
            k = k.replace(".weight", ".gamma").replace(".bias", ".beta")
        renamed[k] = v
    renamed["bert.embeddings.position_ids"] = np.arange(64, dtype=np.int64)[None]  # an old buffer, skipped
    write_safetensors(bert_dir / "model.safetensors", renamed)
    bert = ak.load(bert_dir, device="cpu")
    out = bert(ref["input_ids"], ref["attention_mask"], ref["token_type_ids"])
    assert rel_err(out.logits, ref["logits"]) < 2e-4


def test_a_broken_model_file_only_breaks_its_own_models(monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, ("whisper", None), "accelkit.models.no_such_module:Whisper")
    with pytest.raises(ak.WeightsError, match="cannot import accelkit.models.no_such_module.Whisper"):
        model_class("whisper", "WhisperSomethingElse")
    assert model_class("bert", "BertModel") is BertModel


def test_model_output_mapping():
    out = ModelOutput(last_hidden_state=1, logits=2, pooler_output=None)
    assert list(out.keys()) == ["last_hidden_state", "logits"] and out[1] == 2 and out["logits"] == 2
    assert out.pooler_output is None and "pooler_output" not in out and dict(out.items())["logits"] == 2
    with pytest.raises(AttributeError, match="no field 'nonsense'"):
        out.nonsense  # noqa: B018
    with pytest.raises(KeyError):
        out["pooler_output"]


# ------------------------------------------------------------------------------------ dtypes


@pytest.mark.parametrize("stored", ["float16", "bfloat16"])
def test_half_stored_weights_load_and_match(dev, tmp_path, ref, stored):
    tensors = weights()
    half = tmp_path / stored
    shutil.copytree(bundled_dir("tiny-random-bert"), half)
    if stored == "float16":
        rounded = {k: v.astype(np.float16).astype(np.float32) for k, v in tensors.items()}
        write_safetensors(half / "model.safetensors", {k: v.astype(np.float16) for k, v in tensors.items()})
    else:
        rounded = {k: bf16_round(v) for k, v in tensors.items()}
        write_safetensors(half / "model.safetensors", tensors, bf16=True)
    exact = tmp_path / "rounded"
    shutil.copytree(bundled_dir("tiny-random-bert"), exact)
    write_safetensors(exact / "model.safetensors", rounded)
    inputs = (ref["input_ids"], ref["attention_mask"], ref["token_type_ids"])
    model = ak.load(half, device=dev)
    assert model.dtype is ak.float32 and model.classifier.weight.dtype is ak.float32
    got = model(*inputs).logits.numpy()
    want = ak.load(exact, device="cpu")(*inputs).logits.numpy().astype(np.float64)
    assert rel_err(got, want) < 2e-5  # the stored values, widened exactly
    assert rel_err(got, ref["logits"]) < 5e-2  # and close to the float32 weights


def test_float16_compute(dev, ref):
    model = ak.load("tiny-random-bert", device=dev, dtype="float16")
    assert model.dtype is ak.float16 and "float16" in model.dtype_note
    assert model.bert.encoder.layer[0].intermediate.dense.weight.dtype is ak.float16
    out = model(ref["input_ids"], ref["attention_mask"], ref["token_type_ids"])
    assert out.logits.dtype is ak.float16
    assert rel_err(out.last_hidden_state, ref["last_hidden_state"]) < 1e-2
    assert rel_err(out.logits, ref["logits"]) < 1e-2
    vit = ak.load("tiny-random-vit", device=dev, dtype="float16")
    vref = np.load(REFS / "tiny-random-vit.npz")
    assert rel_err(vit(vref["pixel_values"]).logits, vref["logits"]) < 1e-2


def test_float16_without_shader_f16_warns_and_stays_float32(dev, ref, monkeypatch):
    monkeypatch.setattr(type(dev), "supports_f16", property(lambda self: False))
    with pytest.warns(RuntimeWarning, match="lacks the shader-f16 feature; computing in float32"):
        model = ak.load("tiny-random-bert", device=dev, dtype="float16")
    assert model.dtype is ak.float32 and "shader-f16" in model.dtype_note
    out = model(ref["input_ids"], ref["attention_mask"])  # row 0 is a single sentence: type ids all 0
    assert rel_err(out.last_hidden_state[0], ref["last_hidden_state"][0]) < 2e-4


@pytest.mark.parametrize("dtype", ["bfloat16", "int8"])
def test_unsupported_compute_dtype(dtype):
    with pytest.raises(ak.DTypeError, match="bfloat16|unsupported model dtype"):
        ak.load("tiny-random-bert", device="cpu", dtype=dtype)


def test_fused_linears_give_a_biasless_part_zero_bias_whatever_its_weights(dev):
    """Whisper's k_proj has no bias: its part of the fused q/k/v bias is zeros, even where its weights are not
    finite (a bias made as sum(w) * 0 would be NaN there)."""
    from accelkit.models.loading import fuse_linears

    q, k = ak.nn.Linear(3, 2), ak.nn.Linear(3, 2, bias=False)
    wk = np.array([[1.0, np.inf, 2.0], [np.nan, 0.0, 1.0]], np.float32)
    q.load_state_dict(
        {"weight": np.ones((2, 3), np.float32), "bias": np.array([5.0, 6.0], np.float32)}, device=dev
    )
    k.load_state_dict({"weight": wk}, device=dev)
    weight, bias = fuse_linears(q, k)
    np.testing.assert_array_equal(bias.numpy(), [5.0, 6.0, 0.0, 0.0])
    np.testing.assert_array_equal(weight.numpy()[2:], wk)
    assert not k.has_bias and q.has_bias and k.bias_or_none is None
    np.testing.assert_array_equal(k.weight.numpy(), wk)  # a view of the fused weight


def test_fused_linears_without_any_bias_have_none(dev):
    from accelkit.models.loading import fuse_linears

    a, b = ak.nn.Linear(2, 1, bias=False), ak.nn.Linear(2, 3, bias=False)
    a.load_state_dict({"weight": np.ones((1, 2), np.float32)}, device=dev)
    b.load_state_dict({"weight": np.full((3, 2), 2.0, np.float32)}, device=dev)
    weight, bias = fuse_linears(a, b)
    assert bias is None and weight.shape == (4, 2)
