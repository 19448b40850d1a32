"""Outside check for issue 9 (the weight store under kill -9), a case the io tests leave out: a
process SIGKILLed in the middle of storing an ``hf:`` model while a second process waits to load the
same model. The second one must finish with the right weights (not hang on the dead one's lock, not
read its half-written files), and the store must verify afterwards. Fresh processes throughout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hub_server import HubServer
from safetensors.numpy import save

from accelkit.io import Checkpoint, WeightStore

ROOT = Path(__file__).resolve().parent.parent

# stops for good right after its first write into the store (holding whatever it holds), then is killed
STOPPED = textwrap.dedent(
    """
    import sys, time
    import accelkit.io.store as store_mod
    from accelkit.io import resolve

    real = store_mod._write

    def stop(*args, **kwargs):
        real(*args, **kwargs)
        print("ready", flush=True)
        time.sleep(600)

    store_mod._write = stop
    resolve(sys.argv[1])
    """
)

LOADER = textwrap.dedent(
    """
    import json, sys
    from accelkit.io import Checkpoint, resolve
    with Checkpoint.open(resolve(sys.argv[1])) as ckpt:
        print(json.dumps({"w": float(ckpt.array("w")[3, 4]), "n": len(ckpt), "value": ckpt.config["value"]}))
    """
)


@pytest.mark.timeout(120)
def test_a_loader_survives_another_process_killed_while_storing_the_same_model(tmp_path):
    pytest.importorskip("huggingface_hub")
    w = np.arange(40 * 50, dtype=np.float32).reshape(40, 50) / 7
    files = {
        "config.json": json.dumps({"model_type": "bert", "value": 7}).encode(),
        "model.safetensors": save({"w": w, "b": np.ones(3, np.float32)}),
    }
    with HubServer({"org/m": {"main": files}}) as hub:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "ACCELKIT_CACHE"))}
        env.update(
            ACCELKIT_CACHE=str(tmp_path / "store"),
            HF_HOME=str(tmp_path / "hf"),
            HF_ENDPOINT=hub.url,
            HF_HUB_DISABLE_TELEMETRY="1",
            PYTHONPATH=str(ROOT),
        )
        first = subprocess.Popen(
            [sys.executable, "-c", STOPPED, "hf:org/m"], env=env, stdout=subprocess.PIPE, text=True
        )
        try:
            assert first.stdout.readline().strip() == "ready"
            second = subprocess.Popen(
                [sys.executable, "-c", LOADER, "hf:org/m"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        out, err = second.communicate(timeout=90)
        assert second.returncode == 0, err[-3000:]
        got = json.loads(out.strip().splitlines()[-1])
        assert got == {"w": float(w[3, 4]), "n": 2, "value": 7}
        # and a third process loads it from the store, offline
        env["HF_HUB_OFFLINE"] = "1"
        third = subprocess.run(
            [sys.executable, "-c", LOADER, "hf:org/m"], env=env, capture_output=True, text=True, timeout=60
        )
        assert third.returncode == 0, third.stderr[-3000:]
        assert json.loads(third.stdout.strip().splitlines()[-1]) == got
    store = WeightStore(tmp_path / "store")
    assert store.verify().ok
    entries = store.ls()
    assert len(entries) == 1 and entries[0].source == "hf:org/m"
    with Checkpoint.open(store.snapshot("hf:org/m", entries[0].revision)) as ckpt:
        np.testing.assert_array_equal(ckpt.array("w"), w)
