"""accelkit's reprs and widget views in a real browser: JupyterLab in Debian's chromium, driven by Playwright.

The test writes a small notebook (devices, a tensor, an nn.Linear, a %%accel profile, widget views)
into a temporary root, starts JupyterLab there on 127.0.0.1 (free port, random token, isolated
config and settings), runs every cell, and checks in the DOM that the static HTML reprs rendered
with their stylesheet (text fallback hidden, sections that open), that the widget views rendered,
and that the light and dark themes both give readable colours. Screenshots go to
``test-artifacts/browser/``. Without chromium or playwright it skips, except under ``CI=true``,
where it fails so that CI cannot skip it silently. Every wait is bounded; the whole test has 150 s.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("ACCELKIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "browser"
BUDGET_S = 150.0  # the whole test, server start to shutdown; it takes about 40 s on 2 cores

CELLS = [
    "%load_ext accelkit\nimport numpy as np\nimport accelkit as ak\nfrom accelkit import nn",
    "%accel devices",
    "ak.devices()",
    "t = ak.tensor(np.linspace(-3, 3, 96, dtype=np.float32).reshape(8, 12), device='cpu')\nt",
    "rng = np.random.default_rng(0)\nlin = nn.Linear(12, 4)\n"
    "lin.load_state_dict({'weight': rng.standard_normal((4, 12), dtype=np.float32),\n"
    "                     'bias': np.zeros(4, np.float32)}, device='cpu')\nlin",
    "%%accel profile -o prof --plot --device cpu\ny = lin(t)\nz = ak.ops.softmax(y.T @ y, axis=-1)\nz.numpy()",
    "from accelkit.notebook.widgets import LiveView, device_view\ndevice_view(ak.device('cpu'))",
    # a live view updated from a background thread, as a pool view would be
    "import itertools\nticks = itertools.count(1)\n"
    "live = LiveView(lambda: f\"<b class='ak-live-check'>tick {next(ticks)}</b>\", interval=0.2, autostart=True)\n"
    "live.stop_when = lambda: live.updates >= 15\nlive",
    # the progress widget that %load_ext accelkit hooks into the weight store
    "from accelkit.io.store import progress\nwith progress(4096, 'storing weights') as p:\n    p.update(4096)",
    "with ak.options(display='widget'):\n    display(prof)",
]


def _need(what: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the browser test needs {what}; CI=true, so it fails instead of skipping", pytrace=False)
    pytest.skip(f"needs {what}")


def _requirements():
    if not os.path.exists(CHROMIUM):
        _need(f"chromium at {CHROMIUM} (apt-get install chromium chromium-driver)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need("the playwright package (pip install playwright)")
    try:
        import jupyterlab  # noqa: F401
        import nbformat
    except ImportError:
        _need("jupyterlab and nbformat (pip install jupyterlab)")
    return sync_playwright, nbformat


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(settings: Path) -> None:
    """Keep every cell in the DOM (no windowing), start the notebook's kernel without asking, and keep
    JupyterLab quiet (no news, no update check)."""
    files = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
            "windowingMode": "none",
            "autoStartDefaultKernel": True,
        },
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
    }
    for rel, content in files.items():
        path = settings / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content), encoding="utf-8")


class Lab:
    """A JupyterLab server in its own process group, always shut down by ``stop``."""

    def __init__(self, root: Path, work: Path) -> None:
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = work / "jupyterlab.log"
        settings = work / "settings"
        _write_settings(settings)
        env = dict(os.environ)
        for name, sub in (
            ("JUPYTER_CONFIG_DIR", "config"),
            ("JUPYTER_RUNTIME_DIR", "runtime"),
            ("IPYTHONDIR", "ipython"),
        ):
            env[name] = str(work / sub)
        xdg = work / "xdg"
        xdg.mkdir(mode=0o700, exist_ok=True)
        env["XDG_RUNTIME_DIR"] = str(xdg)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")]
        )
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={work / 'workspaces'}",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")  # containers and CI runners often run as root
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def wait_ready(self, deadline: float) -> None:
        url = f"{self.base}/api/status?token={self.token}"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"JupyterLab did not answer on {self.base}:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        self.log.flush()
        return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")

    def stop(self) -> None:
        try:
            req = urllib.request.Request(
                f"{self.base}/api/shutdown", method="POST", headers={"Authorization": f"token {self.token}"}
            )
            urllib.request.urlopen(req, timeout=5).close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._signal(signal.SIGKILL)  # kernels left in the server's process group, if any
        self.log.close()

    def _signal(self, sig) -> None:
        try:
            os.killpg(self.proc.pid, sig)  # the group this test started (start_new_session)
        except (ProcessLookupError, PermissionError):
            pass


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the browser test ran out of its time budget")
    return left * 1000  # Playwright takes milliseconds


# the notebook's kernel is connected over its websocket and idle (cells sent before that can be lost)
KERNEL_READY = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = panel && panel.sessionContext && panel.sessionContext.session && panel.sessionContext.session.kernel;
  return !!kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
}"""

