"""Dynamic batching rules: which requests to one model can run as one batch, and how to join and split them.

A rule gives each request a ``signature`` (requests with equal signatures batch together; None
runs the request alone), ``collate``s a list of requests into one call's inputs, and ``split``s
the batch's host outputs back per request. Text (BERT) requests are padded on the right to the
longest in the batch with an attention mask, and their outputs cut back to each request's length;
images (ViT) and Whisper's forward stack along the batch axis. Splitting only slices, so each
request gets the rows the model computed for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Prepared:
    """A request's inputs as host arrays with a batch axis, and how many rows it brings."""

    inputs: dict
    rows: int
    length: int = 0  # text: the request's sequence length


def _host_array(x) -> np.ndarray | None:
    """``x`` when it is a numpy array; None for anything else (lists, device Tensors, None).

    Only numpy arrays of exactly the batched shape join batches; every other input runs alone,
    through the model's own input checks, so a request behaves in a pool exactly as the direct
    call does (a nested list, or an array without its batch axis, succeeds or fails the same way).
    """
    if not isinstance(x, np.ndarray) or x.dtype == object:
        return None
    return x


class Rule:
    """The protocol; ``names`` is the order positional inputs map to."""

    names: tuple[str, ...] = ()

    def prepare(self, inputs: dict) -> tuple[tuple, Prepared] | None:  # pragma: no cover - interface
        raise NotImplementedError

    def collate(self, model, requests: list[Prepared]) -> dict:  # pragma: no cover - interface
        raise NotImplementedError

    def split(self, output, requests: list[Prepared]) -> list:  # pragma: no cover - interface
        raise NotImplementedError


def _rows(value, sizes: list[int], lengths: list[int] | None = None):
    """Cut a host value with a batch axis into per-request pieces: rows, and for (B, T, ...) values
    of the padded length, the tokens up to each request's length."""
    if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == sum(sizes):
        out, at = [], 0
        padded = max(lengths) if lengths else None
        for i, n in enumerate(sizes):
            piece = value[at : at + n]
            if padded is not None and piece.ndim >= 3 and piece.shape[1] == padded:
                piece = piece[:, : lengths[i]]
            out.append(np.array(piece, copy=True))
            at += n
        return out
    if isinstance(value, (list, tuple)):
        parts = [_rows(v, sizes, lengths) for v in value]
        return [type(value)(p[i] for p in parts) for i in range(len(sizes))]
    return [value] * len(sizes)


def _split_output(output, sizes: list[int], lengths: list[int] | None = None) -> list:
    from ..models.outputs import ModelOutput

    if isinstance(output, ModelOutput):
        fields = {k: _rows(v, sizes, lengths) for k, v in output.items()}
        results = []
        for i in range(len(sizes)):
            results.append(ModelOutput(id2label=output.id2label, **{k: v[i] for k, v in fields.items()}))
        return results
    return _rows(output, sizes, lengths)


class TextRule(Rule):
    """BERT-family ``__call__(input_ids, attention_mask, token_type_ids, output_hidden_states)``."""

    names = ("input_ids", "attention_mask", "token_type_ids")
    allowed = {"input_ids", "attention_mask", "token_type_ids", "output_hidden_states"}

    def __init__(self, pad_id: int = 0) -> None:
        self.pad_id = pad_id

    def prepare(self, inputs):
        if set(inputs) - self.allowed or "input_ids" not in inputs:
            return None
        ids = _host_array(inputs["input_ids"])
        if ids is None or ids.dtype.kind not in "iu":
            return None
        if ids.ndim != 2 or ids.shape[1] == 0:
            return None
        arrays = {"input_ids": ids}
        for key in ("attention_mask", "token_type_ids"):
            if inputs.get(key) is not None:
                arr = _host_array(inputs[key])
                if arr is None:
                    return None
                if arr.shape != ids.shape:
                    return None
                arrays[key] = arr
        hidden = bool(inputs.get("output_hidden_states", False))
        signature = ("text", "token_type_ids" in arrays, hidden)
        return signature, Prepared(arrays, ids.shape[0], ids.shape[1])

    def collate(self, model, requests):
        t = max(r.length for r in requests)
        b = sum(r.rows for r in requests)
        need_mask = any("attention_mask" in r.inputs for r in requests) or any(
            r.length != t for r in requests
        )
        ids = np.full((b, t), self.pad_id, dtype=np.int64)
        mask = np.zeros((b, t), dtype=np.int64)
        types = np.zeros((b, t), dtype=np.int64) if "token_type_ids" in requests[0].inputs else None
        at = 0
        for r in requests:
            n, length = r.rows, r.length
            ids[at : at + n, :length] = r.inputs["input_ids"]
            mask[at : at + n, :length] = r.inputs.get("attention_mask", 1)
            if types is not None:
                types[at : at + n, :length] = r.inputs["token_type_ids"]
            at += n
        out = {"input_ids": ids, "attention_mask": mask if need_mask else None}
        if types is not None:
            out["token_type_ids"] = types
        hidden = requests[0].inputs.get("output_hidden_states")
        if hidden:
            out["output_hidden_states"] = True
        return out

    def split(self, output, requests):
        return _split_output(output, [r.rows for r in requests], [r.length for r in requests])


class StackRule(Rule):
    """Models whose inputs all have a fixed shape past the batch axis (ViT pixels, Whisper's forward)."""

    def __init__(self, names: tuple[str, ...], ndims: tuple[int, ...], kind: str) -> None:
        self.names, self.ndims, self.kind = names, ndims, kind

    def prepare(self, inputs):
        if set(inputs) - set(self.names) or any(inputs.get(n) is None for n in self.names):
            return None
        arrays = {}
        for name, ndim in zip(self.names, self.ndims):
            arr = _host_array(inputs[name])
            if arr is None:
                return None
            if arr.ndim != ndim or arr.shape[0] == 0:
                return None
            arrays[name] = arr
        rows = {a.shape[0] for a in arrays.values()}
        if len(rows) != 1:
            return None
        signature = (self.kind,) + tuple((a.shape[1:], a.dtype.str) for a in arrays.values())
        return signature, Prepared(arrays, rows.pop())

    def collate(self, model, requests):
        return {n: np.concatenate([r.inputs[n] for r in requests]) for n in self.names}

    def split(self, output, requests):
        return _split_output(output, [r.rows for r in requests])


def rule_for(model) -> Rule | None:
    """The batching rule of a model's ``__call__`` (None: its requests run one by one)."""
    kind = getattr(getattr(model, "config", None), "model_type", None)
    if kind == "bert":
        pad = getattr(model.config, "pad_token_id", None)
        return TextRule(int(pad) if pad is not None else 0)
    if kind == "vit":
        return StackRule(("pixel_values",), (4,), "image")
    if kind == "whisper":
        return StackRule(("input_features", "decoder_input_ids"), (3, 2), "audio")
    return None


__all__ = ["Prepared", "Rule", "StackRule", "TextRule", "rule_for"]
