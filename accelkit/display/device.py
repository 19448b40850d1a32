"""Device reprs: one device, the device table (``ak.devices()``), and memory (``Device.memory()``,
``%accel memory``), as text and static HTML.

Duck-typed: a device is anything with ``spec``, ``name``, ``kind``, ``backend_name``, ``backend_api``,
``is_software``, ``is_default``, ``fallback_reason``, ``features``, ``limits``, ``info``, ``lost``,
``is_open``, ``describe()`` and ``memory()``. Nothing here opens a device.
"""

from __future__ import annotations

from collections.abc import Sequence

from .html import badge, bar, esc, header, kv_table, raw, repr_block, section, table
from .text import format_bytes

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
        return f"{value:,} ({format_bytes(value)})"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _default_of(devs: Sequence):
    """The device in ``devs`` that ``accelkit.device()`` returns now, or None."""
    return next((d for d in devs if d.is_default), None)


def _software_note(dev) -> str:
    """`` software`` for a software adapter whose kind does not already say so, else nothing."""
    return " software" if dev.is_software and dev.kind != "software" else ""


def device_line(dev, *, reason: bool = True) -> str:
    """One line: ``<accelkit.Device spec 'name' kind [(fallback: why)]>``; "software" appears once.

    ``reason=False`` leaves the fallback reason out (``str(dev)``, printed next to the reason).
    """
    extra = _software_note(dev)
    why = f" (fallback: {dev.fallback_reason})" if reason and dev.fallback_reason else ""
    return f"<accelkit.Device {dev.spec} {dev.name!r} {dev.kind}{extra}{why}>"


def device_text(dev) -> str:
    """Several lines: what the device is, why it was chosen or not, key features and limits, memory."""
    lines = [device_line(dev)]
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
            f"  memory: {format_bytes(m.get('allocated_bytes', 0))} allocated, "
            f"{format_bytes(m.get('peak_bytes', 0))} peak, {m.get('buffers', 0)} buffers"
        )
    return "\n".join(lines)


def _device_badges(dev) -> str:
    parts = [badge(dev.kind)]
    if dev.is_software and dev.kind != "software":
        parts.append(badge("software", "warn"))
    if dev.is_default:
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


def _device_body(dev, fallback: bool = True) -> str:
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
    head = header(
        "Device",
        f"<code class='ak-mono'>{esc(dev.spec)}</code>",
        f"<span class='ak-name'>{esc(dev.name)}</span>",
        _device_badges(dev),
    )
    return repr_block(device_text(dev), head + _device_body(dev), "device")


def devices_text(devs: Sequence) -> str:
    lines = [f"accelkit devices ({len(devs)}, best first):"]
    for d in devs:
        mark = "*" if d.is_default else " "
        soft = " [software]" if d.is_software and d.kind != "software" else ""
        lines.append(f" {mark} {d.spec:<10} {d.kind:<12} {d.name}{soft}")
    chosen = _default_of(devs)
    if chosen is not None:
        why = f" ({chosen.fallback_reason})" if chosen.fallback_reason else ""
        lines.append(f"default: {chosen.spec}{why}")
    return "\n".join(lines)


def devices_html(devs: Sequence) -> str:
    """Every device in one table (default marked, key features as yes/no), each with its details
    in a collapsible section."""
    chosen = _default_of(devs)
    rows = []
    for d in devs:
        mark = raw("<span title='default device'>&#9679;</span>") if d is chosen else ""
        api = d.backend_api or d.backend_name
        feats = [("yes" if ok else "no") if ok is not None else "-" for _, ok in _key_features(d)]
        soft = raw(badge("software", "warn")) if d.is_software and d.kind != "software" else ""
        rows.append([mark, raw(f"<code>{esc(d.spec)}</code>"), d.kind, d.name, soft, api, *feats])
    heads = ["", "spec", "kind", "name", "", "API", "f16", "subgroups", "timestamps"]
    parts = [
        header(
            "Devices",
            f"<span class='ak-dim'>{len(devs)} found, best first</span>",
            badge(f"default {chosen.spec}", "accent") if chosen is not None else "",
        )
    ]
    if chosen is not None and chosen.fallback_reason:
        parts.append(f"<div class='ak-note'>{esc(chosen.spec)}: {esc(chosen.fallback_reason)}</div>")
    parts.append(table(rows, heads, wrap=(3,)))
    for d in devs:
        shown_above = d is chosen
        parts.append(section(d.spec, _device_body(d, fallback=not shown_above), extra=esc(d.name)))
    return repr_block(devices_text(devs), "".join(parts), "devices")


# ---------------------------------------------------------------------------------- memory

_MEMORY_BARS = (
    ("allocated", "allocated_bytes"),
    ("peak", "peak_bytes"),
    ("reserved", "reserved_bytes"),
    ("cached", "cached_bytes"),
)


def memory_text(stats: dict, title: str = "memory") -> str:
    lines = [f"{title}:"]
    for k, v in stats.items():
        lines.append(f"  {k:<20} {format_bytes(v) if k.endswith('_bytes') else v}")
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
                    raw(f"<span class='ak-num'>{esc(format_bytes(v))}</span>"),
                    raw(bar(v / scale, wide=True)),
                ]
            )
    if limit:
        rows.append(
            [
                "limit",
                raw(f"<span class='ak-num'>{esc(format_bytes(limit))}</span>"),
                raw(bar(1.0, wide=True)),
            ]
        )
    shown = {k for _, k in _MEMORY_BARS} | {"limit_bytes", "budget_bytes"}
    rest = [(k, format_bytes(v) if k.endswith("_bytes") else v) for k, v in stats.items() if k not in shown]
    return table(rows, cls="ak-memory") + (kv_table(rest) if rest else "")


def memory_html(stats: dict, title: str = "memory") -> str:
    """Device memory (``Device.memory()``): allocated, peak, reserved and cached bytes as bars (scaled
    to a ``limit_bytes``/``budget_bytes`` entry when present, else to the largest), then the counts."""
    return repr_block(memory_text(stats, title), header(title) + _memory_body(stats), "memory")


def memory_report_text(report) -> str:
    """The text of a memory report (``report.entries``: (spec, name, stats) per device)."""
    return "\n".join(memory_text(stats, f"memory of {spec} ({name})") for spec, name, stats in report.entries)


def memory_report_html(report) -> str:
    """One memory section per device of a memory report, with the text as fallback."""
    parts = []
    for spec, name, stats in report.entries:
        parts.append(
            header(
                "Memory",
                f"<code class='ak-mono'>{esc(spec)}</code>",
                f"<span class='ak-name'>{esc(name)}</span>",
            )
        )
        parts.append(_memory_body(stats))
    return repr_block(memory_report_text(report), "".join(parts), "memory")


__all__ = [
    "device_html",
    "device_line",
    "device_text",
    "devices_html",
    "devices_text",
    "memory_html",
    "memory_report_html",
    "memory_report_text",
    "memory_text",
]
