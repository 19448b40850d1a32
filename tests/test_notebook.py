"""The notebook layer: %accel magics in an in-process IPython shell, deterministic text and HTML reprs,
display options, and the widget views (without a browser; tests/test_browser.py renders them)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types

import numpy as np
import pytest

pytest.importorskip("IPython")

from IPython.core.error import UsageError  # noqa: E402
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from IPython.utils.capture import capture_output  # noqa: E402

import accelkit as ak  # noqa: E402
from accelkit import (  # noqa: E402
    display,  # noqa: E402
    hardware,
    nn,
)
from accelkit.display import settings as opt  # noqa: E402
from accelkit.hardware import DeviceList, discovery  # noqa: E402
from accelkit.notebook import kernel  # noqa: E402
from accelkit.profiler import Profile  # noqa: E402

ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


@pytest.fixture(scope="module")
def ip():
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "accelkit")
    shell.run_cell("import accelkit as ak\nimport numpy as np")
    return shell


@pytest.fixture(autouse=True)
def _restore_state():
    before = opt.get_options()
    yield
    hardware.set_default(None)
    with opt._lock:
        opt._current = before


def _linear() -> nn.Linear:
    lin = nn.Linear(6, 4)
    w = (np.arange(24, dtype=np.float32).reshape(4, 6) - 12) / 10
    lin.load_state_dict({"weight": w, "bias": np.linspace(-1, 1, 4, dtype=np.float32)}, device="cpu")
    return lin


def _profile() -> Profile:
    cpu = ak.device("cpu")
    x = ak.tensor(np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8), device=cpu)
    with ak.profile(cpu) as prof:
        y = ak.ops.softmax(x @ x.T, axis=-1)
        (y + x).numpy()
    return prof


def _formats(ip, obj) -> dict:
    data, _ = ip.display_formatter.format(obj)
    return data


# ------------------------------------------------------------------------------------------- magics


def test_magics_registered(ip):
    magics = ip.magics_manager.magics
    assert "accel" in magics["line"] and "accel" in magics["cell"]
    with capture_output() as out:
        ip.run_line_magic("accel", "help")
    for cmd in ("devices", "use", "memory", "profile", "bench"):
        assert f"%accel {cmd}" in out.stdout


def test_accel_devices(ip):
    devs = ip.run_line_magic("accel", "devices")
    assert isinstance(devs, list) and isinstance(devs, DeviceList)
    assert [d.spec for d in devs] == [d.spec for d in ak.devices()]
    html = devs._repr_html_()
    assert "ak-repr ak-devices" in html and "<code>cpu</code>" in html and "best first" in html
    with capture_output() as out:
        assert ip.run_line_magic("accel", "devices --json") is None
    assert "cpu" in [d["spec"] for d in json.loads(out.stdout)]


def test_accel_use(ip):
    with capture_output() as out:
        ip.run_line_magic("accel", "use cpu")
    assert ak.device() is ak.device("cpu")
    assert "default device: cpu" in out.stdout
    with capture_output():
        ip.run_line_magic("accel", "use auto")
    assert discovery._default_override is None
    with pytest.raises(UsageError, match="accel use: .*unknown device spec 'tpu:3'"):
        ip.run_line_magic("accel", "use tpu:3")


def test_accel_memory(ip):
    keep = ak.tensor(np.ones((32, 32), dtype=np.float32), device="cpu")  # noqa: F841 - holds memory
    report = ip.run_line_magic("accel", "memory cpu")
    text, html = repr(report), report._repr_html_()
    assert "memory of cpu" in text and "allocated_bytes" in text
    assert "ak-repr ak-memory" in html and "allocated" in html and "ak-bar-fill" in html
    assert report.entries[0][2]["allocated_bytes"] >= 32 * 32 * 4


def test_profile_cell_magic_stores_and_returns_profile(ip):
    ip.run_cell("x = ak.tensor(np.linspace(-1, 1, 256, dtype=np.float32).reshape(16, 16), device='cpu')")
    with capture_output():
        result = ip.run_cell_magic(
            "accel",
            "profile -o p --device cpu --top 2 --no-plot",
            "y = ak.ops.softmax(x @ x)\nz = (y + x).numpy()",
        )
    prof = ip.user_ns["p"]
    assert isinstance(prof, Profile) and result is prof
    kernels = [k.kernel for k in prof.kernels()]
    assert {"matmul", "softmax", "add"} <= set(kernels)
    assert prof.display_top == 2
    assert prof._repr_html_().count("<span class='ak-swatch") >= 2
    assert "1 more kernels" in prof._repr_html_()


def test_profile_trace_is_valid_chrome_json(ip, tmp_path):
    path = tmp_path / "trace.json"
    ip.run_cell("x = ak.tensor(np.ones((8, 8), dtype=np.float32), device='cpu')")
    with capture_output() as out:
        ip.run_cell_magic("accel", f"profile --trace {path} --no-plot", "(x @ x).numpy()")
    assert "chrome trace" in out.stdout
    doc = json.loads(path.read_text())
    events = doc["traceEvents"]
    spans = [e for e in events if e["ph"] == "X"]
    assert spans and all({"name", "ts", "dur", "pid", "tid"} <= set(e) for e in spans)
    assert any(e["args"]["kernel"] == "matmul" for e in spans)


def test_profile_line_magic_keeps_the_statement_as_typed(ip):
    ip.run_cell("x = ak.tensor(np.ones((4, 4), dtype=np.float32), device='cpu')")
    with capture_output() as out:
        prof = ip.run_line_magic("accel", 'profile -o q --no-plot print("a  b", (x @ x).numpy().sum())')
    assert out.stdout.strip() == "a  b 64.0"
    assert ip.user_ns["q"] is prof and prof.kernels()[0].kernel == "matmul"


def test_profile_plot_shows_a_timeline(ip):
    pytest.importorskip("matplotlib")
    ip.run_cell("x = ak.tensor(np.ones((4, 4), dtype=np.float32), device='cpu')")
    with capture_output() as out:
        ip.run_cell_magic("accel", "profile --plot", "(x @ x).numpy()")
    images = [o for o in out.outputs if "image/png" in o.data]
    assert images and images[0].data["text/plain"].startswith("timeline: 1 dispatches on cpu")
    assert images[0].data["image/png"][:4] in (b"\x89PNG", "iVBO")


def test_profile_cell_that_raises_keeps_partial_profile(ip):
    ip.run_cell("x = ak.tensor(np.ones((4, 4), dtype=np.float32), device='cpu')")
    with capture_output():
        result = ip.run_cell("%%accel profile -o broken --no-plot\n(x @ x).numpy()\nraise ValueError('boom')")
    assert isinstance(result.error_in_exec, ValueError)
    assert [k.kernel for k in ip.user_ns["broken"].kernels()] == ["matmul"]


@pytest.mark.parametrize(
    "line, message",
    [
        ("nope", "unknown command 'nope'"),
        ("profile --top x", "accel profile: argument --top: invalid int value"),
        ("profile --device tpu:3 1 + 1", "unknown device spec"),
        ("profile", "nothing to run"),
        ("bench nosuchbench", "accelkit.bench.nosuchbench is not in this install"),
    ],
)
def test_usage_errors_are_one_line_messages(ip, line, message):
    with pytest.raises(UsageError, match=re.escape(message) if "\\" not in message else message):
        ip.run_line_magic("accel", line)
    with capture_output() as out:
        ip.run_cell(f"%accel {line}")
    assert "UsageError" in out.stderr + out.stdout and "Traceback" not in out.stderr + out.stdout


def test_only_profile_takes_a_cell(ip):
    with pytest.raises(UsageError, match="only `%%accel profile` takes a cell"):
        ip.run_cell_magic("accel", "devices", "1 + 1")


def test_bench_calls_the_benchmark_main(ip, monkeypatch):
    seen = []
    fake = types.ModuleType("accelkit.bench.ops")
    fake.main = lambda argv: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, "accelkit.bench.ops", fake)
    ip.run_line_magic("accel", "bench ops --sizes 64 --json out.json")
    assert seen == [["--sizes", "64", "--json", "out.json"]]


# ------------------------------------------------------------------------------------------- reprs


def _objects():
    t = ak.tensor(np.linspace(-2, 2, 48, dtype=np.float32).reshape(6, 8), device="cpu")
    return {
        "device": ak.device("cpu"),
        "devices": DeviceList(ak.devices()),
        "tensor": t,
        "module": _linear(),
        "profile": _profile(),
    }


def test_reprs_are_deterministic_and_carry_the_key_fields(ip):
    expect = {
        "device": ["ak-repr ak-device'", "cpu-backend", "cores", "numpy", "features"],
        "devices": ["ak-repr ak-devices'", "best first", "default cpu", "timestamps"],
        "tensor": ["ak-repr ak-tensor'", "[6, 8]", "float32", "192 B", "x∈[-2, 2]", "class='ak-hist'", "σ="],
        "module": [
            "ak-repr ak-module'",
            "Linear(6 -&gt; 4)",
            "28 params",
            "weight",
            "(4, 6)",
            "bias",
            "float32",
        ],
        "profile": [
            "ak-repr ak-profile'",
            "matmul",
            "softmax",
            "add",
            "dispatches",
            "class='ak-stack'",
            "device ms",
        ],
    }
    for name, obj in _objects().items():
        first, second = _formats(ip, obj), _formats(ip, obj)
        assert first == second, name
        assert "text/plain" in first and "text/html" in first, name
        html, text = first["text/html"], first["text/plain"]
        for needle in expect[name]:
            assert needle in html, (name, needle)
        assert not ADDRESS.search(html) and not ADDRESS.search(text), name
        assert "<script" not in html and " id=" not in html, name
        assert "class='ak-text-repr-fallback'" in html and "style='display:none'" in html, name
        assert "--jp-content-font-color0" in html and "prefers-color-scheme: dark" in html, name
        assert 'data-jp-theme-light="false"' in html, name


def test_text_twins(ip):
    objs = _objects()
    assert _formats(ip, objs["tensor"])["text/plain"].startswith("tensor[6, 8] float32 cpu 192 B")
    assert "weight (4, 6) float32" in _formats(ip, objs["module"])["text/plain"]
    assert "accelkit devices" in _formats(ip, objs["devices"])["text/plain"]
    assert _formats(ip, objs["profile"])["text/plain"].startswith("profile on cpu: 3 dispatches")


RENDER = """
import hashlib, numpy as np, accelkit as ak
from accelkit import nn
from accelkit.hardware import DeviceList
t = ak.tensor(np.linspace(-2, 2, 48, dtype=np.float32).reshape(6, 8), device="cpu")
lin = nn.Linear(6, 4)
lin.load_state_dict({"weight": np.ones((4, 6), np.float32), "bias": np.zeros(4, np.float32)}, device="cpu")
out = t._repr_html_() + lin._repr_html_() + DeviceList(ak.devices())._repr_html_()
print(hashlib.sha256(out.encode()).hexdigest())
"""


def test_html_is_the_same_in_a_fresh_process():
    """What nbval relies on: a re-run notebook shows the same bytes."""
    runs = {
        subprocess.run([sys.executable, "-c", RENDER], capture_output=True, text=True, check=True).stdout
        for _ in range(2)
    }
    assert len(runs) == 1


def test_sections_collapse_without_ids_or_scripts():
    html = display.section("limits", display.table([["a", 1]], ["k", "v"]), open=True, count=1)
    assert "<input type='checkbox' class='ak-toggle' aria-label='limits' checked>" in html
    assert "class='ak-section-body'" in html and "<td class='ak-num'>1</td>" in html
    assert "checked" not in display.section("x", "body")
    assert ".ak-toggle:checked ~ .ak-section-body" in display.css()


def test_table_escapes_unless_raw():
    html = display.table([["<b>", display.raw("<i>ok</i>"), 1.5, 12345]], ["a", "b", "c", "d"])
    assert "&lt;b&gt;" in html and "<i>ok</i>" in html and ">1.5<" in html and ">12,345<" in html


def test_tensor_flags_and_edge_cases():
    bad = ak.tensor(np.array([1.0, np.nan, np.inf, -1.0], dtype=np.float32), device="cpu")
    html = display.tensor_html(bad)
    assert "NaN!1" in html and "Inf!1" in html and "ak-badge ak-error" in html
    zeros = display.tensor_html(ak.zeros((3, 3), device="cpu"))
    assert "all zeros" in zeros and "class='ak-hist'" not in zeros
    assert "empty" in display.tensor_html(ak.tensor(np.zeros((0, 3), dtype=np.float32), device="cpu"))
    big = ak.tensor(np.arange(10_000, dtype=np.float32).reshape(100, 100), device="cpu")
    html = display.tensor_html(big)
    assert "..." in html and html.count("<span style='height:") == opt.get_options().bins
    ints = display.tensor_html(ak.tensor(np.arange(6, dtype=np.int32), device="cpu"))
    assert "x∈[0, 5]" in ints and "int32" in ints


def test_module_tree_marks_shared_and_tied_weights():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Linear(4, 4)
            self.decoder = nn.Linear(4, 4, bias=False)

    m = Tied()
    m.load_state_dict(
        {
            "encoder.weight": np.eye(4, dtype=np.float32),
            "encoder.bias": np.zeros(4, np.float32),
            "decoder.weight": np.eye(4, dtype=np.float32),
        },
        device="cpu",
    )
    m.decoder.param("weight").tensor = m.encoder.param("weight").tensor
    m.encoder.param("bias").shared = "dedup: same bytes as base.bias"
    html = display.module_html(m)
    assert "tied with decoder.weight" in html and "tied with encoder.weight" in html
    assert "dedup: same bytes as base.bias" in html
    assert "3 shared, 64 B saved" in html
    assert html.count("class='ak-section'") == 2  # encoder, decoder
    with opt.options(max_rows=1):
        assert "1 more submodules" in display.module_html(m)


def test_device_repr_never_opens_a_device():
    gpus = [d for d in ak.devices() if d.backend_name == "webgpu" and not d.is_open]
    if not gpus:
        pytest.skip("no unopened WebGPU adapter")
    html = display.device_html(gpus[0])
    assert not gpus[0].is_open and "not opened yet" in html and "shader-f16" in html


def test_memory_html_scales_to_a_limit():
    html = display.memory_html(
        {"allocated_bytes": 512, "peak_bytes": 1024, "limit_bytes": 4096, "buffers": 2}
    )
    assert "width:12.5%" in html and "width:25.0%" in html and "4.0 KiB" in html and ">buffers<" in html


# ------------------------------------------------------------------------------------------- options


def test_options_text_turns_html_off(ip):
    objs = _objects()
    with ak.options(display="text") as now:
        assert now.display == "text"
        for name, obj in objs.items():
            assert obj._repr_html_() is None, name
            assert set(_formats(ip, obj)) == {"text/plain"}, name
    assert ak.device("cpu")._repr_html_() is not None
    ak.options(display="text")  # as a plain call it stays in force
    assert _linear()._repr_html_() is None
    ak.options(display="auto")
    assert "text/html" in _formats(ip, objs["tensor"])


def test_options_validate_and_show():
    with pytest.raises(ak.AccelkitError, match="display must be one of"):
        ak.options(display="fancy")
    with pytest.raises(ak.AccelkitError, match="top must be a positive int"):
        ak.options(top=0)
    with ak.options(top=3, bins=8):
        assert "top=3" in repr(ak.options()) and opt.get_options().bins == 8
    assert opt.get_options().top == 15


def test_widget_display_needs_a_live_kernel(ip, monkeypatch):
    pytest.importorskip("ipywidgets")
    from accelkit.notebook import widgets

    dev = ak.device("cpu")
    with ak.options(display="widget"):
        assert dev._repr_mimebundle_() is None  # an in-process shell is no kernel: static HTML
        assert "text/html" in _formats(ip, dev)
        monkeypatch.setattr(kernel, "kernel_is_live", lambda: True)
        monkeypatch.setattr(widgets, "kernel_is_live", lambda: True)
        bundle = _formats(ip, dev)
        assert widgets.WIDGET_MIME in bundle and "model_id" in bundle[widgets.WIDGET_MIME]
        assert (
            bundle["text/plain"].startswith("<accelkit.Device cpu")
            and "ak-repr ak-device'" in bundle["text/html"]
        )
        assert widgets.WIDGET_MIME in _formats(ip, _profile())


# ------------------------------------------------------------------------------------------- widgets


def test_live_view_refreshes_by_hand_and_from_a_thread():
    pytest.importorskip("ipywidgets")
    import time

    from accelkit.notebook.widgets import LiveView

    ticks = []

    def render():
        ticks.append(1)
        return f"<b>{len(ticks)}</b>"

    view = LiveView(render, interval=0.05)
    assert view.output.value == "<b>1</b>" and not view.running
    assert view.refresh() == "<b>2</b>" and view.output.value == "<b>2</b>"
    done = [False]
    view.stop_when = lambda: done[0]
    view.start()
    deadline = time.monotonic() + 5
    while len(ticks) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    done[0] = True
    deadline = time.monotonic() + 5
    while view.running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(ticks) >= 5 and not view.running
    view.close()

    broken = LiveView(lambda: 1 / 0)
    assert "ZeroDivisionError" in broken.output.value


def test_progress_view_follows_store_events():
    pytest.importorskip("ipywidgets")
    from accelkit.io.store import progress
    from accelkit.notebook.widgets import show_progress

    bars = show_progress(keep=1)
    try:
        with progress(2048, "downloading model.safetensors") as p:
            p.update(1024)
            bar, label, _ = bars._rows["downloading model.safetensors"]
            assert bar.value == 1024 and bar.max == 2048 and "1.0 KiB / 2.0 KiB" in label.value
            p.update(1024)
        assert len(bars.widget.children) == 1
        assert bars.widget.children[0].children[0].bar_style == "success"
    finally:
        bars.close()


def test_views_of_objects():
    pytest.importorskip("ipywidgets")
    from accelkit.notebook.widgets import DeviceView, HTMLView, ProfileView, view

    devices = view(DeviceList(ak.devices()))
    assert isinstance(devices, DeviceView) and devices.selected is ak.devices()[0]
    prof = view(_profile())
    assert isinstance(prof, ProfileView) and "ak-repr ak-profile" in prof.table.value
    prof.top.value = 1
    assert "2 more kernels" in prof.table.value
    tensor = view(ak.ones((2, 2), device="cpu"))
    assert isinstance(tensor, HTMLView) and "ak-repr ak-tensor" in tensor.widget.value
    assert set(tensor._repr_mimebundle_()) == {"text/plain", "text/html"}  # no kernel: no widget


# ------------------------------------------------------------------------------------------- display hook


def test_widget_view_is_a_hook_that_the_extension_registers(ip, monkeypatch):
    """display imports no IPython: without the registered view, display="widget" falls back to static."""
    dev = ak.device("cpu")
    monkeypatch.setattr(kernel, "kernel_is_live", lambda: True)
    monkeypatch.setattr(kernel, "widgets_available", lambda: False)  # the hook decides, not display
    with ak.options(display="widget"):
        assert dev._repr_mimebundle_() is None
    calls = []
    previous = display.set_widget_view(lambda obj, include, exclude: calls.append(obj) or {"x": 1})
    try:
        assert dev._repr_mimebundle_() is None  # display="auto": no widget asked for
        with ak.options(display="widget"):
            assert dev._repr_mimebundle_() == {"x": 1} and calls == [dev]
        ip.run_line_magic("unload_ext", "accelkit")
        with ak.options(display="widget"):
            assert dev._repr_mimebundle_() is None
    finally:
        ip.run_line_magic("load_ext", "accelkit")
    assert previous is kernel.widget_mimebundle
    assert display.set_widget_view(previous) is kernel.widget_mimebundle  # load_ext put it back


def test_options_reject_unknown_names_and_read_the_environment():
    with pytest.raises(ak.AccelkitError, match="unknown option 'colour'"):
        opt._validated({"colour": "red"})
    with pytest.raises(ak.AccelkitError, match="live_interval must be a positive number"):
        ak.options(live_interval=True)
    code = "import accelkit as ak; print(ak.options().as_dict()['display'])"
    for env, want in (("text", "text"), ("nonsense", "auto")):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "ACCELKIT_DISPLAY": env},
        ).stdout.strip()
        assert out == want, env


def test_one_byte_and_count_formatter():
    assert [display.format_bytes(n) for n in (0, 1023, 1536, 3 << 20, -2048)] == [
        "0 B",
        "1023 B",
        "1.5 KiB",
        "3.0 MiB",
        "-2.0 KiB",
    ]
    assert [display.format_count(n) for n in (999, 1000, 1234567, 3 * 10**9)] == [
        "999",
        "1.00k",
        "1.23M",
        "3.00G",
    ]


# ============================================================================ comments and Profile.show (issue 9)


def test_line_magics_ignore_trailing_comments(ip):
    with capture_output() as cap:
        ip.run_line_magic("accel", "use cpu   # make the CPU the default")
    assert "default device: cpu" in cap.stdout
    with capture_output() as cap:
        result = ip.run_line_magic("accel", "devices   # every device, best first")
    assert isinstance(result, DeviceList)
    with capture_output():
        prof = ip.run_line_magic("accel", "profile --no-plot ak.tensor(np.ones(3)) + 1  # one add")
    assert [k.kernel for k in prof.kernels()] == ["add"]
    with capture_output():
        ip.run_cell("s = '#not a comment'")
        prof = ip.run_line_magic("accel", "profile --no-plot -o hash_prof ak.tensor([len(s)]) * 2  # c")
    assert ip.user_ns["hash_prof"] is prof and [k.kernel for k in prof.kernels()] == ["mul"]


def test_strip_comment_keeps_hashes_in_quotes_and_words():
    from accelkit.notebook.magics import strip_comment

    assert strip_comment("devices   # comment") == "devices"
    assert strip_comment('profile f("# x")  # c') == 'profile f("# x")'
    assert strip_comment("profile --trace run#1.json") == "profile --trace run#1.json"
    assert strip_comment("profile f('it\\'s # here')") == "profile f('it\\'s # here')"
    assert strip_comment("# only a comment") == ""


def test_profile_show_lists_the_top_kernels(ip, capsys):
    prof = _profile()
    n = len(prof.kernels())
    assert n >= 2
    prof.show(top=1)
    shown = capsys.readouterr().out
    assert shown.strip(), "Profile.show displayed nothing"
    assert f"{n - 1} more kernels" in shown
    with capture_output() as cap:
        ip.user_ns["shown_prof"] = prof
        ip.run_cell("shown_prof.show(top=1)")
    shown = cap.stdout + "".join(o.data.get("text/plain", "") for o in cap.outputs)
    assert f"{n - 1} more kernels" in shown
    with pytest.raises(ak.InputError):
        prof.show(top=-1)
