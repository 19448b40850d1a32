"""Cross-model tensor sharing: a producer publishes, consumers acquire views (no copy), refcounts free it.

Device bytes come from ``device.memory()``: acquiring allocates nothing; the storage is freed when
the last owner lets go. The three use cases run end to end and equal separate runs: Whisper's
encoder output shared by a transcribing and a translating decoder (the encoder runs once), ViT
embeddings shared by two classification heads, BERT hidden states shared by a classifier and a
similarity search.
"""

from __future__ import annotations

import gc
import re
import threading

import numpy as np
import pytest

import accelkit as ak
from accelkit import nn, ops
from accelkit.sharing import Registry, SharingError


def allocated(dev) -> int:
    gc.collect()
    return dev.memory()["allocated_bytes"]


@pytest.fixture
def reg() -> Registry:
    return Registry()


# ------------------------------------------------------------------------------------ the registry


def test_a_view_allocates_nothing(dev, reg, rng):
    data = rng.standard_normal((37, 53)).astype(np.float32)
    t = ak.tensor(data, device=dev)
    producer = reg.publish("x", t, owner="producer")
    before = dict(dev.memory())
    handles = [reg.acquire("x", consumer=f"c{i}") for i in range(5)]
    after = dict(dev.memory())
    assert after["allocated_bytes"] == before["allocated_bytes"]
    assert after["buffers"] == before["buffers"]
    assert after["total_allocations"] == before["total_allocations"]
    for h in handles:
        assert h.tensor.storage is t.storage and h.tensor.shape == t.shape
        np.testing.assert_array_equal(h.tensor.numpy(), data)
    assert reg.refcount("x") == 6
    for h in handles:
        h.release()
    producer.release()
    assert "x" not in reg


def test_storage_is_freed_when_the_last_owner_lets_go(dev, reg):
    base = allocated(dev)
    t = ak.ones(1000, device=dev)
    size = allocated(dev) - base
    assert size >= 4000
    producer = reg.publish("ones", t, owner="p")
    del t  # the registry (through the producer's handle) holds it now
    a = reg.acquire("ones", consumer="a")
    b = reg.acquire("ones", consumer="b")
    producer.release()  # the producer goes first: consumers still hold it
    assert allocated(dev) - base == size
    a.release()
    assert allocated(dev) - base == size and reg.refcount("ones") == 1
    assert float(b.tensor.sum().item()) == 1000.0
    b.release()
    assert "ones" not in reg
    assert allocated(dev) == base


def test_context_managers_release(cpu, reg):
    base = allocated(cpu)
    with reg.publish("z", ak.zeros(64, 64, device=cpu), owner="p") as prod:
        with reg.acquire("z", consumer="c") as h:
            assert reg.refcount("z") == 2
            view = h.tensor
        assert h.released and reg.refcount("z") == 1
        with pytest.raises(SharingError, match="released"):
            _ = h.tensor
        del view
        assert prod.tensor.shape == (64, 64)
    assert "z" not in reg and allocated(cpu) == base


def test_a_dropped_consumer_handle_is_released_a_producer_hold_stays(cpu, reg):
    base = allocated(cpu)
    reg.publish("tmp", ak.zeros(100, device=cpu), owner="p")  # the producer's hold stays until released
    h = reg.acquire("tmp", consumer="c")
    del h
    gc.collect()
    assert reg.refcount("tmp") == 1
    assert allocated(cpu) > base
    reg.release("tmp")
    assert "tmp" not in reg
    assert allocated(cpu) == base


def test_errors_name_what_was_wrong(cpu, reg):
    t = ak.zeros(3, device=cpu)
    with reg.publish("a", t, owner="me"):
        with pytest.raises(SharingError, match="already published by me"):
            reg.publish("a", t)
        with pytest.raises(SharingError, match=r"nothing is published as 'b' \(published: a\)"):
            reg.acquire("b")
        with pytest.raises(SharingError, match="expected an accelkit Tensor"):
            reg.publish("c", np.zeros(3))
        new = ak.ones(3, device=cpu)
        with reg.publish("a", new, owner="me", replace=True), reg.acquire("a") as h:
            assert h.tensor.storage is new.storage


