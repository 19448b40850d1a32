"""Where output goes: is a Jupyter kernel attached, can ipywidgets be used, and the widget view hook
that ``load_ipython_extension`` hands to ``accelkit.display``."""

from __future__ import annotations


def kernel_is_live() -> bool:
    """True inside a Jupyter kernel (a frontend that can show widgets may be attached); False in a
    terminal, a plain Python process, or an in-process ``InteractiveShell``."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def widgets_available() -> bool:
    """True when ipywidgets (8 or later) can be imported."""
    try:
        import ipywidgets
    except ImportError:
        return False
    return int(ipywidgets.__version__.split(".")[0]) >= 8


def widget_mimebundle(obj, include=None, exclude=None) -> dict | None:
    """The ipywidgets view of ``obj`` as a mime bundle where a kernel is live and ipywidgets is there,
    else None (the static reprs show). ``accelkit.display.mimebundle`` calls this with
    ``options(display="widget")`` once ``%load_ext accelkit`` registered it."""
    if not (kernel_is_live() and widgets_available()):
        return None
    from .widgets import view

    return view(obj)._repr_mimebundle_(include=include, exclude=exclude)


__all__ = ["kernel_is_live", "widget_mimebundle", "widgets_available"]
