"""`hf:` sources for real: huggingface_hub downloading from a local stand-in for the Hub.

tests/hub_server.py serves the bundled tiny BERT as `org/tiny-random-bert` (revision `main`, and
`v2` with other weights) the way the Hub does. Each case runs in a fresh Python process (so that
no other test has imported huggingface_hub's submodules first) with HF_ENDPOINT pointing at the
server and HF_HOME / ACCELKIT_CACHE in temporary directories.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from accelkit import checkpoints

pytest.importorskip("huggingface_hub")
sys.path.insert(0, str(Path(__file__).parent))
from hub_server import HubServer  # noqa: E402

REPO = "org/tiny-random-bert"
ROOT = Path(__file__).resolve().parent.parent


def _bert_dir() -> Path:
    """The bundled tiny BERT base checkpoint (whatever its bundled name)."""
    return checkpoints.path(next(n for n in checkpoints.names() if "bert" in n and "mlm" not in n))


@pytest.fixture(scope="module")
def repo_files(tmp_path_factory) -> dict[str, dict[str, bytes]]:
    """{revision: {filename: bytes}}: main is the bundled checkpoint, v2 has every float weight doubled."""
    src = _bert_dir()
    main = {p.name: p.read_bytes() for p in src.iterdir() if p.is_file()}
    tensors = {
        k: (v * 2 if v.dtype.kind == "f" else v) for k, v in load_file(str(src / "model.safetensors")).items()
    }
    out = tmp_path_factory.mktemp("v2") / "model.safetensors"
    save_file(tensors, str(out))
    return {"main": main, "v2": {**main, "model.safetensors": out.read_bytes()}}


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "ACCELKIT_CACHE"))}
    e.update(
        HF_HOME=str(tmp_path / "hf-home"),
        ACCELKIT_CACHE=str(tmp_path / "store"),
        HF_HUB_DISABLE_TELEMETRY="1",
        PYTHONPATH=str(ROOT),
    )
    return e


# The child loads a model and prints one JSON line: the output of a fixed input, the snapshot, the
# progress events its hook saw, and what a tty-like stderr showed.
CHILD = textwrap.dedent(
    """
    import io, json, sys
    import numpy as np

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    sys.stderr = Terminal()
    if len(sys.argv) > 2:  # huggingface_hub resumes at chunk boundaries (10 MiB); the test file is smaller
        import huggingface_hub.constants
        huggingface_hub.constants.DOWNLOAD_CHUNK_SIZE = int(sys.argv[2])
    import accelkit as ak
    from accelkit.io import add_progress_hook

    events = []
    add_progress_hook(lambda e: events.append([e.desc, e.done, e.total, e.finished]))
    result = {}
    try:
        model = ak.load(sys.argv[1], device="cpu")
        ids = np.array([[1, 5, 9, 2, 7, 3]])
        result["output"] = np.asarray(model(ids).pooler_output).tolist()
        result["checkpoint"] = str(model.checkpoint)
    except Exception as e:
        result["error"] = [type(e).__name__, [c.__name__ for c in type(e).__mro__], str(e)]
    result["events"] = events
    result["stderr"] = sys.stderr.getvalue()
    print(json.dumps(result), file=sys.__stdout__)
    """
)


def run_child(source: str, env: dict[str, str], *args: str) -> dict:
    p = subprocess.run(
        [sys.executable, "-c", CHILD, source, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def reference(env: dict[str, str], directory: Path) -> list:
    out = run_child(str(directory), env)
    assert "error" not in out, out
    return out["output"]


def test_download_load_progress_and_store(repo_files, env, tmp_path):
    expected = reference(env, _bert_dir())
    with HubServer({REPO: repo_files}) as hub:
        env["HF_ENDPOINT"] = hub.url
        first = run_child(f"hf:{REPO}", env)
        assert "error" not in first, first
        assert first["output"] == expected  # the same weights as loading the directory
        assert Path(first["checkpoint"]).parent.parent == tmp_path / "store" / "snapshots"
        size = len(repo_files["main"]["model.safetensors"])
        assert len(hub.downloads("model.safetensors")) == 1

        # progress: the hooks saw the download's bytes to the end, and the terminal a tqdm bar
        desc = f"downloading hf:{REPO}@main"
        seen = [e for e in first["events"] if e[0] == desc]
        assert seen and seen[-1][3] is True
        assert seen[-1][1] == seen[-1][2] >= size
        assert f"{desc}:   0%|" in first["stderr"]  # a tqdm bar with its total

        # the weight store serves the second load: no request reaches the Hub
        before = len(hub.requests)
        second = run_child(f"hf:{REPO}", env)
        assert second["output"] == expected and second["checkpoint"] == first["checkpoint"]
        assert len(hub.requests) == before
        assert not [e for e in second["events"] if e[0] == desc]


def test_resume_after_a_dropped_connection(repo_files, env):
    expected = reference(env, _bert_dir())
    with HubServer({REPO: repo_files}, drop_once=("model.safetensors",)) as hub:
        env["HF_ENDPOINT"] = hub.url
        out = run_child(f"hf:{REPO}", env, "4096")
        assert "error" not in out, out
        assert out["output"] == expected
        gets = hub.downloads("model.safetensors")
        size = len(repo_files["main"]["model.safetensors"])
        assert len(gets) == 2 and gets[0][2] is None
        # the second request resumed from the last whole chunk received before the connection broke
        resumed_at = int(gets[1][2].removeprefix("bytes=").removesuffix("-"))
        assert 0 < resumed_at <= size // 2 and resumed_at % 4096 == 0


def test_revision_pinning(repo_files, env):
    with HubServer({REPO: repo_files}) as hub:
        env["HF_ENDPOINT"] = hub.url
        main = run_child(f"hf:{REPO}", env)
        v2 = run_child(f"hf:{REPO}@v2", env)
        assert "error" not in main and "error" not in v2, (main, v2)
        assert Path(main["checkpoint"]).name == "main" and Path(v2["checkpoint"]).name == "v2"
        assert not np.allclose(main["output"], v2["output"])
        by_commit = run_child(f"hf:{REPO}@{hub.commit(REPO, 'v2')}", env)
        assert by_commit["output"] == v2["output"]
        missing = run_child(f"hf:{REPO}@v9", env)
        assert missing["error"][0] == "WeightsError" and "v9" in missing["error"][2]
        # stored revisions are served as they are, without the server
    offline = run_child(f"hf:{REPO}@v2", env)
    assert offline["output"] == v2["output"]


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize("how", ["no server", "HF_HUB_OFFLINE=1"])
def test_offline_with_nothing_stored_is_a_clear_error(env, how):
    env["HF_ENDPOINT"] = _closed_port()
    if how == "HF_HUB_OFFLINE=1":
        env["HF_HUB_OFFLINE"] = "1"
    out = run_child("hf:openai/whisper-tiny", env)
    name, mro, message = out["error"]
    assert name == "WeightsError" and "AccelkitError" in mro
    assert "hf:openai/whisper-tiny@main is not available offline" in message
    assert ("HF_HUB_OFFLINE is set" if how != "no server" else "could not be reached") in message
    assert "Download it once while online" in message and "weight store" in message
