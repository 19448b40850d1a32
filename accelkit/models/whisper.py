"""Whisper (Radford et al. 2022): config, conv stem + encoder, decoder with a device KV cache, the model.

Module and parameter names are transformers' (``model.encoder.conv1``, ``model.decoder.layers.0.encoder_attn.k_proj``,
``proj_out`` tied to ``model.decoder.embed_tokens``), so a ``save_pretrained`` checkpoint loads as is.

    whisper = accelkit.load("tiny-random-whisper")
    whisper.transcribe(audio, sampling_rate=44100)                      # -> str
    ids = whisper.generate(features, language="en", max_new_tokens=20)   # -> (B, T) int64, prompt included

Performance: self-attention projects q/k/v with one matmul, cross-attention k/v with one; bias+GELU ride in
the matmul epilogues (conv stem included). Decoding keeps everything on the device and every step at one
shape: per layer a preallocated (B, max_len, 2C) key/value buffer that a step writes at the position held
in a small int32 position tensor (``ops.update_slice_``), attention that reads the key count from the same
tensor (``kv_start``), position embeddings gathered from it; the cross-attention K/V projected once per
batch of audio, the suppress-token mask folded into the logits matmul as its bias, and argmax on the
device, so a step reads back only the chosen token ids. Because positions are data, not shapes, one
captured plan replays every decoding step (``whisper_decoding.py``: ``generate``, suppressed tokens,
timestamps, language detection, ``transcribe``, and the per-batch-size plans).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import nn, ops
from ..errors import ConfigError, InputError
from ..tensor.dtype import int32
from ..tensor.tensor import Tensor
from .config import ACTIVATIONS, Config, check_activation, positive
from .model import PreTrainedModel
from .outputs import ModelOutput
from .whisper_decoding import (
    SUPPRESS_FIELDS,
    TOKEN_FIELDS,
    WhisperGenerationConfig,
    WhisperGenerationMixin,
    check_token_ids,
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
        check_token_ids(
            self.vocab_size, {k: getattr(self, k) for k in TOKEN_FIELDS if k not in SUPPRESS_FIELDS}
        )
        # suppressed ids outside the vocabulary are dropped (with a warning) by the generation config
        check_token_ids(None, {k: getattr(self, k) for k in SUPPRESS_FIELDS})

    @property
    def input_frames(self) -> int:
        """The mel frames the encoder takes: conv2 halves them down to max_source_positions."""
        return 2 * self.max_source_positions


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

    def fuse_weights(self, fuse: nn.Fuse) -> None:
        """Self-attention: one (3C, C) q/k/v matmul; cross-attention: q from the decoder, one (2C, C) k/v matmul."""
        linears = (self.k_proj, self.v_proj) if self.cross else (self.q_proj, self.k_proj, self.v_proj)
        self.fused_weight, self.fused_bias = fuse(*linears)

    def project(self, x: Tensor) -> Tensor:
        """Cross-attention keys and values of the encoder output x (B, S, C), side by side: (B, S, 2C)."""
        return ops.linear(x, self.fused_weight, self.fused_bias)

    def project_kv(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Cross-attention keys and values of the encoder output x (B, S, C) -> two (B, H, S, D) views."""
        c = x.shape[-1]
        kv = self.project(x)  # (B, S, 2C)
        return nn.split_heads(kv[..., :c], self.num_heads), nn.split_heads(kv[..., c:], self.num_heads)

    def __call__(
        self,
        x: Tensor,
        kv: tuple[Tensor, Tensor] | None = None,
        cache=None,
        positions: Tensor | None = None,
        causal: bool = False,
        residual: Tensor | None = None,
    ) -> Tensor:
        """x (B, T, C) -> (B, T, C). Self-attention projects q/k/v from x; with ``cache`` (a (B, L, 2C) buffer:
        keys then values, position by position) the new keys/values are written (one dispatch) at the
        position ``positions`` (int32 (T,), read on the device) starts at, and the keys up to the last of
        them are attended: the shapes are the same at every step. Cross-attention takes ``kv`` from
        project_kv. ``residual`` is added in out_proj's epilogue."""
        b, t, c = x.shape
        h = self.num_heads
        start = None
        if self.cross:
            q = nn.split_heads(self.q_proj(x), h)  # (B, H, T, D)
            k, v = kv  # (B, H, S, D) each, projected once per batch of audio
        else:
            qkv = ops.linear(x, self.fused_weight, self.fused_bias)  # (B, T, 3C)
            q, k, v = (
                nn.split_heads(qkv[..., i * c : (i + 1) * c], h) for i in range(3)
            )  # (B, H, T, D) each
            if cache is not None:  # write this step's keys/values at its positions; attend the filled prefix
                ops.update_slice_(cache, qkv[..., c:], positions, axis=1)  # (B, T, 2C) into (B, L, 2C)
                k, v = nn.split_heads(cache[..., :c], h), nn.split_heads(cache[..., c:], h)  # (B, H, L, D)
                start = positions if cache.shape[1] != t else None  # (a step filling it all starts at 0)
        # per head: softmax(q k^T / sqrt(D) (+ causal mask)) v, written straight into (B, T, H, D)
        out = Tensor.empty((b, t, h, c // h), x.dtype, x.device)
        ops.scaled_dot_product_attention(
            q, k, v, is_causal=causal, out=out.permute(0, 2, 1, 3), kv_start=start
        )
        return self.out_proj(out.reshape(b, t, c), residual=residual)  # (B, T, C)


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
        x = self.self_attn(self.self_attn_layer_norm(x), residual=x)  # (B, S, C)
        h = self.fc1(self.final_layer_norm(x), activation=self.activation)  # (B, S, ffn), bias + GELU fused
        return self.fc2(h, residual=x)  # (B, S, C), + x in the matmul epilogue


class WhisperEncoder(nn.Module):
    """Log-mel features (B, n_mels, 2*S) -> two GELU convs (the second strides 2) -> + positions -> layers -> LN."""

    def __init__(self, config: WhisperConfig) -> None:
        super().__init__()
        d = config.d_model
        self.conv1 = nn.Conv1d(config.num_mel_bins, d, 3, padding=1)
        self.conv2 = nn.Conv1d(d, d, 3, stride=2, padding=1)
        self.embed_positions = nn.Embedding(config.max_source_positions, d)
        self.layers = nn.ModuleList(WhisperEncoderLayer(config) for _ in range(config.encoder_layers))
        self.layer_norm = nn.LayerNorm(d)

    def __call__(self, features: Tensor) -> Tensor:
        x = self.conv1(features, activation="gelu")  # (B, C, 2S), a view of (B, 2S, C)
        x = self.conv2(x, activation="gelu")  # (B, C, S)
        x = ops.add(x.permute(0, 2, 1), self.embed_positions.weight)  # (B, S, C)
        for layer in self.layers:
            x = layer(x)  # (B, S, C)
        return self.layer_norm(x)  # (B, S, C)


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

    def __call__(self, x: Tensor, cross_kv, cache, positions: Tensor) -> Tensor:
        x = self.self_attn(
            self.self_attn_layer_norm(x), cache=cache, positions=positions, causal=True, residual=x
        )  # (B, T, C)
        x = self.encoder_attn(
            self.encoder_attn_layer_norm(x), kv=cross_kv, residual=x
        )  # (B, T, C), attends (B, S, C)
        h = self.fc1(self.final_layer_norm(x), activation=self.activation)  # (B, T, ffn), bias + GELU fused
        return self.fc2(h, residual=x)  # (B, T, C)


class WhisperDecoder(nn.Module):
    """Token + position embeddings -> layers -> LN, at the positions given as data (int32 (T,) on the device)."""

    def __init__(self, config: WhisperConfig) -> None:
        super().__init__()
        d = config.d_model
        self.embed_tokens = nn.Embedding(config.vocab_size, d)
        self.embed_positions = nn.Embedding(config.max_target_positions, d)
        self.layers = nn.ModuleList(WhisperDecoderLayer(config) for _ in range(config.decoder_layers))
        self.layer_norm = nn.LayerNorm(d)

    def __call__(self, ids: Tensor, positions: Tensor, cache: WhisperCache) -> Tensor:
        """ids (B, T) int32 at positions (T,) int32 (consecutive) -> (B, T, C); keys/values go into the cache.

        Nothing here depends on the values of ids or positions on the host, so the dispatches are the
        same at every step: a captured plan replays for all of them.
        """
        x = ops.add(self.embed_tokens(ids), self.embed_positions(positions))  # (B, T, C) + (T, C)
        for layer, cross_kv, self_kv in zip(self.layers, cache.cross_kv, cache.self_kv):
            x = layer(x, cross_kv, self_kv, positions)  # (B, T, C)
        return self.layer_norm(x)  # (B, T, C)


class WhisperModel(nn.Module):
    def __init__(self, config: WhisperConfig) -> None:
        super().__init__()
        self.encoder = WhisperEncoder(config)
        self.decoder = WhisperDecoder(config)


class WhisperCache:
    """Decoder state that stays on the device for one batch of encoder outputs, in buffers of fixed size.

    ``self_kv``: per layer a (B, max_length, 2C) buffer, keys then values; a step writes its keys/values at
    the positions of its position tensor (``ops.update_slice_``) and attention reads from the same tensor
    how many keys exist, so every step has the same shapes. ``cross_kv``: per layer the cross-attention
    (key, value) (B, H, S, D) views of one (B, S, 2C) buffer, which ``project`` fills from encoder
    outputs (a cache is reused across batches of audio of one shape). ``length`` is how many positions
    are filled (host bookkeeping: the next step's positions and the bounds checks).
    """

    def __init__(self, decoder: WhisperDecoder, source_shape: tuple, max_length: int, dtype, device) -> None:
        b, s, c = source_shape  # of the encoder output (B, S, C)
        self.decoder, self.length, self.max_length = decoder, 0, max_length
        self.source_shape = (b, s, c)
        self.cross, self.cross_kv, self.self_kv = [], [], []
        for layer in decoder.layers:
            h = layer.self_attn.num_heads
            kv = Tensor.empty((b, s, 2 * c), dtype, device)  # (B, S, 2C)
            self.cross.append(kv)
            self.cross_kv.append((nn.split_heads(kv[..., :c], h), nn.split_heads(kv[..., c:], h)))
            self.self_kv.append(Tensor.empty((b, max_length, 2 * c), dtype, device))

    def project(self, encoder_hidden_states: Tensor) -> None:
        """Write the cross-attention keys/values of encoder outputs (B, S, C) into the cache (device work only)."""
        for layer, kv in zip(self.decoder.layers, self.cross):
            ops.copy_(kv, layer.encoder_attn.project(encoder_hidden_states))

    def fill(self, encoder_hidden_states: Tensor) -> WhisperCache:
        """``project`` new encoder outputs and empty the cache (length 0)."""
        self.project(encoder_hidden_states)
        self.length = 0
        return self

    @property
    def batch_size(self) -> int:
        return self.source_shape[0]

    @property
    def nbytes(self) -> int:
        """Device bytes the cache's buffers hold."""
        return sum(t.nbytes for t in self.cross + self.self_kv)

    def positions(self, t: int) -> np.ndarray:
        """The int32 positions (t,) of the next t tokens."""
        return np.arange(self.length, self.length + t, dtype=np.int32)


# ------------------------------------------------------------------------------------ the model


class WhisperForConditionalGeneration(WhisperGenerationMixin, PreTrainedModel):
    """Whisper: ``(input_features, decoder_input_ids) -> logits, encoder_last_hidden_state``.

    ``generate``, ``detect_language`` and ``transcribe`` come from WhisperGenerationMixin (whisper_decoding.py).
    """

    config_class = WhisperConfig
    base_model_prefix = "model"

    def __init__(self, config: WhisperConfig) -> None:
        super().__init__(config)
        self.model = WhisperModel(config)
        self.proj_out = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.tied_weights = (
            {"proj_out.weight": "model.decoder.embed_tokens.weight"} if config.tie_word_embeddings else {}
        )
        # from_checkpoint replaces this with generation_config.json's, and warns about it then
        self.generation_config = WhisperGenerationConfig.for_model(None, config, "config.json", warn=False)

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

    def _features_input(self, input_features, *, upload: bool = True):
        """Features as a Tensor (``upload=False``: host features stay a host array); host features are
        checked for NaN and infinities here (they would decode to confident nonsense), a device Tensor
        when ``generate`` reads its encoder output."""
        cfg = self.config
        if not isinstance(input_features, Tensor):
            input_features = self._host_input(input_features, "input_features")
            if input_features.dtype.kind == "f" and not np.isfinite(input_features).all():
                bad = int(np.size(input_features) - np.count_nonzero(np.isfinite(input_features)))
                raise InputError(f"input_features hold {bad} NaN or infinite values; features must be finite")
        shape = tuple(input_features.shape)
        if len(shape) != 3 or shape[1:] != (cfg.num_mel_bins, cfg.input_frames) or shape[0] == 0:
            raise InputError(
                f"input_features must have shape (batch, {cfg.num_mel_bins}, {cfg.input_frames}): num_mel_bins and "
                f"2 * max_source_positions frames (pad shorter audio as the feature extractor does), got {tuple(shape)}"
            )
        return self._tensor_input(input_features, "input_features", self.compute_dtype, upload=upload)

    def _encoder_input(self, input_features, encoder_hidden_states) -> Tensor:
        """The encoder output: given (checked to be (B, max_source_positions, d_model)), or computed from features."""
        if encoder_hidden_states is None:
            if input_features is None:
                raise InputError("pass input_features (B, num_mel_bins, frames) or encoder_hidden_states")
            return self.encode(input_features)
        cfg = self.config
        if not isinstance(encoder_hidden_states, Tensor):
            encoder_hidden_states = self._host_input(encoder_hidden_states, "encoder_hidden_states")
        shape = tuple(encoder_hidden_states.shape)
        if len(shape) != 3 or shape[1:] != (cfg.max_source_positions, cfg.d_model) or shape[0] == 0:
            raise InputError(
                f"encoder_hidden_states must have shape (batch, {cfg.max_source_positions}, {cfg.d_model}), got {shape}"
            )
        return self._tensor_input(encoder_hidden_states, "encoder_hidden_states", self.compute_dtype)

    # ------------------------------------------------------------------ forward
    def encode(self, input_features) -> Tensor:
        """Encoder output (B, max_source_positions, d_model) for features (B, num_mel_bins, 2*max_source_positions)."""
        features = self._features_input(input_features, upload=False)
        return self.run_compiled(WhisperForConditionalGeneration._encode, features)

    def _encode(self, features: Tensor) -> Tensor:
        return self.model.encoder(features)  # (B, max_source_positions, d_model)

    def new_cache(self, encoder_hidden_states: Tensor, max_length: int | None = None) -> WhisperCache:
        """An empty decoder cache for these encoder outputs, room for ``max_length`` (default max_target_positions) tokens."""
        limit = self.config.max_target_positions
        max_length = limit if max_length is None else int(max_length)
        if not 0 < max_length <= limit:
            raise InputError(
                f"cache max_length must be in [1, {limit}] (max_target_positions), got {max_length}"
            )
        enc = encoder_hidden_states
        cache = WhisperCache(self.model.decoder, enc.shape, max_length, enc.dtype, enc.device)
        return cache.fill(enc)

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
        positions = Tensor.from_numpy(cache.positions(shape[1]), int32, self.device)
        logits = self.decode_step(ids, positions, cache, last_only=last_only, logits_bias=logits_bias)
        cache.length += shape[1]
        return logits

    def decode_step(
        self,
        ids: Tensor,
        positions: Tensor,
        cache: WhisperCache,
        *,
        last_only: bool = False,
        logits_bias=None,
    ) -> Tensor:
        """The device part of ``decode``: ids (B, T) and positions (T,) int32 Tensors -> logits; no host reads,
        no checks (``decode`` does them), and the same dispatches whatever the values: what a plan captures."""
        h = self.model.decoder(ids, positions, cache)  # (B, T, C)
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
        ids, shape = self._ids_input(
            decoder_input_ids, "decoder_input_ids", self.config.vocab_size, upload=False
        )
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
        logits = self.run_compiled(WhisperForConditionalGeneration._forward, ids, encoder_hidden_states)
        return ModelOutput(logits=logits, encoder_last_hidden_state=encoder_hidden_states)

    def _forward(self, ids: Tensor, encoder_hidden_states: Tensor) -> Tensor:
        """The decoder over ids (B, T) from position 0 with a cache of exactly T positions -> logits (B, T, V)."""
        t = ids.shape[1]
        cache = self.new_cache(encoder_hidden_states, t)
        positions = Tensor.from_numpy(np.arange(t, dtype=np.int32), int32, self.device)  # a plan constant
        return self.decode_step(ids, positions, cache)


__all__ = ["WhisperCache", "WhisperConfig", "WhisperForConditionalGeneration", "WhisperGenerationConfig"]
