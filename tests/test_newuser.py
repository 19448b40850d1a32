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
    for name in ("ops", "models", "pool", "sharing", "webnn"):
        assert f"  {name} " in proc.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("bench", "ops", "--help"),
        ("bench", "models", "--help"),
        ("bench", "pool", "--help"),
        ("bench", "sharing", "--help"),
        ("bench", "webnn", "--help"),
        ("tune", "--help"),
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
    return ak.load("tiny-random-bert", device=dev or ak.device("cpu"))


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
    docs = [json.loads(f.read_text()) if f.is_file() else {} for f in files]
    edit(*docs)
    for f, doc in zip(files, docs):
        if doc:
            f.write_text(json.dumps(doc))
    return str(dst)


def test_whisper_suppressed_ids_outside_the_vocabulary_are_ignored_with_one_warning(tmp_path):
    def edit(config, generation):  # what transformers' default WhisperConfig writes for any vocab size
        for doc in (config, generation):
            doc["begin_suppress_tokens"] = [220, 50256]
            doc["suppress_tokens"] = [*doc.get("suppress_tokens", [1, 2]), 50257, 50358]

    src = _bundled_copy("tiny-random-whisper", tmp_path, edit)
    with pytest.warns(
        UserWarning, match=r"ignoring suppressed token ids outside the vocabulary \[0, 605\)"
    ) as rec:
        whisper = ak.load(src, device="cpu")
    assert len([w for w in rec if "suppressed token ids" in str(w.message)]) == 1
    gen = whisper.generation_config
    assert gen.begin_suppress_tokens == [220] and max(gen.suppress_tokens) < 605
    ids = whisper.generate(np.zeros((1, 80, 3000), np.float32), max_new_tokens=3)
    assert ids.shape[0] == 1


# ============================================================================ bad input: tensors


def test_zeros_with_a_fractional_dimension_raises(dev):
    with pytest.raises(ak.ShapeError, match="shape must be a sequence of ints"):
        ak.zeros((2, 2.5), device=dev)
    with pytest.raises(ak.ShapeError):
        ak.ones(2.0, 3, device=dev)
    assert ak.zeros((np.int64(2), 3), device=dev).shape == (2, 3)  # numpy integers are ints


def test_full_with_a_string_raises(dev):
    with pytest.raises(ak.DTypeError, match="fill value must be a real number, got 'x'"):
        ak.full((2, 2), "x", device=dev)
    with pytest.raises(ak.DTypeError):
        ak.full((2, 2), None, device=dev)
    np.testing.assert_array_equal(ak.full((2, 2), np.float32(1.5), device=dev).numpy(), 1.5)


def test_arange_with_a_zero_step_raises(dev):
    with pytest.raises(ak.InputError, match="step must not be zero"):
        ak.arange(0, 1, 0, device=dev)
    with pytest.raises(ak.InputError, match="stop must be a real number"):
        ak.arange(0, "5", device=dev)
    np.testing.assert_array_equal(ak.arange(0, 1, 0.25, device=dev).numpy(), [0, 0.25, 0.5, 0.75])


def test_empty_beyond_host_memory_is_out_of_memory(cpu):
    before = cpu.memory()["allocated_bytes"]
    with pytest.raises(ak.OutOfMemoryError, match="cpu: cannot allocate"):
        ak.empty(2**40, device=cpu)
    assert cpu.memory()["allocated_bytes"] == before


def test_tensor_from_a_torch_tensor_that_requires_grad(dev):
    torch = pytest.importorskip("torch")
    t = ak.tensor(torch.arange(6, dtype=torch.float32).reshape(2, 3).requires_grad_(), device=dev)
    np.testing.assert_array_equal(t.numpy(), np.arange(6).reshape(2, 3))


# ============================================================================ bad input: models

_loaded: dict = {}


def _model(name: str, dev):
    key = (name, dev.spec)
    if key not in _loaded:
        _loaded[key] = ak.load(name, device=dev)
    return _loaded[key]


@pytest.fixture(scope="module", autouse=True)
def _free_models():
    yield
    _loaded.clear()


def _ids(bert) -> np.ndarray:
    return np.array([[2, 11, 12, 3]])


