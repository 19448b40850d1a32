"""Static HTML reprs (no JavaScript) for devices, tensors, modules, profiles and memory, with text twins.

Every repr is one ``<div>`` holding the stylesheet, a ``<pre>`` text fallback and the rich view; the
stylesheet hides the fallback, so where styles are stripped (GitHub, untrusted notebooks) the text
shows instead (xarray's scheme). Collapsible sections are a transparent checkbox over the section's
head, with the body as its sibling: no ids, no scripts. Output is deterministic: the same object
renders to the same bytes (no ids, no addresses, no times of day), so nbval and diffs stay stable.

The generic pieces (``repr_block``, ``section``, ``table``, ``kv_table``, ``bar``, ``badge``,
``header``, ``raw``) are for other objects' reprs (the sharing registry, the pool) to reuse.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from importlib import resources

import numpy as np

from ..errors import AccelkitError
from .options import get_options, html_enabled, widgets_wanted

# --------------------------------------------------------------------------------------- primitives


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


@lru_cache(maxsize=1)
def css() -> str:
    """The stylesheet every repr carries (static/accelkit.css, comments and indentation stripped)."""
    text = resources.files("accelkit.notebook").joinpath("static", "accelkit.css").read_text(encoding="utf-8")
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = " ".join(line.strip() for line in text.splitlines() if line.strip())
    return re.sub(r"\s*([{};])\s*", r"\1", text)


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
    tick = f"<span class='ak-bar-mark' style='left:{_pct(_clamp(mark))}'></span>" if mark is not None else ""
    cls = "ak-bar-track ak-wide" if wide else "ak-bar-track"
    return f"<span class='{cls}'{tip}><span class='ak-bar-fill' style='width:{_pct(f)}'></span>{tick}</span>"


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


def fmt_bytes(n: float) -> str:
    """1536 -> '1.5 KiB' (exact bytes below 1 KiB)."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def fmt_count(n: int) -> str:
    """1234567 -> '1.23M'."""
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return str(int(n))


def _clamp(x) -> float:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if math.isnan(x) else min(1.0, max(0.0, x))


def _pct(f: float) -> str:
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


def _colour(i: int | None) -> str:
    return "ak-cbg-other" if i is None or i > 8 else f"ak-cbg{i}"


# --------------------------------------------------------------------------------------- display plumbing


def mimebundle(obj, include=None, exclude=None) -> dict | None:
    """The widget view of ``obj`` as a mime bundle when ``options(display="widget")`` and a kernel is
    live, else None (IPython then uses ``_repr_html_`` and ``__repr__``). Objects' ``_repr_mimebundle_``
    call this."""
    if not widgets_wanted():
        return None
    try:
        from .widgets import view
    except ImportError:  # pragma: no cover - widgets_wanted checked ipywidgets
        return None
    return view(obj)._repr_mimebundle_(include=include, exclude=exclude)


def text_of(obj) -> str:
    """The text twin of an object's HTML repr."""
    from ..hardware import Device
    from ..nn import Module, module_tree_text
    from ..profiler import Profile
    from ..tensor.tensor import Tensor, summary_line

    if isinstance(obj, Tensor):
        return summary_line(obj)
    if isinstance(obj, Device):
        return device_text(obj)
    if isinstance(obj, Module):
        return module_tree_text(obj, max_lines=get_options().max_rows)
    if isinstance(obj, Profile):
        return obj.table(_profile_top(obj, None))
    if isinstance(obj, list) and obj and all(isinstance(d, Device) for d in obj):
        return devices_text(obj)
    return repr(obj)


def html_of(obj) -> str | None:
    """The static HTML repr of an accelkit object (or of anything with ``_repr_html_``), else None."""
    from ..hardware import Device
    from ..nn import Module
    from ..profiler import Profile
    from ..tensor.tensor import Tensor

    if isinstance(obj, Tensor):
        return tensor_html(obj)
    if isinstance(obj, Device):
        return device_html(obj)
    if isinstance(obj, Module):
        return module_html(obj)
    if isinstance(obj, Profile):
        return profile_html(obj)
    if isinstance(obj, list) and obj and all(isinstance(d, Device) for d in obj):
        return devices_html(obj)
    fn = getattr(obj, "_repr_html_", None)
    return fn() if callable(fn) else None


