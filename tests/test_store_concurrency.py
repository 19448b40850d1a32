"""The weight store under several processes at once, SIGKILL and a full disk.

Worker processes (fresh interpreters) import, load and prune the same store in loops; every
operation must succeed. A process killed mid-import leaves nothing half-written, and a full disk
leaves the stored snapshot as it was.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import accelkit.io.store as store_mod
from accelkit.io import Checkpoint, StoreError, WeightStore

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))


def make_checkpoint(directory: Path, value: float) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps({"model_type": "bert", "value": value}))
    save_file(
        {"a.weight": np.full((64, 33), value, np.float32), "b.bias": np.arange(7, dtype=np.float32) * value},
        str(directory / "model.safetensors"),
    )
    return directory


def env_for(store_root: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "ACCELKIT_CACHE"))}
    e.update(ACCELKIT_CACHE=str(store_root), PYTHONPATH=str(ROOT), HF_HUB_DISABLE_TELEMETRY="1")
    return e


# role, iterations, then checkpoint directories A and B (two contents); prints one JSON line:
# the errors met (none expected) and how many operations were done.
WORKER = textwrap.dedent(
    """
    import json, sys, traceback
    from pathlib import Path
    from accelkit.io import Checkpoint, WeightStore

    role, n, a, b = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    store = WeightStore()
    errors, done = [], 0
    files = lambda d: {p.name: p for p in d.iterdir()}
    for i in range(n):
        try:
            if role == "import":  # v1 re-imported as is; v2 replaced by other content each time
                store.add_snapshot("local:m", "v1", files(a))
                store.add_snapshot("local:m", "v2", files(a if i % 2 else b))
            elif role == "load":
                for rev in ("v1", "v2"):
                    path = store.snapshot("local:m", rev)
                    assert path is not None, f"{rev} not stored"
                    with Checkpoint.open(path) as ckpt:
                        value = float(ckpt.array("a.weight")[0, 0])
                        assert ckpt.config["value"] == value, (ckpt.config, value)
                        assert (ckpt.array("b.bias") == [k * value for k in range(7)]).all()
                        assert rev == "v2" or value == 1.0
            elif role == "prune":
                store.prune(grace=0)  # unnamed blobs go at once: an import in flight must keep its own
            done += 1
        except Exception:
            errors.append(traceback.format_exc())
    print(json.dumps({"role": role, "done": done, "errors": errors}))
    """
)


def test_processes_import_load_and_prune_at_once(tmp_path):
    a, b = make_checkpoint(tmp_path / "a", 1.0), make_checkpoint(tmp_path / "b", 2.0)
    root = tmp_path / "store"
    store = WeightStore(root)
    store.add_snapshot("local:m", "v1", {p.name: p for p in a.iterdir()})
    store.add_snapshot("local:m", "v2", {p.name: p for p in b.iterdir()})
    roles = ["import", "import", "load", "load", "load", "prune"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, role, "25", str(a), str(b)],
            env=env_for(root),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for role in roles
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    failures = [e for r in results for e in r["errors"]]
    assert not failures, f"{len(failures)} failed operations; first:\n{failures[0]}"
    assert [r["done"] for r in results] == [25] * len(roles)
    assert [(e.source, e.revision) for e in store.ls()] == [("local:m", "v1"), ("local:m", "v2")]
    assert store.verify().ok


HF_WORKER = textwrap.dedent(
    """
    import json, sys
    from accelkit.io import Checkpoint, resolve
    path = resolve(sys.argv[1])
    with Checkpoint.open(path) as ckpt:
        print(json.dumps({"path": str(path), "tensors": len(ckpt)}))
    """
)


def test_processes_loading_the_same_hf_model_at_once(tmp_path):
    from hub_server import HubServer

    pytest.importorskip("huggingface_hub")
    src = make_checkpoint(tmp_path / "src", 3.0)
    files = {p.name: p.read_bytes() for p in src.iterdir()}
    with HubServer({"org/m": {"main": files}}) as hub:
        for attempt in range(3):
            root = tmp_path / f"store{attempt}"
            env = {**env_for(root), "HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / f"hf{attempt}")}
            procs = [
                subprocess.Popen(
                    [sys.executable, "-c", HF_WORKER, "hf:org/m"],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(3)
            ]
            outs = []
            for p in procs:
                out, err = p.communicate(timeout=300)
                assert p.returncode == 0, err
                outs.append(json.loads(out.strip().splitlines()[-1]))
            assert len({o["path"] for o in outs}) == 1 and {o["tensors"] for o in outs} == {2}
        # one process downloads; the others wait for it and find the model stored
        assert len(hub.downloads("model.safetensors")) == 3


KILLED = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    import accelkit.io.store as store_mod
    from accelkit.io import WeightStore

    where, src = sys.argv[1], Path(sys.argv[2])
    real = getattr(store_mod, where)

    def stop(*args, **kwargs):
        real(*args, **kwargs)  # killed right after the first write / link / rename / swap
        print("ready", flush=True)
        time.sleep(600)

    setattr(store_mod, where, stop)
    WeightStore().add_snapshot("local:m", "v1", {p.name: p for p in src.iterdir()})
    """
)


