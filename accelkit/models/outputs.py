"""What a model returns: ``ModelOutput`` (attributes and a mapping, as transformers') and ``top_labels``.

out = bert(**batch)
out.logits, out["pooler_output"], out.labels(top_k=3)
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..errors import InputError
from ..tensor.tensor import Tensor


class ModelOutput:
    """A model's outputs: attributes (``out.logits``) and a mapping (``out["logits"]``, ``out.keys()``).

    Only the fields a model set are keys; any other known field reads as None, like transformers.
    ``id2label`` (when the model has labels) turns class indices into names, see ``labels()``.
    """

    _known = (
        "last_hidden_state",
        "pooler_output",
        "logits",
        "hidden_states",
        "attentions",
        "encoder_last_hidden_state",
        "past_key_values",
        "sequences",
    )

    def __init__(self, id2label: dict[int, str] | None = None, **fields) -> None:
        object.__setattr__(self, "_fields", {k: v for k, v in fields.items() if v is not None})
        object.__setattr__(self, "id2label", id2label)

    def __getattr__(self, name: str):
        fields = object.__getattribute__(self, "_fields")
        if name in fields:
            return fields[name]
        if name in ModelOutput._known:
            return None
        raise AttributeError(f"ModelOutput has no field {name!r}; it has {', '.join(fields) or 'none'}")

    def __setattr__(self, name: str, value) -> None:
        if name == "id2label":
            object.__setattr__(self, name, value)
        elif value is None:
            self._fields.pop(name, None)
        else:
            self._fields[name] = value

    def __getitem__(self, key):
        if isinstance(key, int):
            return list(self._fields.values())[key]
        try:
            return self._fields[key]
        except KeyError:
            raise KeyError(
                f"ModelOutput has no field {key!r}; it has {', '.join(self._fields) or 'none'}"
            ) from None

    def __contains__(self, key) -> bool:
        return key in self._fields

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def keys(self):
        return self._fields.keys()

    def values(self):
        return self._fields.values()

    def items(self):
        return self._fields.items()

    def to_tuple(self) -> tuple:
        return tuple(self._fields.values())

    def labels(self, top_k: int = 1) -> list:
        """The ``top_k`` (label, probability) pairs per example from ``logits`` (B, num_labels); reads back."""
        if self.logits is None:
            raise InputError("labels(): this output has no logits")
        return top_labels(self.logits, self.id2label, top_k)

    def __repr__(self) -> str:
        parts = []
        for k, v in self._fields.items():
            if isinstance(v, Tensor):
                parts.append(f"{k}=<{v.dtype.name} {list(v.shape)} on {v.device.spec}>")
            elif isinstance(v, np.ndarray):  # host results (a pool's): as short as a Tensor's
                parts.append(f"{k}=<{v.dtype.name} {list(v.shape)} numpy>")
            elif isinstance(v, (list, tuple)):
                parts.append(f"{k}=[{len(v)} items]")
            else:
                parts.append(f"{k}={v!r}")
        return "ModelOutput(" + ", ".join(parts) + ")"


def top_labels(logits, id2label: dict[int, str] | None, top_k: int = 1) -> list:
    """Softmax probabilities of (B, num_labels) logits -> per example, the ``top_k`` (label, prob) pairs."""
    values = logits.numpy() if isinstance(logits, Tensor) else np.asarray(logits)
    values = values.astype(np.float64).reshape(-1, values.shape[-1])
    probs = np.exp(values - values.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    k = max(1, min(int(top_k), probs.shape[-1]))
    out = []
    for row in probs:
        order = np.argsort(-row, kind="stable")[:k]
        pairs = [((id2label or {}).get(int(i), f"LABEL_{int(i)}"), float(row[i])) for i in order]
        out.append(pairs)
    return out


__all__ = ["ModelOutput", "top_labels"]
