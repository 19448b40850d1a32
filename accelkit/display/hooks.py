"""Where a higher layer plugs into display: the widget view that ``options(display="widget")`` shows.

The display layer imports no IPython: ``accelkit.notebook.load_ipython_extension`` registers a
function here that turns an object into an ipywidgets mime bundle (or None where no kernel is live),
and every object's ``_repr_mimebundle_`` asks ``mimebundle`` for it.

``Displayable`` is how an object of a higher layer gets its reprs: it names its text and HTML
functions from this layer once, in its class statement, and inherits the three repr methods.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .settings import get_options, html_enabled

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


class Displayable:
    """Mixin: ``__repr__``, ``_repr_html_`` and ``_repr_mimebundle_`` over two display functions.

        class Tensor(Displayable, text=tensor_summary, html=tensor_html): ...

    ``repr(obj)`` is ``text(obj)``; ``_repr_html_`` is ``html(obj)``, or None under ``options(html=False)``;
    ``_repr_mimebundle_`` is the widget view (``mimebundle``). Without ``text`` the class keeps its own
    ``__repr__``; a subclass may give either again.
    """

    __slots__ = ()

    def __init_subclass__(cls, text: Callable | None = None, html: Callable | None = None, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if text is not None:

            def __repr__(self) -> str:  # noqa: N807 - the method this installs
                return text(self)

            cls.__repr__ = __repr__
        if html is not None:
            cls._html = staticmethod(html)

    def _repr_html_(self) -> str | None:
        return type(self)._html(self) if html_enabled() else None

    def _repr_mimebundle_(self, include=None, exclude=None):  # a widget view with options(display="widget")
        return mimebundle(self, include, exclude)


def html_of(obj) -> str | None:
    """An object's static HTML repr (its ``_repr_html_``), or None when it has none or HTML is off."""
    fn = getattr(obj, "_repr_html_", None)
    return fn() if callable(fn) else None


__all__ = ["Displayable", "WidgetView", "html_of", "mimebundle", "set_widget_view"]
