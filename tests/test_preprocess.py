"""accelkit.preprocess against transformers: committed reference fixtures always, live transformers when installed.

The fixtures in tests/fixtures/preprocess/ come from make_fixtures.py there (it uses transformers).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from accelkit.errors import ConfigError, InputError, WeightsError
from accelkit.preprocess import (
    FeatureExtractor,
    ImageProcessor,
    TextTokenizer,
    chunk_audio,
    log_mel_spectrogram,
    resample,
    to_mono_float32,
)

FIXTURES = Path(__file__).parent / "fixtures" / "preprocess"
TOKENIZER_DIR = FIXTURES / "tokenizer"
SPECIAL_IDS = {0, 1, 2, 3, 4}  # [PAD] [UNK] [CLS] [SEP] [MASK] in the fixture vocabulary


def _hf_image_processor(transformers, **config):
    """transformers' PIL-backed ViT processor (v5 names it ViTImageProcessorPil; v4's slow one is ViTImageProcessor)."""
    cls = getattr(transformers, "ViTImageProcessorPil", None) or transformers.ViTImageProcessor
    return cls(**config)


@pytest.fixture(scope="module")
def tokenizer() -> TextTokenizer:
    return TextTokenizer.from_dir(TOKENIZER_DIR)


# --- tokenizer ----------------------------------------------------------------------------------
def _texts(case_texts):
    if isinstance(case_texts, list) and isinstance(case_texts[0], list):
        return [tuple(pair) for pair in case_texts]
    return case_texts


@pytest.mark.parametrize(
    "case", json.loads((FIXTURES / "tokenizer_expected.json").read_text(encoding="utf-8"))
)
def test_tokenizer_matches_reference(tokenizer, case):
    out = tokenizer.encode(_texts(case["texts"]), **case["kwargs"])
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert out[key].dtype == np.int64
        np.testing.assert_array_equal(out[key], np.array(case[key], dtype=np.int64), err_msg=key)
    assert tokenizer.batch_decode(out["input_ids"]) == case["decoded"]
    assert tokenizer.batch_decode(out["input_ids"], skip_special_tokens=False) == case["decoded_with_special"]


_WORDS = st.sampled_from(
    [
        "the",
        "cat",
        "Sat",
        "on",
        "mat",
        "unplayable",
        "jumped",
        "Café",
        "naïve",
        "中文",
        "[MASK]",
        "[SEP]",
        "it's",
        "zebra",
        "42",
        "?!",
        ",",
        "...",
        "\t",
        "hello",
        "world",
        "QUICK",
        "ñ",
    ]
)
_TEXT = st.lists(_WORDS, max_size=14).map(" ".join)


@pytest.mark.live
@settings(max_examples=40, deadline=None)
@given(
    texts=st.one_of(
        st.lists(_TEXT, min_size=1, max_size=4), st.lists(st.tuples(_TEXT, _TEXT), min_size=1, max_size=3)
    ),
    max_length=st.one_of(st.none(), st.integers(3, 30)),
)
def test_tokenizer_matches_transformers(tokenizer, texts, max_length):
    transformers = pytest.importorskip("transformers")
    hf = _hf_tokenizer(transformers)
    expected = hf(texts, padding=True, truncation=True, max_length=max_length, return_tensors="np")
    out = tokenizer.encode(texts, max_length=max_length)
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        np.testing.assert_array_equal(out[key], expected[key], err_msg=key)
    for row in out["input_ids"]:
        assert tokenizer.decode(row) == hf.decode(row, skip_special_tokens=True)


_HF_TOKENIZERS: dict[str, object] = {}


def _hf_tokenizer(transformers):
    if "hf" not in _HF_TOKENIZERS:
        _HF_TOKENIZERS["hf"] = transformers.AutoTokenizer.from_pretrained(str(TOKENIZER_DIR))
    return _HF_TOKENIZERS["hf"]


def test_tokenizer_vocabulary(tokenizer):
    assert tokenizer.vocab_size == len(tokenizer) == 125
    assert tokenizer.special_ids == SPECIAL_IDS
    assert tokenizer.token_to_id("[PAD]") == tokenizer.pad_token_id == 0
    assert tokenizer.id_to_token(tokenizer.token_to_id("cat")) == "cat"
    assert tokenizer.token_to_id("no-such-token") is None
    assert tokenizer.model_max_length == 24
    ids = tokenizer.encode(["a cat sat", "the dog"])["input_ids"]
    assert tokenizer.batch_decode(ids) == ["a cat sat", "the dog"]
    assert tokenizer.decode(list(ids[1])) == tokenizer.decode(ids[1]) == "the dog"
    assert "WordPiece" in repr(tokenizer)


def test_tokenizer_truncates_to_model_max_length(tokenizer):
    ids = tokenizer.encode("the " * 100)["input_ids"]
    assert ids.shape == (1, 24) and ids[0, -1] == tokenizer.token_to_id("[SEP]")
    assert tokenizer.encode("the " * 100, truncation=False)["input_ids"].shape == (1, 102)


def test_tokenizer_config_files(tmp_path):
    shutil.copy(TOKENIZER_DIR / "tokenizer.json", tmp_path / "tokenizer.json")
    bare = TextTokenizer.from_dir(tmp_path)  # no configs: no length limit, BERT's [PAD]
    assert bare.model_max_length is None and bare.pad_token == "[PAD]"
    assert bare.encode("the " * 100)["input_ids"].shape == (1, 102)

    (tmp_path / "special_tokens_map.json").write_text(json.dumps({"pad_token": {"content": "[MASK]"}}))
    assert TextTokenizer.from_file(tmp_path / "tokenizer.json").pad_token_id == 4
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps({"pad_token": "<nope>", "added_tokens_decoder": {}})
    )
    with pytest.raises(ConfigError, match="<nope>"):
        TextTokenizer.from_dir(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="tokenizer_config.json"):
        TextTokenizer.from_dir(tmp_path)


def test_tokenizer_bad_files(tmp_path):
    with pytest.raises(WeightsError, match=str(tmp_path / "tokenizer.json")):
        TextTokenizer.from_dir(tmp_path)
    (tmp_path / "tokenizer.json").write_text('{"garbage": true}')
    with pytest.raises(WeightsError, match=str(tmp_path / "tokenizer.json")):
        TextTokenizer.from_dir(tmp_path)


@pytest.mark.parametrize(
    "texts, kwargs",
    [
        ([], {}),
        ([1, 2], {}),
        (["a", ("b", "c")], {}),
        (None, {}),
        ("a", {"max_length": 0}),
        ("a", {"padding": "bogus"}),
        (["a cat", "the"], {"padding": False}),
    ],
)
def test_tokenizer_bad_input(tokenizer, texts, kwargs):
    with pytest.raises(InputError):
        tokenizer.encode(texts, **kwargs)


def test_tokenizer_bad_ids(tokenizer):
    with pytest.raises(InputError, match="batch_decode"):
        tokenizer.decode(np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(InputError, match="125"):
        tokenizer.decode([5, 125])


# --- images -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def image_reference():
    with np.load(FIXTURES / "image_reference.npz") as data:
        return {key: data[key] for key in data.files}


def test_image_matches_reference(image_reference):
    rgb, rgba = image_reference["input_rgb"], image_reference["input_rgba"]
    for i, config in enumerate(json.loads(str(image_reference["configs"]))):
        processor = ImageProcessor.from_config(config)
        expected = image_reference[f"rgb_{i}"]
        for image in (Image.fromarray(rgb), rgb, np.moveaxis(rgb, -1, 0), rgb.astype(np.int64)):
            out = processor(image)
            assert out.dtype == np.float32 and out.shape == expected.shape
            np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6)
        np.testing.assert_allclose(
            processor(Image.fromarray(rgba)), image_reference[f"rgba_{i}"], rtol=0, atol=1e-6
        )


@pytest.mark.live
@settings(max_examples=25, deadline=None)
@given(
    height=st.integers(1, 260),
    width=st.integers(1, 260),
    config=st.sampled_from(
        [
            {},  # ViT: 224 x 224 bilinear, mean = std = 0.5
            {"size": {"height": 33, "width": 47}, "resample": 3},
            {"size": {"shortest_edge": 64}, "do_center_crop": True, "crop_size": {"height": 56, "width": 56}},
            {
                "size": 96,
                "resample": 1,
                "image_mean": [0.485, 0.456, 0.406],
                "image_std": [0.229, 0.224, 0.225],
            },
        ]
    ),
    seed=st.integers(0, 2**16),
)
def test_image_matches_transformers(height, width, config, seed):
    transformers = pytest.importorskip("transformers")
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    hf = _hf_image_processor(transformers, **config)
    expected = hf(Image.fromarray(image), return_tensors="np")["pixel_values"]
    np.testing.assert_allclose(ImageProcessor.from_config(config)(image), expected, rtol=0, atol=1e-6)


@pytest.mark.live
def test_image_rgba_and_gray_match_transformers():
    transformers = pytest.importorskip("transformers")
    rng = np.random.default_rng(3)
    hf = _hf_image_processor(transformers, do_convert_rgb=True)
    ours = ImageProcessor()
    rgba = rng.integers(0, 256, (31, 45, 4), dtype=np.uint8)
    for image in (
        Image.fromarray(rgba),
        Image.fromarray(rgba[..., 0]),
        Image.fromarray(rgba[..., :3]).convert("P"),
    ):
        expected = hf(image, return_tensors="np")["pixel_values"]
        np.testing.assert_allclose(ours(image), expected, rtol=0, atol=1e-6)
    expected = hf(rgba, return_tensors="np", input_data_format="channels_last")["pixel_values"]
    np.testing.assert_allclose(ours(rgba), expected, rtol=0, atol=1e-6)


def test_image_input_forms():
    rng = np.random.default_rng(4)
    batch = rng.integers(0, 256, (3, 29, 41, 3), dtype=np.uint8)
    processor = ImageProcessor(size={"height": 32, "width": 24})
    out = processor(batch)
    assert out.shape == (3, 3, 32, 24) and out.dtype == np.float32
    np.testing.assert_array_equal(out, processor(list(batch)))
    np.testing.assert_array_equal(out[1:2], processor(Image.fromarray(batch[1])))
    gray = batch[0, ..., 0]
    np.testing.assert_array_equal(processor(gray), processor(Image.fromarray(gray)))
    # float images in [0, 1] are intensities: equal to the uint8 image up to Pillow's uint8 rounding
    as_float = processor(batch.astype(np.float32) / 255)
    assert np.abs(as_float - out).max() < 2.5 / 255 / 0.5
    unresized = ImageProcessor(do_resize=False)(batch.astype(np.float64) / 255)
    np.testing.assert_allclose(unresized, ImageProcessor(do_resize=False)(batch), atol=1e-6)


@pytest.mark.parametrize(
    "images, shape_text",
    [
        (np.zeros((0, 5, 3), np.uint8), "(0, 5, 3)"),
        (np.zeros((5,), np.uint8), "(5,)"),
        (np.zeros((1, 2, 5, 5, 3), np.uint8), "(1, 2, 5, 5, 3)"),
        (np.zeros((5, 5, 2), np.uint8), "(5, 5, 2)"),
        (np.full((5, 5, 3), "x"), "(5, 5, 3)"),
        (np.full((5, 5, 3), np.nan), "(5, 5, 3)"),
        (np.full((5, 5, 3), 1.5), "(5, 5, 3)"),
        (np.full((5, 5, 3), 256), "(5, 5, 3)"),
        ([np.zeros((1, 5, 5, 3), np.uint8)], "(1, 5, 5, 3)"),
    ],
)
def test_image_bad_input(images, shape_text):
    with pytest.raises(InputError, match=shape_text.replace("(", r"\(").replace(")", r"\)")):
        ImageProcessor()(images)


def test_image_bad_input_types():
    for images in ([], "cat.png", [np.zeros((4, 4, 3), np.uint8), "cat.png"]):
        with pytest.raises(InputError):
            ImageProcessor()(images)
    with pytest.raises(InputError, match="differ in shape"):
        ImageProcessor(do_resize=False)([np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)])


def test_image_config_files(tmp_path):
    with pytest.raises(WeightsError, match="preprocessor_config.json"):
        ImageProcessor.from_dir(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(
        json.dumps({"size": {"height": 16, "width": 8}, "resample": 3})
    )
    processor = ImageProcessor.from_dir(tmp_path)
    assert processor(np.zeros((4, 4, 3), np.uint8)).shape == (1, 3, 16, 8)
    assert "bicubic" in repr(processor)
    for bad in ({"size": {"h": 3}}, {"image_mean": [0.5, 0.5]}, {"resample": 9}, {"image_std": [0, 1, 1]}):
        with pytest.raises(ConfigError):
            ImageProcessor.from_config(bad)
    (tmp_path / "preprocessor_config.json").write_text("[1, 2")
    with pytest.raises(ConfigError, match="preprocessor_config.json"):
        ImageProcessor.from_dir(tmp_path)


# --- audio --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def audio_reference():
    with np.load(FIXTURES / "audio_reference.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.mark.parametrize("n_mels", [80, 128])
def test_log_mel_matches_reference(audio_reference, n_mels):
    features = log_mel_spectrogram(audio_reference["signal"], n_mels=n_mels)
    assert features.shape == (n_mels, 3000) and features.dtype == np.float32
    head = audio_reference[f"features_{n_mels}_head"]
    np.testing.assert_allclose(features[:, : head.shape[1]], head, rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        features[:, head.shape[1] :], audio_reference[f"features_{n_mels}_tail_value"], atol=1e-6
    )
    batch = FeatureExtractor(feature_size=n_mels)(
        [audio_reference["signal"], audio_reference["signal"][:100]]
    )
    assert batch.shape == (2, n_mels, 3000)
    np.testing.assert_array_equal(batch[0], features)


@pytest.mark.live
@settings(max_examples=8, deadline=None)
@given(n_samples=st.integers(1, 40 * 16000), n_mels=st.sampled_from([80, 128]), seed=st.integers(0, 2**16))
def test_log_mel_matches_transformers(n_samples, n_mels, seed):
    transformers = pytest.importorskip("transformers")
    rng = np.random.default_rng(seed)
    audio = (rng.standard_normal(n_samples) * rng.uniform(0.01, 1.0)).astype(np.float32)
    extractor = transformers.WhisperFeatureExtractor(feature_size=n_mels)
    ours = log_mel_spectrogram(audio, n_mels=n_mels)
    # the numpy path, step for step: agrees to float32 rounding
    padded = np.pad(audio[:480000], (0, max(0, 480000 - n_samples)))[None]
    np.testing.assert_allclose(
        ours, extractor._np_extract_fbank_features(padded, "cpu")[0], rtol=0, atol=1e-6
    )
    # the public call (torch.stft when torch is installed)
    expected = extractor(audio, sampling_rate=16000, return_tensors="np")["input_features"][0]
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-4)


def test_log_mel_lengths():
    rng = np.random.default_rng(5)
    long = rng.standard_normal(35 * 16000).astype(np.float32)
    np.testing.assert_array_equal(log_mel_spectrogram(long), log_mel_spectrogram(long[: 30 * 16000]))
    short = long[:16000]
    np.testing.assert_array_equal(log_mel_spectrogram(short), log_mel_spectrogram(np.pad(short, (0, 5000))))
    assert log_mel_spectrogram(short, padding=False).shape == (80, 100)
    assert log_mel_spectrogram(short.astype(np.float64), n_mels=128).shape == (128, 3000)


def test_feature_extractor(tmp_path):
    config = {
        "feature_size": 128,
        "sampling_rate": 16000,
        "n_fft": 400,
        "hop_length": 160,
        "chunk_length": 30,
    }
    (tmp_path / "preprocessor_config.json").write_text(
        json.dumps({**config, "feature_extractor_type": "Whisper"})
    )
    extractor = FeatureExtractor.from_dir(tmp_path)
    assert extractor.nb_max_frames == 3000 and "128" in repr(extractor)
    rng = np.random.default_rng(6)
    clips = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (16000, 3000)]
    out = extractor(clips)
    assert out.shape == (2, 128, 3000) and out.dtype == np.float32
    np.testing.assert_array_equal(out[1], log_mel_spectrogram(clips[1], n_mels=128))
    np.testing.assert_array_equal(extractor(np.stack([clips[0], clips[0]]))[1], out[0])
    np.testing.assert_array_equal(extractor(clips[1].tolist())[0], out[1])
    at_8k = clips[0][:8000]  # other rates are resampled to the extractor's
    np.testing.assert_array_equal(
        extractor(at_8k, sampling_rate=8000)[0], log_mel_spectrogram(resample(at_8k, 8000, 16000), n_mels=128)
    )
    with pytest.raises(WeightsError):
        FeatureExtractor.from_dir(tmp_path / "missing")
    with pytest.raises(ConfigError):
        FeatureExtractor.from_config({"feature_size": 0})


@pytest.mark.parametrize("orig_sr", [44100, 8000])
def test_resample_tone(orig_sr):
    seconds, freq = 1.5, 440.0
    tone = np.sin(2 * np.pi * freq * np.arange(int(orig_sr * seconds)) / orig_sr).astype(np.float32)
    out = resample(tone, orig_sr, 16000)
    assert out.dtype == np.float32 and out.size == math.ceil(tone.size * 16000 / orig_sr) == 24000
    expected = np.sin(2 * np.pi * freq * np.arange(out.size) / 16000)
    interior = slice(160, -160)  # 10 ms: beyond the filter's reach into the zeros past the ends
    assert np.abs(out - expected)[interior].max() < 1e-5
    spectrum = np.abs(np.fft.rfft(out * np.hanning(out.size)))
    assert abs(spectrum.argmax() * 16000 / out.size - freq) < 16000 / out.size


@pytest.mark.parametrize("rate", [1, 999, 800000])
def test_resample_refuses_rates_that_are_not_audio(rate):
    """sampling_rate=1 (a sample count passed by mistake?) would make gigabytes of 16 kHz samples."""
    with pytest.raises(InputError, match=r"audio rate between 1000 and 768000 Hz.*got"):
        resample(np.zeros(16000, np.float32), rate, 16000)


def test_resample_removes_what_would_alias():
    t = np.arange(44100) / 44100
    for freq, most in ((7000.0, 1.0 + 1e-5), (9000.0, 1e-4), (15000.0, 1e-4)):
        out = resample(np.sin(2 * np.pi * freq * t), 44100, 16000)[500:-500]
        assert np.abs(out).max() < most


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 5000),
    orig_sr=st.sampled_from([8000, 11025, 16000, 22050, 24000, 44100, 48000, 44101]),
    target_sr=st.sampled_from([8000, 16000, 22050, 44100]),
)
def test_resample_length_and_dc(n, orig_sr, target_sr):
    out = resample(np.ones(n, np.float32), orig_sr, target_sr)
    assert out.shape == (math.ceil(n * target_sr / orig_sr),)
    reach = math.ceil(64 / 0.945 * max(1, target_sr / orig_sr)) + 1  # filter half-width in output samples
    interior = out[reach:-reach]
    np.testing.assert_allclose(interior, 1.0, atol=1e-4)


def test_chunk_audio():
    audio = np.arange(70 * 100, dtype=np.float32)
    chunks = chunk_audio(audio, sampling_rate=100)
    assert [c.size for c in chunks] == [3000, 3000, 1000]
    np.testing.assert_array_equal(np.concatenate(chunks), audio)
    assert [c.size for c in chunk_audio(audio, 100, chunk_length=10)] == [1000] * 7


def test_to_mono_float32():
    pcm = np.array([0, 16384, -32768, 32767], dtype=np.int16)
    np.testing.assert_array_equal(to_mono_float32(pcm), np.array([0, 0.5, -1, 32767 / 32768], np.float32))
    np.testing.assert_allclose(to_mono_float32(pcm.astype(np.int32) << 16), to_mono_float32(pcm))
    np.testing.assert_array_equal(to_mono_float32(np.array([0, 128, 255], np.uint8)), [-1, 0, 127 / 128])
    left, right = np.linspace(-1, 1, 50), np.linspace(1, 0, 50)
    expected = ((left + right) / 2).astype(np.float32)
    np.testing.assert_allclose(to_mono_float32(np.stack([left, right])), expected, atol=1e-7)  # (2, N)
    np.testing.assert_allclose(
        to_mono_float32(np.stack([left, right], axis=1)), expected, atol=1e-7
    )  # (N, 2)
    out = to_mono_float32([0.25, -0.5])
    assert out.dtype == np.float32 and out.tolist() == [0.25, -0.5]


@pytest.mark.parametrize(
    "call",
    [
        lambda: to_mono_float32(np.zeros(0)),
        lambda: to_mono_float32(np.array([0.0, np.nan])),
        lambda: to_mono_float32(np.zeros((2, 3, 4))),
        lambda: to_mono_float32(np.array(["a", "b"])),
        lambda: to_mono_float32(np.arange(4, dtype=np.int64)),
        lambda: log_mel_spectrogram(np.zeros((2, 100))),
        lambda: log_mel_spectrogram(np.zeros(100), sampling_rate=0),
        lambda: log_mel_spectrogram(np.array([np.inf])),
        lambda: log_mel_spectrogram(np.zeros(100), padding=False),
        lambda: resample(np.zeros(100), -16000, 16000),
        lambda: resample(np.zeros(100), 16000, 0),
        lambda: resample(np.zeros(0), 8000, 16000),
        lambda: chunk_audio(np.zeros(100), 16000, chunk_length=0),
        lambda: FeatureExtractor()([]),
        lambda: FeatureExtractor()(np.zeros(100), sampling_rate=0),
    ],
)
def test_audio_bad_input(call):
    with pytest.raises(InputError):
        call()


def test_feature_extractor_reads_samples_by_channels_as_one_stereo_clip():
    """(samples, channels) stereo is one clip mixed to mono (with a warning), never a batch of thousands."""
    from accelkit.preprocess import FeatureExtractor

    fe = FeatureExtractor()
    rng = np.random.default_rng(0)
    left = rng.standard_normal(16000).astype(np.float32) * 0.1
    stereo = np.stack([left, left], axis=1)  # (16000, 2)
    with pytest.warns(UserWarning, match="channel"):
        features = fe(stereo)
    assert features.shape == (1, 80, 3000)
    np.testing.assert_allclose(features, fe(left), rtol=1e-6, atol=1e-6)
    pcm = (np.stack([left, -left], axis=1) * 32767).astype(np.int16)
    with pytest.warns(UserWarning):
        assert fe(pcm).shape == (1, 80, 3000)
    assert fe(np.stack([left, left])).shape == (2, 80, 3000)  # (clips, samples) stays a batch
