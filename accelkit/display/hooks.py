"""Where a higher layer plugs into display: the widget view that ``options(display="widget")`` shows.

The display layer imports no IPython: ``accelkit.notebook.load_ipython_extension`` registers a
function here that turns an object into an ipywidgets mime bundle (or None where no kernel is live),
and every object's ``_repr_mimebundle_`` asks ``mimebundle`` for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .settings import get_options

#: obj, include, exclude -> a mime bundle dict, or None for the static reprs
WidgetView = Callable[[object, object, object], "dict | None"]

_lock = threading.Lock()
_widget_view: WidgetView | None = None


def set_widget_view(fn: WidgetView | None) -> WidgetView | None:
    """Make ``fn`` the widget view (None removes it); returns the one it replaces."""
    global _widget_view
    with _lock:
        previous, _widget_view = _widget_view, fn
    return previous


def mimebundle(obj, include=None, exclude=None) -> dict | None:
    """The widget view of ``obj`` as a mime bundle when ``options(display="widget")`` and a widget view
    is registered (``%load_ext accelkit``), else None (IPython then uses ``_repr_html_`` and ``__repr__``).
    Objects' ``_repr_mimebundle_`` call this."""
    view = _widget_view
    if view is None or get_options().display != "widget":
        return None
    return view(obj, include, exclude)


def html_of(obj) -> str | None:
    """An object's static HTML repr (its ``_repr_html_``), or None when it has none or HTML is off."""
    fn = getattr(obj, "_repr_html_", None)
    return fn() if callable(fn) else None


__all__ = ["WidgetView", "html_of", "mimebundle", "set_widget_view"]