# --------------------------------------------------------------------------------------- devices

KEY_FEATURES = (
    ("shader-f16", ("shader-f16",)),
    ("subgroups", ("subgroup", "subgroups")),
    ("timestamps", ("timestamp-query",)),
)
KEY_LIMITS = (
    "max-buffer-size",
    "max-storage-buffer-binding-size",
    "max-compute-workgroup-storage-size",
    "max-compute-invocations-per-workgroup",
    "max-compute-workgroups-per-dimension",
)


def _default_spec() -> str | None:
    try:
        from ..hardware import device

        return device().spec
    except AccelkitError:  # a bad ACCELKIT_DEVICE must not break a repr
        return None


def _key_features(dev) -> list[tuple[str, bool | None]]:
    """(name, present) for the features accelkit uses; None where the idea does not apply (CPU)."""
    if dev.backend_name == "cpu":
        return [("shader-f16", True), ("subgroups", None), ("timestamps", None)]
    have = set(dev.features)
    return [(label, any(n in have for n in names)) for label, names in KEY_FEATURES]


def _details(dev) -> list[tuple[str, object]]:
    skip = {"spec", "name", "kind", "is_software", "fallback_reason"}
    return [(k, v) for k, v in dev.describe().items() if k not in skip and v not in (None, "")]


def _limit_value(name: str, value) -> str:
    if isinstance(value, int) and name.endswith("size") and value >= 1024:
        return f"{value:,} ({fmt_bytes(value)})"
    return f"{value:,}" if isinstance(value, int) else str(value)


def device_text(dev) -> str:
    """Several lines: what the device is, why it was chosen or not, key features and limits, memory."""
    lines = [repr(dev)]
    if dev.backend_name == "cpu":
        info = dev.info
        lines.append(
            f"  {info.get('cores')} cores, {info.get('machine')}, numpy {info.get('numpy')} on {info.get('blas')}"
        )
    else:
        info = dev.info
        lines.append(
            f"  backend API {info.get('backend_type', '?')}, vendor {info.get('vendor') or '?'}, "
            f"driver {info.get('description') or '?'}"
        )
        lines.append(
            "  features: "
            + ", ".join(f"{n}={'yes' if ok else 'no'}" for n, ok in _key_features(dev) if ok is not None)
        )
        lim = dev.limits
        shown = [f"{n} {_limit_value(n, lim[n])}" for n in KEY_LIMITS if n in lim]
        if shown:
            lines.append("  limits: " + "; ".join(shown))
    if dev.is_open:
        m = dev.memory()
        lines.append(
            f"  memory: {fmt_bytes(m.get('allocated_bytes', 0))} allocated, "
            f"{fmt_bytes(m.get('peak_bytes', 0))} peak, {m.get('buffers', 0)} buffers"
        )
    return "\n".join(lines)


def _device_badges(dev, default: str | None) -> str:
    parts = [badge(dev.kind)]
    if dev.is_software:
        parts.append(badge("software", "warn"))
    if default is not None and dev.spec == default:
        parts.append(badge("default", "accent"))
    if dev.lost:
        parts.append(badge("lost", "error"))
    return "".join(parts)


def _feature_badges(dev) -> str:
    out = []
    for name, ok in _key_features(dev):
        if ok is None:
            continue
        out.append(badge(f"{name} {'yes' if ok else 'no'}", "ok" if ok else ""))
    return "".join(out)


def _device_body(dev, default: str | None, fallback: bool = True) -> str:
    parts = []
    if fallback and dev.fallback_reason:
        parts.append(f"<div class='ak-note'>fallback: {esc(dev.fallback_reason)}</div>")
    kb = _feature_badges(dev)
    if kb:
        parts.append(f"<div class='ak-chips'>{kb}</div>")
    parts.append(kv_table(_details(dev)))
    feats = list(dev.features)
    if feats:
        chips = "".join(badge(f) for f in feats)
        parts.append(section("features", f"<div class='ak-chips'>{chips}</div>", count=len(feats)))
    lim = dev.limits
    if lim:
        rows = [(n, raw(f"<span class='ak-num'>{esc(_limit_value(n, lim[n]))}</span>")) for n in sorted(lim)]
        parts.append(section("limits", kv_table(rows), count=len(lim)))
    if dev.is_open:
        parts.append(section("memory", _memory_body(dev.memory()), open=True))
    else:
        parts.append("<div class='ak-note'>not opened yet: memory shows once something runs here</div>")
    return "".join(parts)