ALL_RAN = """() => {
  const cells = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell')];
  return cells.length > 0 && cells.every(c => /\\[\\d+\\]/.test(c.querySelector('.jp-InputPrompt')?.textContent || ''));
}"""

LUMINANCE = """(sel) => {
  const el = document.querySelector(sel);
  const rgb = getComputedStyle(el).color.match(/[\\d.]+/g).map(Number);
  return (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / 255;
}"""


def _shoot(page, name: str, selector: str | None = None) -> None:
    path = ARTIFACTS / f"{name}.png"
    if selector is None:
        page.screenshot(path=str(path))
    else:
        page.locator(selector).first.screenshot(path=str(path))


def _check_static_page(browser, deadline: float, work: Path) -> None:
    """The reprs outside Jupyter (no --jp-* variables): prefers-color-scheme picks the fallbacks."""
    import numpy as np

    import accelkit as ak
    from accelkit import nn
    from accelkit.hardware import DeviceList

    lin = nn.Linear(6, 3)
    lin.load_state_dict(
        {"weight": np.ones((3, 6), np.float32), "bias": np.zeros(3, np.float32)}, device="cpu"
    )
    t = ak.tensor(np.linspace(-1, 1, 30, dtype=np.float32).reshape(5, 6), device="cpu")
    with ak.profile("cpu") as prof:
        ak.ops.softmax(t @ t.T).numpy()
    body = "".join(x._repr_html_() for x in (DeviceList(ak.devices()), t, lin, prof))
    page_path = work / "reprs.html"
    page_path.write_text(f"<!doctype html><meta charset='utf-8'><body>{body}</body>", encoding="utf-8")
    page = browser.new_page(viewport={"width": 1100, "height": 1400})
    try:
        page.goto(page_path.as_uri(), timeout=_remaining(deadline))
        assert page.eval_on_selector(".ak-text-repr-fallback", "e => getComputedStyle(e).display") == "none"
        light = page.evaluate(LUMINANCE, ".ak-repr.ak-tensor .ak-title")
        page.locator(".ak-repr.ak-devices .ak-toggle").first.check()
        _shoot(page, "static-light", "body")
        page.emulate_media(color_scheme="dark")
        dark = page.evaluate(LUMINANCE, ".ak-repr.ak-tensor .ak-title")
        _shoot(page, "static-dark", "body")
        assert light < 0.3 < 0.7 < dark, (light, dark)
    finally:
        page.close()


def test_reprs_and_widgets_render_in_jupyterlab(tmp_path):
    sync_playwright, nbformat = _requirements()
    deadline = time.monotonic() + BUDGET_S
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    root = tmp_path / "root"
    root.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(root / "accelkit_check.ipynb"))

    lab = Lab(root, tmp_path)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                _check_static_page(browser, deadline, tmp_path)  # while JupyterLab starts
                lab.wait_ready(deadline)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(
                    f"{lab.base}/lab/tree/accelkit_check.ipynb?token={lab.token}",
                    timeout=_remaining(deadline),
                )
                page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell", timeout=_remaining(deadline))
                page.wait_for_function(KERNEL_READY, timeout=_remaining(deadline), polling=250)
                dialog = page.locator(".jp-Dialog .jp-mod-accept")  # "Select Kernel", should it still ask
                if dialog.count():
                    dialog.first.click()
                # not awaited: the command's promise settles only when every cell has run
                page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
                try:
                    page.wait_for_function(ALL_RAN, timeout=_remaining(deadline), polling=250)
                    page.wait_for_selector(".ak-profile-view", timeout=_remaining(deadline))
                except Exception:
                    _shoot(page, "lab-timeout")
                    raise
                _check_lab(page, deadline)
            finally:
                browser.close()
    except Exception as exc:
        raise AssertionError(f"{exc}\n--- JupyterLab log (tail) ---\n{lab.log_tail()}") from exc
    finally:
        lab.stop()


