"""Every code block of README.md runs as written, in order, in a fresh process.

The ```python blocks run one after another in one IPython ``InteractiveShell`` (as cells of one
notebook: later blocks use what earlier ones defined; blocks with ``%`` magics need IPython, the
others must also be plain Python). The ```bash blocks' ``accelkit ...`` commands run too, except the
slow or installing ones named in ``SKIPPED`` (each is exercised by its own tests).
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REQUIRE_WEBGPU, WEBGPU_SPECS

README = Path(__file__).resolve().parent.parent / "README.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)

#: commands from bash blocks not run here, by prefix, and why
SKIPPED = {
    "python3 -m venv": "creates a virtual environment (the tests already run inside one)",
    ". .venv/bin/activate": "activates that environment",
    "pip install": "installs packages",
    "bash .ci/run": "runs the whole test suite",
    "accelkit bench": "benchmarks take minutes (tests/test_bench*.py run them small)",
    "python3 -m pytest": "runs the whole test suite",
    "jupyter": "starts a server",
}

RUNNER = r"""
import json, sys, traceback
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
for i, code in enumerate(json.loads(sys.stdin.read())):
    print(f"\n=== README python block {i}", flush=True)
    result = shell.run_cell(code, store_history=True)
    if not result.success:
        err = result.error_in_exec or result.error_before_exec
        print(f"\n!!! README python block {i} failed: {type(err).__name__}: {err}", flush=True)
        sys.exit(1)
print("\n=== done", flush=True)
"""


def blocks(lang: str) -> list[str]:
    return [code for kind, code in FENCE.findall(README.read_text(encoding="utf-8")) if kind == lang]


def _has_magic(code: str) -> bool:
    return any(line.lstrip().startswith("%") for line in code.splitlines())


def _env(tmp_path) -> dict:
    env = dict(os.environ, ACCELKIT_CACHE=str(tmp_path / "cache"), MPLBACKEND="Agg")
    env.pop("ACCELKIT_DEVICE", None)
    return env


def test_readme_has_python_and_bash_blocks():
    assert len(blocks("python")) >= 4 and blocks("bash")


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_plain_python_blocks_are_python(index):
    code = blocks("python")[index]
    if not _has_magic(code):
        ast.parse(code)  # runs in a plain interpreter too, not only in IPython


def test_python_blocks_run_in_order(tmp_path):
    pytest.importorskip("IPython")
    pytest.importorskip("ipywidgets")
    if not WEBGPU_SPECS and not REQUIRE_WEBGPU:
        pytest.skip("the README's notebook block uses webgpu:0 and this machine has no WebGPU adapter")
    code = blocks("python")
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps(code),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(tmp_path),
        timeout=900,
    )
    out = proc.stdout
    assert proc.returncode == 0 and "=== done" in out, f"{out[-6000:]}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in out, out[-6000:]
    # what the blocks promise to show
    shown = out.split("=== README python block")[1:]
    show_block = next(part for part in shown if "prof.show(top=5)" in code[int(part.split()[0])])
    assert "kernel" in show_block and "softmax" in show_block, show_block
    assert (tmp_path / "run.json").is_file()  # %%accel profile --trace run.json
    assert "XDG_RUNTIME_DIR" not in proc.stderr


def _commands() -> list[str]:
    found = []
    for code in blocks("bash"):
        for line in code.splitlines():
            line = line.split(" #", 1)[0].strip()
            found += [part.strip() for part in line.split("&&") if part.strip()]
    return found


def test_bash_commands_run(tmp_path):
    ran = []
    for command in _commands():
        if any(command.startswith(prefix) for prefix in SKIPPED):
            continue
        argv = shlex.split(command)
        assert argv[0] == "accelkit", f"README runs {command!r}: add it to SKIPPED or run it here"
        exe = Path(sys.executable).with_name("accelkit")
        base = [str(exe)] if exe.is_file() else [sys.executable, "-m", "accelkit.cli"]
        proc = subprocess.run(
            base + argv[1:], capture_output=True, text=True, cwd=tmp_path, env=_env(tmp_path), timeout=600
        )
        assert proc.returncode == 0, f"{command}: {proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        assert "XDG_RUNTIME_DIR" not in proc.stderr
        ran.append(command)
    assert ran, "no README command ran"
