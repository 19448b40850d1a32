"""Live parity with transformers: fresh random Whisper checkpoints, made here, never seen before.

Each config is saved with save_pretrained (weights, a freshly trained byte-level BPE tokenizer with Whisper's
special and timestamp tokens, a generation config and a feature extractor) and loaded by accelkit; the encoder output,
the logits and greedy generate must match transformers computing in float64. Skipped without torch and
transformers.
"""

from __future__ import annotations

import weakref

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from reference_error import rel_error  # noqa: E402
from torch_reference import (  # noqa: E402
    byte_level_bpe,
    scramble_parameters,
    whisper_configs,
    whisper_specials,
    whisper_tokenizer,
)

import accelkit as ak  # noqa: E402

RTOL = 2e-4  # max |error| relative to the reference's largest magnitude
NEAR_TIE = 1e-3  # greedy steps whose top-2 logit gap in float64 is below this may differ in float32

LANGUAGES = ["en", "zh", "de", "es"]
SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "a researcher measures how a model runs on a small graphics card",
    "speech recognition turns sound into words, one token at a time",
    "seven silent swans sailed south across the shimmering sea",
]

CONFIGS = {
    # d_model 36, 80 mels, 30 s windows, tied output projection, 40 timestamp tokens
    "d36-mel80": dict(
        timestamps=40,
        d_model=36,
        num_mel_bins=80,
        encoder_layers=1,
        decoder_layers=2,
        encoder_ffn_dim=52,
        decoder_ffn_dim=44,
        max_source_positions=1500,
        max_target_positions=40,
        activation_function="gelu",
        tie_word_embeddings=True,
        chunk_length=30,
        seed=7,
    ),
    # d_model 42, 128 mels (large-v3's), 15 s windows, an untied proj_out, tanh-approximated GELU
    "d42-mel128": dict(
        d_model=42,
        num_mel_bins=128,
        encoder_layers=2,
        decoder_layers=1,
        encoder_ffn_dim=64,
        decoder_ffn_dim=70,
        max_source_positions=750,
        max_target_positions=32,
        activation_function="gelu_new",
        tie_word_embeddings=False,
        chunk_length=15,
        seed=11,
    ),
}


def build_tokenizer(timestamps: int):
    """A byte-level BPE of 300 tokens on SENTENCES, then Whisper's specials and ``timestamps`` timestamp
    tokens (<|0.00|> <|0.02|> ... after <|notimestamps|>)."""
    stamps = [f"<|{i * 0.02:.2f}|>" for i in range(timestamps)]
    return byte_level_bpe(SENTENCES, 300, whisper_specials(LANGUAGES) + stamps)


