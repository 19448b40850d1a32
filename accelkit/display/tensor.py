"""Tensor reprs: the lovely-tensors style one-line summary and the static HTML (stats, preview, histogram).

Duck-typed: a tensor is anything with ``shape``, ``dtype`` (``.name``, ``.is_float``), ``device``
(``.spec``), ``nbytes``, ``is_contiguous``, ``storage`` (an optional ``.name``) and ``numpy()``;
``numpy()`` may raise an ``AccelkitError`` (a lost device), which the reprs show instead of values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import AccelkitError
from .html import badge, esc, header, percent, repr_block
from .settings import get_options
from .text import format_bytes

HISTOGRAM_SAMPLE = 1 << 20  # values at most that a tensor's histogram counts


@dataclass
class _Stats:
    """What both reprs say about a tensor's values: range and moments of the finite ones, and flags."""

    moments: list[str]  # ["x∈[lo, hi]", "μ=...", "σ=..."] (floats) or ["x∈[lo, hi]"] (ints)
    nan: int
    inf: int
    all_zeros: bool
    finite: np.ndarray


def _stats(values: np.ndarray, is_float: bool) -> _Stats:
    v = values.astype(np.float64, copy=False)
    finite = v[np.isfinite(v)]
    moments = []
    if finite.size:
        if is_float:
            moments = [
                f"x∈[{finite.min():.4g}, {finite.max():.4g}]",
                f"μ={finite.mean():.4g}",
                f"σ={finite.std():.4g}",
            ]
        else:
            moments = [f"x∈[{int(finite.min())}, {int(finite.max())}]"]
    nan, inf = int(np.isnan(v).sum()), int(np.isinf(v).sum())
    all_zeros = bool(finite.size) and not finite.any() and not nan and not inf
    return _Stats(moments, nan, inf, all_zeros, finite)


def tensor_summary(t) -> str:
    """One line: shape, dtype, device, bytes, range, μ, σ, NaN/Inf flags, the values when few, "view"."""
    head = f"tensor{list(t.shape)} {t.dtype.name} {t.device.spec} {format_bytes(t.nbytes)}"
    try:
        values = t.numpy()
    except AccelkitError as exc:
        return f"{head} <unreadable: {exc}>"
    if values.size == 0:
        return f"{head} empty"
    s = _stats(values, t.dtype.is_float)
    parts = [head]
    if s.moments:
        parts.append(" ".join(s.moments))
    if s.nan:
        parts.append(f"NaN!{s.nan}")
    if s.inf:
        parts.append(f"Inf!{s.inf}")
    if s.all_zeros:
        parts.append("all zeros")
    if values.size <= 8:
        parts.append(np.array2string(values.reshape(-1), precision=4, separator=", ", max_line_width=1 << 20))
    if not t.is_contiguous:
        parts.append("view")
    return " ".join(parts)


def histogram_html(finite: np.ndarray, bins: int) -> str:
    """A histogram of ``finite`` values as CSS bars (bar heights relative to the fullest bin)."""
    lo, hi = float(finite.min()), float(finite.max())
    counts, edges = np.histogram(finite, bins=bins, range=(lo, hi))
    top = max(int(counts.max()), 1)
    cells = []
    for c, a, b in zip(counts, edges[:-1], edges[1:]):
        tip = f"[{a:.4g}, {b:.4g}): {int(c)}"
        if c:
            cells.append(f"<span style='height:{percent(c / top)}' title='{esc(tip)}'></span>")
        else:
            cells.append(f"<span class='ak-zero' title='{esc(tip)}'></span>")
    return (
        f"<div class='ak-hist-box'><div class='ak-hist'>{''.join(cells)}</div>"
        f"<div class='ak-hist-axis'><span>{lo:.4g}</span><span>{hi:.4g}</span></div></div>"
    )


def tensor_html(t) -> str:
    """A tensor: the one-line summary (shape, dtype, device, bytes, range, μ, σ, NaN/Inf flags), a
    value preview (edges of each axis) and a histogram of the finite values."""
    opts = get_options()
    text = tensor_summary(t)
    parts = [
        f"<code class='ak-mono'>{esc(list(t.shape))}</code>",
        badge(t.dtype.name),
        badge(t.device.spec),
        f"<span class='ak-dim'>{esc(format_bytes(t.nbytes))}</span>",
    ]
    if not t.is_contiguous:
        parts.append(badge("view"))
    name = getattr(t.storage, "name", None)
    if name:
        parts.append(badge(f"shared: {name}", "accent"))
    head = header("Tensor", *parts)
    try:
        values = t.numpy()
    except AccelkitError as exc:
        body = f"<div class='ak-note ak-error-text'>unreadable: {esc(exc)}</div>"
        return repr_block(text, head + body, "tensor")
    if values.size == 0:
        return repr_block(text, head + "<div class='ak-note'>empty</div>", "tensor")
    s = _stats(values, t.dtype.is_float)
    flags = [badge(f"NaN!{s.nan}", "error")] if s.nan else []
    flags += [badge(f"Inf!{s.inf}", "error")] if s.inf else []
    flags += [badge("all zeros", "warn")] if s.all_zeros else []
    spans = "".join(f"<span>{esc(m)}</span>" for m in s.moments)
    body = [f"<div class='ak-stats'>{spans}{''.join(flags)}</div>"]
    preview = np.array2string(
        values, precision=4, threshold=8 * opts.preview**2, edgeitems=opts.preview, max_line_width=96
    )
    panels = [
        f"<div><div class='ak-panel-title'>values</div><pre class='ak-preview'>{esc(preview)}</pre></div>"
    ]
    finite = s.finite
    if finite.size > 1 and finite.min() != finite.max():
        step = -(
            -finite.size // HISTOGRAM_SAMPLE
        )  # every step-th value: deterministic, and fast on huge tensors
        what = f"{finite.size:,} finite values" + (f", every {step}th" if step > 1 else "")
        panels.append(
            f"<div><div class='ak-panel-title'>histogram ({what})</div>"
            f"{histogram_html(finite[::step] if step > 1 else finite, opts.bins)}</div>"
        )
    body.append(f"<div class='ak-panels'>{''.join(panels)}</div>")
    return repr_block(text, head + "".join(body), "tensor")


__all__ = ["histogram_html", "tensor_html", "tensor_summary"]
