"""How far an accelkit output is from a reference (transformers' float64 outputs, torch, numpy).

Imported directly (``from reference_error import rel_err``) by the model tests. Both measures take
accelkit Tensors, torch tensors or array-likes, compute in float64 and check the shapes first.
"""

from __future__ import annotations

import numpy as np

import accelkit as ak


def as_float64(x) -> np.ndarray:
    """``x`` (a Tensor, a torch tensor or an array-like) as a float64 numpy array."""
    if isinstance(x, ak.Tensor):
        x = x.numpy()
    elif hasattr(x, "detach"):  # torch
        x = x.detach().numpy()
    return np.asarray(x, dtype=np.float64)


def _pair(actual, expected) -> tuple[np.ndarray, np.ndarray]:
    a, e = as_float64(actual), as_float64(expected)
    assert a.shape == e.shape, f"shape {a.shape} != {e.shape}"
    return a, e


def rel_err(actual, expected) -> float:
    """``||actual - expected|| / ||expected||`` (Frobenius norms)."""
    a, e = _pair(actual, expected)
    return float(np.linalg.norm(a - e) / np.linalg.norm(e))


def rel_error(actual, expected) -> float:
    """``max |actual - expected| / max |expected|``."""
    a, e = _pair(actual, expected)
    return float(np.abs(a - e).max() / np.abs(e).max())