def audio(seconds: float, seed: int) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    rng = np.random.default_rng(seed)
    wave = 0.3 * np.sin(2 * np.pi * 330 * t) + 0.2 * np.sin(2 * np.pi * (200 * t + 300 * t**2))
    return (wave + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


class Reference:
    """A fresh checkpoint in a directory and transformers' float64 model of it."""

    def __init__(self, name: str, directory) -> None:
        spec = dict(CONFIGS[name])
        seed, chunk_length = spec.pop("seed"), spec.pop("chunk_length")
        self.timestamps = spec.pop("timestamps", 0)
        raw = build_tokenizer(self.timestamps)
        config, generation = whisper_configs(
            raw,
            LANGUAGES,
            suppress_symbols="#()*+/<=>@[]",
            generation=dict(max_initial_timestamp_index=10),
            encoder_attention_heads=3,
            decoder_attention_heads=3,
            **spec,
        )
        torch.manual_seed(seed)
        model = transformers.WhisperForConditionalGeneration(config)
        # stronger decoder position embeddings: clear-cut greedy choices (not transformers' near-uniform logits)
        scramble_parameters(model, seed, boost={r"decoder\.embed_positions": 3.0})
        model.generation_config = generation
        model.save_pretrained(directory)
        tokenizer = whisper_tokenizer(raw)
        tokenizer.save_pretrained(directory)
        self.features_extractor = transformers.WhisperFeatureExtractor(
            feature_size=config.num_mel_bins,
            chunk_length=chunk_length,
            sampling_rate=16000,
            hop_length=160,
            n_fft=400,
        )
        self.features_extractor.save_pretrained(directory)
        self.directory, self.config, self.tokenizer = directory, config, tokenizer
        self.model = model.double().eval()
        self.audio = audio(2.5, seed)
        # a batch of two clips: the reference audio and a shorter, quieter, different one
        clips = [self.audio, audio(1.5, 99) * 0.5]
        self.features = self.features_extractor(clips, sampling_rate=16000, return_tensors="np")[
            "input_features"
        ]
        self._cache: dict = {}

    def forward(self, decoder_input_ids: np.ndarray):
        with torch.no_grad():
            out = self.model(
                input_features=torch.from_numpy(self.features).double(),
                decoder_input_ids=torch.from_numpy(decoder_input_ids),
            )
        return out.encoder_last_hidden_state.numpy(), out.logits.numpy()

    def generate_timestamps(self, **kwargs) -> np.ndarray:
        """transformers' generate(return_timestamps=True): the new tokens only, eos dropped, rows padded."""
        key = ("timestamps", tuple(sorted(kwargs.items())))
        if key not in self._cache:
            with torch.no_grad():
                features = torch.from_numpy(self.features).double()
                self._cache[key] = self.model.generate(features, return_timestamps=True, **kwargs).numpy()
        return self._cache[key]

    def generate(self, features: np.ndarray, **kwargs):
        """transformers' greedy sequences (prompt included, as return_dict_in_generate gives them) and
        each step's top-2 gap."""
        key = (features.tobytes(), tuple(sorted(kwargs.items())))
        if key not in self._cache:
            with torch.no_grad():
                result = self.model.generate(
                    torch.from_numpy(features).double(),
                    do_sample=False,
                    num_beams=1,
                    return_dict_in_generate=True,
                    output_scores=True,
                    **kwargs,
                )
            gaps = [torch.topk(s, 2).values for s in result.scores]
            gaps = np.stack([(v[:, 0] - v[:, 1]).numpy() for v in gaps], axis=1)  # (B, steps)
            self._cache[key] = (result.sequences.numpy(), gaps)
        return self._cache[key]


_references: dict = {}
_models: dict = {}
_encoded: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> its encoder output


@pytest.fixture(params=sorted(CONFIGS))
def reference(request, tmp_path_factory) -> Reference:
    name = request.param
    if name not in _references:
        transformers.logging.set_verbosity_error()
        _references[name] = Reference(name, tmp_path_factory.mktemp(name))
    return _references[name]


@pytest.fixture
def whisper(reference, dev):
    key = (id(reference), dev.spec)
    if key not in _models or _models[key].proj_out.weight.storage.backend is not dev.backend:
        _models[key] = ak.load(reference.directory, device=dev)
    return _models[key]


def encoded(whisper, reference) -> ak.Tensor:
    """accelkit's encoder output for the reference batch, computed once per model (the slow part)."""
    if whisper not in _encoded:
        _encoded[whisper] = whisper.encode(reference.features)
    return _encoded[whisper]


def assert_same_greedy(ours: np.ndarray, sequences: np.ndarray, gaps: np.ndarray, prompt: int) -> None:
    """Equal ids, up to the first step whose float64 top-2 gap is a near tie (float32 may pick either)."""
    steps = gaps.shape[1]
    ties = np.flatnonzero((gaps < NEAR_TIE).any(axis=0))
    upto = prompt + (int(ties[0]) if ties.size else steps)
    assert upto - prompt >= min(steps, 5), f"near ties too early to compare: gaps {gaps}"
    if upto == prompt + steps:
        np.testing.assert_array_equal(ours, sequences)
    else:
        np.testing.assert_array_equal(ours[:, :upto], sequences[:, :upto])


def test_config_was_never_bundled(reference, whisper):
    cfg = whisper.config
    assert cfg.d_model in (36, 42) and cfg.vocab_size == reference.config.vocab_size != 605
    assert whisper.load_report["tied"] == (["proj_out.weight"] if cfg.tie_word_embeddings else [])


def test_encoder_and_logits_match(reference, whisper):
    gen = reference.model.generation_config
    prompt = [
        gen.decoder_start_token_id,
        gen.lang_to_id["<|de|>"],
        gen.task_to_id["transcribe"],
        gen.no_timestamps_token_id,
    ]
    text = reference.tokenizer(" the lazy fox", add_special_tokens=False).input_ids
    ids = np.array([prompt + text, prompt[:1] + text + prompt[1:]])
    enc_ref, logits_ref = reference.forward(ids)
    enc = encoded(whisper, reference)
    assert rel_error(enc, enc_ref) < RTOL
    assert rel_error(whisper(decoder_input_ids=ids, encoder_hidden_states=enc).logits, logits_ref) < RTOL


@pytest.mark.parametrize("language,task", [("en", "transcribe"), ("de", "translate"), (None, None)])
def test_greedy_generate_matches(reference, whisper, language, task):
    # a batch of two clips: rows that finish first are padded with eos alike
    kwargs = {"language": language, "task": task} if language else {}
    sequences, gaps = reference.generate(reference.features, max_new_tokens=12, **kwargs)
    # a random model may emit timestamp tokens even after <|notimestamps|>; transformers then cuts the
    # output into segments and decodes on (its long-form path), which real checkpoints never meet
    assert (sequences <= reference.model.generation_config.no_timestamps_token_id).all(), "pick another seed"
    ours = whisper.generate(
        max_new_tokens=12, language=language, task=task, encoder_hidden_states=encoded(whisper, reference)
    )
    prompt = len(whisper.prompt_ids(language, task))
    assert_same_greedy(ours, sequences, gaps, prompt)


def test_transcribe_matches(reference, whisper):
    if whisper.device.backend_name != "cpu":
        pytest.skip("the text path is backend independent; the ids are compared on every backend above")
    sequences, _ = reference.generate(
        reference.features[:1], max_new_tokens=10, language="en", task="transcribe"
    )
    expected = reference.tokenizer.batch_decode(sequences, skip_special_tokens=True)[0]
    assert whisper.transcribe(reference.audio, language="en", max_new_tokens=10) == expected


@pytest.mark.parametrize("language", ["en", None])
def test_timestamps_match(reference, whisper, language):
    if not reference.timestamps:
        pytest.skip("this checkpoint has no timestamp tokens")
    kwargs = {"language": language, "task": "transcribe"} if language else {}
    expected = reference.generate_timestamps(max_new_tokens=12, **kwargs)
    ours = whisper.generate(
        max_new_tokens=12, return_timestamps=True, encoder_hidden_states=encoded(whisper, reference), **kwargs
    )
    prompt = whisper.prompt_ids(language, kwargs.get("task"), return_timestamps=True)
    assert whisper.generation_config.no_timestamps_token_id not in prompt
    eos = whisper.generation_config.eos_ids[0]
    for row, want in zip(ours, expected):
        new = row[len(prompt) :]
        np.testing.assert_array_equal(new[new != eos], want[want != eos])
    assert (ours[:, len(prompt) :] > whisper.generation_config.no_timestamps_token_id).any()