def device_html(dev) -> str:
    """A device: name, kind, why it was (not) chosen, key features, details, all features and limits,
    and memory when it is open. Never opens the device."""
    default = _default_spec()
    head = header(
        "Device",
        f"<code class='ak-mono'>{esc(dev.spec)}</code>",
        f"<span class='ak-name'>{esc(dev.name)}</span>",
        _device_badges(dev, default),
    )
    return repr_block(device_text(dev), head + _device_body(dev, default), "device")


def devices_text(devs: Sequence) -> str:
    default = _default_spec()
    lines = [f"accelkit devices ({len(devs)}, best first):"]
    for d in devs:
        mark = "*" if d.spec == default else " "
        soft = " [software]" if d.is_software else ""
        lines.append(f" {mark} {d.spec:<10} {d.kind:<12} {d.name}{soft}")
    chosen = next((d for d in devs if d.spec == default), None)
    if chosen is not None:
        why = f" ({chosen.fallback_reason})" if chosen.fallback_reason else ""
        lines.append(f"default: {chosen.spec}{why}")
    return "\n".join(lines)


def devices_html(devs: Sequence) -> str:
    """Every device in one table (default marked, key features as yes/no), each with its details
    in a collapsible section."""
    default = _default_spec()
    rows = []
    for d in devs:
        mark = raw("<span title='default device'>&#9679;</span>") if d.spec == default else ""
        api = d.backend_api or d.backend_name
        feats = [("yes" if ok else "no") if ok is not None else "-" for _, ok in _key_features(d)]
        soft = raw(badge("software", "warn")) if d.is_software else ""
        rows.append([mark, raw(f"<code>{esc(d.spec)}</code>"), d.kind, d.name, soft, api, *feats])
    heads = ["", "spec", "kind", "name", "", "API", "f16", "subgroups", "timestamps"]
    parts = [
        header(
            "Devices",
            f"<span class='ak-dim'>{len(devs)} found, best first</span>",
            badge(f"default {default}", "accent") if default else "",
        )
    ]
    chosen = next((d for d in devs if d.spec == default), None)
    if chosen is not None and chosen.fallback_reason:
        parts.append(f"<div class='ak-note'>{esc(chosen.spec)}: {esc(chosen.fallback_reason)}</div>")
    parts.append(table(rows, heads, wrap=(3,)))
    for d in devs:
        shown_above = d is chosen
        parts.append(section(d.spec, _device_body(d, default, fallback=not shown_above), extra=esc(d.name)))
    return repr_block(devices_text(devs), "".join(parts), "devices")


class DeviceList(list):
    """A plain list of Devices that shows itself as a table in notebooks (``accelkit.devices()``)."""

    def _repr_pretty_(self, p, cycle) -> None:
        p.text("[...]" if cycle else devices_text(self))

    def _repr_html_(self) -> str | None:
        return devices_html(self) if html_enabled() else None

    def _repr_mimebundle_(self, include=None, exclude=None):
        return mimebundle(self, include, exclude)


# --------------------------------------------------------------------------------------- memory

_MEMORY_BARS = (
    ("allocated", "allocated_bytes"),
    ("peak", "peak_bytes"),
    ("reserved", "reserved_bytes"),
    ("cached", "cached_bytes"),
)


def memory_text(stats: dict, title: str = "memory") -> str:
    lines = [f"{title}:"]
    for k, v in stats.items():
        lines.append(f"  {k:<20} {fmt_bytes(v) if k.endswith('_bytes') else v}")
    return "\n".join(lines)


