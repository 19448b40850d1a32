"""The display layer (bottom, above ``errors``): text formatters, static HTML reprs, CSS, options.

Owns: how every accelkit object shows itself as text and as static HTML (no JavaScript), the
stylesheet, the process-wide options (``ak.options``), and the hook through which the notebook
layer adds ipywidgets views. Every object's ``__repr__`` / ``_repr_html_`` / ``_repr_mimebundle_``
is one line over a name imported from here.

May import: the standard library, numpy and ``accelkit.errors``; nothing else of accelkit. The
reprs are duck-typed (xarray's ``formatting_html.py`` pattern): each module's docstring lists the
attributes it reads, so the layers above pass their objects in without this layer knowing them.

- ``text``: ``format_bytes``, ``format_count``, ``format_ms``
- ``html``, ``css``: the repr frame and building blocks (``repr_block``, ``section``, ``table``, ...)
- ``device``, ``tensor``, ``module``, ``profile``, ``pool``, ``sharing``: one file per object's reprs
- ``settings``: ``options``, ``DisplayOptions``, ``OptionsError``, ``get_options``, ``html_enabled``
- ``hooks``: ``Displayable`` (the repr mixin), ``mimebundle``, ``set_widget_view``, ``html_of``
"""

from __future__ import annotations

from .css import css
from .device import (
    device_html,
    device_line,
    device_text,
    devices_html,
    devices_text,
    memory_html,
    memory_report_html,
    memory_report_text,
    memory_text,
)
from .hooks import Displayable, html_of, mimebundle, set_widget_view
from .html import Raw, badge, bar, esc, header, kv_table, raw, repr_block, section, table
from .module import module_html, module_tree_text
from .pool import cluster_stats_html, pool_stats_html
from .profile import profile_html, profile_text
from .settings import DISPLAY_MODES, DisplayOptions, OptionsError, get_options, html_enabled, options
from .sharing import consumers_text, sharing_report_html
from .tensor import histogram_html, tensor_html, tensor_summary
from .text import format_bytes, format_count, format_ms

__all__ = [
    "DISPLAY_MODES",
    "Displayable",
    "DisplayOptions",
    "OptionsError",
    "Raw",
    "badge",
    "bar",
    "consumers_text",
    "css",
    "device_html",
    "device_line",
    "device_text",
    "devices_html",
    "devices_text",
    "esc",
    "format_bytes",
    "format_count",
    "format_ms",
    "get_options",
    "header",
    "histogram_html",
    "html_enabled",
    "html_of",
    "kv_table",
    "memory_html",
    "memory_report_html",
    "memory_report_text",
    "memory_text",
    "mimebundle",
    "module_html",
    "module_tree_text",
    "options",
    "cluster_stats_html",
    "pool_stats_html",
    "profile_html",
    "profile_text",
    "raw",
    "repr_block",
    "section",
    "set_widget_view",
    "sharing_report_html",
    "table",
    "tensor_html",
    "tensor_summary",
]
