"""Tests of accelkit.io: safetensors reading, checkpoints, the weight store and hub resolution."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import threading
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

import accelkit.io.checkpoint as checkpoint_mod
import accelkit.io.store as store_mod
from accelkit.errors import AccelkitError, ConfigError, WeightsError
from accelkit.io import (
    Checkpoint,
    ProgressEvent,
    SafetensorsFile,
    StoreError,
    WeightStore,
    add_progress_hook,
    default_root,
    progress,
    resolve,
)

# -- helpers ------------------------------------------------------------------------------------


def write_raw(
    path: Path, header: dict | bytes | str, data: bytes = b"", header_len: int | None = None
) -> Path:
    """Write a safetensors-like file by hand: u64 header length, header, data."""
    if isinstance(header, dict):
        header = json.dumps(header)
    if isinstance(header, str):
        header = header.encode()
    n = len(header) if header_len is None else header_len
    path.write_bytes(struct.pack("<Q", n) + header + data)
    return path


def make_checkpoint(directory: Path, tensors: dict[str, np.ndarray] | None = None, **extra_json) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    tensors = tensors if tensors is not None else {"a.weight": np.arange(6, dtype=np.float32).reshape(2, 3)}
    (directory / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 3}))
    save_file(tensors, str(directory / "model.safetensors"))
    for name, value in extra_json.items():
        (directory / f"{name}.json").write_text(json.dumps(value))
    return directory


def corrupt(path: Path) -> None:
    """Flip a byte in place and move the mtime on, as a later disk fault or stray write would."""
    st = path.stat()
    with open(path, "r+b") as fh:
        first = fh.read(1)
        fh.seek(0)
        fh.write(bytes([first[0] ^ 0xFF]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


@pytest.fixture
def store(tmp_path, monkeypatch) -> WeightStore:
    monkeypatch.setenv("ACCELKIT_CACHE", str(tmp_path / "cache"))
    return WeightStore()


def tmp_entries(store: WeightStore) -> list[str]:
    tmp = store.root / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []


def blobs(store: WeightStore) -> list[str]:
    d = store.root / "blobs" / "sha256"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


# -- safetensors ----------------------------------------------------------------------------------


def test_f32_f16_and_integer_round_trip_matches_safetensors_package(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {
        "f32": rng.standard_normal((7, 5)).astype(np.float32),
        "f16": rng.standard_normal((3, 11)).astype(np.float16),
        "f64": rng.standard_normal(4),
        "i64": np.arange(-5, 5, dtype=np.int64),
        "i32": np.arange(9, dtype=np.int32).reshape(3, 3),
        "i8": np.array([-128, 0, 127], dtype=np.int8),
        "u8": np.arange(256, dtype=np.uint8),
        "bool": np.array([True, False, True]),
        "scalar": np.array(3.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }
    path = tmp_path / "x.safetensors"
    save_file(tensors, str(path), metadata={"format": "np"})
    from safetensors import safe_open

    with SafetensorsFile(path) as f, safe_open(str(path), framework="np") as ref:
        assert sorted(f.keys()) == sorted(ref.keys())
        assert f.metadata == {"format": "np"}
        for name, expected in tensors.items():
            got = f.array(name)
            assert got.dtype == expected.dtype and got.shape == expected.shape
            np.testing.assert_array_equal(got, ref.get_tensor(name))
            np.testing.assert_array_equal(got, expected)
            assert f.sha256(name) == hashlib.sha256(expected.tobytes()).hexdigest()
        info = f.info("f16")
        assert (info.dtype, info.shape, info.nbytes) == ("F16", (3, 11), 66)
        assert info.offsets[1] - info.offsets[0] == 66


def test_array_is_a_zero_copy_view_and_converts_on_request(tmp_path):
    path = tmp_path / "x.safetensors"
    save_file({"w": np.arange(12, dtype=np.float16).reshape(3, 4)}, str(path))
    with SafetensorsFile(path) as f:
        view = f.array("w")
        assert np.shares_memory(view, f.raw("w")) and not view.flags.writeable
        assert isinstance(f.raw("w"), np.ndarray) and f.raw("w").dtype == np.uint8
        as32 = f.array("w", np.float32)
        assert as32.dtype == np.float32 and not np.shares_memory(as32, f.raw("w"))
        np.testing.assert_array_equal(as32, np.arange(12, dtype=np.float32).reshape(3, 4))
        with pytest.raises(WeightsError, match="no tensor named 'nope'"):
            f.array("nope")


def test_bf16_handwritten_bytes_widen_exactly(tmp_path):
    values = np.array([1.0, -2.5, 3.140625, 2.0**-100, -0.0, np.inf], dtype=np.float32)
    bits = (values.view(np.uint32) >> 16).astype("<u2")  # these values are exact in bf16
    path = write_raw(
        tmp_path / "bf.safetensors",
        {"x": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 12]}},
        bits.tobytes(),
    )
    with SafetensorsFile(path) as f:
        got = f.array("x")
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, values.reshape(2, 3))
        assert f.info("x").numpy_dtype == np.float32


def test_bf16_matches_torch(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file as torch_save

    t = torch.randn(17, 9).to(torch.bfloat16)
    path = tmp_path / "bf.safetensors"
    torch_save({"t": t, "h": t.to(torch.float16), "f": t.float()}, str(path))
    with SafetensorsFile(path) as f:
        np.testing.assert_array_equal(f.array("t"), t.float().numpy())
        np.testing.assert_array_equal(f.array("h"), t.to(torch.float16).numpy())
        np.testing.assert_array_equal(f.array("f"), t.float().numpy())
        assert f.info("t").dtype == "BF16"


@settings(max_examples=25, deadline=None)
@given(
    shape=st.lists(st.integers(0, 6), min_size=0, max_size=3),
    dtype=st.sampled_from([np.float32, np.float16, np.int64, np.int32, np.uint8, np.float64]),
)
def test_random_shapes_round_trip(tmp_path_factory, shape, dtype):
    a = (np.arange(int(np.prod(shape)), dtype=np.float64) * 1.5 - 3).astype(dtype).reshape(shape)
    path = tmp_path_factory.mktemp("rt") / "x.safetensors"
    save_file({"a": a, "b": np.array(np.flip(a))}, str(path))
    with SafetensorsFile(path) as f:
        np.testing.assert_array_equal(f.array("a"), a)
        np.testing.assert_array_equal(f.array("b"), np.flip(a))


def _valid_bytes() -> bytes:
    return np.arange(4, dtype=np.float32).tobytes()


CORRUPTIONS = {
    "shorter than 8": (lambda p: p.write_bytes(b"\x01\x02\x03"), "shorter than the 8-byte"),
    "header too long": (lambda p: write_raw(p, "{}", b"", header_len=10_000), "larger than the file"),
    "not json": (lambda p: write_raw(p, "{not json", b""), "not valid JSON"),
    "not utf8": (lambda p: write_raw(p, b"\xff\xfe{}", b""), "not UTF-8"),
    "not a dict": (lambda p: write_raw(p, "[1, 2]", b""), "expected an object"),
    "entry not a dict": (lambda p: write_raw(p, {"x": 3}, b""), "expected an object"),
    "unknown dtype": (
        lambda p: write_raw(p, {"x": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]}}, b"\0" * 4),
        "unknown dtype 'F8_E4M3'",
    ),
    "missing key": (lambda p: write_raw(p, {"x": {"dtype": "F32", "shape": [4]}}, b""), "lacks data_offsets"),
    "bad shape": (
        lambda p: write_raw(p, {"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4),
        "not a list of non-negative integers",
    ),
    "begin after end": (
        lambda p: write_raw(p, {"x": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}}, _valid_bytes()),
        "out of range",
    ),
    "offsets not [b, e]": (
        lambda p: write_raw(p, {"x": {"dtype": "F32", "shape": [4], "data_offsets": [0]}}, _valid_bytes()),
        "is not \\[begin, end\\]",
    ),
    "size mismatch": (
        lambda p: write_raw(
            p, {"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}}, _valid_bytes()
        ),
        "needs 12",
    ),
    "out of range": (
        lambda p: write_raw(
            p, {"x": {"dtype": "F32", "shape": [4], "data_offsets": [16, 32]}}, _valid_bytes()
        ),
        "truncated",
    ),
    "overlap": (
        lambda p: write_raw(
            p,
            {
                "x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]},
                "y": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]},
            },
            _valid_bytes(),
        ),
        "overlap",
    ),
    "bad metadata": (lambda p: write_raw(p, {"__metadata__": [1]}, b""), "__metadata__"),
    "tensor named twice": (
        lambda p: write_raw(
            p,
            '{"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}, '
            '"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}',
            _valid_bytes(),
        ),
        "names 'x' twice",
    ),
    "list as dtype": (
        lambda p: write_raw(
            p, {"x": {"dtype": ["F32"], "shape": [4], "data_offsets": [0, 16]}}, _valid_bytes()
        ),
        "unknown dtype \\['F32'\\]",
    ),
    "deep nesting": (lambda p: write_raw(p, "[" * 100_000 + "]" * 100_000, b""), "nested too deeply"),
    "5000-digit integer": (
        lambda p: write_raw(
            p, '{"x": {"dtype": "F32", "shape": [' + "9" * 5000 + '], "data_offsets": [0, 16]}}', b""
        ),
        "5000-digit integer",
    ),
    "shape product overflows": (
        lambda p: write_raw(
            p, {"x": {"dtype": "F32", "shape": [0, 2**40, 2**40], "data_offsets": [0, 0]}}, _valid_bytes()
        ),
        "product overflows",
    ),
    "dimension beyond int64": (
        lambda p: write_raw(p, {"x": {"dtype": "F32", "shape": [2**64], "data_offsets": [0, 0]}}, b""),
        "not a list of non-negative integers",
    ),
    "offsets beyond int64": (
        lambda p: write_raw(
            p, {"x": {"dtype": "U8", "shape": [1], "data_offsets": [2**64 - 1, 2**64]}}, _valid_bytes()
        ),
        "is not \\[begin, end\\]",
    ),
    "offsets past the data": (
        lambda p: write_raw(
            p, {"x": {"dtype": "U8", "shape": [4], "data_offsets": [2**40, 2**40 + 4]}}, b"\0"
        ),
        "truncated",
    ),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_each_corruption_raises_weights_error_naming_the_file(tmp_path, case):
    make, message = CORRUPTIONS[case]
    path = tmp_path / f"{case.replace(' ', '_')}.safetensors"
    make(path)
    with pytest.raises(WeightsError, match=message) as info:
        SafetensorsFile(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, AccelkitError)


def test_truncated_real_file(tmp_path):
    path = tmp_path / "t.safetensors"
    save_file({"a": np.ones((64, 64), np.float32), "b": np.ones(10, np.float32)}, str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(WeightsError, match="truncated") as info:
        SafetensorsFile(path)
    assert "t.safetensors" in str(info.value)
    path.write_bytes(data[:20])  # cut inside the header
    with pytest.raises(WeightsError, match="larger than the file"):
        SafetensorsFile(path)


def test_missing_file_and_empty_header(tmp_path):
    with pytest.raises(WeightsError, match="cannot read"):
        SafetensorsFile(tmp_path / "nope.safetensors")
    with SafetensorsFile(write_raw(tmp_path / "e.safetensors", "{}   ")) as f:
        assert f.keys() == [] and f.nbytes == 0


def test_close_with_live_views_keeps_them_valid(tmp_path):
    path = tmp_path / "x.safetensors"
    save_file({"w": np.arange(5, dtype=np.float32)}, str(path))
    f = SafetensorsFile(path)
    view = f.array("w")
    f.close()
    np.testing.assert_array_equal(view, np.arange(5, dtype=np.float32))
    with pytest.raises(WeightsError, match="closed"):
        f.array("w")


# -- checkpoint -----------------------------------------------------------------------------------


def test_checkpoint_single_file(tmp_path):
    d = make_checkpoint(tmp_path / "m", generation_config={"max_length": 5}, tokenizer={"model": {}})
    with Checkpoint.open(d) as ckpt:
        assert ckpt.config["hidden_size"] == 3
        assert ckpt.names() == ["a.weight"] and "a.weight" in ckpt and len(ckpt) == 1
        np.testing.assert_array_equal(ckpt.array("a.weight"), np.arange(6, dtype=np.float32).reshape(2, 3))
        assert ckpt.info("a.weight").shape == (2, 3)
        assert ckpt.generation_config == {"max_length": 5}
        assert ckpt.tokenizer_path == d / "tokenizer.json"
        assert ckpt.preprocessor_config_path is None and ckpt.tokenizer_config_path is None
        assert ckpt.source is None and ckpt.weight_files == [d / "model.safetensors"]
        assert ckpt.file_digest("config.json") == hashlib.sha256((d / "config.json").read_bytes()).hexdigest()
        with pytest.raises(WeightsError, match="no tensor 'a.weigh'.*did you mean 'a.weight'"):
            ckpt.array("a.weigh")
        assert "model_type='bert'" in repr(ckpt)


def test_malformed_config_names_file_and_position(tmp_path):
    d = make_checkpoint(tmp_path / "m")
    (d / "config.json").write_text('{"hidden_size": 3,\n "x": }')
    with pytest.raises(ConfigError, match=r"config.json: malformed JSON: .* at line 2 column 7"):
        Checkpoint.open(d)
    (d / "config.json").write_text("[1]")
    with pytest.raises(ConfigError, match="expected a JSON object"):
        Checkpoint.open(d)
    (d / "config.json").write_text("{}")
    (d / "generation_config.json").write_text("{")
    with pytest.raises(ConfigError, match="generation_config.json"):
        Checkpoint.open(d)


def test_directory_without_config_lists_what_it_found(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "weights.bin").write_bytes(b"x")
    (d / "README.md").write_text("hi")
    with pytest.raises(WeightsError, match=r"no config.json \(found: README.md, weights.bin\)"):
        Checkpoint.open(d)
    with pytest.raises(WeightsError, match="does not exist"):
        Checkpoint.open(tmp_path / "absent")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WeightsError, match="empty"):
        Checkpoint.open(empty)


def test_pytorch_bin_only_says_safetensors_is_needed(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / "pytorch_model.bin").write_bytes(b"\0" * 16)
    with pytest.raises(WeightsError, match="only as pytorch_model.bin; accelkit reads safetensors"):
        Checkpoint.open(d)
    (d / "pytorch_model.bin").unlink()
    with pytest.raises(WeightsError, match="has no weights"):
        Checkpoint.open(d)


def _sharded(tmp_path) -> Path:
    d = tmp_path / "sharded"
    d.mkdir()
    (d / "config.json").write_text('{"model_type": "vit"}')
    save_file(
        {"a": np.ones(3, np.float32), "b": np.zeros((2, 2), np.float16)},
        str(d / "model-00001-of-00002.safetensors"),
    )
    save_file({"c": np.arange(4, dtype=np.int64)}, str(d / "model-00002-of-00002.safetensors"))
    index = {
        "metadata": {"total_size": 0},
        "weight_map": {
            "a": "model-00001-of-00002.safetensors",
            "b": "model-00001-of-00002.safetensors",
            "c": "model-00002-of-00002.safetensors",
        },
    }
    (d / "model.safetensors.index.json").write_text(json.dumps(index))
    return d


def test_sharded_checkpoint(tmp_path):
    d = _sharded(tmp_path)
    with Checkpoint.open(d) as ckpt:
        assert sorted(ckpt.names()) == ["a", "b", "c"]
        np.testing.assert_array_equal(ckpt.array("c"), np.arange(4))
        assert ckpt.array("b").dtype == np.float16
        assert ckpt.array("b", np.float32).dtype == np.float32
        assert len(ckpt.weight_files) == 2


def test_sharded_without_index_is_merged(tmp_path):
    d = _sharded(tmp_path)
    (d / "model.safetensors.index.json").unlink()
    with Checkpoint.open(d) as ckpt:
        assert sorted(ckpt.names()) == ["a", "b", "c"]
    (d / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(WeightsError, match="do not form one set"):
        Checkpoint.open(d)


def test_sharded_missing_shard(tmp_path):
    d = _sharded(tmp_path)
    (d / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(
        WeightsError, match=r"names shard model-00002-of-00002.safetensors \(1 tensors\), which is missing"
    ):
        Checkpoint.open(d)


def test_index_naming_a_tensor_not_in_its_shard(tmp_path):
    d = _sharded(tmp_path)
    index = json.loads((d / "model.safetensors.index.json").read_text())
    index["weight_map"]["c"] = "model-00001-of-00002.safetensors"
    for text, error in [
        (json.dumps(index), "says tensor 'c' is in model-00001-of-00002.safetensors"),
        ("{oops", "index.json: malformed JSON"),
        ('{"weight_map": [1]}', "weight_map"),
    ]:
        (d / "model.safetensors.index.json").write_text(text)
        with pytest.raises(WeightsError, match=error):
            Checkpoint.open(d)


def test_corrupt_shard_is_reported(tmp_path):
    d = _sharded(tmp_path)
    (d / "model-00002-of-00002.safetensors").write_bytes(b"\x05")
    with pytest.raises(WeightsError, match="model-00002-of-00002.safetensors: not a safetensors file"):
        Checkpoint.open(d)


def test_tensor_digest_covers_dtype_shape_and_bytes(tmp_path):
    a = np.arange(6, dtype=np.float32)
    d = make_checkpoint(
        tmp_path / "m", {"x": a, "y": a.reshape(2, 3), "z": a.astype(np.float16), "w": a.copy()}
    )
    with Checkpoint.open(d) as ckpt:
        dx, dy, dz, dw = (ckpt.tensor_digest(n) for n in "xyzw")
        assert dx == dw and len({dx, dy, dz}) == 3
        expected = hashlib.sha256(b'["F32", [6]]\n' + a.tobytes()).hexdigest()
        assert dx == expected


def test_tensor_digests_persist_in_the_store(store, tmp_path, monkeypatch):
    src = make_checkpoint(tmp_path / "src", {"x": np.ones(8, np.float32), "y": np.zeros(3, np.int32)})
    snap = store.add_snapshot("local:m", "v1", {n: src / n for n in ("config.json", "model.safetensors")})
    calls = []
    real = checkpoint_mod.tensor_digest
    monkeypatch.setattr(checkpoint_mod, "tensor_digest", lambda *a: calls.append(1) or real(*a))
    with Checkpoint.open(snap) as ckpt:
        assert ckpt.source == "local:m" and ckpt.revision == "v1"
        first = {n: ckpt.tensor_digest(n) for n in ckpt.names()}
        assert ckpt.file_digest("model.safetensors") == store.ls()[0].files["model.safetensors"]
    assert len(calls) == 2
    with Checkpoint.open(snap) as ckpt:
        assert {n: ckpt.tensor_digest(n) for n in ckpt.names()} == first
    assert len(calls) == 2  # the second load read them from the store


# -- store ----------------------------------------------------------------------------------------


def test_default_root(monkeypatch, tmp_path):
    monkeypatch.setenv("ACCELKIT_CACHE", str(tmp_path / "c"))
    assert default_root() == tmp_path / "c"
    monkeypatch.delenv("ACCELKIT_CACHE")
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert default_root() == tmp_path / "xdg" / "accelkit"
        monkeypatch.delenv("XDG_CACHE_HOME")
        assert default_root() == Path.home() / ".cache" / "accelkit"
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert default_root() == tmp_path / "local" / "accelkit" / "cache"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert default_root() == Path.home() / "Library" / "Caches" / "accelkit"


def test_put_and_open_blob(store, tmp_path):
    data = os.urandom(100_000)
    digest = store.put_bytes(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert store.open_blob(digest).read_bytes() == data
    src = tmp_path / "f.bin"
    src.write_bytes(data)
    assert store.put_file(src) == digest and src.exists()
    assert store.put_file(src, move=True) == digest and not src.exists()
    assert blobs(store) == [digest] and tmp_entries(store) == []
    with pytest.raises(WeightsError, match="expected"):
        store.put_bytes(b"abc", expected="0" * 64)
    with pytest.raises(WeightsError, match="not a sha256"):
        store.open_blob("xyz")
    with pytest.raises(WeightsError, match="is not in the weight store"):
        store.open_blob("a" * 64)
    assert store.size() >= len(data)


def test_reads_are_verified_once_until_the_file_changes(store, monkeypatch):
    digest = store.put_bytes(b"weights" * 1000)
    hashed = []
    real = store_mod._hash_file
    monkeypatch.setattr(store_mod, "_hash_file", lambda p, *a: hashed.append(p) or real(p, *a))
    store.open_blob(digest)
    store.open_blob(digest)
    assert hashed == []  # the put recorded (size, mtime_ns)
    path = store.blob_path(digest)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # touched, contents unchanged
    store.open_blob(digest)
    store.open_blob(digest)
    assert len(hashed) == 1


def test_corrupt_blob_is_evicted_and_never_served(store, tmp_path):
    src = make_checkpoint(tmp_path / "src")
    snap = store.add_snapshot("local:m", "v1", {n: src / n for n in ("config.json", "model.safetensors")})
    digest = store.ls()[0].files["model.safetensors"]
    corrupt(store.blob_path(digest))
    with pytest.raises(WeightsError, match="corrupt cache entry.*evicted"):
        store.open_blob(digest)
    assert not store.blob_path(digest).exists()
    assert store.snapshot("local:m", "v1") is None and not snap.exists()
    with pytest.raises(WeightsError, match="is not in the weight store"):
        store.open_blob(digest)


def test_corrupt_snapshot_file_is_evicted_when_served(store, tmp_path):
    src = make_checkpoint(tmp_path / "src")
    snap = store.add_snapshot("local:m", "v1", {n: src / n for n in ("config.json", "model.safetensors")})
    corrupt(snap / "model.safetensors")
    with pytest.raises(WeightsError, match="corrupt cache entry.*model.safetensors"):
        Checkpoint.open(snap)
    assert store.snapshot("local:m", "v1") is None and store.ls() == []
    assert len(blobs(store)) == 1  # config.json's blob is fine and stays until pruned


def flip_keeping_mtime(path: Path, offset: int) -> None:
    """Flip one byte and put the modification time back (bit rot, `cp -p` of a damaged copy)."""
    st = path.stat()
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0x40]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_mtime_ns == st.st_mtime_ns


def test_flipped_byte_with_mtime_kept_is_caught_before_use(store, tmp_path):
    src = make_checkpoint(tmp_path / "m")
    path = store.add_snapshot("local:m", "v1", {p.name: p for p in src.iterdir()})
    weights = path / "model.safetensors"
    flip_keeping_mtime(weights, weights.stat().st_size - 1)
    with Checkpoint.open(path) as ckpt:  # size and mtime match the manifest: opening trusts them
        with pytest.raises(WeightsError, match="corrupt weights") as info:
            ckpt.array("a.weight")
    message = str(info.value)
    assert str(weights) in message and "accelkit cache verify" in message and "Import it again" in message
    assert store.snapshot("local:m", "v1") is None and blobs(store) == sorted(
        store.put_file(p) for p in src.iterdir() if p.name != "model.safetensors"
    )
    # re-imported, it is served again
    path = store.add_snapshot("local:m", "v1", {p.name: p for p in src.iterdir()})
    with Checkpoint.open(path) as ckpt:
        assert ckpt.array("a.weight").tolist() == [[0, 1, 2], [3, 4, 5]]
        assert ckpt.tensor_digest("a.weight")


DEDUP_CHILD = """
import json, sys
import numpy as np
import accelkit as ak
ids = np.array([[1, 5, 9, 2, 7, 3]])
out = {}
for source in sys.argv[1:]:
    try:
        out[source] = np.asarray(ak.load(source, device="cpu")(ids).pooler_output).tolist()
    except ak.AccelkitError as e:
        out[source] = type(e).__name__ + ": " + str(e)