def _memory_body(stats: dict) -> str:
    limit = stats.get("limit_bytes") or stats.get("budget_bytes")
    scale = max([int(limit or 0)] + [int(stats.get(k, 0) or 0) for _, k in _MEMORY_BARS] + [1])
    rows = []
    for label, key in _MEMORY_BARS:
        if key in stats:
            v = int(stats[key] or 0)
            rows.append(
                [
                    label,
                    raw(f"<span class='ak-num'>{esc(fmt_bytes(v))}</span>"),
                    raw(bar(v / scale, wide=True)),
                ]
            )
    if limit:
        rows.append(
            ["limit", raw(f"<span class='ak-num'>{esc(fmt_bytes(limit))}</span>"), raw(bar(1.0, wide=True))]
        )
    shown = {k for _, k in _MEMORY_BARS} | {"limit_bytes", "budget_bytes"}
    rest = [(k, fmt_bytes(v) if k.endswith("_bytes") else v) for k, v in stats.items() if k not in shown]
    return table(rows, cls="ak-memory") + (kv_table(rest) if rest else "")


def memory_html(stats: dict, title: str = "memory") -> str:
    """Device memory (``Device.memory()``): allocated, peak, reserved and cached bytes as bars (scaled
    to a ``limit_bytes``/``budget_bytes`` entry when present, else to the largest), then the counts."""
    return repr_block(memory_text(stats, title), header(title) + _memory_body(stats), "memory")


class MemoryReport:
    """Memory of one or more devices, as ``%accel memory`` shows it."""

    def __init__(self, entries: list[tuple[str, str, dict]]) -> None:
        self.entries = entries  # (spec, name, stats)

    def __repr__(self) -> str:
        return "\n".join(
            memory_text(stats, f"memory of {spec} ({name})") for spec, name, stats in self.entries
        )

    def _repr_html_(self) -> str | None:
        if not html_enabled():
            return None
        parts = []
        for spec, name, stats in self.entries:
            parts.append(
                header(
                    "Memory",
                    f"<code class='ak-mono'>{esc(spec)}</code>",
                    f"<span class='ak-name'>{esc(name)}</span>",
                )
            )
            parts.append(_memory_body(stats))
        return repr_block(repr(self), "".join(parts), "memory")


# --------------------------------------------------------------------------------------- tensors


def _tensor_stats(values: np.ndarray, is_float: bool) -> tuple[list[str], list[str], np.ndarray]:
    v = values.astype(np.float64, copy=False)
    finite = v[np.isfinite(v)]
    stats, flags = [], []
    if finite.size:
        if is_float:
            stats += [
                f"x∈[{finite.min():.4g}, {finite.max():.4g}]",
                f"μ={finite.mean():.4g}",
                f"σ={finite.std():.4g}",
            ]
        else:
            stats.append(f"x∈[{int(finite.min())}, {int(finite.max())}]")
    nan, inf = int(np.isnan(v).sum()), int(np.isinf(v).sum())
    if nan:
        flags.append(badge(f"NaN!{nan}", "error"))
    if inf:
        flags.append(badge(f"Inf!{inf}", "error"))
    if finite.size and not finite.any() and not nan and not inf:
        flags.append(badge("all zeros", "warn"))
    return stats, flags, finite


HISTOGRAM_SAMPLE = 1 << 20  # values at most that a tensor's histogram counts


def histogram_html(finite: np.ndarray, bins: int) -> str:
    """A histogram of ``finite`` values as CSS bars (bar heights relative to the fullest bin)."""
    lo, hi = float(finite.min()), float(finite.max())
    counts, edges = np.histogram(finite, bins=bins, range=(lo, hi))
    top = max(int(counts.max()), 1)
    cells = []
    for c, a, b in zip(counts, edges[:-1], edges[1:]):
        tip = f"[{a:.4g}, {b:.4g}): {int(c)}"
        if c:
            cells.append(f"<span style='height:{_pct(c / top)}' title='{esc(tip)}'></span>")
        else:
            cells.append(f"<span class='ak-zero' title='{esc(tip)}'></span>")
    return (
        f"<div class='ak-hist-box'><div class='ak-hist'>{''.join(cells)}</div>"
        f"<div class='ak-hist-axis'><span>{lo:.4g}</span><span>{hi:.4g}</span></div></div>"
    )


