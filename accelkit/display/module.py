"""Module reprs: the parameter tree as text (``repr(model)``) and as collapsible static HTML.

Duck-typed: a module is anything with ``named_children()``, ``named_parameters()``, ``num_parameters()``,
``nbytes()``, ``extra_repr()`` and ``device``; a parameter has ``shape``, ``dtype``, ``tensor`` (None
until loaded), ``numel``, ``nbytes`` and ``shared`` (why its storage is shared, or None).
"""

from __future__ import annotations

from .html import badge, bar, esc, header, raw, repr_block, section, table
from .settings import get_options
from .text import format_bytes, format_count


def _own_parameters(mod) -> list[tuple[str, object]]:
    """The parameters of ``mod`` itself (not of its children)."""
    return [(n, p) for n, p in mod.named_parameters() if "." not in n]


def module_tree_text(module, name: str = "", indent: int = 0, max_lines: int | None = None) -> str:
    """The module tree with parameter counts, bytes and dtypes (shared weights marked); at most
    ``max_lines`` lines (default: ``options(max_rows=...)``)."""
    limit = get_options().max_rows if max_lines is None else max_lines
    lines: list[str] = []

    def walk(mod, label: str, depth: int) -> None:
        if len(lines) >= limit:
            return
        extra = mod.extra_repr()
        head = f"{'  ' * depth}{label + ': ' if label else ''}{type(mod).__name__}"
        if extra:
            head += f"({extra})"
        head += f"  [{format_count(mod.num_parameters())} params, {format_bytes(mod.nbytes())}]"
        lines.append(head)
        for pname, p in _own_parameters(mod):
            dt = p.tensor.dtype.name if p.tensor is not None else f"{p.dtype.name} (not loaded)"
            mark = f"  shared: {p.shared}" if p.shared else ""
            lines.append(f"{'  ' * (depth + 1)}{pname} {tuple(p.shape)} {dt}{mark}")
        for cname, child in mod.named_children():
            walk(child, cname, depth + 1)

    walk(module, name, indent)
    if len(lines) >= limit:
        lines.append("  ...")
    return "\n".join(lines)


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
    for pname, p in _own_parameters(mod):
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
                format_bytes(p.nbytes),
                raw(badge(note, "accent")) if note else "",
            ]
        )
    return rows


_PARAM_HEADS = ["parameter", "shape", "dtype", "params", "bytes", "shared"]


def module_html(module) -> str:
    """A module tree: each submodule a collapsible section with its parameter count, bytes (and a bar
    for its share of the whole), its parameters' shapes, dtypes and bytes, and which are shared."""
    opts = get_options()
    text = module_tree_text(module)
    notes = _share_notes(module)
    total = max(module.nbytes(), 1)
    dtypes: dict[str, int] = {}
    for _, p in module.named_parameters():
        key = p.tensor.dtype.name if p.tensor is not None else f"{p.dtype.name} (not loaded)"
        dtypes[key] = dtypes.get(key, 0) + p.nbytes
    extra = module.extra_repr()
    parts = [
        f"<code class='ak-mono'>{esc(type(module).__name__)}{esc(f'({extra})' if extra else '')}</code>",
        f"<span class='ak-stats'><span>{esc(format_count(module.num_parameters()))} params</span>"
        f"<span>{esc(format_bytes(module.nbytes()))}</span></span>",
    ]
    parts += [badge(f"{k} {format_bytes(v)}") for k, v in dtypes.items()]
    dev = module.device
    if dev is not None:
        parts.append(badge(dev.spec))
    if notes:
        saved = sum(p.nbytes for _, p in module.named_parameters()) - module.nbytes()
        label = f"{len(notes)} shared" + (f", {format_bytes(saved)} saved" if saved > 0 else "")
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
                + f" <code>{esc(kind)}</code> · {esc(format_count(child.num_parameters()))} params · {esc(format_bytes(nbytes))}"
            )
            shared_here = sum(1 for n in notes if n.startswith(full + "."))
            if shared_here:
                head_extra += f" · {shared_here} shared"
            out.append(section(cname, body_of(child, full, depth + 1), extra=head_extra))
        return "".join(out)

    tree = f"<div class='ak-tree'>{body_of(module, '', 0)}</div>"
    return repr_block(text, header("Module", *parts) + tree, "module")


__all__ = ["module_html", "module_tree_text"]
