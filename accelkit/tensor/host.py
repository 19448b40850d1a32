"""Host data -> numpy: what ``ak.tensor`` and model inputs accept, and the errors for what they do not.

Accepted: numpy arrays, nested lists/tuples of numbers, scalars, and array-likes such as torch tensors
(a tensor that requires grad is detached, one on a GPU is copied to the host). Refused with an
``InputError`` naming the input: None, text, bytes, paths, ragged or non-numeric data.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import InputError

#: numpy dtype kinds that are numbers: bool, signed and unsigned integers, floats
NUMERIC_KINDS = "biuf"


def _from_torch(data):
    """A torch tensor on the host, detached from autograd (duck-typed: torch is not imported here)."""
    data = data.detach()
    if getattr(data, "device", None) is not None and str(data.device) != "cpu":
        data = data.cpu()
    if str(getattr(data, "dtype", "")) == "torch.bfloat16":  # numpy has no bfloat16
        data = data.float()
    return data.numpy()


def host_array(data, what: str, kinds: str = NUMERIC_KINDS) -> np.ndarray:
    """``data`` as a numpy array of numbers (dtype kind in ``kinds``), or InputError naming ``what``."""
    if data is None or isinstance(data, (str, bytes, os.PathLike)):
        shown = "None" if data is None else f"a {type(data).__name__} ({str(data)[:40]!r})"
        raise InputError(f"{what} must be an array of numbers (numpy, nested lists, torch), got {shown}")
    if type(data).__module__.startswith("torch") and hasattr(data, "detach"):
        data = _from_torch(data)
    try:
        array = np.asarray(data)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise InputError(f"{what}: cannot make an array of {type(data).__name__}: {exc}") from None
    if array.dtype.kind not in kinds:
        expected = {"biuf": "numbers", "iu": "integers", "biu": "integers"}.get(kinds, f"dtype kind {kinds}")
        detail = "ragged or non-numeric data" if array.dtype == object else f"dtype {array.dtype}"
        raise InputError(f"{what} must hold {expected}, got {detail}")
    return array


__all__ = ["NUMERIC_KINDS", "host_array"]