def tensor_html(t) -> str:
    """A tensor: the one-line summary (shape, dtype, device, bytes, range, μ, σ, NaN/Inf flags), a
    value preview (edges of each axis) and a histogram of the finite values."""
    from ..errors import DeviceError
    from ..tensor.tensor import summary_line

    opts = get_options()
    text = summary_line(t)
    parts = [
        f"<code class='ak-mono'>{esc(list(t.shape))}</code>",
        badge(t.dtype.name),
        badge(t.device.spec),
        f"<span class='ak-dim'>{esc(fmt_bytes(t.nbytes))}</span>",
    ]
    if not t.is_contiguous:
        parts.append(badge("view"))
    name = getattr(t.storage, "name", None)
    if name:
        parts.append(badge(f"shared: {name}", "accent"))
    head = header("Tensor", *parts)
    try:
        values = t.numpy()
    except DeviceError as exc:
        body = f"<div class='ak-note ak-error-text'>unreadable: {esc(exc)}</div>"
        return repr_block(text, head + body, "tensor")
    if values.size == 0:
        return repr_block(text, head + "<div class='ak-note'>empty</div>", "tensor")
    stats, flags, finite = _tensor_stats(values, t.dtype.is_float)
    body = [f"<div class='ak-stats'>{''.join(f'<span>{esc(s)}</span>' for s in stats)}{''.join(flags)}</div>"]
    preview = np.array2string(
        values, precision=4, threshold=8 * opts.preview**2, edgeitems=opts.preview, max_line_width=96
    )
    panels = [
        f"<div><div class='ak-panel-title'>values</div><pre class='ak-preview'>{esc(preview)}</pre></div>"
    ]
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


# --------------------------------------------------------------------------------------- modules


def _share_notes(module) -> dict[str, str]:
    """Why each shared parameter is shared: its own ``Parameter.shared``, a published name, or a tie."""
    by_storage: dict[int, list[str]] = {}
    params = list(module.named_parameters())
    for name, p in params:
        if p.tensor is not None:
            by_storage.setdefault(id(p.tensor.storage), []).append(name)
    notes = {}
    for name, p in params:
        why = []
        if p.shared:
            why.append(str(p.shared))
        if p.tensor is not None:
            published = getattr(p.tensor.storage, "name", None)
            if published and not p.shared:
                why.append(f"published as {published}")
            others = [n for n in by_storage.get(id(p.tensor.storage), []) if n != name]
            if others:
                why.append("tied with " + ", ".join(others))
        if why:
            notes[name] = "; ".join(why)
    return notes


def _param_rows(mod, prefix: str, notes: dict[str, str]) -> list[list]:
    rows = []
    for pname, p in mod._params.items():
        full = f"{prefix}.{pname}" if prefix else pname
        if p.tensor is not None:
            dt = p.tensor.dtype.name
        else:
            dt = raw(f"{esc(p.dtype.name)} <span class='ak-dim'>(not loaded)</span>")
        note = notes.get(full)
        rows.append(
            [
                pname,
                str(tuple(p.shape)),
                dt,
                p.numel,
                fmt_bytes(p.nbytes),
                raw(badge(note, "accent")) if note else "",
            ]
        )
    return rows


_PARAM_HEADS = ["parameter", "shape", "dtype", "params", "bytes", "shared"]