def test_acquire_waits_for_a_producer(cpu, reg):
    t = ak.ones(8, device=cpu)
    timer = threading.Timer(0.05, lambda: reg.publish("late", t, owner="slow"))  # its hold stays: kept
    timer.start()
    with reg.acquire("late", consumer="eager", timeout=5) as h:
        assert h.tensor.storage is t.storage
    timer.join()
    with pytest.raises(SharingError, match="after waiting"):
        reg.acquire("never", timeout=0.01)


def test_get_or_publish_makes_once_for_many_threads(cpu, reg):
    calls = []

    def make():
        calls.append(1)
        return ak.full((16,), 2.0, device=cpu)

    handles = [None] * 8

    def consume(i):
        handles[i] = reg.get_or_publish("shared", make, owner="first", consumer=f"c{i}", timeout=10)

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len({id(h.tensor.storage) for h in handles}) == 1
    assert reg.refcount("shared") == 8
    for h in handles:
        h.release()
    assert "shared" not in reg


def test_report_counts_views_and_bytes_saved(cpu, reg):
    t = ak.zeros(10, 25, device=cpu)  # 1000 bytes
    with reg.publish("enc", t, owner="encoder"):
        a = reg.acquire("enc", consumer="transcribe")
        b = reg.acquire("enc", consumer="translate")
        c = reg.acquire("enc", consumer="translate")
        rep = reg.report(dedup=False)
        (row,) = rep.entries
        assert row["owner"] == "encoder" and row["refcount"] == 4 and row["views"] == 3
        assert row["consumers"] == {"transcribe": 1, "translate": 2}
        assert row["saved_bytes"] == 3 * 1000 and rep.totals["bytes_saved"] == 3000
        assert row["device_bytes"] == t.storage.device_bytes
        text = rep.text()
        assert "enc" in text and "owner encoder" in text and "translate x2" in text
        assert "0x" not in text and text == reg.report(dedup=False).text()  # deterministic
        html = rep._repr_html_()
        assert html is None or ("enc" in html and "<pre" in html)
        for h in (a, b, c):
            h.release()
    assert reg.report(dedup=False).entries == []


def test_published_name_shows_in_the_module_repr(cpu):
    model = ak.load("tiny-random-bert", device=cpu)
    with ak.sharing.publish(
        "bert/word_embeddings", model.bert.embeddings.word_embeddings.weight, owner="bert"
    ):
        html = model._repr_html_()
        assert html is None or "published as bert/word_embeddings" in html
    assert model.bert.embeddings.word_embeddings.weight.storage.name is None


# ------------------------------------------------------------------------------------ use cases


@pytest.fixture(scope="module")
def whisper():
    return ak.load("tiny-random-whisper", device="cpu")


def _speech(seconds: float = 1.0, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(np.pi * t / seconds)).astype(np.float32)


def count_calls(monkeypatch, cls) -> list:
    calls = []
    original = cls.__call__

    def counted(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "__call__", counted)
    return calls


def test_whisper_encoder_output_shared_by_transcribe_and_translate(whisper, monkeypatch):
    from accelkit.models.whisper import WhisperEncoder

    dev = whisper.device
    fe = whisper.feature_extractor
    features = fe([_speech()], sampling_rate=fe.sampling_rate)
    jobs = [dict(task="transcribe", language="en"), dict(task="translate")]
    separate = [whisper.generate(features, max_new_tokens=6, **job) for job in jobs]

    encoder_runs = count_calls(monkeypatch, WhisperEncoder)
    base = allocated(dev)
    with ak.sharing.publish("test/audio/encoder", whisper.encode(features), owner="whisper.encoder"):
        held = allocated(dev) - base
        shared = []
        for job in jobs:
            before = allocated(dev)
            with ak.sharing.acquire("test/audio/encoder", consumer=job["task"]) as h:
                assert allocated(dev) == before  # the view costs nothing
                shared.append(whisper.generate(encoder_hidden_states=h.tensor, max_new_tokens=6, **job))
    assert len(encoder_runs) == 1  # the encoder ran once for both decoders
    assert held >= whisper.config.max_source_positions * whisper.config.d_model * 4
    assert allocated(dev) == base  # the encoder output is freed with the last handle
    for a, b in zip(separate, shared):
        np.testing.assert_array_equal(a, b)
    texts = [whisper.tokenizer.batch_decode(ids, skip_special_tokens=True)[0] for ids in shared]
    monkeypatch.undo()
    assert texts[0] == whisper.transcribe(_speech(), language="en", max_new_tokens=6)
    assert texts[1] == whisper.transcribe(_speech(), task="translate", max_new_tokens=6)


