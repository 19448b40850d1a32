"""ipywidgets views: a live-updating HTML view, device and profile views, and a progress widget.

Each view is an object with ``.widget`` (the ipywidgets tree) that displays itself as that widget
where a Jupyter kernel is attached, and as text plus the static HTML repr everywhere else (a
terminal, nbconvert, GitHub), so a notebook that shows one still runs under nbval.

>>> view = LiveView(lambda: pool_html(pool), interval=0.5, autostart=True)
>>> view                 # updates every 0.5 s from a background thread until view.stop()
>>> view.refresh()       # or update it by hand

Requires ipywidgets 8 or later.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

import ipywidgets as w
from IPython.display import display

from ..display import (
    device_html,
    device_text,
    devices_html,
    devices_text,
    esc,
    format_bytes,
    get_options,
    html_enabled,
    html_of,
    profile_html,
)
from ..hardware import Device, DeviceList, set_default
from ..hardware import devices as all_devices
from ..io.store import add_progress_hook
from ..profiler import Profile, timeline_png
from .kernel import kernel_is_live

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


class View:
    """A widget view: ``.widget`` where a kernel is live, else ``text()`` and ``html()`` (static)."""

    widget: w.Widget

    def text(self) -> str:
        return f"<{type(self).__name__}>"

    def html(self) -> str | None:
        return None

    def __repr__(self) -> str:
        return self.text()

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        data = {"text/plain": self.text()}
        snapshot = self.html() if html_enabled() else None
        if snapshot:
            data["text/html"] = snapshot
        if kernel_is_live():
            bundle = self.widget._repr_mimebundle_() or {}
            if WIDGET_MIME in bundle:
                data[WIDGET_MIME] = bundle[WIDGET_MIME]
        return data

    def close(self) -> None:
        """Close the widget (its frontend views disappear)."""
        self.widget.close()


# ------------------------------------------------------------------------------------------ live view


def _refresh_loop(ref: weakref.ref, stop: threading.Event, interval: float) -> None:
    while not stop.wait(interval):
        view = ref()
        if view is None:  # nobody holds the view any more
            return
        try:
            view.refresh()
            if view.stop_when is not None and view.stop_when():
                view.refresh()
                stop.set()
        finally:
            del view


class LiveView(View):
    """An ``ipywidgets.HTML`` whose value is ``fn_html()``, re-rendered by ``.refresh()`` or, after
    ``.start()``, every ``interval`` seconds by a background thread (until ``.stop()``, until
    ``stop_when()`` is true, or until the view is garbage-collected).

    ``fn_html`` returns HTML (e.g. a ``reprs.repr_block``); if it raises, the view shows the error and
    keeps trying. The widget is only sent a new value when the HTML changed. Also a context manager:
    ``with LiveView(fn) as v: display(v); work()`` refreshes during the block and once at its end.
    """

    def __init__(
        self,
        fn_html: Callable[[], str],
        interval: float | None = None,
        *,
        autostart: bool = False,
        stop_when: Callable[[], bool] | None = None,
        text: Callable[[], str] | None = None,
        controls: bool = False,
    ) -> None:
        self.fn_html = fn_html
        self.interval = max(0.05, float(interval or get_options().live_interval))
        self.stop_when = stop_when
        self._text = text
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.updates = 0
        self.output = w.HTML(value=self._render())
        if controls:
            refresh = w.Button(description="refresh", icon="refresh", layout=w.Layout(width="auto"))
            refresh.on_click(lambda _: self.refresh())
            live = w.ToggleButton(
                value=autostart, description="live", icon="play", layout=w.Layout(width="auto")
            )
            live.observe(lambda ch: self.start() if ch["new"] else self.stop(), names="value")
            self.widget = w.VBox([w.HBox([refresh, live]), self.output])
        else:
            self.widget = self.output
        if autostart:
            self.start()

    def _render(self) -> str:
        try:
            return self.fn_html()
        except Exception as exc:  # a broken view must not kill the thread or the cell
            return f"<pre class='ak-error-text'>live view: {esc(type(exc).__name__)}: {esc(exc)}</pre>"

    def refresh(self) -> str:
        """Render now and update the widget (only when the HTML changed); returns the HTML."""
        with self._lock:
            value = self._render()
            if value != self.output.value:
                self.output.value = value
                self.updates += 1
            return value

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def start(self, interval: float | None = None) -> LiveView:
        """Refresh every ``interval`` seconds from a daemon thread."""
        if interval is not None:
            self.interval = max(0.05, float(interval))
        if self.running:
            return self
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=_refresh_loop,
            args=(weakref.ref(self), self._stop, self.interval),
            name="accelkit-live-view",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the background refresh (and wait for the thread up to ``timeout`` seconds)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    def close(self) -> None:
        self.stop()
        super().close()

    def __enter__(self) -> LiveView:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        self.refresh()

    def text(self) -> str:
        if self._text is not None:
            return self._text()
        name = getattr(self.fn_html, "__name__", "view")
        return f"<LiveView of {name}, every {self.interval:g} s{', running' if self.running else ''}>"

    def html(self) -> str | None:
        return self.output.value


# ------------------------------------------------------------------------------------------ devices


class DeviceView(View):
    """Devices: a picker (when there are several), the selected device's details and memory, a
    refresh button (memory changes as work runs), and a button that makes it the default device."""

    def __init__(self, devices=None, *, live: bool = False, interval: float | None = None) -> None:
        if devices is None:
            devices = all_devices()
        if isinstance(devices, Device):
            devices = [devices]
        self.devices = DeviceList(devices)
        self.picker = w.Dropdown(
            options=[(f"{d.spec}: {d.name}", i) for i, d in enumerate(self.devices)],
            value=0,
            description="device",
            layout=w.Layout(width="max-content", max_width="100%"),
        )
        self.detail = LiveView(lambda: device_html(self.selected), interval, autostart=live)
        self.picker.observe(lambda _: self.detail.refresh(), names="value")
        refresh = w.Button(description="refresh", icon="refresh", layout=w.Layout(width="auto"))
        refresh.on_click(lambda _: self.detail.refresh())
        use = w.Button(description="use as default", layout=w.Layout(width="auto"))
        self.status = w.HTML()
        use.on_click(lambda _: self._use())
        bar = [refresh, use, self.status]
        if len(self.devices) > 1:
            bar.insert(0, self.picker)
        self.widget = w.VBox([w.HBox(bar), self.detail.widget])
        self.widget.add_class("ak-device-view")

    @property
    def selected(self):
        return self.devices[self.picker.value]

    def _use(self) -> None:
        dev = set_default(self.selected.spec)
        self.status.value = f"<span>default device is now <code>{esc(dev.spec)}</code></span>"
        self.detail.refresh()

    def text(self) -> str:
        return devices_text(self.devices) if len(self.devices) > 1 else device_text(self.devices[0])

    def html(self) -> str | None:
        if not html_enabled():
            return None
        return devices_html(self.devices) if len(self.devices) > 1 else device_html(self.devices[0])

    def close(self) -> None:
        self.detail.stop()
        super().close()


# ------------------------------------------------------------------------------------------ profiles


class ProfileView(View):
    """A profile in tabs: the kernel table (with a slider for how many kernels), the timeline (when
    matplotlib is installed), and a box to save a chrome trace."""

    def __init__(self, profile, top: int | None = None) -> None:
        self.profile = profile
        n = max(1, len(profile.kernels()))
        top = min(top or get_options().top, n)
        self.top = w.IntSlider(value=top, min=1, max=n, description="kernels", continuous_update=False)
        self.table = w.HTML(value=profile_html(profile, top))
        self.top.observe(
            lambda ch: setattr(self.table, "value", profile_html(profile, ch["new"])), names="value"
        )
        png = timeline_png(profile)
        if png is not None:
            timeline = w.Image(value=png, format="png", layout=w.Layout(max_width="100%"))
        else:
            timeline = w.HTML("<i>no timeline: matplotlib is not installed, or nothing ran</i>")
        self.path = w.Text(value="trace.json", description="file")
        save = w.Button(description="save trace", icon="save", layout=w.Layout(width="auto"))
        self.saved = w.HTML()
        save.on_click(lambda _: self._save())
        tracebox = w.VBox(
            [
                w.HBox([self.path, save]),
                self.saved,
                w.HTML("<span>open it in <code>https://ui.perfetto.dev</code> or chrome://tracing</span>"),
            ]
        )
        tabs = w.Tab(children=[w.VBox([self.top, self.table]), timeline, tracebox])
        for i, title in enumerate(("kernels", "timeline", "trace")):
            tabs.set_title(i, title)
        self.widget = tabs
        self.widget.add_class("ak-profile-view")

    def _save(self) -> None:
        try:
            path = self.profile.save_trace(self.path.value)
        except OSError as exc:
            self.saved.value = f"<span class='ak-error-text'>could not write: {esc(exc)}</span>"
            return
        self.saved.value = (
            f"<span>wrote <code>{esc(path)}</code> ({len(self.profile.records)} dispatches)</span>"
        )

    def text(self) -> str:
        return self.profile.table(self.top.value)

    def html(self) -> str | None:
        return profile_html(self.profile, self.top.value)


# ------------------------------------------------------------------------------------------ progress


class ProgressView(View):
    """Progress bars for the weight store's tasks (downloads, hashing, uploads): one row per task,
    filled as ``accelkit.io.store`` reports progress; finished rows turn green (the last ``keep`` stay).

    >>> bars = ProgressView().attach()   # every progress event from now on, until bars.detach()
    >>> bars
    """

    def __init__(self, keep: int = 5) -> None:
        self.keep = keep
        self.widget = w.VBox([])
        self.widget.add_class("ak-progress-view")
        self._rows: dict[str, tuple[w.IntProgress, w.HTML, w.HBox]] = {}
        self._done: list[w.HBox] = []  # rows of finished tasks still shown
        self._lock = threading.Lock()
        self._remove: Callable[[], None] | None = None

    def attach(self) -> ProgressView:
        """Listen to ``accelkit.io.store.add_progress_hook``."""
        if self._remove is None:
            self._remove = add_progress_hook(self)
        return self

    def detach(self) -> None:
        if self._remove is not None:
            self._remove()
            self._remove = None

    def __call__(self, event) -> None:
        with self._lock:
            row = self._rows.get(event.desc)
            if row is None:
                bar = w.IntProgress(
                    value=0, min=0, max=max(int(event.total), 1), layout=w.Layout(width="320px")
                )
                label = w.HTML()
                row = (bar, label, w.HBox([bar, label]))
                self._rows[event.desc] = row
                self.widget.children = (*self.widget.children, row[2])
            bar, label, box = row
            bar.max = max(int(event.total), 1)
            bar.value = min(int(event.done), bar.max)
            label.value = (
                f"<span>{esc(event.desc)}: {esc(_amount(event.done, event.total, event.unit))}</span>"
            )
            if event.finished:
                bar.value = bar.max
                bar.bar_style = "success"
                self._rows.pop(event.desc, None)
                self._done = [*self._done, box][-self.keep :] if self.keep else []
                shown = [r[2] for r in self._rows.values()] + self._done
                self.widget.children = tuple(c for c in self.widget.children if any(c is s for s in shown))

    def text(self) -> str:
        return f"<ProgressView: {len(self._rows)} running>"

    def close(self) -> None:
        self.detach()
        super().close()


def _amount(done: int, total: int, unit: str) -> str:
    if unit == "B":
        return f"{format_bytes(done)} / {format_bytes(total)}"
    return f"{done:,} / {total:,} {unit}"


class AutoProgress:
    """A progress hook that shows a ProgressView in the output of the cell that started a task
    (installed by ``%load_ext accelkit``; off with ``ak.options(progress=False)`` or display="text")."""

    def __init__(self, shell) -> None:
        self.shell = shell
        self.view: ProgressView | None = None
        self.cell: int | None = None

    def __call__(self, event) -> None:
        opts = get_options()
        if not opts.progress or opts.display == "text" or not kernel_is_live():
            return
        count = getattr(self.shell, "execution_count", None)
        if self.view is None or self.cell != count:
            if event.finished:
                return
            self.view, self.cell = ProgressView(), count
            display(self.view)
        self.view(event)


# ------------------------------------------------------------------------------------------ any object


class HTMLView(View):
    """Any object with a static HTML repr, shown in an ``ipywidgets.HTML``."""

    def __init__(self, obj) -> None:
        self.obj = obj
        self.widget = w.HTML(value=html_of(obj) or f"<pre>{esc(repr(obj))}</pre>")

    def text(self) -> str:
        return repr(self.obj)

    def html(self) -> str | None:
        return self.widget.value


def view(obj, **kwargs) -> View:
    """The widget view of an accelkit object: devices -> DeviceView, a Profile -> ProfileView,
    anything else with an HTML repr (a Tensor, a Module) -> HTMLView."""
    if isinstance(obj, View):
        return obj
    if isinstance(obj, Device) or (isinstance(obj, list) and obj and all(isinstance(d, Device) for d in obj)):
        return DeviceView(obj, **kwargs)
    if isinstance(obj, Profile):
        return ProfileView(obj, **kwargs)
    return HTMLView(obj)


def device_view(devices=None, *, live: bool = False, interval: float | None = None) -> DeviceView:
    """A DeviceView of ``devices`` (a Device, a list, or None for every device)."""
    return DeviceView(devices, live=live, interval=interval)


def profile_view(profile, top: int | None = None) -> ProfileView:
    return ProfileView(profile, top)


def show_progress(keep: int = 5) -> ProgressView:
    """A ProgressView already listening to the weight store's progress events; display it."""
    return ProgressView(keep).attach()


__all__ = [
    "AutoProgress",
    "DeviceView",
    "HTMLView",
    "LiveView",
    "ProfileView",
    "ProgressView",
    "View",
    "device_view",
    "profile_view",
    "show_progress",
    "view",
]
