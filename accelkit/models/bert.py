"""BERT (Devlin et al. 2018) in one file: config, embeddings, encoder, pooler, and the task heads.

Module and parameter names are transformers' (``bert.encoder.layer.0.attention.self.query``), so a
``save_pretrained`` checkpoint loads as is. A forward records its dispatches with no host readback:
per layer one fused q/k/v matmul, one attention kernel writing heads straight into (B, T, H, D),
bias+GELU in the intermediate matmul, and residual+LayerNorm in one kernel (twice; where the dense
matmul before it is split-K, that kernel also sums the matmul's partial sums).

    bert = accelkit.load("tiny-random-bert")
    out = bert(**bert.tokenizer(["a sentence", "another one"]))
    out.logits, out.pooler_output, bert.embed(["a sentence"], pooling="mean")
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import nn, ops
from ..errors import ConfigError, InputError
from ..tensor.tensor import Tensor
from .config import ACTIVATIONS, Config, check_activation, labels_from_config, positive
from .model import PreTrainedModel
from .outputs import ModelOutput, top_labels


@dataclasses.dataclass
class BertConfig(Config):
    model_type = "bert"

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 0
    position_embedding_type: str = "absolute"
    is_decoder: bool = False
    tie_word_embeddings: bool = True
    id2label: dict | None = None

    def validate(self) -> None:
        positive(
            self,
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
        )
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}"
            )
        check_activation(self.hidden_act)
        if self.position_embedding_type != "absolute":
            raise ConfigError(
                f"field 'position_embedding_type': only 'absolute' is supported, got {self.position_embedding_type!r}"
            )
        if self.is_decoder:
            raise ConfigError("field 'is_decoder': BERT as a decoder is not supported")
        labels_from_config(self.id2label)

    @property
    def num_labels(self) -> int:
        return len(self.id2label) if self.id2label else 2


# ------------------------------------------------------------------------------------ modules


class BertEmbeddings(nn.Module):
    """word + position + token type embeddings, then LayerNorm (the three sums ride in its kernel)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        c = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, c)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, c)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, c)
        self.LayerNorm = nn.LayerNorm(c, config.layer_norm_eps)

    def __call__(self, input_ids: Tensor, token_type_ids: Tensor | None) -> Tensor:
        t = input_ids.shape[1]
        x = self.word_embeddings(input_ids) + self.position_embeddings.weight[:t]  # (B, T, C)
        if token_type_ids is None:  # all type 0: one row, broadcast
            return self.LayerNorm(x + self.token_type_embeddings.weight[0])  # (B, T, C)
        return self.LayerNorm(x, residual=self.token_type_embeddings(token_type_ids))  # (B, T, C)


