"""Process-wide options (``ak.options(...)``, as a call or a ``with`` block): display settings and ``compile``.

>>> ak.options(display="text")            # from now on: text only, no HTML reprs
>>> with ak.options(display="widget"):    # inside the block: ipywidgets views where a kernel is live
...     display(ak.devices())

``display`` is one of:

- ``"auto"`` (the default, or env ``ACCELKIT_DISPLAY``): text plus static HTML. Static output is
  deterministic, so notebooks re-run under nbval and diffs stay stable; live views are asked for
  explicitly (``accelkit.notebook.widgets``) or with ``display="widget"``.
- ``"html"``: the same as auto.
- ``"widget"``: ipywidgets views (with the static HTML and text as fallbacks in the same output)
  where ``%load_ext accelkit`` ran, ipywidgets is installed and a Jupyter kernel is attached;
  elsewhere as auto.
- ``"text"``: text only; ``_repr_html_`` returns None.

The settings are process-wide (a ``with`` block restores them on exit, it does not isolate threads).
``compile`` (default True, or env ``ACCELKIT_COMPILE=0`` for False): model calls and
``ak.compile``'d functions capture a plan per input signature and replay it (``accelkit.graph``);
``ak.options(compile=False)`` runs them op by op, read at each call.

They live in the bottom layer so that every layer may read them with ``get_options()``; a setting
that is not about display is one more field in ``DisplayOptions``, one more entry in ``_CHECKS``
and one more keyword of ``options``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace

from ..errors import AccelkitError

DISPLAY_MODES = ("auto", "text", "html", "widget")


class OptionsError(AccelkitError, ValueError):
    """An unknown option or an option value out of range."""


@dataclass(frozen=True)
class DisplayOptions:
    """The current settings (``ak.options()`` with no arguments shows them)."""

    display: str = "auto"  # auto | text | html | widget
    max_rows: int = 200  # rows at most in a module tree, a kernel list, a dispatch list
    top: int = 15  # kernels in a profile's table
    preview: int = 3  # a tensor preview shows this many items at each edge of each axis
    bins: int = 24  # histogram bins in a tensor's HTML
    progress: bool = True  # with %load_ext accelkit: show a progress widget for long downloads/uploads
    live_interval: float = 1.0  # seconds between refreshes of a live widget view
    compile: bool = True  # model calls (and ak.compile'd functions) replay captured plans (accelkit.graph)


def _display_mode(name: str, value) -> str:
    value = str(value).lower()
    if value not in DISPLAY_MODES:
        raise OptionsError(f"options: display must be one of {', '.join(DISPLAY_MODES)}, got {value!r}")
    return value


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptionsError(f"options: {name} must be a positive int, got {value!r}")
    return value


def _positive_seconds(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise OptionsError(f"options: {name} must be a positive number of seconds, got {value!r}")
    return float(value)


def _flag(name: str, value) -> bool:
    return bool(value)


def _switch(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise OptionsError(f"options: {name} must be True or False, got {value!r}")
    return bool(value)


#: one check per field of DisplayOptions: (name, value) -> the value to store, or OptionsError
_CHECKS: dict[str, Callable] = {
    "display": _display_mode,
    "max_rows": _positive_int,
    "top": _positive_int,
    "preview": _positive_int,
    "bins": _positive_int,
    "progress": _flag,
    "live_interval": _positive_seconds,
    "compile": _switch,
}


def _initial() -> DisplayOptions:
    mode = os.environ.get("ACCELKIT_DISPLAY", "auto").strip().lower() or "auto"
    replay = os.environ.get("ACCELKIT_COMPILE", "1").strip().lower() not in ("0", "false", "no", "off")
    return DisplayOptions(display=mode if mode in DISPLAY_MODES else "auto", compile=replay)


_lock = threading.Lock()
_current = _initial()


def get_options() -> DisplayOptions:
    """The settings now in force."""
    return _current


def html_enabled() -> bool:
    """Whether ``_repr_html_`` should return HTML (False after ``ak.options(display="text")``)."""
    return _current.display != "text"


def _validated(changes: dict) -> dict:
    out = {}
    for name, value in changes.items():
        check = _CHECKS.get(name)
        if check is None:
            raise OptionsError(f"options: unknown option {name!r}; known: {', '.join(_CHECKS)}")
        out[name] = check(name, value)
    return out


class options:  # noqa: N801 - called like a function, usable as a context manager
    """Change options now; as a ``with`` block, put the previous ones back at its end.

    Arguments left as None keep their value. ``ak.options()`` shows the current settings.

    >>> ak.options(display="text")     # rich output off
    >>> with ak.options(top=5, display="html"):
    ...     display(prof)               # a bare ``prof`` here would show nothing: only a cell's last line does
    """

    def __init__(
        self,
        display: str | None = None,
        *,
        max_rows: int | None = None,
        top: int | None = None,
        preview: int | None = None,
        bins: int | None = None,
        progress: bool | None = None,
        live_interval: float | None = None,
        compile: bool | None = None,
    ) -> None:
        global _current
        given = {
            "display": display,
            "max_rows": max_rows,
            "top": top,
            "preview": preview,
            "bins": bins,
            "progress": progress,
            "live_interval": live_interval,
            "compile": compile,
        }
        changes = _validated({k: v for k, v in given.items() if v is not None})
        with _lock:
            self.previous = _current
            _current = replace(_current, **changes)
            self.current = _current

    def __enter__(self) -> DisplayOptions:
        return self.current

    def __exit__(self, *exc) -> None:
        global _current
        with _lock:
            _current = self.previous

    def __repr__(self) -> str:
        now = get_options()
        return "accelkit options: " + ", ".join(f"{f.name}={getattr(now, f.name)!r}" for f in fields(now))

    def as_dict(self) -> dict:
        return asdict(get_options())


__all__ = [
    "DISPLAY_MODES",
    "DisplayOptions",
    "OptionsError",
    "get_options",
    "html_enabled",
    "options",
]