@pytest.mark.parametrize(
    ("name", "what", "bad"),
    [
        ("tiny-random-bert", "input_ids", bad)
        for bad in (None, "hello world", b"ids", "path", [["a", "b"]], [[1, 2], [3]])
    ]
    + [("tiny-random-vit", "pixel_values", bad) for bad in (None, "image.png", "path")],
)
def test_models_refuse_what_is_not_their_input_with_an_input_error(dev, name, what, bad, tmp_path):
    model = _model(name, dev)
    if bad == "path":
        bad = tmp_path / "input.npy"
    with pytest.raises(ak.InputError, match=what):
        model(bad)


def test_bert_accepts_lists_and_torch_tensors_that_require_grad(dev):
    torch = pytest.importorskip("torch")
    bert = _model("tiny-random-bert", dev)
    ids = _ids(bert)
    ref = bert(ids).last_hidden_state.numpy()
    np.testing.assert_allclose(bert(ids.tolist()).last_hidden_state.numpy(), ref)
    mask = torch.ones(ids.shape, requires_grad=True)
    np.testing.assert_allclose(bert(torch.tensor(ids), attention_mask=mask).last_hidden_state.numpy(), ref)


def test_bert_attention_mask_of_strings(dev):
    bert = _model("tiny-random-bert", dev)
    with pytest.raises(ak.InputError, match="attention_mask must hold numbers"):
        bert(_ids(bert), attention_mask=np.array([["1", "1", "1", "0"]]))


@pytest.mark.parametrize("source", ["", "   "])
def test_empty_model_source_is_not_the_current_directory(source):
    with pytest.raises(ak.WeightsError, match="model source is empty"):
        ak.load(source)


@pytest.mark.parametrize("value", [np.nan, 2.0, -1.0, np.inf])
def test_bert_attention_mask_outside_zero_one(dev, value):
    bert = _model("tiny-random-bert", dev)
    ids = _ids(bert)
    mask = np.ones(ids.shape, dtype=np.float32)
    mask[0, -1] = value
    with pytest.raises(ak.InputError, match=r"attention_mask must hold 1 \(attend\) and 0 \(padding\)"):
        bert(ids, attention_mask=mask)
    mask[0, -1] = 0.0  # the same mask with a 0 there runs
    bert(ids, attention_mask=mask)


@pytest.mark.parametrize("shape", [(0, 4), (1, 0), (0,)])
def test_bert_empty_batch_or_sequence(dev, shape):
    bert = _model("tiny-random-bert", dev)
    with pytest.raises(ak.InputError, match=r"input_ids is empty"):
        bert(np.zeros(shape, np.int64))


def test_bert_host_ids_out_of_range_name_the_max_id_and_vocab(dev):
    bert = _model("tiny-random-bert", dev)
    vocab = bert.config.vocab_size
    with pytest.raises(ak.InputError, match=rf"vocab_size {vocab}.*max id {vocab + 7}"):
        bert(np.array([[2, vocab + 7, 3]]))


@pytest.mark.parametrize("bad", [None, 3, b"bytes", {"a": 1}, ["ok", 3], [b"x"]])
def test_bert_embed_refuses_non_text(bad):
    bert = _model("tiny-random-bert", ak.device("cpu"))
    with pytest.raises(ak.InputError, match="embed: expected a str or a list of str"):
        bert.embed(bad)


def test_text_with_a_lone_surrogate_is_not_valid_unicode():
    bert = _model("tiny-random-bert", ak.device("cpu"))
    for call in (lambda: bert.encode(["fine", "bad \ud800 text"]), lambda: bert.embed("x\udfff")):
        with pytest.raises(ak.InputError, match="not valid Unicode") as info:
            call()
        assert "max_length" not in str(info.value)


