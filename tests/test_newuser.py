"""What a new user hits first, and bad input that used to give raw errors or wrong results (issue 9)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import accelkit as ak


def _fresh(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


# ============================================================================ XDG_RUNTIME_DIR


@pytest.mark.parametrize("value", [None, "", "relative/dir", "/nonexistent/accelkit-xdg"])
def test_listing_devices_prints_nothing_without_a_valid_runtime_dir(value):
    env = dict(os.environ)
    env.pop("XDG_RUNTIME_DIR", None)
    if value is not None:
        env["XDG_RUNTIME_DIR"] = value
    code = (
        "import os, stat, accelkit as ak; ak.devices(); p = os.environ['XDG_RUNTIME_DIR']; "
        "st = os.stat(p); print(p, oct(stat.S_IMODE(st.st_mode)), st.st_uid == os.getuid())"
    )
    proc = _fresh(code, env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    path, mode, mine = proc.stdout.split()
    assert os.path.isabs(path) and mode == "0o700" and mine == "True"


def test_a_valid_runtime_dir_is_kept(tmp_path):
    env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path))
    proc = _fresh("import os, accelkit as ak; ak.devices(); print(os.environ['XDG_RUNTIME_DIR'])", env)
    assert proc.returncode == 0 and proc.stdout.strip() == str(tmp_path), proc.stderr


# ============================================================================ the command line


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "accelkit.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_cli_version():
    proc = _cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"accelkit {ak.__version__}", proc.stderr


@pytest.mark.parametrize("args", [("bench", "--help"), ("bench", "-h")])
def test_cli_bench_help_lists_the_benchmarks(args):
    proc = _cli(*args)
    assert proc.returncode == 0, proc.stderr
    for name in ("ops", "models", "pool", "sharing"):
        assert f"  {name} " in proc.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("bench", "ops", "--help"),
        ("bench", "models", "--help"),
        ("bench", "pool", "--help"),
        ("bench", "sharing", "--help"),
        ("cache", "--help"),
        ("demo", "--help"),
    ],
)
def test_cli_help_has_no_restructuredtext_markup(args):
    proc = _cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: accelkit")
    for markup in ("``", ":func:", ":class:", ":meth:"):
        assert markup not in proc.stdout, proc.stdout


# ============================================================================ profiles


def _profiled_kernels(dev) -> dict:
    rng = np.random.default_rng(0)
    a = ak.tensor(rng.standard_normal((2, 33, 17), dtype=np.float32), device=dev)
    b = ak.tensor(rng.standard_normal((17, 9), dtype=np.float32), device=dev)
    w = ak.tensor(np.ones(9, np.float32), device=dev)
    with ak.profile(dev) as prof:
        y = ak.ops.gelu(a @ b) + 1.0
        y = ak.ops.layer_norm(ak.ops.softmax(y, axis=-1), w, w)
        y.numpy()
    return {k.kernel: k for k in prof.kernels()}


def test_cpu_profile_counts_flops(cpu):
    kernels = _profiled_kernels(cpu)
    mm = kernels["matmul"]
    assert mm.flops == 2.0 * 2 * 33 * 9 * 17
    assert mm.gpu_ns > 0 and mm.flops / mm.gpu_ns > 0  # the table's GFLOP/s column


def test_cpu_and_webgpu_kernel_names_and_flops_agree(cpu, webgpu):
    on_cpu, on_gpu = _profiled_kernels(cpu), _profiled_kernels(webgpu)
    assert set(on_cpu) == set(on_gpu), (sorted(on_cpu), sorted(on_gpu))
    assert {"matmul", "gelu", "add", "softmax", "layer_norm"} <= set(on_cpu)
    for name, k in on_cpu.items():
        assert (k.calls, k.flops) == (on_gpu[name].calls, on_gpu[name].flops), name


# ============================================================================ models: warnings


def _bert(dev=None):
    return ak.load("bert-tiny", device=dev or ak.device("cpu"))


def test_bert_embed_warns_when_it_truncates():
    bert = _bert()
    limit = bert.config.max_position_embeddings
    long_text = " ".join(["a"] * (limit + 10))
    with pytest.warns(UserWarning, match=rf"bert.embed: 1 of 2 texts were longer than {limit} tokens"):
        out = bert.embed([long_text, "short"])
    assert out.shape == (2, bert.config.hidden_size)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bert.embed(["short", "texts only"])  # no warning when nothing is cut


def _bundled_copy(name: str, tmp_path, edit) -> str:
    """A copy of a bundled checkpoint with ``edit(config, generation_config)`` applied to its JSON."""
    import json
    import shutil

    from accelkit.checkpoints import path as bundled_path

    dst = tmp_path / name
    shutil.copytree(bundled_path(name), dst)
    files = [dst / "config.json", dst / "generation_config.json"]
    docs = [json.loads(f.read_text()) for f in files]
    edit(*docs)
    for f, doc in zip(files, docs):
        f.write_text(json.dumps(doc))
    return str(dst)


def test_whisper_suppressed_ids_outside_the_vocabulary_are_ignored_with_one_warning(tmp_path):
    def edit(config, generation):  # what transformers' default WhisperConfig writes for any vocab size
        for doc in (config, generation):
            doc["begin_suppress_tokens"] = [220, 50256]
            doc["suppress_tokens"] = [*doc.get("suppress_tokens", [1, 2]), 50257, 50358]

    src = _bundled_copy("whisper-tiny", tmp_path, edit)
    with pytest.warns(
        UserWarning, match=r"ignoring suppressed token ids outside the vocabulary \[0, 605\)"
    ) as rec:
        whisper = ak.load(src, device="cpu")
    assert len([w for w in rec if "suppressed token ids" in str(w.message)]) == 1
    gen = whisper.generation_config
    assert gen.begin_suppress_tokens == [220] and max(gen.suppress_tokens) < 605
    ids = whisper.generate(np.zeros((1, 80, 3000), np.float32), max_new_tokens=3)
    assert ids.shape[0] == 1
