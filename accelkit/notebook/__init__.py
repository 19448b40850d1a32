"""The notebook layer: reprs (text, static HTML, ipywidgets views), ``%accel`` magics, display options.

``%load_ext accelkit`` registers the ``%accel`` magics and, where ipywidgets is installed and a
kernel is attached, a progress widget for long weight-store tasks (downloads, hashing, uploads).

- ``accelkit.notebook.reprs``: static HTML for devices, tensors, modules, profiles, memory, and the
  pieces (``section``, ``table``, ...) other reprs reuse.
- ``accelkit.notebook.widgets``: ``LiveView``, ``DeviceView``, ``ProfileView``, ``ProgressView``.
- ``accelkit.notebook.options``: ``ak.options(display="text" | "html" | "widget" | "auto", ...)``.
"""

from __future__ import annotations

_remove_progress_hook = None


def load_ipython_extension(ipython) -> None:
    """Register the ``%accel`` magics (and the progress widget hook) with ``ipython``."""
    global _remove_progress_hook
    from .magics import AccelMagics
    from .options import widgets_available

    ipython.register_magics(AccelMagics)
    if _remove_progress_hook is None and widgets_available():
        from ..io.store import add_progress_hook
        from .widgets import AutoProgress

        _remove_progress_hook = add_progress_hook(AutoProgress(ipython))


def unload_ipython_extension(ipython) -> None:
    """Take the progress hook away again (``%unload_ext accelkit``); the magics stay registered."""
    global _remove_progress_hook
    if _remove_progress_hook is not None:
        _remove_progress_hook()
        _remove_progress_hook = None


__all__ = ["load_ipython_extension", "unload_ipython_extension"]
