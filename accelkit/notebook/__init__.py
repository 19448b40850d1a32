"""The notebook layer: what needs IPython: the ``%accel`` magics, ipywidgets views, the extension hooks.

``%load_ext accelkit`` registers the ``%accel`` magics, the widget view that
``ak.options(display="widget")`` shows (through ``accelkit.display.set_widget_view``), and, where
ipywidgets is installed and a kernel is attached, a progress widget for long weight-store tasks
(downloads, hashing, uploads). The static reprs and the options live in ``accelkit.display``.

- ``magics``: ``AccelMagics`` (``%accel devices | use | memory | profile | bench``).
- ``widgets``: ``LiveView``, ``DeviceView``, ``ProfileView``, ``ProgressView``, ``view``.
- ``kernel``: ``kernel_is_live``, ``widgets_available``, ``widget_mimebundle``.

May import: every layer below it; only ``bench`` and ``cli`` sit above.
"""

from __future__ import annotations

from ..display import set_widget_view
from ..io.store import add_progress_hook
from .kernel import widget_mimebundle, widgets_available

_remove_progress_hook = None


def load_ipython_extension(ipython) -> None:
    """Register the ``%accel`` magics, the widget view and the progress widget hook with ``ipython``."""
    global _remove_progress_hook
    from .magics import AccelMagics  # needs IPython, which importing accelkit.notebook does not

    ipython.register_magics(AccelMagics)
    set_widget_view(widget_mimebundle)
    if _remove_progress_hook is None and widgets_available():
        from .widgets import AutoProgress  # needs ipywidgets

        _remove_progress_hook = add_progress_hook(AutoProgress(ipython))


def unload_ipython_extension(ipython) -> None:
    """Take the widget view and the progress hook away again (``%unload_ext accelkit``); the magics stay."""
    global _remove_progress_hook
    set_widget_view(None)
    if _remove_progress_hook is not None:
        _remove_progress_hook()
        _remove_progress_hook = None


__all__ = ["load_ipython_extension", "unload_ipython_extension"]