def test_vit_nested_list_of_pixels_is_accepted(dev):
    vit = _model("tiny-random-vit", dev)
    size = vit.config.image_size
    pixels = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    ref = vit(pixels).last_hidden_state.numpy()
    np.testing.assert_allclose(vit(pixels.tolist()).last_hidden_state.numpy(), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(vit(pixels[0].tolist()).last_hidden_state.numpy(), ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(ak.InputError, match="pixel_values is empty"):
        vit(np.zeros((0, 3, size, size), np.float32))


def test_whisper_generate_on_nan_features_raises(dev):
    whisper = _model("tiny-random-whisper", dev)
    cfg = whisper.config
    feats = np.zeros((1, cfg.num_mel_bins, cfg.input_frames), np.float32)
    feats[0, 3, 7] = np.nan
    with pytest.raises(ak.InputError, match="NaN or infinite"):
        whisper.generate(feats, max_new_tokens=2)
    with pytest.raises(ak.InputError, match="NaN or infinite"):  # features already on the device
        whisper.generate(ak.tensor(feats, device=dev), max_new_tokens=2)
    feats[0, 3, 7] = np.inf
    with pytest.raises(ak.InputError, match="NaN or infinite"):
        whisper.generate(feats, max_new_tokens=2)


@pytest.mark.parametrize("bad", [None, "speech.wav"])
def test_whisper_refuses_non_features(bad):
    whisper = _model("tiny-random-whisper", ak.device("cpu"))
    with pytest.raises(ak.InputError):
        whisper.generate(bad, max_new_tokens=2)
    with pytest.raises(ak.InputError):
        whisper.encode(bad)


# ============================================================================ bundled checkpoints: names and random weights


@pytest.mark.parametrize("name", ["bert-base-uncased", "gpt2", "openai/whisper-tiny"])
def test_an_unknown_name_lists_the_bundled_ones_and_suggests_hf(name):
    from accelkit.models.auto import BUNDLED

    with pytest.raises(ak.WeightsError) as info:
        ak.load(name, device="cpu")
    message = str(info.value)
    assert all(bundled in message for bundled in BUNDLED), message
    assert "random weights" in message
    assert (f"'hf:{name}'" if "/" in name else "'hf:org/name'") in message


def test_bundled_models_say_random_weights():
    from accelkit.models.auto import BUNDLED

    for name in BUNDLED:
        model = ak.load(name, device="cpu")
        assert model.random_weights
        assert "random weights" in repr(model).splitlines()[0], repr(model).splitlines()[0]
        assert "random weights" in model._repr_html_()


def test_a_copied_checkpoint_is_not_called_random(tmp_path):
    src = _bundled_copy("tiny-random-bert", tmp_path, lambda config, generation: None)
    model = ak.load(src, device="cpu")
    assert not model.random_weights and "random weights" not in repr(model)


def test_transcribe_warns_once_per_model_about_random_weights():
    import warnings

    whisper = ak.load("tiny-random-whisper", device="cpu")
    audio = np.zeros(8000, np.float32)
    with pytest.warns(UserWarning, match="random weights.*hf:openai/whisper-tiny"):
        whisper.transcribe(audio, max_new_tokens=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        whisper.transcribe(audio, max_new_tokens=2)


def test_demo_says_random_weights():
    proc = subprocess.run(
        [sys.executable, "-m", "accelkit.cli", "demo", "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "random weights" in proc.stdout
    # the demo says it in its own words: no library warning (with a source line) on a new user's first run
    assert "Warning" not in proc.stderr, proc.stderr
    assert "random weights: no meaning" in proc.stdout


# the names the bundled checkpoints had before, built so that a rename of the references leaves them alone
OLD_NAMES = [
    "-".join(parts)
    for parts in (("bert", "tiny"), ("bert", "tiny", "mlm"), ("vit", "tiny"), ("whisper", "tiny"))
]


@pytest.mark.parametrize("old", OLD_NAMES)
def test_the_old_bundled_names_are_unknown_names(old):
    """The old names are unknown (one of them is OpenAI's Whisper model on the hub): no alias."""
    from accelkit.checkpoints import names
    from accelkit.models.auto import BUNDLED

    assert all(name.startswith("tiny-random-") for name in BUNDLED) and sorted(BUNDLED) == names()
    with pytest.raises(ak.WeightsError) as info:
        ak.load(old, device="cpu")
    message = str(info.value)
    assert all(name in message for name in BUNDLED) and "'hf:org/name'" in message, message
