"""Resolving a model source to a checkpoint directory: a local path, or `hf:org/name[@revision]`
downloaded from the Hugging Face Hub into the weight store (huggingface_hub is optional).

    resolve("path/to/bert")               # returned as is
    resolve("hf:google/vit-base-patch16-224")   # downloaded once, then served from the store
"""

from __future__ import annotations

import errno
import importlib
import os
import threading
import warnings
from pathlib import Path

from accelkit.errors import AccelkitError, WeightsError
from accelkit.io.store import Progress, WeightStore, progress

HF_PREFIX = "hf:"
ALLOW_PATTERNS = [
    "config.json",
    "generation_config.json",
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "model-*-of-*.safetensors",
]
_NOT_FOUND = {"RepositoryNotFoundError", "RevisionNotFoundError", "GatedRepoError", "DisabledRepoError"}
_UNREACHABLE = {
    "ConnectionError",
    "ConnectError",
    "TimeoutError",
    "TimeoutException",
    "Timeout",
    "NetworkError",
    "TransportError",
    "LocalEntryNotFoundError",
    "OfflineModeIsEnabled",
}


class _Unreachable(Exception):
    """The Hub could not be reached (internal: becomes a fallback or an offline WeightsError)."""


def resolve(
    source: str | os.PathLike,
    revision: str | None = None,
    store: WeightStore | None = None,
    *,
    refresh: bool = False,
) -> Path:
    """A checkpoint directory for `source`: a local directory (checked to exist), or
    `hf:org/name[@revision]`, served from the weight store when stored (refresh=True downloads it
    again) and downloaded through huggingface_hub otherwise. Offline (HF_HUB_OFFLINE=1 or no
    connection), a missing model raises WeightsError listing every place looked in."""
    if not isinstance(source, (str, os.PathLike)) or source == "":
        raise WeightsError(
            f"model source must be a checkpoint directory, 'hf:org/name' or a bundled name, got {source!r}"
        )
    if isinstance(source, str) and source.startswith(HF_PREFIX):
        repo_id, at = _parse_hf(source)
        if at and revision and at != revision:
            raise WeightsError(f"{source}: revision {at!r} in the source differs from revision={revision!r}")
        return _resolve_hf(repo_id, at or revision or "main", store or WeightStore(), refresh)
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    hint = ""
    if (
        isinstance(source, str)
        and source.count("/") == 1
        and not path.exists()
        and not source.startswith((".", "/"))
    ):
        hint = f"; for a Hugging Face model write 'hf:{source}'"
    what = "is a file, not a checkpoint directory" if path.exists() else "does not exist"
    raise WeightsError(f"model source {str(source)!r} {what}{hint}")


def _parse_hf(source: str) -> tuple[str, str | None]:
    repo, _, revision = source[len(HF_PREFIX) :].partition("@")
    if (
        not repo
        or any(c.isspace() for c in repo)
        or repo.startswith("/")
        or repo.endswith("/")
        or ".." in repo
    ):
        raise WeightsError(
            f"{source!r} is not a Hugging Face source: expected 'hf:org/name' or 'hf:org/name@revision'"
        )
    return repo, revision or None


def _resolve_hf(repo_id: str, revision: str, store: WeightStore, refresh: bool) -> Path:
    """One process at a time downloads a model; others loading it meanwhile wait, then find it stored."""
    with store.downloading(f"{HF_PREFIX}{repo_id}", revision):
        return _resolve_hf_locked(repo_id, revision, store, refresh)


def _resolve_hf_locked(repo_id: str, revision: str, store: WeightStore, refresh: bool) -> Path:
    source_id = f"{HF_PREFIX}{repo_id}"
    stored = _stored(store, source_id, revision)
    if stored is not None and not refresh:
        return stored
    try:
        hub = _import_hub()
    except ImportError:
        raise AccelkitError(
            f"{source_id}@{revision} is not in the weight store ({store.snapshot_path(source_id, revision)}) and "
            "downloading it needs huggingface_hub: pip install accelkit[hub]"
        ) from None

    if _offline(hub):
        reason = "HF_HUB_OFFLINE is set"
    else:
        try:
            return _download(hub, repo_id, revision, store)
        except _Unreachable as e:
            reason = f"the Hub could not be reached ({e})"
    if stored is not None:
        warnings.warn(
            f"{source_id}@{revision}: {reason}; using the stored snapshot", RuntimeWarning, stacklevel=3
        )
        return stored
    from_hf_cache = _from_hf_cache(hub, repo_id, revision, store)
    if from_hf_cache is not None:
        return from_hf_cache
    hf_cache = Path(getattr(hub.constants, "HF_HUB_CACHE", "~/.cache/huggingface/hub")).expanduser()
    raise WeightsError(
        f"{source_id}@{revision} is not available offline: {reason}. Looked in:\n"
        f"  accelkit weight store: {store.snapshot_path(source_id, revision)} (not there)\n"
        f"  Hugging Face cache: {hf_cache / ('models--' + repo_id.replace('/', '--'))} (not there)\n"
        "Download it once while online, or pass a local checkpoint directory."
    )