def test_vit_embeddings_shared_by_two_heads(dev, monkeypatch):
    from accelkit.models.vit import ViTModel

    vit = ak.load("tiny-random-vit", device=dev)
    rng = np.random.default_rng(1)
    pixels = rng.standard_normal((3, 3, 30, 30)).astype(np.float32)
    expected_a = vit(pixels).logits.numpy()
    w = rng.standard_normal((4, vit.config.hidden_size)).astype(np.float32)
    probe = nn.Linear(vit.config.hidden_size, 4)
    probe.load_state_dict({"weight": w, "bias": np.ones(4, np.float32)}, device=dev)

    runs = count_calls(monkeypatch, ViTModel)
    with ak.sharing.publish("test/vit/hidden", vit.vit(pixels).last_hidden_state, owner="vit"):
        before = allocated(dev)
        with (
            ak.sharing.acquire("test/vit/hidden", consumer="classifier") as a,
            ak.sharing.acquire("test/vit/hidden", consumer="probe") as b,
        ):
            assert allocated(dev) == before
            logits_a = vit.classifier(a.tensor[:, 0]).numpy()
            logits_b = probe(b.tensor[:, 0]).numpy()
            cls = a.tensor[:, 0].numpy()
    assert len(runs) == 1
    np.testing.assert_array_equal(logits_a, expected_a)  # the same ops on the same embeddings
    np.testing.assert_allclose(logits_b, cls.astype(np.float64) @ w.T + 1.0, rtol=1e-5, atol=1e-5)


def test_bert_hidden_states_shared_by_classifier_and_search(cpu, monkeypatch):
    from accelkit.models.bert import BertModel

    bert = ak.load("tiny-random-bert", device=cpu)
    corpus = [
        "the cat sat on the mat",
        "a dog ran in the park",
        "the cat slept on a mat",
        "trains leave at noon",
    ]
    enc = bert.encode(corpus)
    expected_logits = bert(**enc).logits.numpy()
    expected_emb = bert.embed(corpus, pooling="cls", normalize=True)

    runs = count_calls(monkeypatch, BertModel)
    out = bert.bert(**enc)
    base = allocated(cpu)
    with (
        ak.sharing.publish("test/bert/hidden", out.last_hidden_state, owner="bert"),
        ak.sharing.publish("test/bert/pooled", out.pooler_output, owner="bert"),
    ):
        del out
        with ak.sharing.acquire("test/bert/pooled", consumer="classifier") as p:
            logits = bert.classifier(p.tensor).numpy()
        with ak.sharing.acquire("test/bert/hidden", consumer="search") as h:
            cls = h.tensor[:, 0]
            unit = cls / ops.sqrt(ops.sum(cls * cls, axis=-1, keepdims=True))
            sims = ops.matmul(unit, unit.T).numpy()
            del cls, unit
        rep = ak.sharing.report(dedup=False)
        rows = {r["name"]: r for r in rep.entries}
        assert rows["test/bert/hidden"]["consumers"] == {} and rows["test/bert/hidden"]["views"] == 1
    assert len(runs) == 1
    assert allocated(cpu) < base  # both published outputs are gone
    np.testing.assert_array_equal(logits, expected_logits)
    np.testing.assert_allclose(sims, expected_emb @ expected_emb.T, rtol=1e-5, atol=1e-5)
    np.fill_diagonal(sims, -np.inf)
    best = sims.argmax(axis=1)
    assert best[0] == 2 and best[2] == 0  # the two cat sentences find each other


def test_report_repr_is_deterministic_text():
    text = repr(ak.sharing.report())
    assert text.startswith("sharing: ")
    assert not re.search(r"0x[0-9a-f]{6,}", text)
