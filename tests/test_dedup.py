"""Weight dedup on a device, in device bytes (``device.memory()``): identical tensors share one Storage.

A second load of the same checkpoint adds under 5% (nothing, in fact: fused q/k/v included); a
fine-tune sharing frozen embeddings adds only what differs; memory returns to the baseline when
the last model using the weights goes; uploads report progress in chunks.
"""

from __future__ import annotations

import gc
import json
import re
import shutil
import threading

import numpy as np
import pytest
from safetensors.numpy import save_file

import accelkit as ak
from accelkit import sharing
from accelkit.checkpoints import path as bundled
from accelkit.io import Checkpoint, add_progress_hook
from accelkit.sharing import dedup

NAMES = ["tiny-random-bert", "tiny-random-vit", "tiny-random-whisper", "tiny-random-bert-mlm"]


def allocated(dev) -> int:
    gc.collect()
    return dev.memory()["allocated_bytes"]


def outputs(model):
    """Deterministic outputs of a bundled model on fixed inputs (host arrays)."""
    rng = np.random.default_rng(0)
    kind = model.config.model_type
    if kind == "bert":
        out = model(input_ids=rng.integers(1, 500, size=(2, 7)))
        return [out.last_hidden_state.numpy(), out.logits.numpy()]
    if kind == "vit":
        return [model(rng.standard_normal((1, 3, 30, 30)).astype(np.float32)).logits.numpy()]
    features = rng.standard_normal((1, 80, 3000)).astype(np.float32)
    return [model(features, decoder_input_ids=[[591, 592]]).logits.numpy()]


def assert_same_storages(a, b, same: bool = True) -> None:
    """Every parameter of ``a`` lives in the same Storage as ``b``'s (or, ``same=False``, in another)."""
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert (p.tensor.storage is q.tensor.storage) == same, n


def check_second_load(dev, name: str) -> None:
    base = allocated(dev)
    first = ak.load(name, device=dev)
    one = allocated(dev) - base
    assert one > 0
    dev.reset_peak()
    second = ak.load(name, device=dev)
    two = allocated(dev) - base - one
    assert two < 0.05 * one, f"second load of {name} added {two} of {one} bytes"
    assert dev.memory()["peak_bytes"] - base - one < 0.05 * one  # no transient copy either
    assert_same_storages(first, second)
    del first
    assert allocated(dev) - base == one  # the second model still holds every byte
    del second
    assert allocated(dev) == base


@pytest.mark.parametrize("name", NAMES)
def test_second_load_adds_under_5_percent_and_frees_at_the_last_owner(cpu, name):
    check_second_load(cpu, name)


def test_second_load_on_webgpu(webgpu):
    check_second_load(webgpu, "tiny-random-bert")  # lavapipe is slow: one model covers the WebGPU path


def test_deduplicated_models_compute_what_private_copies_do(cpu):
    for name in ("tiny-random-bert", "tiny-random-vit", "tiny-random-whisper"):
        a, b = ak.load(name, device=cpu), ak.load(name, device=cpu)
        with sharing.no_dedup():
            c = ak.load(name, device=cpu)
        assert_same_storages(a, b)
        assert_same_storages(a, c, same=False)
        for x, y, z in zip(outputs(a), outputs(b), outputs(c)):
            np.testing.assert_array_equal(x, y)
            np.testing.assert_array_equal(x, z)


def test_no_dedup_gives_private_copies(cpu):
    base = allocated(cpu)
    a = ak.load("tiny-random-bert", device=cpu)
    one = allocated(cpu) - base
    assert sharing.dedup_enabled()
    with sharing.no_dedup():
        assert not sharing.dedup_enabled()
        b = ak.load("tiny-random-bert", device=cpu)
    assert sharing.dedup_enabled()
    assert allocated(cpu) - base == 2 * one
    assert not any(p.shared and "dedup" in p.shared for _, p in b.named_parameters())
    del a, b
    assert allocated(cpu) == base


def _fine_tune(tmp_path, frozen: str = "bert.embeddings.") -> tuple:
    """A copy of tiny-random-bert whose weights outside ``frozen`` are changed (what a fine-tune looks like)."""
    src = bundled("tiny-random-bert")
    dst = tmp_path / "bert-tiny-ft"
    shutil.copytree(src, dst)
    with Checkpoint.open(src) as ckpt:
        tensors = {n: np.array(ckpt.array(n)) for n in ckpt.names()}
    changed = 0
    for n, arr in tensors.items():
        if not n.startswith(frozen):
            tensors[n] = arr + np.float32(0.01)
            changed += arr.nbytes
    save_file(tensors, str(dst / "model.safetensors"))
    return dst, changed


