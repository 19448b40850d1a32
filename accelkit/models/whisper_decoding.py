"""Whisper decoding: the generation config, greedy ``generate``, suppressed tokens, timestamps, language detection, ``transcribe``.

``WhisperGenerationMixin`` gives the model (``whisper.py``) its decoding methods. Greedy decoding matches
transformers' ``generate``: the prompt is <|startoftranscript|>, the language (detected from the
first step when not given), the task and <|notimestamps|>; ``suppress_tokens`` are masked every step
(the mask rides in the logits matmul as its bias) and ``begin_suppress_tokens`` on the first one;
argmax runs on the device, so a step reads back only the chosen ids (the timestamp rules, which
need the probabilities, read back one (B, vocab) row per step).

Generation runs on compiled plans (``graph``): per batch size the model keeps a ``GenerationState``, a
``WhisperCache`` of max_target_positions positions and three compiled calls over it: ``encode``
(encoder + cross-attention K/V projection into the cache: one plan), ``fill`` (the projection alone,
for given encoder outputs) and ``step`` (one decoder step: token ids and positions in, chosen ids or
logits out). A step's position is data (an int32 tensor the KV-cache write, the attention key count and
the position embedding read on the device), not a shape, so every token of every ``generate`` of that
batch size replays one step plan; the prompt step and language detection have one each (other
shapes). Per token only the ids and positions are uploaded, one pass is submitted and B ids read back.
``ak.options(compile=False)`` runs the same calls eagerly (same kernels, same tokens).
"""

from __future__ import annotations

import dataclasses
import threading
import warnings
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np

from .. import ops
from ..errors import ConfigError, InputError
from ..graph import compile as compile_calls
from ..tensor.tensor import Tensor
from .config import Config

if TYPE_CHECKING:
    from .whisper import WhisperConfig

#: generation states (one per batch size) a model keeps, least recently used dropped first
MAX_GENERATION_STATES = 4


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
        cls, generation: dict | None, config: WhisperConfig, source: str, warn: bool = True
    ) -> WhisperGenerationConfig:
        """generation_config.json over the generation fields of config.json (what transformers falls back to).

        Suppressed token ids outside the vocabulary are dropped, with a warning when ``warn``.
        """
        base = {k: getattr(config, k) for k in TOKEN_FIELDS}
        base.update({k: v for k, v in config.extra.items() if k in ("forced_decoder_ids", "max_length")})
        gen = cls.from_dict(
            {**base, **{k: v for k, v in (generation or {}).items() if v is not None}}, source=source
        )
        gen.drop_suppressed_outside(config.vocab_size, source, warn)
        fields = {k: getattr(gen, k) for k in TOKEN_FIELDS}
        fields.update(
            lang_to_id=list((gen.lang_to_id or {}).values()), task_to_id=list((gen.task_to_id or {}).values())
        )
        try:
            check_token_ids(config.vocab_size, fields)
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None
        return gen

    def drop_suppressed_outside(self, vocab_size: int, source: str, warn: bool = True) -> None:
        """Ignore suppressed token ids outside [0, vocab_size), with one warning (when ``warn``).

        transformers' default config suppresses ids of the full Whisper vocabulary (e.g. 50256), which a
        small vocabulary lacks; suppressing a token that cannot be produced changes nothing.
        """
        dropped = {}
        for name in SUPPRESS_FIELDS:
            ids = getattr(self, name)
            if ids is None:
                continue
            check_token_ids(None, {name: ids})  # integers, whatever their range
            outside = [v for v in _ids(ids) if not 0 <= v < vocab_size]
            if outside:
                dropped[name] = outside
                setattr(self, name, [v for v in _ids(ids) if 0 <= v < vocab_size])
        if dropped and warn:
            said = "; ".join(
                f"{name} {ids[:5]}{' ...' if len(ids) > 5 else ''}" for name, ids in dropped.items()
            )
            warnings.warn(
                f"{source}: ignoring suppressed token ids outside the vocabulary [0, {vocab_size}): {said}",
                UserWarning,
                stacklevel=4,  # the load call (load -> from_checkpoint -> for_model -> here)
            )

    @property
    def eos_ids(self) -> list[int]:
        return _ids(self.eos_token_id)

    @property
    def pad_id(self) -> int:
        return self.pad_token_id if self.pad_token_id is not None else self.eos_ids[0]