@pytest.mark.parametrize("where", ["_write", "_materialise", "_fsync_dir", "_exchange"])
def test_killed_mid_import_leaves_nothing_half_written(tmp_path, where):
    old, new = make_checkpoint(tmp_path / "old", 1.0), make_checkpoint(tmp_path / "new", 5.0)
    root = tmp_path / "store"
    store = WeightStore(root)
    store.add_snapshot("local:m", "v1", {p.name: p for p in old.iterdir()})
    p = subprocess.Popen(
        [sys.executable, "-c", KILLED, where, str(new)], env=env_for(root), stdout=subprocess.PIPE, text=True
    )
    assert p.stdout.readline().strip() == "ready"
    p.send_signal(signal.SIGKILL)
    p.wait()
    # the old snapshot is served whole (the replacement never became visible), or the new one is
    path = store.snapshot("local:m", "v1")
    assert path is not None
    with Checkpoint.open(path) as ckpt:
        value = float(ckpt.array("a.weight")[0, 0])
        assert value in (1.0, 5.0) and ckpt.config["value"] == value
    # a later import and load succeed, and prune clears what the killed process left
    store.add_snapshot("local:m", "v1", {p.name: p for p in new.iterdir()})
    with Checkpoint.open(store.snapshot("local:m", "v1")) as ckpt:
        assert float(ckpt.array("a.weight")[0, 0]) == 5.0
    store_mod._STALE_TMP_S, saved = 0, store_mod._STALE_TMP_S
    try:
        store.prune(grace=0)
    finally:
        store_mod._STALE_TMP_S = saved
    assert not list((root / "tmp").iterdir()) and store.verify().ok


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux's")
def test_snapshots_are_exchanged_atomically(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    (b / "y").write_text("b")
    assert store_mod._exchange(a, b)
    assert (a / "y").read_text() == "b" and (b / "x").read_text() == "a"


def test_full_disk_during_a_reimport_keeps_the_stored_snapshot(tmp_path, monkeypatch):
    old, new = make_checkpoint(tmp_path / "old", 1.0), make_checkpoint(tmp_path / "new", 5.0)
    store = WeightStore(tmp_path / "store")
    path = store.add_snapshot("local:m", "v1", {p.name: p for p in old.iterdir()})
    before = sorted(p.name for p in (store.root / "blobs" / "sha256").iterdir())

    def full(fh, chunk):
        fh.write(bytes(chunk)[: len(chunk) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_mod, "_write", full)
    with pytest.raises(StoreError, match="disk full while storing model.safetensors") as info:
        store.add_snapshot("local:m", "v1", {p.name: p for p in new.iterdir()})
    assert "nothing was stored" in str(info.value) and "accelkit cache prune" in str(info.value)
    monkeypatch.undo()
    assert sorted(p.name for p in (store.root / "blobs" / "sha256").iterdir()) == before
    assert not list((store.root / "tmp").iterdir())
    assert store.snapshot("local:m", "v1") == path
    with Checkpoint.open(path) as ckpt:
        assert float(ckpt.array("a.weight")[0, 0]) == 1.0
