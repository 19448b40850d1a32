"""Text tokenization from a checkpoint's tokenizer.json, giving numpy arrays as transformers does.

`TextTokenizer` wraps the `tokenizers` library and reads `tokenizer_config.json` and
`special_tokens_map.json` beside the tokenizer.json for what transformers keeps there
(model_max_length, the pad token, clean_up_tokenization_spaces). `encode` pads on the right to
the longest text and truncates to model_max_length ("longest_first" for pairs), so its arrays
equal `AutoTokenizer.from_pretrained(dir)(texts, padding=True, truncation=True, return_tensors="np")`.

Example::

    tokenizer = TextTokenizer.from_dir("bert-checkpoint/")
    batch = tokenizer.encode(["a short text", "and a second, longer one"])
    batch["input_ids"].shape  # (2, T) int64, with attention_mask and token_type_ids alike
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from accelkit.errors import ConfigError, InputError, WeightsError
from accelkit.io import read_json

TextInput = str | Sequence[str] | Sequence[tuple[str, str]]

# transformers' stand-in for "no limit" is int(1e30); anything this large means no truncation
_NO_LIMIT = int(1e20)
_SPECIAL_TOKEN_KEYS = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
)


def _token_content(value: Any) -> str | None:
    """A special token as configs store it: a string or an AddedToken dict {"content": ...}."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