def module_html(module) -> str:
    """A module tree: each submodule a collapsible section with its parameter count, bytes (and a bar
    for its share of the whole), its parameters' shapes, dtypes and bytes, and which are shared."""
    from ..nn import module_tree_text

    opts = get_options()
    text = module_tree_text(module, max_lines=opts.max_rows)
    notes = _share_notes(module)
    total = max(module.nbytes(), 1)
    dtypes: dict[str, int] = {}
    for _, p in module.named_parameters():
        key = p.tensor.dtype.name if p.tensor is not None else f"{p.dtype.name} (not loaded)"
        dtypes[key] = dtypes.get(key, 0) + p.nbytes
    extra = module.extra_repr()
    parts = [
        f"<code class='ak-mono'>{esc(type(module).__name__)}{esc(f'({extra})' if extra else '')}</code>",
        f"<span class='ak-stats'><span>{esc(fmt_count(module.num_parameters()))} params</span>"
        f"<span>{esc(fmt_bytes(module.nbytes()))}</span></span>",
    ]
    parts += [badge(f"{k} {fmt_bytes(v)}") for k, v in dtypes.items()]
    dev = module.device
    if dev is not None:
        parts.append(badge(dev.spec))
    if notes:
        saved = sum(p.nbytes for _, p in module.named_parameters()) - module.nbytes()
        label = f"{len(notes)} shared" + (f", {fmt_bytes(saved)} saved" if saved > 0 else "")
        parts.append(badge(label, "accent"))
    budget = [opts.max_rows]

    def body_of(mod, prefix: str, depth: int) -> str:
        out = []
        rows = _param_rows(mod, prefix, notes)
        if rows:
            budget[0] -= len(rows)
            out.append(table(rows, _PARAM_HEADS, numeric=(3, 4)))
        children = list(mod.named_children())
        for i, (cname, child) in enumerate(children):
            if budget[0] <= 0:
                out.append(
                    f"<div class='ak-note'>... {len(children) - i} more submodules (options(max_rows=...))</div>"
                )
                break
            budget[0] -= 1
            full = f"{prefix}.{cname}" if prefix else cname
            cextra = child.extra_repr()
            kind = f"{type(child).__name__}({cextra})" if cextra else type(child).__name__
            nbytes = child.nbytes()
            head_extra = (
                bar(nbytes / total, title=f"{nbytes / total:.1%} of the bytes")
                + f" <code>{esc(kind)}</code> · {esc(fmt_count(child.num_parameters()))} params · {esc(fmt_bytes(nbytes))}"
            )
            shared_here = sum(1 for n in notes if n.startswith(full + "."))
            if shared_here:
                head_extra += f" · {shared_here} shared"
            out.append(section(cname, body_of(child, full, depth + 1), extra=head_extra))
        return "".join(out)

    tree = f"<div class='ak-tree'>{body_of(module, '', 0)}</div>"
    return repr_block(text, header("Module", *parts) + tree, "module")


# --------------------------------------------------------------------------------------- profiles


def _profile_top(p, top: int | None) -> int:
    return int(top or getattr(p, "display_top", None) or get_options().top)


def profile_html(p, top: int | None = None) -> str:
    """A profile: totals (dispatches, wall, device and host time, device busy share), device time by
    kernel as a stacked bar, the kernel table with share bars, and the dispatch list (collapsed)."""
    top = _profile_top(p, top)
    opts = get_options()
    timed = p.has_gpu_times
    ks = p.kernels()
    metric = [(k.gpu_ns if timed else k.host_ns) for k in ks]
    total = sum(metric) or 1
    colour = {k.kernel: i for i, k in enumerate(ks[:9])}
    spec = getattr(p.device, "spec", str(p.device))
    parts = [badge(spec)]
    if p.label:
        parts.append(f"<span class='ak-name'>{esc(p.label)}</span>")
    if not timed:
        parts.append(badge("no GPU timestamps: host times", "warn"))
    out = [header("Profile", *parts)]
    stats = [
        ("dispatches", f"{len(p.records):,}"),
        ("wall", f"{p.wall_ns / 1e6:.3f} ms"),
        ("device", f"{p.gpu_ns / 1e6:.3f} ms"),
        ("host recording", f"{p.host_ns / 1e6:.3f} ms"),
    ]
    out.append(
        "<div class='ak-stats'>"
        + "".join(f"<span><span class='ak-key'>{esc(k)}</span> {esc(v)}</span>" for k, v in stats)
        + f"<span><span class='ak-key'>busy</span> {bar(p.gpu_busy)} {p.gpu_busy:.0%}</span></div>"
    )
    if not ks:
        out.append("<div class='ak-note'>nothing ran on this device while profiling</div>")
        return repr_block(p.table(top), "".join(out), "profile")
    segs, legend, other = [], [], 0
    for k, m in zip(ks, metric):
        if k.kernel in colour:
            tip = f"{k.kernel}: {m / 1e6:.3f} ms ({m / total:.1%})"
            segs.append(
                f"<span class='{_colour(colour[k.kernel])}' style='width:{_pct(m / total)}' title='{esc(tip)}'></span>"
            )
            legend.append(
                f"<span><span class='ak-swatch {_colour(colour[k.kernel])}'></span>{esc(k.kernel)} {m / total:.0%}</span>"
            )
        else:
            other += m
    if other:
        segs.append(
            f"<span class='ak-cbg-other' style='width:{_pct(other / total)}' title='other kernels'></span>"
        )
        legend.append(f"<span><span class='ak-swatch ak-cbg-other'></span>other {other / total:.0%}</span>")
    out.append(f"<div class='ak-stack'>{''.join(segs)}</div><div class='ak-legend'>{''.join(legend)}</div>")
    rows = []
    for k, m in list(zip(ks, metric))[:top]:
        mean_us = m / k.calls / 1e3 if k.calls else 0.0
        rate = k.flops / k.gpu_ns if k.gpu_ns and k.flops else None
        swatch = f"<span class='ak-swatch {_colour(colour.get(k.kernel))}'></span>"
        rows.append(
            [
                raw(swatch + esc(k.kernel)),
                k.calls,
                f"{k.gpu_ms:.3f}",
                raw(f"{bar(m / total)} <span class='ak-num'>{m / total:6.1%}</span>"),
                f"{mean_us:.1f}",
                f"{k.host_ms:.3f}",
                f"{rate:.1f}" if rate else "",
            ]
        )
    more = f"{len(ks) - top} more kernels" if len(ks) > top else None
    heads = ["kernel", "calls", "device ms", "share", "mean µs", "host ms", "GFLOP/s"]
    out.append(table(rows, heads, numeric=(1, 2, 4, 5, 6), more=more))
    out.append(section("dispatches", _dispatch_table(p.records, opts.max_rows), count=len(p.records)))
    return repr_block(p.table(top), "".join(out), "profile")


