"""The WGSL templating step (accelkit/backends/webgpu/wgsl.py ``render``): ``//# include`` of shared WGSL.

The kernels themselves run in test_webgpu_kernels.py, test_webnn_ops.py and the model tests; these
check only the text ``render`` makes, so they need no adapter.
"""

from __future__ import annotations

import re

import pytest

from accelkit.backends.webgpu import wgsl
from accelkit.errors import KernelError


def test_include_pastes_the_shared_entry_point_and_fills_its_values():
    flat = wgsl.kernel_source("flat_1d")
    for name, kernel, values in [
        ("embedding", None, {"S": "f32"}),
        ("update_slice", None, {"T": "i32"}),
        ("webnn_gather", "scatter", {"T": "f32", "FILL": "0.0", "ENABLE": ""}),
        (
            "webnn_reduce",
            "cumsum",
            {"T": "f32", "TO": "f32", "C": "f32", "STEP": "", "RESULT": "acc", "ENABLE": ""},
        ),
    ]:
        text = wgsl.render(name, kernel, **values)
        assert not re.search(r"^\s*//#\s*include", text, re.MULTILINE), name
        assert (
            len(re.findall(r"^@compute", text, re.M)) == len(re.findall(r"^fn element\(", text, re.M)) == 1
        ), name
        assert flat.strip() in text, name


def _sources(monkeypatch, files: dict) -> None:
    real = wgsl.kernel_source

    def source(name: str) -> str:
        return files[name] if name in files else real(name)

    monkeypatch.setattr(wgsl, "kernel_source", source)


def test_include_is_recursive_and_only_whole_lines_count(monkeypatch):
    _sources(
        monkeypatch,
        {
            "t_top": "a {{X}}\n  //# include t_mid\n// not //# include t_mid\nz\n",
            "t_mid": "b\n//#include t_leaf\n",
            "t_leaf": "c {{X}}\n",
        },
    )
    assert wgsl.render("t_top", X=1) == "a 1\nb\nc 1\n// not //# include t_mid\nz\n"


def test_include_cycles_and_missing_files_are_kernel_errors(monkeypatch):
    _sources(
        monkeypatch, {"t_a": "//# include t_b\n", "t_b": "//# include t_a\n", "t_c": "//# include t_none\n"}
    )
    with pytest.raises(KernelError, match="t_b.wgsl: '//# include t_a' includes itself"):
        wgsl.render("t_a")
    with pytest.raises(KernelError, match="no WGSL kernel file .*t_none.wgsl"):
        wgsl.render("t_c")


def test_for_unpacks_tuples():
    text = "//# for name, n in (('q', 1), ('v', 2))\nlet $[name] = $[n * 2];\n// $[name] stays\n//# endfor\n"
    assert wgsl.expand_directives(text) == "let q = 2;\n// $[name] stays\nlet v = 4;\n// $[name] stays\n"
    with pytest.raises(
        KernelError, match=r"t.wgsl: '//# for a, b in \(\(1, 2, 3\),\)': \(1, 2, 3\) does not unpack"
    ):
        wgsl.expand_directives("//# for a, b in ((1, 2, 3),)\n$[a]\n//# endfor\n", "t")