print(json.dumps(out))
"""


def _child(*sources, env) -> dict:
    p = subprocess.run(
        [sys.executable, "-c", DEDUP_CHILD, *map(str, sources)], env=env, capture_output=True, text=True
    )
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_corrupt_snapshot_is_never_shared_by_dedup(store, tmp_path):
    """A store snapshot with a byte flipped (mtime kept), loaded in a fresh process before a good copy
    of the same checkpoint: the snapshot raises, and the good copy is not handed the corrupt bytes."""
    from accelkit import checkpoints

    bert = checkpoints.path(next(n for n in checkpoints.names() if "bert" in n and "mlm" not in n))
    good = tmp_path / "good"
    shutil.copytree(bert, good)
    path = store.add_snapshot("local:bert", "v1", {p.name: p for p in bert.iterdir()})
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    first = _child(path, good, env=env)  # records the tensor digests in the store
    assert first[str(path)] == first[str(good)]
    weights = path / "model.safetensors"
    flip_keeping_mtime(weights, weights.stat().st_size - 3)  # in the last tensor's data
    second = _child(path, good, env=env)
    assert second[str(path)].startswith("WeightsError") and "corrupt weights" in second[str(path)]
    assert str(weights) in second[str(path)] and "accelkit cache verify" in second[str(path)]
    assert second[str(good)] == first[str(good)]


def test_crash_mid_write_leaves_nothing_servable(store, monkeypatch):
    data = os.urandom(3 * 1024)

    def crash(fh, chunk):
        fh.write(bytes(chunk)[:100])
        raise KeyboardInterrupt  # as an interrupted process would

    monkeypatch.setattr(store_mod, "_write", crash)
    with pytest.raises(KeyboardInterrupt):
        store.put_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    assert blobs(store) == [] and tmp_entries(store) == []
    with pytest.raises(WeightsError):
        store.open_blob(digest)


def test_killed_write_leftover_is_never_served_and_pruned(store):
    (store.root / "tmp").mkdir(parents=True)
    leftover = store.root / "tmp" / f"{os.getpid()}-deadbeef.part"
    leftover.write_bytes(b"half a file")
    digest = hashlib.sha256(b"half a file").hexdigest()
    with pytest.raises(WeightsError):
        store.open_blob(digest)
    assert store.snapshot("x", "y") is None
    assert store.prune(dry_run=True).freed == 11 and leftover.exists()
    assert store.prune().freed == 11 and not leftover.exists()


def test_full_disk_raises_store_error_and_leaves_nothing(store, monkeypatch, tmp_path):
    src = make_checkpoint(tmp_path / "src")

    def full(fh, chunk):
        fh.write(bytes(chunk)[:10])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_mod, "_write", full)
    with pytest.raises(StoreError, match="disk full") as info:
        store.put_bytes(b"x" * 1000)
    assert isinstance(info.value, WeightsError) and "ACCELKIT_CACHE" in str(info.value)
    with pytest.raises(StoreError, match="disk full"):
        store.add_snapshot("local:m", "v1", {"config.json": src / "config.json"})
    assert blobs(store) == [] and tmp_entries(store) == [] and store.ls() == []
    assert store.snapshot("local:m", "v1") is None


def test_concurrent_puts_of_the_same_content(store, tmp_path):
    data = os.urandom(2 * 1024 * 1024)
    src = tmp_path / "same.bin"
    src.write_bytes(data)
    barrier = threading.Barrier(4)
    results, errors = [], []

    def put(i):
        try:
            barrier.wait()
            results.append(store.put_bytes(data) if i % 2 else store.put_file(src))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=put, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    digest = hashlib.sha256(data).hexdigest()
    assert results == [digest] * 4
    assert blobs(store) == [digest] and tmp_entries(store) == []
    assert store.open_blob(digest).read_bytes() == data


def test_snapshots_add_replace_ls_and_latest(store, tmp_path):
    src = make_checkpoint(tmp_path / "src", preprocessor_config={"size": 4})
    files = {n: src / n for n in ("config.json", "model.safetensors", "preprocessor_config.json")}
    p1 = store.add_snapshot("hf:org/name", "v1", files)
    assert p1 == store.root / "snapshots" / "hf%3Aorg%2Fname" / "v1"
    with Checkpoint.open(p1) as ckpt:
        assert ckpt.preprocessor_config == {"size": 4}
    (src / "config.json").write_text('{"model_type": "bert", "hidden_size": 4}')
    p2 = store.add_snapshot("hf:org/name", "refs/pr/1", files)
    assert p2.name == "refs%2Fpr%2F1"
    assert store.snapshot("hf:org/name") == p2  # most recently used
    store.snapshot("hf:org/name", "v1")
    assert store.snapshot("hf:org/name") == p1
    assert store.add_snapshot("hf:org/name", "v1", {"config.json": src / "config.json"}) == p1  # replaced
    assert sorted(p.name for p in p1.iterdir()) == [".accelkit-snapshot.json", "config.json"]
    entries = store.ls()
    assert [(e.source, e.revision) for e in entries] == [("hf:org/name", "refs/pr/1"), ("hf:org/name", "v1")]
    assert entries[1].bytes == (src / "config.json").stat().st_size
    assert set(entries[0].files) == set(files) and entries[0].last_used >= entries[0].created - 1
    assert store.snapshot("hf:other") is None and store.snapshot("hf:org/name", "v9") is None
    for bad in ("../x", "/abs", "a\\b", ".accelkit-snapshot.json"):
        with pytest.raises(WeightsError, match="invalid snapshot filename"):
            store.add_snapshot("s", "r", {bad: src / "config.json"})
    with pytest.raises(WeightsError, match="invalid snapshot revision"):
        store.add_snapshot("s", "..", {"config.json": src / "config.json"})


def test_a_copied_snapshot_is_a_plain_directory(store, tmp_path):
    src = make_checkpoint(tmp_path / "src")
    snap = store.add_snapshot("local:m", "v1", {n: src / n for n in ("config.json", "model.safetensors")})
    copy = tmp_path / "elsewhere" / "m"
    shutil.copytree(snap, copy)
    (copy / "config.json").write_text("{}")
    assert WeightStore.of_snapshot(copy) is None and WeightStore.of_snapshot(snap).root == store.root
    with Checkpoint.open(copy) as ckpt:  # not verified against the manifest, and never evicted
        assert ckpt.config == {} and ckpt.source is None
    with pytest.raises(WeightsError, match="is not a snapshot directory"):
        store.verify_snapshot(copy)
    assert copy.exists() and store.snapshot("local:m", "v1") == snap


def test_broken_progress_hook_does_not_break_a_store_write(store):
    def broken(event):
        raise ValueError("widget gone")

    remove = add_progress_hook(broken)
    try:
        with pytest.warns(RuntimeWarning, match="widget gone"), progress(1, "x") as p:
            p.update(1)
    finally:
        remove()


def test_malformed_manifest_is_never_served(store, tmp_path):
    src = make_checkpoint(tmp_path / "src")
    snap = store.add_snapshot("local:m", "v1", {"config.json": src / "config.json"})
    (snap / ".accelkit-snapshot.json").write_text('{"files": ')
    with pytest.raises(WeightsError, match="malformed manifest"):
        store.snapshot("local:m", "v1")
    assert not snap.exists() and store.snapshot("local:m", "v1") is None
    half = store.snapshot_path("local:m", "v2")
    half.mkdir(parents=True)
    (half / "config.json").write_text("{}")
    assert store.snapshot("local:m", "v2") is None and store.ls() == []
    store.prune()
    assert not half.exists()


def test_tensor_digest_sidecar_skips_a_line_cut_short(store):
    blob = store.put_bytes(b"weights")
    store.add_tensor_digests(blob, {"a": "1" * 64, "b": "2" * 64})
    with open(store.root / "meta" / "sha256" / f"{blob}.tensors.jsonl", "a") as fh:
        fh.write('["c", "33')
    assert store.tensor_digests(blob) == {"a": "1" * 64, "b": "2" * 64}
    assert store.tensor_digests("f" * 64) == {}


def test_verify_reports_and_evicts_bad_blobs(store, tmp_path):
    src = make_checkpoint(tmp_path / "src")
    store.add_snapshot("local:a", "v1", {n: src / n for n in ("config.json", "model.safetensors")})
    good = store.put_bytes(b"unreferenced but fine")
    report = store.verify()
    assert report.ok and report.checked == 3
    weights = store.ls()[0].files["model.safetensors"]
    corrupt(store.blob_path(weights))
    events = []
    report = store.verify(callback=events.append)
    assert report.bad == [weights] and report.evicted == [("local:a", "v1")] and not report.ok
    assert store.ls() == [] and weights not in blobs(store) and good in blobs(store)
    assert events[-1].finished and events[-1].done == events[-1].total


def test_verify_restores_a_missing_blob_from_a_good_snapshot(store, tmp_path):
    src = make_checkpoint(tmp_path / "src")
    store.add_snapshot("local:a", "v1", {"config.json": src / "config.json"})
    digest = store.ls()[0].files["config.json"]
    store.blob_path(digest).unlink()
    report = store.verify()
    assert report.restored == [digest] and store.blob_path(digest).exists()


def test_prune(store, tmp_path):
    src = make_checkpoint(tmp_path / "src", {"w": np.ones(1000, np.float32)})
    files = {n: src / n for n in ("config.json", "model.safetensors")}
    store.add_snapshot("local:a", "old", files)
    old_manifest = store.snapshot_path("local:a", "old") / ".accelkit-snapshot.json"
    os.utime(old_manifest, (1, 1))  # last used long ago
    (src / "config.json").write_text('{"model_type": "bert", "v": 2}')
    store.add_snapshot("local:a", "new", files)
    stray = store.put_bytes(b"nobody names me" * 10)
    record = lambda d: store.root.joinpath("meta", "sha256", f"{d}.verified").stat().st_size  # noqa: E731
    stray_bytes = 150 + record(stray)
    assert store.prune().freed == 0 and stray in blobs(store)  # young: a snapshot may be about to name it
    assert store.prune(dry_run=True, grace=0).freed == stray_bytes and stray in blobs(store)
    assert store.prune(grace=0).freed == stray_bytes and stray not in blobs(store)
    assert len(store.ls()) == 2
    old = store.ls()[1]
    assert (
        old.revision == "old" and old.files["model.safetensors"] == store.ls()[0].files["model.safetensors"]
    )
    freed = sum((old.path / n).stat().st_size for n in ("config.json", ".accelkit-snapshot.json"))
    freed += record(old.files["config.json"])
    assert store.prune(older_than=3600, dry_run=True).freed == freed  # the weights are shared with "new"
    assert store.prune(keep=1).freed == freed
    assert [e.revision for e in store.ls()] == ["new"]
    size = store.size()
    assert store.prune(keep=0).freed > 0 and store.ls() == [] and blobs(store) == []
    assert store.size() < size


def test_prune_reports_what_it_did(store, tmp_path):
    src = make_checkpoint(tmp_path / "src", {"w": np.ones(1000, np.float32)})
    store.add_snapshot("local:a", "v1", {p.name: p for p in src.iterdir()})
    report = store.prune(keep=0, dry_run=True)
    assert report.evicted == [("local:a", "v1")] and report.freed > 4000 and report.ok
    assert report.summary().startswith("would free 0.0 MiB: 1 snapshot evicted")
    assert [e.revision for e in store.ls()] == ["v1"]
    report = store.prune(keep=0)
    assert report.evicted == [("local:a", "v1")] and report.removed >= 2 and report.freed > 4000
    assert store.ls() == [] and blobs(store) == []


def test_prune_of_a_read_only_store_says_nothing_was_removed(store, tmp_path, monkeypatch):
    src = make_checkpoint(tmp_path / "src", {"w": np.ones(1000, np.float32)})
    path = store.add_snapshot("local:a", "v1", {p.name: p for p in src.iterdir()})

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    for name in ("unlink", "rmdir", "remove", "replace", "rename"):
        monkeypatch.setattr(os, name, read_only)
    report = store.prune(keep=0)
    monkeypatch.undo()
    assert report.freed == 0 and report.evicted == [] and report.removed == 0 and not report.ok
    assert str(path) in [p for p, _ in report.failed]
    assert all("read-only" in why for _, why in report.failed)
    assert report.summary().startswith("freed 0.0 MiB: 0 snapshots evicted")
    assert (
        "could not be removed (Read-only file system: the weight store is read-only here)" in report.summary()
    )
    assert store.snapshot("local:a", "v1") == path  # still there, still served


def test_verify_of_a_read_only_store_says_what_it_could_not_evict(store, tmp_path, monkeypatch):
    src = make_checkpoint(tmp_path / "src", {"w": np.ones(1000, np.float32)})
    path = store.add_snapshot("local:a", "v1", {p.name: p for p in src.iterdir()})
    corrupt(path / "model.safetensors")

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    for name in ("unlink", "rmdir", "remove", "replace", "rename"):
        monkeypatch.setattr(os, name, read_only)
    report = store.verify()
    monkeypatch.undo()
    assert len(report.bad) == 1 and report.evicted == [] and not report.ok
    assert str(path) in [p for p, _ in report.failed] and all("read-only" in why for _, why in report.failed)


def test_cli_cache_prune_on_a_read_only_store(store, tmp_path, monkeypatch, capsys):
    from accelkit.cli import main

    src = make_checkpoint(tmp_path / "src")
    store.add_snapshot("local:a", "v1", {p.name: p for p in src.iterdir()})
    monkeypatch.setattr(
        store_mod,
        "_remove",
        lambda path, strict=False: (_ for _ in ()).throw(PermissionError(errno.EACCES, "Permission denied")),
    )
    assert main(["cache", "prune", "--keep", "0", "--root", str(store.root)]) == 1
    out = capsys.readouterr().out
    assert "freed 0.0 MiB: 0 snapshots evicted" in out and "read-only" in out


def test_progress_reports_to_callback_and_hooks():
    seen, hooked = [], []
    remove = add_progress_hook(hooked.append)
    try:
        with progress(10, "work", callback=seen.append) as p:
            p.update(4)
            p.update(6)
        with progress(5, "tiny", min_total=100) as p:
            p.update(5)
    finally:
        remove()
    assert [(e.done, e.finished) for e in seen] == [(0, False), (4, False), (10, False), (10, True)]
    assert all(isinstance(e, ProgressEvent) for e in hooked)
    assert {e.desc for e in hooked} == {"work"}  # below min_total: no hooks, no bar


# -- hub ------------------------------------------------------------------------------------------


def _repo_files(tmp_path) -> dict[str, bytes]:
    src = make_checkpoint(tmp_path / "repo", tokenizer={"version": "1.0"})
    return {p.name: p.read_bytes() for p in src.iterdir()}


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    """huggingface_hub.snapshot_download replaced by one that writes files to local_dir."""
    hub = pytest.importorskip("huggingface_hub")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    state = {"files": _repo_files(tmp_path), "calls": [], "fail": None, "hf_cache": None}

    def snapshot_download(
        repo_id, *, revision=None, local_dir=None, allow_patterns=None, local_files_only=False, **kw
    ):
        state["calls"].append((repo_id, revision, local_files_only))
        if local_files_only:
            if state["hf_cache"] is None:
                raise hub.errors.LocalEntryNotFoundError("not in the cache")
            return str(state["hf_cache"])
        assert "model.safetensors" in allow_patterns and "config.json" in allow_patterns
        meta = Path(local_dir) / ".cache" / "huggingface" / "download"
        meta.mkdir(parents=True)
        (meta / "config.json.metadata").write_text("abc\n")
        for i, (name, data) in enumerate(state["files"].items()):
            if state["fail"] is not None and i == 1:
                raise state["fail"]
            (Path(local_dir) / name).write_bytes(data)
        return str(local_dir)

    monkeypatch.setattr(hub, "snapshot_download", snapshot_download)
    return state


def test_resolve_local_directory(tmp_path):
    d = make_checkpoint(tmp_path / "m")
    assert resolve(d) == d and resolve(str(d)) == d
    with pytest.raises(WeightsError, match="does not exist"):
        resolve(tmp_path / "absent")
    with pytest.raises(WeightsError, match="write 'hf:org/name'"):
        resolve("org/name")
    with pytest.raises(WeightsError, match="is a file"):
        resolve(d / "config.json")
    with pytest.raises(WeightsError, match="not a Hugging Face source"):
        resolve("hf:")


def test_resolve_hf_downloads_into_the_store_once(store, fake_hub):
    path = resolve("hf:org/tiny-bert", store=store)
    assert path == store.snapshot_path("hf:org/tiny-bert", "main")
    with Checkpoint.open(path) as ckpt:
        assert ckpt.tokenizer_path is not None and ckpt.names() == ["a.weight"]
    assert not (path / ".cache").exists() and tmp_entries(store) == []
    assert resolve("hf:org/tiny-bert") == path  # default store from ACCELKIT_CACHE, no download
    assert fake_hub["calls"] == [("org/tiny-bert", "main", False)]
    assert resolve("hf:org/tiny-bert@v2", store=store) == store.snapshot_path("hf:org/tiny-bert", "v2")
    assert resolve("hf:org/tiny-bert", "main", store, refresh=True) == path
    assert len(fake_hub["calls"]) == 3
    with pytest.raises(WeightsError, match="differs"):
        resolve("hf:org/tiny-bert@v2", revision="v3", store=store)


def test_corrupt_stored_model_is_downloaded_again(store, fake_hub):
    path = resolve("hf:org/m", store=store)
    corrupt(path / "model.safetensors")
    with pytest.warns(RuntimeWarning, match="corrupt cache entry"):
        again = resolve("hf:org/m", store=store)
    assert again == path and len(fake_hub["calls"]) == 2
    with Checkpoint.open(again) as ckpt:
        np.testing.assert_array_equal(ckpt.array("a.weight"), np.arange(6, dtype=np.float32).reshape(2, 3))
    assert store.verify().ok


def test_interrupted_download_leaves_no_snapshot(store, fake_hub):
    fake_hub["fail"] = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        resolve("hf:org/m", store=store)
    fake_hub["fail"] = RuntimeError("connection reset mid-file")
    with pytest.raises(WeightsError, match="downloading hf:org/m@main failed: RuntimeError"):
        resolve("hf:org/m", store=store)
    fake_hub["fail"] = OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(StoreError, match="disk full"):
        resolve("hf:org/m", store=store)
    assert store.ls() == [] and tmp_entries(store) == [] and blobs(store) == []
    assert store.snapshot("hf:org/m", "main") is None


def test_offline_error_lists_where_it_looked(store, fake_hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError) as info:
        resolve("hf:org/m", store=store)
    message = str(info.value)
    assert "HF_HUB_OFFLINE" in message and "not available offline" in message
    assert str(store.snapshot_path("hf:org/m", "main")) in message
    assert "models--org--m" in message and "Hugging Face cache" in message
    assert all(local for _, _, local in fake_hub["calls"])  # never tried the network


def test_unreachable_hub_falls_back_to_store_then_errors(store, fake_hub):
    hub = pytest.importorskip("huggingface_hub")
    fake_hub["fail"] = ConnectionError("Name or service not known")
    with pytest.raises(WeightsError, match="could not be reached.*Name or service not known") as info:
        resolve("hf:org/m", store=store)
    assert "accelkit weight store" in str(info.value)
    fake_hub["fail"] = None
    path = resolve("hf:org/m", store=store)
    fake_hub["fail"] = hub.errors.OfflineModeIsEnabled("offline")
    with pytest.warns(RuntimeWarning, match="using the stored snapshot"):
        assert resolve("hf:org/m", store=store, refresh=True) == path


def test_offline_imports_from_the_hf_cache(store, fake_hub, monkeypatch, tmp_path):
    cache = tmp_path / "hf_cache_snapshot"
    cache.mkdir()
    for name, data in fake_hub["files"].items():
        (cache / name).write_bytes(data)
    fake_hub["hf_cache"] = cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = resolve("hf:org/m", store=store)
    assert path == store.snapshot_path("hf:org/m", "main") and (cache / "config.json").exists()
    with Checkpoint.open(path) as ckpt:
        assert ckpt.names() == ["a.weight"]


def test_hub_errors(store, fake_hub):
    hub = pytest.importorskip("huggingface_hub")
    del fake_hub["files"]["model.safetensors"]
    fake_hub["files"]["pytorch_model.bin"] = b"\0"
    with pytest.raises(WeightsError, match="no safetensors weights"):
        resolve("hf:org/old", store=store)
    response = types.SimpleNamespace(headers={}, status_code=404, request=None)
    fake_hub["fail"] = hub.errors.RepositoryNotFoundError("404 Repository Not Found", response=response)
    with pytest.raises(WeightsError, match="hf:org/old@main: 404 Repository Not Found"):
        resolve("hf:org/old", store=store)
    response = types.SimpleNamespace(headers={}, status_code=503, request=None)
    fake_hub["fail"] = hub.errors.HfHubHTTPError("503 Service Unavailable", response=response)
    with pytest.raises(WeightsError, match="not available offline: the Hub could not be reached"):
        resolve("hf:org/old", store=store)
    assert store.ls() == [] and tmp_entries(store) == []


def test_missing_huggingface_hub_says_how_to_install(store, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(AccelkitError, match=r"pip install accelkit\[hub\]"):
        resolve("hf:org/m", store=store)
