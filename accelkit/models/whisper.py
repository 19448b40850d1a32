"""Whisper (Radford et al. 2022) in one file: config, conv stem + encoder, decoder with a device KV cache, greedy generate.

Module and parameter names are transformers' (``model.encoder.conv1``, ``model.decoder.layers.0.encoder_attn.k_proj``,
``proj_out`` tied to ``model.decoder.embed_tokens``), so a ``save_pretrained`` checkpoint loads as is.

    whisper = accelkit.load("whisper-tiny")
    whisper.transcribe(audio, sampling_rate=44100)                      # -> str
    ids = whisper.generate(features, language="en", max_new_tokens=20)   # -> (B, T) int64, prompt included

Performance: self-attention projects q/k/v with one matmul, cross-attention k/v with one; bias+GELU ride in
the matmul epilogues (conv stem included). Decoding keeps everything on the device: per layer a preallocated
(B, H, max_len, D) key/value buffer filled in place step by step, the cross-attention K/V projected once per
generate, the suppress-token mask folded into the logits matmul as its bias, and argmax on the device, so a
step reads back only the chosen token ids.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import nn, ops
from ..errors import ConfigError, InputError
from ..tensor.tensor import Tensor
from .base import (
    ACTIVATIONS,
    Config,
    ModelOutput,
    ModuleList,
    PreTrainedModel,
    check_activation,
    fuse_linears,
    positive,
)


@dataclasses.dataclass
class WhisperConfig(Config):
    """config.json of a Whisper checkpoint; defaults are transformers' (openai/whisper-tiny)."""

    model_type = "whisper"

    vocab_size: int = 51865
    num_mel_bins: int = 80
    d_model: int = 384
    encoder_layers: int = 4
    encoder_attention_heads: int = 6
    encoder_ffn_dim: int = 1536
    decoder_layers: int = 4
    decoder_attention_heads: int = 6
    decoder_ffn_dim: int = 1536
    max_source_positions: int = 1500
    max_target_positions: int = 448
    activation_function: str = "gelu"
    decoder_start_token_id: int = 50257
    eos_token_id: int | list | None = 50256
    pad_token_id: int | None = 50256
    suppress_tokens: list | None = None
    begin_suppress_tokens: list | None = dataclasses.field(default_factory=lambda: [220, 50256])
    tie_word_embeddings: bool = True

    def validate(self) -> None:
        sizes = "vocab_size num_mel_bins d_model max_source_positions max_target_positions"
        for side in ("encoder", "decoder"):
            sizes += f" {side}_layers {side}_attention_heads {side}_ffn_dim"
            heads = getattr(self, f"{side}_attention_heads")
            if heads > 0 and self.d_model % heads:
                raise ConfigError(
                    f"d_model {self.d_model} is not a multiple of {side}_attention_heads {heads}"
                )
        positive(self, *sizes.split())
        check_activation(self.activation_function, "activation_function")
        check_token_ids(self.vocab_size, {k: getattr(self, k) for k in _TOKEN_FIELDS})

    @property
    def input_frames(self) -> int:
        """The mel frames the encoder takes: conv2 halves them down to max_source_positions."""
        return 2 * self.max_source_positions


@dataclasses.dataclass
class WhisperGenerationConfig(Config):
    """generation_config.json: the prompt tokens, suppressed tokens and lengths greedy decoding follows."""

    decoder_start_token_id: int
    eos_token_id: int | list | None = None
    pad_token_id: int | None = None
    max_length: int = 20  # transformers' GenerationConfig default
    suppress_tokens: list | None = None
    begin_suppress_tokens: list | None = None
    lang_to_id: dict | None = None
    task_to_id: dict | None = None
    no_timestamps_token_id: int | None = None
    forced_decoder_ids: list | None = None
    is_multilingual: bool | None = None
    max_initial_timestamp_index: int | None = None

    @classmethod
    def for_model(
        cls, generation: dict | None, config: WhisperConfig, source: str
    ) -> WhisperGenerationConfig:
        """generation_config.json over the generation fields of config.json (what transformers falls back to)."""
        base = {k: getattr(config, k) for k in _TOKEN_FIELDS}
        base.update({k: v for k, v in config.extra.items() if k in ("forced_decoder_ids", "max_length")})
        gen = cls.from_dict(
            {**base, **{k: v for k, v in (generation or {}).items() if v is not None}}, source=source
        )
        fields = {k: getattr(gen, k) for k in _TOKEN_FIELDS}
        fields.update(
            lang_to_id=list((gen.lang_to_id or {}).values()), task_to_id=list((gen.task_to_id or {}).values())
        )
        try:
            check_token_ids(config.vocab_size, fields)
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None
        return gen

    @property
    def eos_ids(self) -> list[int]:
        return _ids(self.eos_token_id)

    @property
    def pad_id(self) -> int:
        return self.pad_token_id if self.pad_token_id is not None else self.eos_ids[0]