def _import_hub():
    """huggingface_hub with the submodules used here imported explicitly: huggingface_hub 2.x does
    not import `constants` or `errors` on `import huggingface_hub`."""
    hub = importlib.import_module("huggingface_hub")
    for sub in ("constants", "errors", "utils"):
        importlib.import_module(f"huggingface_hub.{sub}")
    return hub


def _stored(store: WeightStore, source_id: str, revision: str) -> Path | None:
    """The stored snapshot, or None when absent or found corrupt (then it has been evicted)."""
    try:
        return store.snapshot(source_id, revision)
    except WeightsError as e:
        warnings.warn(f"{e}; downloading it again", RuntimeWarning, stacklevel=4)
        return None


def _offline(hub) -> bool:
    env = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}
    return env or bool(getattr(hub.constants, "HF_HUB_OFFLINE", False))


def _download(hub, repo_id: str, revision: str, store: WeightStore) -> Path:
    """Download into a tmp/ directory of the store, then move the files into a snapshot. An
    exception at any point leaves no snapshot (the tmp directory is removed)."""
    desc = f"downloading hf:{repo_id}@{revision}"
    with store.tmp_dir(desc) as local_dir, progress(0, desc) as p:
        try:
            hub.snapshot_download(
                repo_id,
                revision=revision,
                local_dir=local_dir,
                allow_patterns=ALLOW_PATTERNS,
                tqdm_class=_progress_class(hub, p),
            )
        except Exception as e:
            error = _classify(e, repo_id, revision)
            if error is e:
                raise
            raise error from e
        return _import(store, repo_id, revision, local_dir, move=True)


def _progress_class(hub, p: Progress) -> type:
    """A tqdm class for snapshot_download that reports the bytes of the whole download to `p` (the
    store's progress: one tqdm bar on a terminal, and the progress hooks, e.g. a notebook widget),
    and shows huggingface_hub's own bars only when `p` is displayed nowhere. huggingface_hub sums every file into one bar named
    "huggingface_hub.snapshot_download", growing its total as the files' sizes become known."""
    lock = threading.Lock()

    class HubProgress(hub.utils.tqdm):
        def __init__(self, *args, **kwargs):
            self._bytes = kwargs.get("name") == "huggingface_hub.snapshot_download"
            if p.displayed:  # one display: ours; else huggingface_hub's own bars (e.g. in Jupyter)
                kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def __setattr__(self, name, value):
            if name == "total" and getattr(self, "_bytes", False) and value:
                with lock:
                    p.set_total(int(value))
            super().__setattr__(name, value)

        def update(self, n=1):
            if self._bytes and n:
                with lock:
                    p.update(int(n))
            return super().update(n)

    return HubProgress


def _from_hf_cache(hub, repo_id: str, revision: str, store: WeightStore) -> Path | None:
    """Copy the model from huggingface_hub's own cache into the store, if it is there."""
    try:
        path = hub.snapshot_download(
            repo_id, revision=revision, allow_patterns=ALLOW_PATTERNS, local_files_only=True
        )
    except Exception:
        return None
    return _import(store, repo_id, revision, Path(path), move=False)


def _import(store: WeightStore, repo_id: str, revision: str, directory: Path, move: bool) -> Path:
    files = {
        p.relative_to(directory).as_posix(): p
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.relative_to(directory).parts[0] != ".cache"
    }
    where = f"hf:{repo_id}@{revision}"
    if "config.json" not in files:
        raise WeightsError(
            f"{where} has no config.json (got: {', '.join(files) or 'nothing'}); is it a transformers model?"
        )
    if not any(n.endswith(".safetensors") for n in files):
        raise WeightsError(
            f"{where} has no safetensors weights (model.safetensors, or shards with model.safetensors.index.json); "
            "it may only have pytorch_model.bin. Convert it with transformers' save_pretrained, or use a revision "
            "that has safetensors (the Hub's conversion bot often opens one as refs/pr/N)"
        )
    return store.add_snapshot(f"{HF_PREFIX}{repo_id}", revision, files, move=move)


def _classify(e: Exception, repo_id: str, revision: str) -> Exception:
    """Map a huggingface_hub failure to an accelkit error, or _Unreachable for network trouble."""
    names = {c.__name__ for c in type(e).__mro__}
    first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
    if names & _NOT_FOUND:
        return WeightsError(f"hf:{repo_id}@{revision}: {first_line}")
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return e  # the store turns it into a StoreError that says the disk is full
    status = getattr(getattr(e, "response", None), "status_code", None)
    if names & _UNREACHABLE or (isinstance(status, int) and status >= 500):
        return _Unreachable(first_line)
    if isinstance(e, AccelkitError):
        return e
    return WeightsError(f"downloading hf:{repo_id}@{revision} failed: {type(e).__name__}: {first_line}")