class BertSelfAttention(nn.QKVSelfAttention):
    """Multi-head self-attention: ``query``/``key``/``value`` Linears, fused into one (3C, C) matmul after loading."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config.hidden_size, config.num_attention_heads)

    def __call__(self, x: Tensor, mask: Tensor | None) -> Tensor:
        q, k, v = self.project(x)  # (B, T, C) each, from one (B, T, 3C) matmul
        # per head (B, H, T, D): softmax(q k^T / sqrt(D) + mask) v, mask 0 on tokens, large negative on padding;
        # the kernel writes the heads straight back into (B, T, H, D)
        return nn.multi_head_attention(q, k, v, self.num_heads, mask)  # (B, T, C)


class BertOutput(nn.Module):
    """``dense`` back to hidden_size, then LayerNorm(x + residual) (after attention and after the MLP): one
    fused op, where a split-K ``dense`` hands its partial sums straight to the layer norm's kernel."""

    def __init__(self, in_features: int, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(in_features, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, config.layer_norm_eps)

    def __call__(self, h: Tensor, residual: Tensor) -> Tensor:
        # LayerNorm(dense(h) + residual), (B, T, C)
        return nn.linear_layer_norm(self.dense, self.LayerNorm, h, residual)


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertOutput(config.hidden_size, config)

    def __call__(self, x: Tensor, mask: Tensor | None) -> Tensor:
        return self.output(self.self(x, mask), x)  # LayerNorm(x + dense(attn(x))), (B, T, C)


class BertIntermediate(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = ACTIVATIONS[config.hidden_act]

    def __call__(self, x: Tensor) -> Tensor:
        return self.dense(x, activation=self.activation)  # (B, T, I), bias + GELU in the matmul epilogue


class BertLayer(nn.Module):
    """Post-LN: x = LN(x + attn(x)); x = LN(x + mlp(x))."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config.intermediate_size, config)

    def __call__(self, x: Tensor, mask: Tensor | None) -> Tensor:
        x = self.attention(x, mask)  # (B, T, C)
        return self.output(self.intermediate(x), x)  # (B, T, I) -> (B, T, C)


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))

    def __call__(self, x: Tensor, mask: Tensor | None, hidden_states: list | None = None) -> Tensor:
        for layer in self.layer:
            x = layer(x, mask)  # (B, T, C)
            if hidden_states is not None:
                hidden_states.append(x)
        return x


class BertPooler(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def __call__(self, x: Tensor) -> Tensor:
        return self.dense(x[:, 0], activation="tanh")  # the [CLS] token, (B, C)


# ------------------------------------------------------------------------------------ models


class BertPreTrainedModel(PreTrainedModel):
    """What every BERT model shares: the config, loading rules, the tokenizer and ``embed``."""

    config_class = BertConfig
    base_model_prefix = "bert"
    ignore_on_load = ("position_ids",)

    @property
    def base(self) -> BertModel:
        return self if isinstance(self, BertModel) else self.bert

    @property
    def tokenizer(self):
        """The checkpoint's tokenizer (tokenizer.json), loaded on first use."""
        tok = self.__dict__.get("_tokenizer")
        if tok is None:
            from ..preprocess import TextTokenizer

            if self.checkpoint is None:
                raise InputError(
                    f"{type(self).__name__} was not loaded from a checkpoint, so it has no tokenizer"
                )
            tok = TextTokenizer.from_dir(self.checkpoint)
            object.__setattr__(self, "_tokenizer", tok)
        return tok

    def encode(self, texts, **kwargs) -> dict:
        """Tokenize like the checkpoint's tokenizer (padded, truncated to max_position_embeddings)."""
        kwargs.setdefault("max_length", self.config.max_position_embeddings)
        return self.tokenizer.encode(texts, **kwargs)

    def embed(self, texts, pooling: str = "cls", batch_size: int = 32, normalize: bool = False) -> np.ndarray:
        """Sentence embeddings (N, hidden_size) float32: the [CLS] hidden state or the mean over real tokens.

        Texts longer than ``max_position_embeddings`` tokens are truncated, with a warning.

        >>> bert.embed(["a cat", "a dog"], pooling="mean").shape   # doctest: +SKIP
        (2, 42)
        """
        if pooling not in ("cls", "mean"):
            raise InputError(f"embed: pooling must be 'cls' or 'mean', got {pooling!r}")
        if isinstance(texts, str):
            texts = [texts]
        elif hasattr(texts, "__iter__") and not isinstance(texts, (bytes, dict)):
            texts = list(texts)
        else:
            raise InputError(f"embed: expected a str or a list of str, got {type(texts).__name__}")
        bad = next((t for t in texts if not isinstance(t, str)), None)
        if bad is not None:
            raise InputError(
                f"embed: expected a str or a list of str, got an item of type {type(bad).__name__}"
            )
        if not texts:
            return np.zeros((0, self.config.hidden_size), np.float32)
        if batch_size < 1:
            raise InputError(f"embed: batch_size must be >= 1, got {batch_size}")
        chunks = []
        for start in range(0, len(texts), batch_size):
            batch = self.encode(texts[start : start + batch_size], warn_truncation="bert.embed")
            h = self.base(**batch).last_hidden_state  # (B, T, C)
            if pooling == "cls":
                pooled = h[:, 0]
            else:
                mask = batch["attention_mask"][..., None]  # (B, T, 1)
                m = self._tensor_input(mask, "attention_mask", h.dtype)
                pooled = ops.sum(h * m, axis=1) / ops.sum(m, axis=1)  # (B, C)
            chunks.append(pooled.numpy().astype(np.float32))
        out = np.concatenate(chunks)
        if normalize:
            out /= np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-12)
        return out


class BertModel(BertPreTrainedModel):
    """The bare encoder: ``(input_ids, attention_mask, token_type_ids) -> last_hidden_state, pooler_output``."""

    optional_modules = ("pooler",)  # checkpoints saved from BertForMaskedLM have no pooler

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__(config)
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None

    def __call__(
        self, input_ids, attention_mask=None, token_type_ids=None, output_hidden_states: bool = False
    ):
        """``input_ids`` (B, T) or (T,): numpy, nested lists, a torch tensor or an int32 Tensor.

        Ids from the host are checked to lie in [0, vocab_size) (InputError naming the largest);
        ids already on the device (a Tensor) are NOT checked, since that would need a readback:
        the embedding kernel clamps out-of-range ids there, silently.
        """
        inputs = self.inputs(input_ids, attention_mask, token_type_ids)
        return ModelOutput(**self.run_compiled(BertModel.forward, *inputs, output_hidden_states))

    def inputs(self, input_ids, attention_mask=None, token_type_ids=None) -> tuple:
        """The checked inputs of a call: (ids, additive mask (B, 1, 1, T) or None, token types or None);
        host arrays stay on the host (a compiled forward uploads each with one write)."""
        cfg = self.config
        ids, shape = self._ids_input(input_ids, "input_ids", cfg.vocab_size, upload=False)
        if shape[1] > cfg.max_position_embeddings:
            raise InputError(
                f"input_ids: sequence length {shape[1]} is longer than max_position_embeddings "
                f"{cfg.max_position_embeddings}; truncate the input to at most {cfg.max_position_embeddings} tokens"
            )
        types = None
        if token_type_ids is not None:
            types, tshape = self._ids_input(
                token_type_ids, "token_type_ids", cfg.type_vocab_size, upload=False
            )
            if tshape != shape:
                raise InputError(f"token_type_ids shape {tshape} differs from input_ids {shape}")
        mask = self.additive_mask(
            attention_mask, shape, upload=False
        )  # (B, 1, 1, T), or (B, T) on the device
        return ids, mask, types

    def forward(
        self, ids: Tensor, mask: Tensor | None, types: Tensor | None, output_hidden_states: bool
    ) -> dict:
        mask = self.device_mask(mask)  # (B, 1, 1, T) additive
        x = self.embeddings(ids, types)  # (B, T, C)
        hidden = [x] if output_hidden_states else None
        x = self.encoder(x, mask, hidden)
        pooled = self.pooler(x) if self.pooler is not None else None
        return {"last_hidden_state": x, "pooler_output": pooled, "hidden_states": hidden}


class BertForSequenceClassification(BertPreTrainedModel):
    """BERT + a linear classifier on the pooled [CLS] output: ``.logits`` (B, num_labels), ``.id2label``."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def __call__(
        self, input_ids, attention_mask=None, token_type_ids=None, output_hidden_states: bool = False
    ):
        inputs = self.bert.inputs(input_ids, attention_mask, token_type_ids)
        out = self.run_compiled(BertForSequenceClassification.forward, *inputs, output_hidden_states)
        return ModelOutput(id2label=self.id2label, **out)

    def forward(
        self, ids: Tensor, mask: Tensor | None, types: Tensor | None, output_hidden_states: bool
    ) -> dict:
        out = self.bert.forward(ids, mask, types, output_hidden_states)
        out["logits"] = self.classifier(out["pooler_output"])  # (B, num_labels)
        return out

    def classify(self, texts, top_k: int = 1) -> list[list[tuple[str, float]]]:
        """Per text, the ``top_k`` (label, probability) pairs, best first."""
        return top_labels(self(**self.encode(texts)).logits, self.id2label, top_k)


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.activation = ACTIVATIONS[config.hidden_act]

    def __call__(self, x: Tensor) -> Tensor:
        return self.LayerNorm(self.dense(x, activation=self.activation))


class BertLMPredictionHead(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        # tied to the word embeddings (same device storage) unless tie_word_embeddings is false
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.bias = nn.Parameter((config.vocab_size,))

    def __call__(self, x: Tensor) -> Tensor:
        return ops.linear(self.transform(x), self.decoder.weight, self.bias)  # (B, T, V)


class BertOnlyMLMHead(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.predictions = BertLMPredictionHead(config)

    def __call__(self, x: Tensor) -> Tensor:
        return self.predictions(x)


class BertForMaskedLM(BertPreTrainedModel):
    """BERT + the masked-LM head: ``.logits`` (B, T, vocab_size). The decoder shares the word embeddings' storage."""

    ignore_on_load = ("position_ids", "cls.predictions.decoder.bias")  # a copy of cls.predictions.bias

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
        if config.tie_word_embeddings:
            self.tied_weights = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight"}

    def __call__(
        self, input_ids, attention_mask=None, token_type_ids=None, output_hidden_states: bool = False
    ):
        inputs = self.bert.inputs(input_ids, attention_mask, token_type_ids)
        return ModelOutput(**self.run_compiled(BertForMaskedLM.forward, *inputs, output_hidden_states))

    def forward(
        self, ids: Tensor, mask: Tensor | None, types: Tensor | None, output_hidden_states: bool
    ) -> dict:
        out = self.bert.forward(ids, mask, types, output_hidden_states)
        out["logits"] = self.cls(out["last_hidden_state"])  # (B, T, V)
        return out

    def fill_mask(self, text: str, top_k: int = 5) -> list[list[tuple[str, float]]]:
        """For each [MASK] in ``text``, the ``top_k`` (token, probability) pairs."""
        batch = self.encode(text)
        mask_id = self.tokenizer.token_to_id(self.tokenizer.special_tokens.get("mask_token", "[MASK]"))
        where = np.flatnonzero(batch["input_ids"][0] == mask_id)
        if mask_id is None or not where.size:
            raise InputError(f"fill_mask: the text has no mask token: {text!r}")
        logits = self(**batch).logits.numpy()[0, where]  # (masks, V)
        vocab = {i: self.tokenizer.id_to_token(i) for i in range(logits.shape[-1])}
        return top_labels(logits, vocab, top_k)


__all__ = [
    "BertConfig",
    "BertForMaskedLM",
    "BertForSequenceClassification",
    "BertModel",
]