_TOKEN_FIELDS = (
    "decoder_start_token_id",
    "eos_token_id",
    "pad_token_id",
    "suppress_tokens",
    "begin_suppress_tokens",
)


def _ids(value) -> list:
    return [] if value is None else (list(value) if isinstance(value, (list, tuple)) else [value])


def check_token_ids(vocab_size: int, fields: dict) -> None:
    """Raise ConfigError naming the first field whose token id(s) are not integers in [0, vocab_size)."""
    for name, value in fields.items():
        bad = [
            v for v in _ids(value) if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < vocab_size
        ]
        if bad:
            raise ConfigError(
                f"field {name!r}: token ids must be integers in [0, {vocab_size}), got {bad[:5]}"
            )


# ------------------------------------------------------------------------------------ modules


class WhisperAttention(nn.Module):
    """Multi-head attention with Whisper's projections (k_proj has no bias), fused after loading."""

    def __init__(self, d_model: int, num_heads: int, cross: bool = False) -> None:
        super().__init__()
        self.num_heads, self.cross = num_heads, cross
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model, bias=False)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def fuse_weights(self) -> None:
        # self-attention: one (3C, C) q/k/v matmul; cross-attention: q from the decoder, one (2C, C) k/v matmul
        linears = (self.k_proj, self.v_proj) if self.cross else (self.q_proj, self.k_proj, self.v_proj)
        self.fused_weight, self.fused_bias = fuse_linears(*linears)

    def project_kv(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Cross-attention keys and values of the encoder output x (B, S, C) -> two (B, H, S, D) views."""
        c = x.shape[-1]
        kv = ops.linear(x, self.fused_weight, self.fused_bias)  # (B, S, 2C)
        return nn.split_heads(kv[..., :c], self.num_heads), nn.split_heads(kv[..., c:], self.num_heads)

    def __call__(
        self,
        x: Tensor,
        kv: tuple[Tensor, Tensor] | None = None,
        cache=None,
        start: int = 0,
        causal: bool = False,
    ) -> Tensor:
        """x (B, T, C) -> (B, T, C). Self-attention projects q/k/v from x; with ``cache`` ((B, H, L, D) key
        and value buffers) the new keys/values are written at positions start.. and the prefix is attended.
        Cross-attention takes ``kv`` from project_kv."""
        b, t, c = x.shape
        h = self.num_heads
        if self.cross:
            q = nn.split_heads(self.q_proj(x), h)  # (B, H, T, D)
            k, v = kv
        else:
            qkv = ops.linear(x, self.fused_weight, self.fused_bias)  # (B, T, 3C)
            q, k, v = (nn.split_heads(qkv[..., i * c : (i + 1) * c], h) for i in range(3))
            if cache is not None:
                cache_k, cache_v = cache
                cache_k[:, :, start : start + t] = k
                cache_v[:, :, start : start + t] = v
                k, v = cache_k[:, :, : start + t], cache_v[:, :, : start + t]
        out = Tensor.empty((b, t, h, c // h), x.dtype, x.device)  # heads written straight into (B, T, H, D)
        ops.scaled_dot_product_attention(q, k, v, is_causal=causal, out=out.permute(0, 2, 1, 3))
        return self.out_proj(out.reshape(b, t, c))


class WhisperEncoderLayer(nn.Module):
    """Pre-LN: x + self_attn(LN(x)), then x + fc2(act(fc1(LN(x))))."""

    def __init__(self, config: WhisperConfig) -> None:
        super().__init__()
        d = config.d_model
        self.self_attn = WhisperAttention(d, config.encoder_attention_heads)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, config.encoder_ffn_dim)
        self.fc2 = nn.Linear(config.encoder_ffn_dim, d)
        self.final_layer_norm = nn.LayerNorm(d)
        self.activation = ACTIVATIONS[config.activation_function]

    def __call__(self, x: Tensor) -> Tensor:
        x = ops.add(x, self.self_attn(self.self_attn_layer_norm(x)))
        h = self.fc1(self.final_layer_norm(x), activation=self.activation)  # (B, T, ffn)
        return ops.add(x, self.fc2(h))


class WhisperEncoder(nn.Module):
    """Log-mel features (B, n_mels, 2*S) -> two GELU convs (the second strides 2) -> + positions -> layers -> LN."""

    def __init__(self, config: WhisperConfig) -> None:
        super().__init__()
        d = config.d_model
        self.conv1 = nn.Conv1d(config.num_mel_bins, d, 3, padding=1)
        self.conv2 = nn.Conv1d(d, d, 3, stride=2, padding=1)
        self.embed_positions = nn.Embedding(config.max_source_positions, d)
        self.layers = ModuleList(WhisperEncoderLayer(config) for _ in range(config.encoder_layers))
        self.layer_norm = nn.LayerNorm(d)

    def __call__(self, features: Tensor) -> Tensor:
        x = self.conv1(features, activation="gelu")  # (B, C, 2S), a view of (B, 2S, C)
        x = self.conv2(x, activation="gelu")  # (B, C, S)
        x = ops.add(x.permute(0, 2, 1), self.embed_positions.weight)  # (B, S, C)
        for layer in self.layers:
            x = layer(x)
        return self.layer_norm(x)


class WhisperDecoderLayer(nn.Module):
    """Pre-LN: causal self-attention, cross-attention on the encoder output, then the MLP, each added back."""

    def __init__(self, config: WhisperConfig) -> None:
        super().__init__()
        d, heads = config.d_model, config.decoder_attention_heads
        self.self_attn = WhisperAttention(d, heads)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.encoder_attn = WhisperAttention(d, heads, cross=True)
        self.encoder_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, config.decoder_ffn_dim)
        self.fc2 = nn.Linear(config.decoder_ffn_dim, d)
        self.final_layer_norm = nn.LayerNorm(d)
        self.activation = ACTIVATIONS[config.activation_function]

    def __call__(self, x: Tensor, cross_kv, cache, start: int) -> Tensor:
        x = ops.add(x, self.self_attn(self.self_attn_layer_norm(x), cache=cache, start=start, causal=True))
        x = ops.add(x, self.encoder_attn(self.encoder_attn_layer_norm(x), kv=cross_kv))
        h = self.fc1(self.final_layer_norm(x), activation=self.activation)
        return ops.add(x, self.fc2(h))


class WhisperDecoder(nn.Module):
    """Token + position embeddings -> layers -> LN; positions continue from what the cache holds."""

    def __init__(self, config: WhisperConfig) -> None:
        super().__init__()
        d = config.d_model
        self.embed_tokens = nn.Embedding(config.vocab_size, d)
        self.embed_positions = nn.Embedding(config.max_target_positions, d)
        self.layers = ModuleList(WhisperDecoderLayer(config) for _ in range(config.decoder_layers))
        self.layer_norm = nn.LayerNorm(d)

    def __call__(self, ids: Tensor, cache: WhisperCache) -> Tensor:
        start, t = cache.length, ids.shape[1]
        x = ops.add(self.embed_tokens(ids), self.embed_positions.weight[start : start + t])  # (B, T, C)
        for layer, cross_kv, self_kv in zip(self.layers, cache.cross_kv, cache.self_kv):
            x = layer(x, cross_kv, self_kv, start)
        cache.length = start + t
        return self.layer_norm(x)


class WhisperModel(nn.Module):
    def __init__(self, config: WhisperConfig) -> None:
        super().__init__()
        self.encoder = WhisperEncoder(config)
        self.decoder = WhisperDecoder(config)


class WhisperCache:
    """Decoder state that stays on the device for one batch of encoder outputs.

    ``self_kv``: per layer (key, value) buffers (B, H, max_length, D), written in place as tokens are
    decoded; ``cross_kv``: per layer the cross-attention (key, value) (B, H, S, D), projected once.
    ``length`` is how many positions are filled.
    """

    def __init__(self, decoder: WhisperDecoder, encoder_hidden_states: Tensor, max_length: int) -> None:
        enc = encoder_hidden_states  # (B, S, C)
        self.length, self.max_length = 0, max_length
        self.cross_kv = [layer.encoder_attn.project_kv(enc) for layer in decoder.layers]
        self.self_kv = []
        for layer in decoder.layers:
            h = layer.self_attn.num_heads
            shape = (enc.shape[0], h, max_length, enc.shape[-1] // h)
            self.self_kv.append(
                (Tensor.empty(shape, enc.dtype, enc.device), Tensor.empty(shape, enc.dtype, enc.device))
            )

    @property
    def batch_size(self) -> int:
        return self.self_kv[0][0].shape[0] if self.self_kv else 0


# ------------------------------------------------------------------------------------ the model


class WhisperForConditionalGeneration(PreTrainedModel):
    """Whisper: ``(input_features, decoder_input_ids) -> logits, encoder_last_hidden_state``; ``generate``; ``transcribe``."""

    config_class = WhisperConfig
    base_model_prefix = "model"

    def __init__(self, config: WhisperConfig) -> None:
        super().__init__(config)
        self.model = WhisperModel(config)
        self.proj_out = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.tied_weights = (
            {"proj_out.weight": "model.decoder.embed_tokens.weight"} if config.tie_word_embeddings else {}
        )
        self.generation_config = WhisperGenerationConfig.for_model(None, config, "config.json")

    @classmethod
    def from_checkpoint(cls, ckpt, device=None, dtype=None):
        from ..io import Checkpoint

        if not isinstance(ckpt, Checkpoint):
            ckpt = Checkpoint.open(ckpt)
        model = super().from_checkpoint(ckpt, device=device, dtype=dtype)
        source = str(ckpt.generation_config_path or ckpt.config_path)
        model.generation_config = WhisperGenerationConfig.for_model(
            ckpt.generation_config, model.config, source
        )
        return model

    # ------------------------------------------------------------------ preprocessing
    @property
    def tokenizer(self):
        """The checkpoint's tokenizer (tokenizer.json), loaded on first use."""
        if self.__dict__.get("_tokenizer") is None:
            from ..preprocess import TextTokenizer

            object.__setattr__(
                self, "_tokenizer", TextTokenizer.from_dir(self._checkpoint_dir("a tokenizer"))
            )
        return self.__dict__["_tokenizer"]

    @property
    def feature_extractor(self):
        """The checkpoint's log-mel feature extractor (preprocessor_config.json), or defaults for num_mel_bins."""
        if self.__dict__.get("_features") is None:
            from ..preprocess import FeatureExtractor

            directory = self.checkpoint
            if directory is not None and (directory / "preprocessor_config.json").is_file():
                fe = FeatureExtractor.from_dir(directory)
            else:
                fe = FeatureExtractor(feature_size=self.config.num_mel_bins)
            if fe.feature_size != self.config.num_mel_bins or fe.nb_max_frames != self.config.input_frames:
                raise ConfigError(
                    f"preprocessor_config.json makes ({fe.feature_size}, {fe.nb_max_frames}) features, the model "
                    f"takes ({self.config.num_mel_bins}, {self.config.input_frames})"
                )
            object.__setattr__(self, "_features", fe)
        return self.__dict__["_features"]

    def _checkpoint_dir(self, what: str):
        if self.checkpoint is None:
            raise InputError(f"{type(self).__name__} was not loaded from a checkpoint, so it has no {what}")
        return self.checkpoint

    def _features_input(self, input_features) -> Tensor:
        cfg = self.config
        shape = tuple(input_features.shape) if hasattr(input_features, "shape") else np.shape(input_features)
        if len(shape) != 3 or shape[1:] != (cfg.num_mel_bins, cfg.input_frames) or shape[0] == 0:
            raise InputError(
                f"input_features must have shape (batch, {cfg.num_mel_bins}, {cfg.input_frames}): num_mel_bins and "
                f"2 * max_source_positions frames (pad shorter audio as the feature extractor does), got {tuple(shape)}"
            )
        return self._tensor_input(input_features, "input_features", self.compute_dtype)

    def _encoder_input(self, input_features, encoder_hidden_states) -> Tensor:
        """The encoder output: given (checked to be (B, max_source_positions, d_model)), or computed from features."""
        if encoder_hidden_states is None:
            if input_features is None:
                raise InputError("pass input_features (B, num_mel_bins, frames) or encoder_hidden_states")
            return self.encode(input_features)
        cfg = self.config
        shape = tuple(
            np.shape(encoder_hidden_states)
            if not isinstance(encoder_hidden_states, Tensor)
            else encoder_hidden_states.shape
        )
        if len(shape) != 3 or shape[1:] != (cfg.max_source_positions, cfg.d_model) or shape[0] == 0:
            raise InputError(
                f"encoder_hidden_states must have shape (batch, {cfg.max_source_positions}, {cfg.d_model}), got {shape}"
            )
        return self._tensor_input(encoder_hidden_states, "encoder_hidden_states", self.compute_dtype)

    # ------------------------------------------------------------------ forward
    def encode(self, input_features) -> Tensor:
        """Encoder output (B, max_source_positions, d_model) for features (B, num_mel_bins, 2*max_source_positions)."""
        return self.model.encoder(self._features_input(input_features))

    def new_cache(self, encoder_hidden_states: Tensor, max_length: int | None = None) -> WhisperCache:
        """An empty decoder cache for these encoder outputs, room for ``max_length`` (default max_target_positions) tokens."""
        limit = self.config.max_target_positions
        max_length = limit if max_length is None else int(max_length)
        if not 0 < max_length <= limit:
            raise InputError(
                f"cache max_length must be in [1, {limit}] (max_target_positions), got {max_length}"
            )
        return WhisperCache(self.model.decoder, encoder_hidden_states, max_length)

    def decode(
        self, decoder_input_ids, cache: WhisperCache, *, last_only: bool = False, logits_bias=None
    ) -> Tensor:
        """Run the decoder on new ids (B, T) at positions cache.length.., append their keys/values to the cache.

        Returns logits (B, T, vocab), or (B, 1, vocab) for the last position only with ``last_only``;
        ``logits_bias`` (vocab,) is added in the logits matmul's epilogue (the suppress-token mask).
        """
        ids, shape = self._ids_input(decoder_input_ids, "decoder_input_ids", self.config.vocab_size)
        if shape[0] != cache.batch_size:
            raise InputError(f"decoder_input_ids has batch {shape[0]}, the cache holds {cache.batch_size}")
        if cache.length + shape[1] > cache.max_length:
            raise InputError(
                f"decoder_input_ids: {cache.length} cached + {shape[1]} new tokens exceed the cache's "
                f"{cache.max_length} positions (max_target_positions {self.config.max_target_positions})"
            )
        h = self.model.decoder(ids, cache)  # (B, T, C)
        if last_only:
            h = h[:, -1:]
        return ops.linear(h, self.proj_out.weight, logits_bias)  # (B, T, V): hidden @ embed_tokens.T

    def __call__(
        self, input_features=None, decoder_input_ids=None, *, encoder_hidden_states=None
    ) -> ModelOutput:
        """Logits (B, T, vocab) for decoder_input_ids given the audio features (or precomputed encoder output)."""
        if decoder_input_ids is None:
            raise InputError(
                "decoder_input_ids is required (e.g. [[decoder_start_token_id]]); see generate()"
            )
        ids, shape = self._ids_input(decoder_input_ids, "decoder_input_ids", self.config.vocab_size)
        if not 0 < shape[1] <= self.config.max_target_positions:
            raise InputError(
                f"decoder_input_ids: sequence length {shape[1]} must be in [1, {self.config.max_target_positions}] "
                "(max_target_positions)"
            )
        encoder_hidden_states = self._encoder_input(input_features, encoder_hidden_states)
        if shape[0] != encoder_hidden_states.shape[0]:
            raise InputError(
                f"decoder_input_ids has batch {shape[0]} but the audio has batch {encoder_hidden_states.shape[0]}"
            )
        cache = self.new_cache(encoder_hidden_states, shape[1])
        logits = self.decode(ids, cache)
        return ModelOutput(logits=logits, encoder_last_hidden_state=encoder_hidden_states)

    # ------------------------------------------------------------------ generation
    def prompt_ids(self, language=None, task=None, return_timestamps: bool = False) -> list:
        """The decoder prompt transformers' generate uses: <|startoftranscript|>, language, task, <|notimestamps|>.

        The language slot is None when the language is to be detected (language=None with a multilingual
        generation config).
        """
        gen = self.generation_config
        if gen.is_multilingual is False and (language is not None or task is not None):
            raise InputError("this is an English-only Whisper: it takes no language or task")
        tokens = [gen.decoder_start_token_id]
        if language is None and task is None and gen.forced_decoder_ids:
            for index, token in sorted(gen.forced_decoder_ids):
                if index == len(tokens):
                    tokens.append(token)
        if language is not None:
            tokens[1:2] = [self.language_id(language)]
        elif gen.lang_to_id and (len(tokens) <= 1 or tokens[1] is None):
            tokens[1:2] = [None]  # detected from the first decoder step
        else:
            tokens = [t for t in tokens if t is not None]
        task_ids = (gen.task_to_id or {}).values()
        if task is not None:
            if task not in (gen.task_to_id or {}):
                raise InputError(f"task must be one of {sorted(gen.task_to_id or {})}, got {task!r}")
            tokens = [t for t in tokens if t not in task_ids] + [gen.task_to_id[task]]
        elif language is not None and gen.task_to_id and not any(t in task_ids for t in tokens):
            tokens.append(gen.task_to_id["transcribe"])
        no_ts = gen.no_timestamps_token_id
        if not return_timestamps and no_ts is not None and tokens[-1] != no_ts:
            tokens.append(no_ts)
        elif return_timestamps and tokens[-1] == no_ts:
            tokens.pop()
        return tokens

    def language_id(self, language: str) -> int:
        """The token id of a language given as "en", "english" or "<|en|>"."""
        lang_to_id = self.generation_config.lang_to_id or {}
        if not lang_to_id:
            raise InputError("this checkpoint's generation config has no lang_to_id, so it takes no language")
        name = str(language).lower()
        token = name if name in lang_to_id else f"<|{_LANGUAGE_CODES.get(name, name)}|>"
        if token not in lang_to_id:
            known = ", ".join(sorted(k.strip("<|>") for k in lang_to_id))
            raise InputError(f"unsupported language {language!r}; this checkpoint knows: {known}")
        return lang_to_id[token]

    def generate(
        self,
        input_features=None,
        max_new_tokens: int | None = None,
        language: str | None = None,
        task: str | None = None,
        return_timestamps: bool = False,
        *,
        encoder_hidden_states: Tensor | None = None,
    ) -> np.ndarray:
        """Greedy decoding as transformers' generate: returns (B, T) int64 ids, the prompt included.

        The prompt is <|startoftranscript|>, the language (detected from the first step, restricted to
        language tokens, when None), the task, and <|notimestamps|>. ``suppress_tokens`` are masked every
        step, ``begin_suppress_tokens`` on the first generated one; a sequence stops at eos and is padded
        with the pad token while others go on. ``max_new_tokens`` defaults to the generation config's
        max_length (capped by max_target_positions). ``return_timestamps=True`` applies Whisper's timestamp
        rules, which need each step's probabilities on the host. ``encoder_hidden_states`` (from ``encode``)
        may stand in for the features.
        """
        gen, cfg = self.generation_config, self.config
        prompt = self.prompt_ids(language, task, return_timestamps)
        n_prompt = len(prompt)
        room = cfg.max_target_positions - n_prompt
        if max_new_tokens is None:
            max_new_tokens = min(gen.max_length, room)
        elif (
            isinstance(max_new_tokens, bool)
            or not isinstance(max_new_tokens, (int, np.integer))
            or max_new_tokens < 0
        ):
            raise InputError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
        elif max_new_tokens > room:
            raise InputError(
                f"max_new_tokens {max_new_tokens} + the {n_prompt} prompt tokens exceed max_target_positions "
                f"{cfg.max_target_positions}; ask for at most {room} new tokens"
            )
        timestamps = _TimestampRules(gen, n_prompt, cfg.vocab_size) if return_timestamps else None
        encoder_hidden_states = self._encoder_input(input_features, encoder_hidden_states)
        b = encoder_hidden_states.shape[0]
        cache = self.new_cache(encoder_hidden_states, n_prompt + max(max_new_tokens, 1))
        mask, first_mask = self._suppress_masks()

        ids, languages = np.empty((b, 0), dtype=np.int64), [None] * b
        if None in prompt:  # language detection: the first step from <|startoftranscript|> alone
            detect = self.decode(
                np.full((b, 1), prompt[0]), cache, last_only=True, logits_bias=self._language_mask()
            )
            languages = _argmax(detect)
            ids = np.full((b, 1), prompt[0], dtype=np.int64)
            prompt = prompt[1:]
        rest = np.array(
            [[languages[i] if t is None else t for t in prompt] for i in range(b)], dtype=np.int64
        )
        ids = np.concatenate([ids, rest], axis=1)
        if max_new_tokens == 0:
            return ids
        step_ids, finished, bias = rest, np.zeros(b, dtype=bool), first_mask
        eos, pad = gen.eos_ids, gen.pad_id
        for _ in range(max_new_tokens):
            if timestamps is None:
                tokens = _argmax(self.decode(step_ids, cache, last_only=True, logits_bias=bias))
            else:  # the timestamp rules read the probabilities: one (B, vocab) row per step comes back
                logits = self.decode(step_ids, cache, last_only=True, logits_bias=bias).numpy()[:, 0]
                tokens = timestamps(ids, logits)
            tokens = np.where(finished, pad, tokens)
            ids = np.concatenate([ids, tokens[:, None]], axis=1)
            finished |= np.isin(tokens, eos)
            if finished.all():
                break
            step_ids, bias = tokens[:, None], mask
        return ids

    def _suppress_masks(self) -> tuple[Tensor | None, Tensor | None]:
        """Additive (vocab,) masks: -inf on suppress_tokens (every step) and also on begin_suppress_tokens (first step)."""
        if self.__dict__.get("_masks") is None:
            gen = self.generation_config
            masks = []
            for tokens in (
                gen.suppress_tokens or [],
                [*(gen.suppress_tokens or []), *(gen.begin_suppress_tokens or [])],
            ):
                bias = np.zeros(self.config.vocab_size, np.float32)
                bias[list(tokens)] = -np.inf
                masks.append(Tensor.from_numpy(bias, self.compute_dtype, self.device) if tokens else None)
            object.__setattr__(self, "_masks", tuple(masks))
        return self.__dict__["_masks"]

    def _language_mask(self) -> Tensor:
        """Additive (vocab,) mask: 0 on the language tokens, -inf elsewhere (for language detection)."""
        if self.__dict__.get("_lang_mask") is None:
            bias = np.full(self.config.vocab_size, -np.inf, np.float32)
            bias[list(self.generation_config.lang_to_id.values())] = 0.0
            object.__setattr__(self, "_lang_mask", Tensor.from_numpy(bias, self.compute_dtype, self.device))
        return self.__dict__["_lang_mask"]

    def detect_language(
        self, input_features=None, *, encoder_hidden_states: Tensor | None = None
    ) -> list[str]:
        """The language token (e.g. "<|en|>") each example most likely speaks, from the first decoder step."""
        gen = self.generation_config
        if not gen.lang_to_id:
            raise InputError(
                "this checkpoint's generation config has no lang_to_id, so it cannot detect languages"
            )
        enc = self._encoder_input(input_features, encoder_hidden_states)
        cache = self.new_cache(enc, 1)
        logits = self.decode(
            np.full((enc.shape[0], 1), gen.decoder_start_token_id),
            cache,
            last_only=True,
            logits_bias=self._language_mask(),
        )
        names = {v: k for k, v in gen.lang_to_id.items()}
        return [names[int(t)] for t in _argmax(logits)]

    # ------------------------------------------------------------------ audio -> text
    def transcribe(
        self,
        audio,
        sampling_rate: int = 16000,
        language: str | None = None,
        task: str = "transcribe",
        max_new_tokens: int | None = None,
        batch_size: int = 8,
    ) -> str:
        """Audio (mono or multichannel, float or int PCM, any rate) -> text.

        Audio is resampled to the feature extractor's rate; longer than the model's window (30 s) it is cut
        into windows, which are decoded in batches of ``batch_size`` and their texts joined.
        """
        from ..preprocess import chunk_audio, resample, to_mono_float32

        fe = self.feature_extractor
        samples = to_mono_float32(audio)
        if sampling_rate != fe.sampling_rate:
            samples = resample(samples, sampling_rate, fe.sampling_rate)
        chunks = chunk_audio(samples, fe.sampling_rate, fe.chunk_length)
        if batch_size < 1:
            raise InputError(f"transcribe: batch_size must be >= 1, got {batch_size}")
        texts = []
        for start in range(0, len(chunks), batch_size):
            features = fe(chunks[start : start + batch_size], sampling_rate=fe.sampling_rate)
            ids = self.generate(
                features,
                max_new_tokens=max_new_tokens,
                language=language,
                task=task if self.generation_config.is_multilingual is not False else None,
            )
            texts += self.tokenizer.batch_decode(ids, skip_special_tokens=True)
        return "".join(texts)


def _argmax(logits: Tensor) -> np.ndarray:
    """(B, 1, vocab) logits -> (B,) int64 token ids: argmax on the device, only the ids come back."""
    return ops.argmax(logits, axis=-1).numpy().reshape(-1).astype(np.int64)


class _TimestampRules:
    """transformers' WhisperTimeStampLogitsProcessor on one step's (B, vocab) logits, then argmax.

    Timestamps come in pairs (except before eos) and never decrease; the first token is a timestamp
    (at most max_initial_timestamp_index); when the timestamps together outweigh every text token, one is
    taken.
    """

    def __init__(self, gen: WhisperGenerationConfig, begin: int, vocab_size: int) -> None:
        if gen.no_timestamps_token_id is None or gen.no_timestamps_token_id + 1 >= vocab_size:
            raise InputError(
                "return_timestamps=True: this checkpoint has no timestamp tokens after <|notimestamps|>"
            )
        self.no_ts, self.ts_begin = gen.no_timestamps_token_id, gen.no_timestamps_token_id + 1
        self.eos = gen.eos_ids[0]
        self.begin, self.max_initial = begin, gen.max_initial_timestamp_index

    def __call__(self, ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        scores = logits.astype(np.float64)
        scores[:, self.no_ts] = -np.inf
        for k, seq in enumerate(ids[:, self.begin :].tolist()):
            last = len(seq) >= 1 and seq[-1] >= self.ts_begin
            penultimate = len(seq) < 2 or seq[-2] >= self.ts_begin
            if last:
                if penultimate:
                    scores[k, self.ts_begin :] = -np.inf
                else:
                    scores[k, : self.eos] = -np.inf
            stamps = [t for t in seq if t >= self.ts_begin]
            floor = self.ts_begin
            if stamps:
                floor = stamps[-1] if last and not penultimate else stamps[-1] + 1
            scores[k, self.ts_begin : floor] = -np.inf
        if ids.shape[1] == self.begin:
            scores[:, : self.ts_begin] = -np.inf
            if self.max_initial is not None:
                scores[:, self.ts_begin + self.max_initial + 1 :] = -np.inf
        with np.errstate(all="ignore"):
            top = np.max(scores, axis=-1, keepdims=True)
            logprobs = scores - top - np.log(np.sum(np.exp(scores - top), axis=-1, keepdims=True))
            stamp = np.logaddexp.reduce(logprobs[:, self.ts_begin :], axis=-1)
            text = np.max(logprobs[:, : self.ts_begin], axis=-1)
        scores[stamp > text, : self.ts_begin] = -np.inf
        return np.argmax(scores, axis=-1).astype(np.int64)


# Whisper's language table (transformers' LANGUAGES) and its aliases, name -> code, for language="english"
_LANGUAGE_CODES = {
    name.replace("_", " "): code
    for code, _, name in (
        pair.partition(":")
        for pair in (
            "en:english zh:chinese de:german es:spanish ru:russian ko:korean fr:french ja:japanese pt:portuguese "
            "tr:turkish pl:polish ca:catalan nl:dutch ar:arabic sv:swedish it:italian id:indonesian hi:hindi "
            "fi:finnish vi:vietnamese he:hebrew uk:ukrainian el:greek ms:malay cs:czech ro:romanian da:danish "
            "hu:hungarian ta:tamil no:norwegian th:thai ur:urdu hr:croatian bg:bulgarian lt:lithuanian la:latin "
            "mi:maori ml:malayalam cy:welsh sk:slovak te:telugu fa:persian lv:latvian bn:bengali sr:serbian "
            "az:azerbaijani sl:slovenian kn:kannada et:estonian mk:macedonian br:breton eu:basque is:icelandic "
            "hy:armenian ne:nepali mn:mongolian bs:bosnian kk:kazakh sq:albanian sw:swahili gl:galician "
            "mr:marathi pa:punjabi si:sinhala km:khmer sn:shona yo:yoruba so:somali af:afrikaans oc:occitan "
            "ka:georgian be:belarusian tg:tajik sd:sindhi gu:gujarati am:amharic yi:yiddish lo:lao uz:uzbek "
            "fo:faroese ht:haitian_creole ps:pashto tk:turkmen nn:nynorsk mt:maltese sa:sanskrit "
            "lb:luxembourgish my:myanmar bo:tibetan tl:tagalog mg:malagasy as:assamese tt:tatar haw:hawaiian "
            "ln:lingala ha:hausa ba:bashkir jw:javanese su:sundanese yue:cantonese my:burmese ca:valencian "
            "nl:flemish ht:haitian lb:letzeburgesch ps:pushto pa:panjabi ro:moldavian ro:moldovan si:sinhalese "
            "es:castilian zh:mandarin"
        ).split()
    )
}


__all__ = ["WhisperCache", "WhisperConfig", "WhisperForConditionalGeneration", "WhisperGenerationConfig"]