def _check_lab(page, deadline: float) -> None:
    errors = page.locator("[data-mime-type='application/vnd.jupyter.error']")
    assert errors.count() == 0, errors.first.inner_text()
    for kind in ("devices", "tensor", "module", "profile"):
        assert page.locator(f".jp-OutputArea-output .ak-repr.ak-{kind}").count() >= 1, kind
    fallback = page.locator(".jp-OutputArea-output .ak-text-repr-fallback").first
    assert fallback.evaluate("e => getComputedStyle(e).display") == "none"
    assert page.locator(".ak-repr.ak-tensor").first.evaluate("e => getComputedStyle(e).display") == "block"
    assert page.locator(".ak-repr.ak-tensor .ak-hist > span").count() >= 10
    assert page.locator(".jp-OutputArea-output img").count() >= 1  # the profile's timeline
    # widgets: the device view, the live view, the profile view (display="widget")
    assert page.locator(".jupyter-widgets").count() >= 3
    assert page.locator(".widget-html").count() >= 2
    assert page.locator(".ak-device-view .ak-repr.ak-device").count() == 1
    page.wait_for_function(
        "() => Number((document.querySelector('.ak-live-check')?.textContent || '').split(' ')[1]) >= 15",
        timeout=_remaining(deadline),
    )
    assert page.locator(".ak-progress-view .widget-hprogress").count() == 1
    assert page.locator(".ak-profile-view .ak-repr.ak-profile").count() == 1
    # a collapsible section opens with a click and no JavaScript of ours
    section = page.locator(".jp-OutputArea-output .ak-repr.ak-devices .ak-section").first
    body = section.locator(":scope > .ak-section-body")
    assert body.evaluate("e => getComputedStyle(e).display") == "none"
    section.locator(":scope > .ak-toggle").click()
    assert body.evaluate("e => getComputedStyle(e).display") == "block"

    light = page.evaluate(LUMINANCE, ".ak-repr.ak-tensor .ak-title")
    _shoot(page, "lab-light")
    for kind in ("devices", "tensor", "module", "profile"):
        _shoot(page, f"lab-light-{kind}", f".jp-OutputArea-output:has(.ak-repr.ak-{kind})")
    _shoot(page, "lab-light-widgets", ".jp-OutputArea-output:has(.ak-device-view)")
    _shoot(page, "lab-light-timeline", ".jp-OutputArea-output:has(img)")
    _shoot(page, "lab-light-progress", ".jp-OutputArea-output:has(.ak-progress-view)")
    page.evaluate(
        "() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})"
    )
    page.wait_for_selector(
        "body[data-jp-theme-light='false']", state="attached", timeout=_remaining(deadline)
    )
    page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=_remaining(deadline))
    page.wait_for_function(
        f"() => ({LUMINANCE})('.ak-repr.ak-tensor .ak-title') > 0.5", timeout=_remaining(deadline)
    )
    dark = page.evaluate(LUMINANCE, ".ak-repr.ak-tensor .ak-title")
    _shoot(page, "lab-dark")
    for kind in ("devices", "tensor", "module", "profile"):
        _shoot(page, f"lab-dark-{kind}", f".jp-OutputArea-output:has(.ak-repr.ak-{kind})")
    _shoot(page, "lab-dark-widgets", ".jp-OutputArea-output:has(.ak-profile-view)")
    assert light < 0.3 and dark > 0.7, (light, dark)