def _dispatch_table(records, limit: int) -> str:
    g0 = min((r.gpu_start_ns for r in records if r.gpu_start_ns is not None), default=0)
    rows = []
    for i, r in enumerate(records[:limit]):
        on_device = r.gpu_start_ns is not None
        rows.append(
            [
                i,
                r.label,
                r.kernel,
                f"{(r.gpu_start_ns - g0) / 1e6:.3f}" if on_device else "",
                f"{(r.gpu_end_ns - r.gpu_start_ns) / 1e3:.1f}" if on_device else "",
                f"{r.host_dur_ns / 1e3:.1f}",
            ]
        )
    more = f"{len(records) - limit} more dispatches" if len(records) > limit else None
    heads = ["#", "label", "kernel", "start ms", "device µs", "host µs"]
    return table(rows, heads, numeric=(0, 3, 4, 5), more=more)


def timeline_png(p, top: int = 8, max_records: int = 5000) -> bytes | None:
    """``Profile.plot`` rendered to PNG bytes (None without matplotlib, without records, or with more
    than ``max_records`` dispatches). Uses no pyplot figure, so nothing is shown twice by the inline
    backend."""
    if not p.records or len(p.records) > max_records:
        return None
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    import io

    fig = Figure(figsize=(10, 2.6), dpi=100)
    p.plot(ax=fig.add_subplot(), top=top)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


class TimelinePlot:
    """A profile's timeline as a PNG image (``_repr_png_``) with a one-line text twin."""

    def __init__(self, p, png: bytes) -> None:
        self.text = (
            f"timeline: {len(p.records)} dispatches on {getattr(p.device, 'spec', p.device)}, "
            f"device busy {p.gpu_busy:.0%} of {p.wall_ns / 1e6:.1f} ms"
        )
        self.png = png

    def __repr__(self) -> str:
        return self.text

    def _repr_png_(self) -> bytes:
        return self.png


__all__ = [
    "DeviceList",
    "MemoryReport",
    "Raw",
    "badge",
    "bar",
    "css",
    "device_html",
    "device_text",
    "devices_html",
    "devices_text",
    "esc",
    "fmt_bytes",
    "fmt_count",
    "header",
    "histogram_html",
    "html_enabled",
    "html_of",
    "kv_table",
    "memory_html",
    "mimebundle",
    "module_html",
    "profile_html",
    "raw",
    "repr_block",
    "section",
    "table",
    "tensor_html",
    "text_of",
    "timeline_png",
    "TimelinePlot",
]
