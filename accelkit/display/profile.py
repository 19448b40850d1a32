"""Profile reprs: the kernel table as text, and static HTML (totals, device time by kernel as a
stacked bar, the kernel table with share bars, the dispatch list).

Duck-typed: a profile is anything with ``device``, ``label``, ``records`` (each with ``label``,
``kernel``, ``gpu_start_ns``, ``gpu_end_ns``, ``host_dur_ns``), ``kernels()`` (each with ``kernel``,
``calls``, ``gpu_ns``, ``gpu_ms``, ``host_ns``, ``host_ms``, ``flops``), ``wall_ns``, ``gpu_ns``,
``host_ns``, ``gpu_busy``, ``has_gpu_times`` and optionally ``display_top``.
"""

from __future__ import annotations

from .html import badge, bar, colour_class, esc, header, percent, raw, repr_block, section, table
from .settings import get_options


def _profile_top(p, top: int | None) -> int:
    """Kernels to list: ``top``, else the profile's ``display_top`` (``%accel profile --top``), else
    ``options(top=...)``."""
    return int(top or getattr(p, "display_top", None) or get_options().top)


def profile_text(p, top: int | None = None) -> str:
    """A text table of the top kernels by device time (``top=0``: every kernel; None: the display
    default, see ``_profile_top``)."""
    ks = p.kernels()
    shown = ks if top == 0 else ks[: _profile_top(p, top)]
    total = p.gpu_ns or 1
    spec = getattr(p.device, "spec", p.device)
    replayed = _replayed(p.records)
    lines = [
        f"profile on {spec}: {len(p.records)} dispatches{replayed}, "
        f"wall {p.wall_ns / 1e6:.2f} ms, device {p.gpu_ns / 1e6:.2f} ms "
        f"(busy {p.gpu_busy:.0%}), host recording {p.host_ns / 1e6:.2f} ms"
        + ("" if p.has_gpu_times else " [no GPU timestamps: host times only]"),
        f"{'kernel':<28} {'calls':>6} {'device ms':>10} {'share':>6} {'mean us':>9} {'host ms':>8} {'GFLOP/s':>8}",
    ]
    for s in shown:
        mean = s.gpu_ns / s.calls / 1e3 if s.calls else 0.0
        rate = s.flops / s.gpu_ns if s.gpu_ns and s.flops else 0.0
        lines.append(
            f"{s.kernel[:28]:<28} {s.calls:>6} {s.gpu_ms:>10.3f} {s.gpu_ns / total:>6.1%} {mean:>9.1f} "
            f"{s.host_ms:>8.3f} {rate:>8.1f}"
        )
    if len(ks) > len(shown):
        lines.append(f"... {len(ks) - len(shown)} more kernels")
    return "\n".join(lines)


def _replayed(records) -> str:
    """ " (92 replayed from compiled plans)" when some dispatches came from a plan's replay, else ""."""
    n = sum(1 for r in records if getattr(r, "replayed", False))
    return f" ({n} replayed from compiled plans)" if n else ""


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
        ("dispatches", f"{len(p.records):,}{_replayed(p.records)}"),
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
        return repr_block(profile_text(p, top), "".join(out), "profile")
    segs, legend, other = [], [], 0
    for k, m in zip(ks, metric):
        if k.kernel in colour:
            tip = f"{k.kernel}: {m / 1e6:.3f} ms ({m / total:.1%})"
            segs.append(
                f"<span class='{colour_class(colour[k.kernel])}' style='width:{percent(m / total)}' title='{esc(tip)}'></span>"
            )
            legend.append(
                f"<span><span class='ak-swatch {colour_class(colour[k.kernel])}'></span>{esc(k.kernel)} {m / total:.0%}</span>"
            )
        else:
            other += m
    if other:
        segs.append(
            f"<span class='ak-cbg-other' style='width:{percent(other / total)}' title='other kernels'></span>"
        )
        legend.append(f"<span><span class='ak-swatch ak-cbg-other'></span>other {other / total:.0%}</span>")
    out.append(f"<div class='ak-stack'>{''.join(segs)}</div><div class='ak-legend'>{''.join(legend)}</div>")
    rows = []
    for k, m in list(zip(ks, metric))[:top]:
        mean_us = m / k.calls / 1e3 if k.calls else 0.0
        rate = k.flops / k.gpu_ns if k.gpu_ns and k.flops else None
        swatch = f"<span class='ak-swatch {colour_class(colour.get(k.kernel))}'></span>"
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
    return repr_block(profile_text(p, top), "".join(out), "profile")


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


__all__ = ["profile_html", "profile_text"]