#: the token-id fields config.json and generation_config.json share, checked to lie in [0, vocab_size)
TOKEN_FIELDS = (
    "decoder_start_token_id",
    "eos_token_id",
    "pad_token_id",
    "suppress_tokens",
    "begin_suppress_tokens",
)


def _ids(value) -> list:
    return [] if value is None else (list(value) if isinstance(value, (list, tuple)) else [value])


#: suppressed-token lists: ids outside the vocabulary there are ignored (with a warning), not an error
SUPPRESS_FIELDS = ("suppress_tokens", "begin_suppress_tokens")


def check_token_ids(vocab_size: int | None, fields: dict) -> None:
    """Raise ConfigError naming the first field whose token id(s) are not integers in [0, vocab_size)
    (any integer when ``vocab_size`` is None)."""
    for name, value in fields.items():
        bad = [
            v
            for v in _ids(value)
            if isinstance(v, bool)
            or not isinstance(v, int)
            or (vocab_size is not None and not 0 <= v < vocab_size)
        ]
        if bad:
            expected = "integers" if vocab_size is None else f"integers in [0, {vocab_size})"
            raise ConfigError(f"field {name!r}: token ids must be {expected}, got {bad[:5]}")


# ------------------------------------------------------------------------------------ greedy decoding


def _check_finite(enc: Tensor) -> None:
    """InputError when device-side audio (features or an encoder output given as a Tensor) holds NaN or infinities."""
    total = float(ops.sum(ops.cast(enc, "float32")).numpy())
    if not np.isfinite(total):
        raise InputError(
            "the audio input (input_features or encoder_hidden_states) holds NaN or infinite values; "
            "decoding it would give meaningless tokens"
        )