class TextTokenizer:
    """A `tokenizers.Tokenizer` plus the settings transformers keeps beside it.

    Build it with `from_dir` / `from_file`; `encode` gives int64 numpy arrays `input_ids`,
    `attention_mask` and `token_type_ids`, (B, T) each; `decode` turns ids back into text.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        *,
        model_max_length: int | None = None,
        pad_token: str | None = None,
        special_tokens: dict[str, str] | None = None,
        clean_up_tokenization_spaces: bool = False,
        source: str | None = None,
    ):
        self._tokenizer = tokenizer
        self._lock = threading.Lock()  # encode sets truncation/padding on the shared Rust object
        self.model_max_length = (
            int(model_max_length) if model_max_length is not None and model_max_length < _NO_LIMIT else None
        )
        self.special_tokens = dict(special_tokens or {})
        self.pad_token = pad_token
        self.pad_token_id = tokenizer.token_to_id(pad_token) if pad_token is not None else None
        self.clean_up_tokenization_spaces = bool(clean_up_tokenization_spaces)
        self.source = source

    @classmethod
    def from_file(cls, path: str | Path) -> TextTokenizer:
        """Load a tokenizer.json; tokenizer_config.json / special_tokens_map.json beside it are read too."""
        file = Path(path)
        if not file.is_file():
            raise WeightsError(f"tokenizer: no tokenizer file at {file}")
        try:
            tokenizer = Tokenizer.from_file(str(file))
        except Exception as exc:  # the Rust side raises plain Exception for any malformed file
            raise WeightsError(f"tokenizer: cannot load {file}: {exc}") from exc

        config_file = file.parent / "tokenizer_config.json"
        config = read_json(config_file) if config_file.is_file() else {}
        map_file = file.parent / "special_tokens_map.json"
        special_map = read_json(map_file) if map_file.is_file() else {}

        # transformers: special_tokens_map.json overrides tokenizer_config.json only for old
        # configs (those without added_tokens_decoder); otherwise it only fills gaps
        sources = [special_map, config] if "added_tokens_decoder" not in config else [config, special_map]
        special_tokens = {}
        for key in _SPECIAL_TOKEN_KEYS:
            for source in sources:
                token = _token_content(source.get(key))
                if token is not None:
                    special_tokens[key] = token
                    break

        pad_token = special_tokens.get("pad_token")
        if pad_token is None and tokenizer.padding is not None:
            pad_token = tokenizer.padding.get("pad_token")
        if pad_token is None and tokenizer.token_to_id("[PAD]") is not None:
            pad_token = "[PAD]"  # BERT's default, which transformers' BertTokenizer assumes
        if pad_token is not None and tokenizer.token_to_id(pad_token) is None:
            raise ConfigError(
                f"tokenizer: pad token {pad_token!r} from {file.parent} is not in the vocabulary"
            )

        model_max_length = config.get("model_max_length")
        if model_max_length is not None and (
            isinstance(model_max_length, bool)
            or not isinstance(model_max_length, (int, float))
            or model_max_length <= 0
        ):
            raise ConfigError(
                f"tokenizer: model_max_length in {config_file} must be a positive int, got {model_max_length!r}"
            )
        return cls(
            tokenizer,
            model_max_length=None if model_max_length is None else int(model_max_length),
            pad_token=pad_token,
            special_tokens=special_tokens,
            clean_up_tokenization_spaces=bool(config.get("clean_up_tokenization_spaces", False)),
            source=str(file),
        )

    @classmethod
    def from_dir(cls, path: str | Path) -> TextTokenizer:
        """Load `path/tokenizer.json` with the config files beside it."""
        return cls.from_file(Path(path) / "tokenizer.json")

    # --- encoding ------------------------------------------------------------------------------
    def encode(
        self,
        texts: TextInput,
        max_length: int | None = None,
        padding: bool | str = True,
        truncation: bool = True,
        add_special_tokens: bool = True,
        warn_truncation: str | None = None,
    ) -> dict[str, np.ndarray]:
        """Tokenize a text, a list of texts or a list of (text, text_pair) tuples.

        padding: True / "longest" pads to the longest in the batch, "max_length" to max_length
        (or model_max_length), False leaves lengths alone (they must then agree). truncation
        cuts to max_length, else model_max_length ("longest_first" for pairs). Returns int64
        arrays (B, T): input_ids, attention_mask, token_type_ids. A single str gives B = 1.
        ``warn_truncation="who"`` warns (naming ``who``) when truncation cut any text short.

        >>> tokenizer.encode([("who?", "the cat")])["token_type_ids"]   # doctest: +SKIP
        array([[0, 0, 0, 0, 1, 1, 1]])
        """
        batch = self._as_batch(texts)
        if max_length is not None and (
            isinstance(max_length, bool) or not isinstance(max_length, int) or max_length <= 0
        ):
            raise InputError(f"tokenizer: max_length must be a positive int, got {max_length!r}")
        if padding not in (True, False, "longest", "max_length", "do_not_pad"):
            raise InputError(
                f"tokenizer: padding must be True, False, 'longest' or 'max_length', got {padding!r}"
            )
        limit = max_length if max_length is not None else self.model_max_length
        pad_to_max = padding == "max_length"
        if pad_to_max and limit is None:
            raise InputError(
                "tokenizer: padding='max_length' needs max_length (this tokenizer has no model_max_length)"
            )
        do_pad = padding in (True, "longest", "max_length")
        if do_pad and self.pad_token_id is None and len(batch) > 1:
            raise InputError("tokenizer: cannot pad, this tokenizer has no pad token (pass padding=False)")

        with self._lock:
            if truncation and limit is not None:
                self._tokenizer.enable_truncation(
                    limit, stride=0, strategy="longest_first", direction="right"
                )
            else:
                self._tokenizer.no_truncation()
            if do_pad and self.pad_token_id is not None:
                self._tokenizer.enable_padding(
                    direction="right",
                    pad_id=self.pad_token_id,
                    pad_type_id=0,
                    pad_token=self.pad_token,
                    length=limit if pad_to_max else None,
                )
            else:
                self._tokenizer.no_padding()
            try:
                encodings = self._tokenizer.encode_batch(batch, add_special_tokens=add_special_tokens)
            except Exception as exc:  # e.g. max_length shorter than the special tokens it must keep
                raise InputError(f"tokenizer: cannot encode with max_length={limit}: {exc}") from exc

        cut = sum(1 for e in encodings if e.overflowing)
        if cut and warn_truncation:
            warnings.warn(
                f"{warn_truncation}: {cut} of {len(encodings)} texts were longer than {limit} tokens and were "
                f"truncated; their results cover only the first {limit} tokens",
                UserWarning,
                stacklevel=4,  # the line that called the model method (bert.embed -> encode -> here)
            )
        lengths = {len(e.ids) for e in encodings}
        if len(lengths) > 1:
            raise InputError(f"tokenizer: texts have different lengths {sorted(lengths)}; pass padding=True")
        return {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }

    __call__ = encode

    @staticmethod
    def _as_batch(texts: TextInput) -> list[str] | list[tuple[str, str]]:
        if isinstance(texts, str):
            return [texts]
        if not isinstance(texts, (list, tuple)) or not texts:
            raise InputError(
                f"tokenizer: expected a str, a list of str or a list of (str, str), got {texts!r:.80}"
            )
        if all(isinstance(t, str) for t in texts):
            TextTokenizer._check_unicode(texts)
            return list(texts)
        if all(
            isinstance(t, (list, tuple)) and len(t) == 2 and all(isinstance(s, str) for s in t) for t in texts
        ):
            TextTokenizer._check_unicode([s for pair in texts for s in pair])
            return [tuple(t) for t in texts]
        raise InputError(
            "tokenizer: expected a list of str or a list of (str, str) pairs, not a mix or other types, "
            f"got {texts!r:.80}"
        )

    @staticmethod
    def _check_unicode(texts: list[str]) -> None:
        """InputError for a text that is not valid Unicode (a lone surrogate, e.g. from a bad decode)."""
        for i, text in enumerate(texts):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InputError(
                    f"tokenizer: text {i} is not valid Unicode: {exc.object[exc.start : exc.end]!r} at position "
                    f"{exc.start} is a lone surrogate ({exc.reason}); fix the text's decoding, e.g. "
                    "bytes.decode('utf-8', errors='replace')"
                ) from None

    # --- decoding ------------------------------------------------------------------------------
    def decode(self, ids: Iterable[int] | np.ndarray, skip_special_tokens: bool = True) -> str:
        """Token ids -> text (special tokens dropped unless skip_special_tokens=False)."""
        id_list = self._id_list(ids)
        text = self._tokenizer.decode(id_list, skip_special_tokens=skip_special_tokens)
        if self.clean_up_tokenization_spaces and type(self._tokenizer.model).__name__ != "BPE":
            text = (  # transformers' clean_up_tokenization, skipped for BPE as it does
                text.replace(" .", ".")
                .replace(" ?", "?")
                .replace(" !", "!")
                .replace(" ,", ",")
                .replace(" ' ", "'")
                .replace(" n't", "n't")
                .replace(" 'm", "'m")
                .replace(" 's", "'s")
                .replace(" 've", "'ve")
                .replace(" 're", "'re")
            )
        return text

    def batch_decode(
        self, batch: Iterable[Iterable[int]] | np.ndarray, skip_special_tokens: bool = True
    ) -> list[str]:
        """Decode each row of a (B, T) array or each list of ids."""
        if isinstance(batch, np.ndarray) and batch.ndim != 2:
            raise InputError(f"tokenizer: batch_decode expects (B, T) ids, got shape {batch.shape}")
        return [self.decode(ids, skip_special_tokens=skip_special_tokens) for ids in batch]

    def _id_list(self, ids: Iterable[int] | np.ndarray) -> list[int]:
        array = np.asarray(ids if isinstance(ids, np.ndarray) else list(ids))
        if array.size == 0:
            return []
        if array.ndim != 1 or array.dtype.kind not in "iu":
            raise InputError(
                f"tokenizer: decode expects a 1-D sequence of int ids, got shape {array.shape} dtype {array.dtype}"
                " (use batch_decode for a batch)"
            )
        if array.min() < 0 or array.max() >= self.vocab_size:
            raise InputError(
                f"tokenizer: ids must lie in [0, {self.vocab_size}), got range [{array.min()}, {array.max()}]"
            )
        return array.tolist()

    # --- vocabulary ----------------------------------------------------------------------------
    def token_to_id(self, token: str) -> int | None:
        return self._tokenizer.token_to_id(token)

    def id_to_token(self, token_id: int) -> str | None:
        return self._tokenizer.id_to_token(int(token_id))

    @property
    def vocab_size(self) -> int:
        """Number of token ids, added tokens included (transformers' len(tokenizer))."""
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    def __len__(self) -> int:
        return self.vocab_size

    @property
    def special_ids(self) -> set[int]:
        """Ids of the special tokens: those tokenizer.json marks special and those the configs name."""
        ids = {
            token_id
            for token_id, added in self._tokenizer.get_added_tokens_decoder().items()
            if added.special
        }
        ids.update(
            token_id
            for token in self.special_tokens.values()
            if (token_id := self._tokenizer.token_to_id(token)) is not None
        )
        return ids

    def __repr__(self) -> str:
        model = type(self._tokenizer.model).__name__
        return (
            f"TextTokenizer({model}, vocab_size={self.vocab_size}, model_max_length={self.model_max_length}, "
            f"pad_token={self.pad_token!r})"
        )
