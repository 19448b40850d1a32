"""HTML building blocks for the static reprs: the repr frame, badges, bars, sections, tables.

Every repr is one ``<div>`` holding the stylesheet, a ``<pre>`` text fallback and the rich view; the
stylesheet hides the fallback, so where styles are stripped (GitHub, untrusted notebooks) the text
shows instead (xarray's scheme). Collapsible sections are a transparent checkbox over the section's
head, with the body as its sibling: no ids, no scripts. Output is deterministic: the same object
renders to the same bytes (no ids, no addresses, no times of day), so nbval and diffs stay stable.
Other layers' reprs (the pool, the sharing report) are built from these pieces too.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence

import numpy as np

from .css import css


class Raw(str):
    """A string of HTML that is already safe: ``esc`` and ``table`` pass it through unescaped."""


def raw(markup: str) -> Raw:
    """Mark ``markup`` as HTML to insert as is (see ``table``, ``kv_table``, ``section``)."""
    return Raw(markup)


def esc(value) -> str:
    """HTML-escape ``value`` (its ``str``), unless it is ``Raw``."""
    if isinstance(value, Raw):
        return str(value)
    return html.escape(str(value), quote=True)


def repr_block(text: str, body: str, kind: str) -> str:
    """The whole repr: stylesheet, the ``<pre>`` text fallback, and ``body`` in ``div.ak-repr.ak-{kind}``.

    The rich part starts hidden by an inline style that the stylesheet overrides, so without the
    stylesheet only the text shows.
    """
    return (
        f"<div class='ak-root'><style>{css()}</style>"
        f"<pre class='ak-text-repr-fallback'>{esc(text)}</pre>"
        f"<div class='ak-repr ak-{esc(kind)}' style='display:none'>{body}</div></div>"
    )


def badge(text, tone: str = "") -> str:
    """A small rounded label; ``tone`` is "", "accent", "warn", "error" or "ok"."""
    cls = f"ak-badge ak-{tone}" if tone else "ak-badge"
    return f"<span class='{cls}'>{esc(text)}</span>"


def header(title: str, *parts: str) -> str:
    """A header line: a bold title, then ``parts`` (HTML) side by side."""
    return f"<div class='ak-header'><span class='ak-title'>{esc(title)}</span>{''.join(parts)}</div>"


def bar(fraction: float, *, wide: bool = False, mark: float | None = None, title: str | None = None) -> str:
    """A horizontal bar filled to ``fraction`` (0..1), optionally with a tick at ``mark`` (0..1)."""
    f = _clamp(fraction)
    tip = f" title='{esc(title)}'" if title else ""
    tick = (
        f"<span class='ak-bar-mark' style='left:{percent(_clamp(mark))}'></span>" if mark is not None else ""
    )
    cls = "ak-bar-track ak-wide" if wide else "ak-bar-track"
    return (
        f"<span class='{cls}'{tip}><span class='ak-bar-fill' style='width:{percent(f)}'></span>{tick}</span>"
    )


def section(title: str, body: str, open: bool = False, *, extra: str = "", count: int | None = None) -> str:
    """A collapsible section: a head line (``title``, optional ``count`` and ``extra`` HTML) over ``body``.

    A click anywhere on the head toggles it (a transparent checkbox lies over the head); ``open``
    is the initial state. Works without JavaScript and without ids.
    """
    checked = " checked" if open else ""
    num = f"<span class='ak-dim'>({count})</span>" if count is not None else ""
    more = f"<span class='ak-section-extra'>{extra}</span>" if extra else ""
    return (
        f"<div class='ak-section'><input type='checkbox' class='ak-toggle' aria-label='{esc(title)}'{checked}>"
        f"<div class='ak-section-head'><span class='ak-caret'></span>"
        f"<span class='ak-section-title'>{esc(title)}</span>{num}{more}</div>"
        f"<div class='ak-section-body'>{body}</div></div>"
    )


def table(
    rows: Iterable[Sequence],
    headers: Sequence[str] | None = None,
    *,
    numeric: Iterable[int] = (),
    wrap: Iterable[int] = (),
    more: str | None = None,
    cls: str = "",
) -> str:
    """An HTML table. Cells are escaped unless ``Raw``; ints and floats are formatted and right-aligned,
    as are the columns listed in ``numeric``; text in the ``wrap`` columns may wrap (others stay on
    one line). ``more`` adds a last, muted row (e.g. "12 more")."""
    right, wrapping = set(numeric), set(wrap)
    out = [f"<table class='ak-table{(' ' + cls) if cls else ''}'>"]
    if headers:
        out.append("<thead><tr>")
        out += [f"<th{_num_cls(i in right)}>{esc(h)}</th>" for i, h in enumerate(headers)]
        out.append("</tr></thead>")
    out.append("<tbody>")
    width = len(headers) if headers else 1
    for row in rows:
        out.append("<tr>")
        for i, cell in enumerate(row):
            text, is_num = _cell(cell)
            out.append(f"<td{_td_cls(is_num or i in right, i in wrapping)}>{text}</td>")
        out.append("</tr>")
    if more:
        out.append(f"<tr class='ak-more'><td colspan='{width}'>{esc(more)}</td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


def kv_table(pairs: Iterable[tuple[str, object]]) -> str:
    """A two-column table of names and values (values escaped unless ``Raw``)."""
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{_cell(v)[0]}</td></tr>" for k, v in pairs)
    return f"<table class='ak-table ak-kv'><tbody>{rows}</tbody></table>"


def _clamp(x) -> float:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if math.isnan(x) else min(1.0, max(0.0, x))


def percent(f: float) -> str:
    return f"{f * 100:.1f}%"


def _num_cls(is_num: bool) -> str:
    return " class='ak-num'" if is_num else ""


def _td_cls(is_num: bool, wraps: bool) -> str:
    names = " ".join(n for n, on in (("ak-num", is_num), ("ak-wrap-cell", wraps)) if on)
    return f" class='{names}'" if names else ""


def _cell(value) -> tuple[str, bool]:
    if isinstance(value, Raw):
        return str(value), False
    if isinstance(value, bool) or value is None:
        return esc("" if value is None else ("yes" if value else "no")), False
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}", True
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}", True
    return esc(value), False


def colour_class(i: int | None) -> str:
    return "ak-cbg-other" if i is None or i > 8 else f"ak-cbg{i}"


__all__ = [
    "Raw",
    "badge",
    "bar",
    "colour_class",
    "esc",
    "header",
    "kv_table",
    "percent",
    "raw",
    "repr_block",
    "section",
    "table",
]