def test_fine_tunes_share_frozen_embeddings(cpu, tmp_path):
    tuned, changed = _fine_tune(tmp_path)
    base = allocated(cpu)
    a = ak.load("tiny-random-bert", device=cpu)
    one = allocated(cpu) - base
    b = ak.load(tuned, device=cpu)
    two = allocated(cpu) - base - one
    embed = sum(p.tensor.nbytes for n, p in a.named_parameters() if n.startswith("bert.embeddings."))
    assert two == one - embed  # everything but the frozen embeddings is new
    assert (
        b.bert.embeddings.word_embeddings.weight.storage is a.bert.embeddings.word_embeddings.weight.storage
    )
    assert (
        b.bert.encoder.layer[0].output.dense.weight.storage
        is not a.bert.encoder.layer[0].output.dense.weight.storage
    )
    shared_note = b.bert.embeddings.word_embeddings.param("weight").shared
    assert re.fullmatch(r"dedup: also in tiny-random-bert#\d+", shared_note), shared_note
    del a
    assert allocated(cpu) - base == two + embed  # b keeps the embeddings alive
    del b
    assert allocated(cpu) == base


def test_repr_and_report_show_what_is_shared(cpu):
    a = ak.load("tiny-random-vit", device=cpu)
    b = ak.load("tiny-random-vit", device=cpu)
    text_a, text_b = repr(a), repr(b)
    label_a = re.search(r"dedup: also in (tiny-random-vit#\d+)", text_b).group(1)
    label_b = re.search(r"dedup: also in (tiny-random-vit#\d+)", text_a).group(1)
    assert label_a != label_b
    assert "0x" not in text_b and repr(b) == text_b  # deterministic
    rows = [r for r in sharing.report().dedup if set(r["users"]) >= {label_a, label_b}]
    assert rows and all(r["saved_bytes"] == r["device_bytes"] for r in rows)
    # the savings the report claims are the bytes the first load measured
    base = allocated(cpu)
    del a, b
    freed = base - allocated(cpu)
    assert sum(r["saved_bytes"] for r in rows) == freed
    html = sharing.report()._repr_html_()
    assert html is None or "deduplicated weights" in html


def test_concurrent_loads_upload_once(cpu):
    base = allocated(cpu)
    models = [None] * 4

    def load(i):
        models[i] = ak.load("tiny-random-bert-mlm", device=cpu)

    threads = [threading.Thread(target=load, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = allocated(cpu) - base
    del models[1:]
    assert allocated(cpu) - base == total  # one copy for all four
    models.clear()
    assert allocated(cpu) == base


def test_upload_goes_in_chunks_with_progress(cpu, monkeypatch):
    monkeypatch.setattr(dedup, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(dedup, "PROGRESS_MIN_BYTES", 0)
    events = []
    remove = add_progress_hook(events.append)
    try:
        with sharing.no_dedup():
            model = ak.load("tiny-random-bert", device=cpu)
    finally:
        remove()
    mine = [
        e for e in events if e.desc.startswith("uploading tiny-random-bert#") and e.desc.endswith(" to cpu")
    ]
    assert mine[0].done == 0 and mine[-1].finished
    total = sum(p.tensor.nbytes for _, p in loaded_params(model))
    assert mine[-1].done == mine[-1].total >= total
    largest = max(p.tensor.nbytes for _, p in loaded_params(model))
    # chunked: more updates than one per tensor
    assert len(mine) > len(list(model.named_parameters())) + largest // 4096
    assert all(b.done >= a.done for a, b in zip(mine, mine[1:]))


def loaded_params(model):
    """The parameters that came from the checkpoint (fused views and tied copies counted once)."""
    seen = set()
    for n, p in model.named_parameters():
        key = (id(p.tensor.storage), p.tensor.offset, p.tensor.shape)
        if key not in seen and p.digest is not None:
            seen.add(key)
            yield n, p


def test_digests_are_recorded_and_keyed_with_dtype(cpu):
    a = ak.load("tiny-random-bert", device=cpu)
    p = a.bert.embeddings.word_embeddings.param("weight")
    with Checkpoint.open(bundled("tiny-random-bert")) as ckpt:
        assert p.digest == ckpt.tensor_digest("bert.embeddings.word_embeddings.weight")
    assert p.tensor.storage.digest == p.digest
    if cpu.supports_f16:
        h = ak.load(
            "tiny-random-bert", device=cpu, dtype="float16"
        )  # same bytes on disk, another dtype: not shared
        assert h.bert.embeddings.word_embeddings.weight.storage is not p.tensor.storage
        assert h.bert.embeddings.word_embeddings.param("weight").digest == p.digest


def test_a_config_change_is_not_confused_with_the_same_weights(cpu, tmp_path):
    # same tensor names and shapes, different values: nothing may be shared
    src, dst = bundled("tiny-random-vit"), tmp_path / "vit-other"
    shutil.copytree(src, dst)
    index = json.loads((dst / "model.safetensors.index.json").read_text())
    for shard in sorted(set(index["weight_map"].values())):
        with Checkpoint.open(src) as ckpt:
            names = [n for n, s in index["weight_map"].items() if s == shard]
            save_file({n: np.array(ckpt.array(n)) * np.float32(1.5) for n in names}, str(dst / shard))
    base = allocated(cpu)
    a = ak.load("tiny-random-vit", device=cpu)
    one = allocated(cpu) - base
    b = ak.load(dst, device=cpu)
    assert allocated(cpu) - base == 2 * one
    assert not np.allclose(outputs(a)[0], outputs(b)[0])