class WhisperGenerationMixin:
    """Decoding methods of WhisperForConditionalGeneration (they call its ``decode``, ``new_cache``, ``encode``)."""

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
        want = "ids" if timestamps is None else "logits"
        with self.prepare_generation(input_features, encoder_hidden_states=encoder_hidden_states) as state:
            b = state.cache.batch_size
            ids, languages = np.empty((b, 0), dtype=np.int64), [None] * b
            if None in prompt:  # language detection: the first step from <|startoftranscript|> alone
                languages = state.step(np.full((b, 1), prompt[0]), "language")
                ids = np.full((b, 1), prompt[0], dtype=np.int64)
                prompt = prompt[1:]
            rest = np.array(
                [[languages[i] if t is None else t for t in prompt] for i in range(b)], dtype=np.int64
            )
            ids = np.concatenate([ids, rest], axis=1)
            if max_new_tokens == 0:
                return ids
            step_ids, finished, bias = rest, np.zeros(b, dtype=bool), "first"
            eos, pad = gen.eos_ids, gen.pad_id
            for _ in range(max_new_tokens):
                out = state.step(step_ids, bias, want)
                # the timestamp rules read the probabilities: one (B, vocab) row per step comes back
                tokens = out if timestamps is None else timestamps(ids, out)
                tokens = np.where(finished, pad, tokens)
                ids = np.concatenate([ids, tokens[:, None]], axis=1)
                finished |= np.isin(tokens, eos)
                if finished.all():
                    break
                step_ids, bias = tokens[:, None], "every"
        return ids

    def prepare_generation(self, input_features=None, *, encoder_hidden_states=None) -> GenerationState:
        """The GenerationState for this batch size, its cache filled from the audio (checked first) and empty
        of tokens, locked until its ``with`` block ends: ``state.step(ids, "every")`` decodes one step.

        ``generate`` uses it; it is public for step-level use and measurement (``accelkit bench models``).
        """
        if encoder_hidden_states is None:
            if input_features is None:
                raise InputError("pass input_features (B, num_mel_bins, frames) or encoder_hidden_states")
            audio = self._features_input(input_features, upload=False)  # one write into the plan's input
        else:
            audio = self._encoder_input(None, encoder_hidden_states)
        if encoder_hidden_states is not None or isinstance(input_features, Tensor):
            _check_finite(audio)  # host features were checked on the host; a device input costs one reduction
        state = self._generation_state(audio.shape[0])
        state.enable(self.compile)
        try:
            (state.encode if encoder_hidden_states is None else state.fill)(audio)
        except BaseException:
            state.lock.release()
            raise
        state.cache.length = 0
        self._last_compiled = state.run  # the model's repr and last_call tell how the decoding steps ran
        return state

    def _generation_state(self, batch_size: int) -> GenerationState:
        """This batch size's GenerationState, locked for the caller (a fresh one while another thread holds it)."""
        with _STATES_LOCK:
            states = self.__dict__.get("_generation_states")
            if states is None:
                states = OrderedDict()
                object.__setattr__(self, "_generation_states", states)
            state = states.get(batch_size)
            if state is None or state.device is not self.device:
                state = states[batch_size] = GenerationState(self, batch_size)
                while len(states) > MAX_GENERATION_STATES:
                    states.popitem(last=False)
            states.move_to_end(batch_size)
        if state.lock.acquire(blocking=False):
            return state
        state = GenerationState(self, batch_size)  # a concurrent generate: its own buffers and plans
        state.lock.acquire()
        return state

    @property
    def generation_states(self) -> list[GenerationState]:
        """The generation states this model keeps (one per batch size, least recently used first)."""
        with _STATES_LOCK:
            return list((self.__dict__.get("_generation_states") or {}).values())

    @property
    def plans(self) -> list:
        """Every plan of this model: its forwards' and its generation states' (``GenerationState.calls``)."""
        extra = [e for state in self.generation_states for c in state.calls.values() for e in c.plans]
        return super().plans + extra

    def free(self) -> None:
        """Give the device buffers of every plan back now, the generation states' caches too."""
        super().free()
        self.free_generation_states()

    def free_generation_states(self) -> None:
        """Drop the generation states: their plans now, their caches' buffers once no generate holds them."""
        with _STATES_LOCK:
            states = self.__dict__.get("_generation_states") or {}
            for state in states.values():
                state.free()
                if self.__dict__.get("_last_compiled") in state.calls.values():
                    self._last_compiled = None  # (it would keep the cache's buffers alive)
            states.clear()

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

    def _logits_bias(self, name: str | None) -> Tensor | None:
        """The additive (vocab,) mask a step adds to its logits: "first" (suppress + begin_suppress tokens),
        "every" (suppress tokens), "language" (all but the language tokens), or None."""
        if name is None:
            return None
        if name == "language":
            return self._language_mask()
        every, first = self._suppress_masks()
        return {"first": first, "every": every}[name]

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
        with self.prepare_generation(input_features, encoder_hidden_states=encoder_hidden_states) as state:
            b = state.cache.batch_size
            tokens = state.step(np.full((b, 1), gen.decoder_start_token_id), "language")
        names = {v: k for k, v in gen.lang_to_id.items()}
        return [names[int(t)] for t in tokens]

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
        into windows, which are decoded in batches of ``batch_size`` and their texts joined. A model
        with random weights (a bundled test checkpoint) warns, once, that its text means nothing.
        """
        from ..preprocess import chunk_audio, resample, to_mono_float32

        if self.random_weights and not self.__dict__.get("_warned_random"):
            object.__setattr__(self, "_warned_random", True)  # once per model
            warnings.warn(
                f"transcribe: {self.checkpoint.name} is a bundled test checkpoint with random weights, so its "
                "transcript is meaningless; for real speech recognition load a trained model, e.g. "
                "ak.load('hf:openai/whisper-tiny')",
                UserWarning,
                stacklevel=2,
            )
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


_STATES_LOCK = threading.Lock()


class GenerationState:
    """One batch size's decoding state: a WhisperCache of max_target_positions and compiled calls over it.

    ``encode(features)``: encoder + cross-attention K/V into the cache; ``fill(encoder_hidden_states)``:
    the K/V alone; ``run(ids, positions, bias, want)``: one decoder step (``step`` wraps it with the
    cache's bookkeeping), returning the chosen ids (argmax on the device) or the last position's logits.
    Each is an ``ak.compile``d callable (``.plans``, ``.captures``, ``.replayed``) whose plans bind the
    cache's buffers as state, so they replay into the same cache. The calls hold the model weakly (a
    model's states must not keep it alive). Use it locked (``with state:``).
    """

    def __init__(self, model, batch_size: int) -> None:
        from .. import nn
        from .whisper import WhisperCache

        cfg = model.config
        self.device = model.device
        self.lock = threading.Lock()
        source = (batch_size, cfg.max_source_positions, cfg.d_model)
        cache = self.cache = WhisperCache(
            model.model.decoder, source, cfg.max_target_positions, model.compute_dtype, model.device
        )
        ref = weakref.ref(model)

        # the captured functions: device work only (no host reads, no host state)
        def encode(features: Tensor) -> None:
            cache.project(ref().model.encoder(features))

        def fill(encoder_hidden_states: Tensor) -> None:
            cache.project(encoder_hidden_states)

        def step(ids: Tensor, positions: Tensor, bias: str | None, want: str) -> Tensor:
            m = ref()
            logits = m.decode_step(ids, positions, cache, last_only=True, logits_bias=m._logits_bias(bias))
            return ops.argmax(logits, axis=-1) if want == "ids" else logits  # (B, 1) or (B, 1, V)

        options = {"device": model.device, "version": nn.weights_version}
        self.encode, self.fill, self.run = (compile_calls(f, **options) for f in (encode, fill, step))
        self.enable(model.compile)

    def enable(self, on: bool) -> None:
        """Whether the calls replay (the model's ``compile`` flag; ``ak.options(compile=False)`` also stops them)."""
        for c in self.calls.values():
            c.enabled = on

    def step(self, ids: np.ndarray, bias: str | None, want: str = "ids") -> np.ndarray:
        """Decode ids (B, T) at the next T positions: the chosen ids (B,) int64, or logits (B, vocab)."""
        cache = self.cache
        t = ids.shape[1]
        if cache.length + t > cache.max_length:
            raise InputError(
                f"{cache.length} cached + {t} new tokens exceed max_target_positions {cache.max_length}"
            )
        out = self.run(np.ascontiguousarray(ids, dtype=np.int32), cache.positions(t), bias, want)
        cache.length += t
        if want == "ids":
            return out.numpy().reshape(-1).astype(np.int64)
        return out.numpy()[:, 0]

    @property
    def calls(self) -> dict:
        """The compiled calls by name."""
        return {"encode": self.encode, "fill": self.fill, "step": self.run}

    def free(self) -> None:
        """Drop every plan now."""
        for c in self.calls.values():
            c.free()

    def __enter__(self) -> GenerationState:
        return self

    def __exit__(self, *exc) -> None:
        self.lock.release()

    def __repr__(self) -> str:
        plans = ", ".join(f"{name} {len(c.plans)}" for name, c in self.calls.items())
        return f"<GenerationState batch {self.cache.batch_size}: plans {plans}; last step: {self.run.last}>"


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


__all__ = [
    "SUPPRESS_FIELDS",
    "TOKEN_FIELDS",
    "WhisperGenerationConfig",
    "WhisperGenerationMixin",
    "check_token_ids",
]
