"""The content-addressed weight store: files named by their sha256, snapshots of checkpoints, progress.

Layout under the root (`ACCELKIT_CACHE`, else the user cache directory, see `default_root`):

    blobs/sha256/<hex>                       file contents, named by their sha256
    meta/sha256/<hex>.verified               JSON {size, mtime_ns} of the blob when last hashed good
    meta/sha256/<hex>.tensors.jsonl          per-tensor digests of a safetensors blob (append-only)
    snapshots/<source>/<revision>/           one checkpoint directory, usable by Checkpoint.open:
        .accelkit-snapshot.json              manifest {source, revision, created, files: {name: {sha256,
                                             size, mtime_ns}}}; a directory without one is never served
        config.json, model.safetensors, ...  hard links to the blobs (copies where links fail)
    tmp/<pid>-<random>.part|.dir             in-flight writes; never served, removed by prune
    locks/store.lock                         shared by imports, exclusive for prune and verify
    locks/<source>/<revision>.lock           shared while a snapshot is opened, exclusive while it
                                             is replaced or evicted
    locks/<source>/<revision>.download.lock  held while one process downloads it (others wait)

<source> and <revision> are percent-encoded (`hf:org/name` -> `hf%3Aorg%2Fname`). Every write goes
to tmp/ first, is fsynced and hashed, then moved into place with os.replace, so a crash, a failed
hash or a full disk leaves at most a tmp entry. Reads are verified: a file whose (size, mtime_ns)
differs from its last good hash is hashed again, and since size and mtime prove nothing about the
bytes (bit rot, `cp -p`), a weight file is also hashed once per process before its tensors are first
used (`check_content`, called by Checkpoint); a mismatch evicts the entry and raises WeightsError.
File locks (flock; msvcrt on Windows, exclusive only) let any number of processes import, load and
prune at once: a snapshot is never seen half-replaced, re-importing identical content changes
nothing on disk, and prune waits for imports in flight. A read-only store is read without locks.

    store = WeightStore()
    path = store.add_snapshot("my-bert", "v1", {"config.json": "...", "model.safetensors": "..."})
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from accelkit.cache_dir import ENV_ROOT
from accelkit.cache_dir import cache_root as default_root  # the store root; accelkit.io exports it
from accelkit.errors import WeightsError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

MANIFEST = ".accelkit-snapshot.json"
CHUNK = 8 * 1024 * 1024
PROGRESS_MIN_BYTES = 64 * 1024 * 1024  # store writes smaller than this show no terminal bar
_HEX64 = re.compile(r"[0-9a-f]{64}")
_STALE_TMP_S = 24 * 3600  # tmp entries this old are removed whoever wrote them


class StoreError(WeightsError):
    """A weight-store write that failed (disk full, permissions); nothing half-written is left."""


# -- progress -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgressEvent:
    """One progress report: sent when a task starts, on each update, and when it finishes."""

    desc: str
    done: int
    total: int
    unit: str
    finished: bool


ProgressHook = Callable[[ProgressEvent], None]
_progress_hooks: list[ProgressHook] = []


def add_progress_hook(hook: ProgressHook) -> Callable[[], None]:
    """Call `hook` for every progress event (the notebook layer shows a widget this way).
    Returns a function that removes the hook."""
    _progress_hooks.append(hook)
    return lambda: _progress_hooks.remove(hook) if hook in _progress_hooks else None


class Progress:
    """The handle `progress()` yields: call `update(n)` as work is done."""

    def __init__(self, total: int, desc: str, unit: str, callback: ProgressHook | None, bar, hooks):
        self.total, self.desc, self.unit, self.done = total, desc, unit, 0
        self._callback, self._bar, self._hooks = callback, bar, hooks

    def update(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        self._emit(False)

    @property
    def displayed(self) -> bool:
        """Whether anything shows this task (a tqdm bar, or a progress hook such as a widget)."""
        return self._bar is not None or bool(self._hooks)

    def set_total(self, total: int) -> None:
        """Change the total (a download whose size becomes known as it goes)."""
        self.total = total
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()
        self._emit(False)

    def _emit(self, finished: bool) -> None:
        event = ProgressEvent(self.desc, self.done, self.total, self.unit, finished)
        for hook in self._hooks:
            try:
                hook(event)
            except Exception as e:  # a broken display must not break a download
                self._hooks = [h for h in self._hooks if h is not hook]
                warnings.warn(
                    f"progress hook {hook!r} failed and was dropped: {e!r}", RuntimeWarning, stacklevel=2
                )
        if self._callback is not None:
            self._callback(event)


@contextlib.contextmanager
def progress(
    total: int, desc: str, *, unit: str = "B", callback: ProgressHook | None = None, min_total: int = 0
) -> Iterator[Progress]:
    """Report progress of a task of `total` units to `callback`, and, when total >= min_total, to
    a tqdm bar (if stderr is a terminal and tqdm is installed) and the hooks of add_progress_hook.

        with progress(nbytes, "uploading weights") as p:
            for chunk in chunks: upload(chunk); p.update(len(chunk))
    """
    bar, shown = None, total >= min_total
    if shown and getattr(sys.stderr, "isatty", lambda: False)():
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None:
            bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "B", leave=False)
    p = Progress(total, desc, unit, callback, bar, list(_progress_hooks) if shown else [])
    p._emit(False)
    try:
        yield p
    finally:
        if bar is not None:
            bar.close()
        p._emit(True)


# -- store --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One stored snapshot, as `WeightStore.ls()` lists it."""

    source: str
    revision: str
    path: Path
    files: Mapping[str, str]  # filename -> sha256
    bytes: int
    created: float  # unix time
    last_used: float  # unix time


@dataclass
class VerifyReport:
    """What `WeightStore.verify()` found. Bad blobs and snapshots were evicted."""

    checked: int = 0  # files hashed
    bytes: int = 0  # bytes hashed
    bad: list[str] = field(default_factory=list)  # digests whose content did not match
    evicted: list[tuple[str, str]] = field(default_factory=list)  # (source, revision)
    restored: list[str] = field(default_factory=list)  # blobs re-created from a good snapshot copy
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, why) bad but could not be removed

    @property
    def ok(self) -> bool:
        return not self.bad and not self.evicted and not self.failed


@dataclass
class PruneReport:
    """What `WeightStore.prune()` did (or would do, with dry_run=True)."""

    freed: int = 0  # bytes actually freed (hard links counted once, when the last one went)
    evicted: list[tuple[str, str]] = field(default_factory=list)  # (source, revision) snapshots removed
    removed: int = 0  # other entries removed: unreferenced blobs, records, leftovers of interrupted writes
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, why) of what could not be removed
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        """One line, e.g. "freed 23.2 MiB: 1 snapshot evicted, 3 other entries removed"."""
        verb = "would free" if self.dry_run else "freed"
        text = (
            f"{verb} {self.freed / 2**20:.1f} MiB: {len(self.evicted)} snapshot"
            f"{'' if len(self.evicted) == 1 else 's'} evicted, {self.removed} other "
            f"entr{'y' if self.removed == 1 else 'ies'} removed"
        )
        if self.failed:
            reasons = sorted({why for _, why in self.failed})
            text += (
                f"; {len(self.failed)} could not be removed ({'; '.join(reasons)}), e.g. {self.failed[0][0]}"
            )
        return text


def _write(fh, data) -> None:
    """The one place store file contents are written (tests replace it to simulate a full disk)."""
    fh.write(data)


_in_flight: set[str] = set()  # tmp entry names this process is writing now
_pending: dict[str, int] = {}  # blob digests of snapshots this process is assembling -> count
_in_flight_lock = threading.Lock()
# Snapshot files whose content this process hashed good: (st_dev, st_ino) -> (size, mtime_ns, sha256).
# Size and mtime do not prove content (bit rot, `cp -p`), so weights are hashed once per process
# before they are first used, whatever the .verified records say.
_content_checked: dict[tuple[int, int], tuple[int, int, str]] = {}


@contextlib.contextmanager
def _file_lock(path: Path, *, shared: bool) -> Iterator[None]:
    """Hold an advisory lock on `path` (created if needed; lock files are never deleted). Where the
    lock file cannot be created (a read-only store) nothing can be changed either: no lock is taken."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            yield
            return
        raise
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        else:  # pragma: no cover - Windows: byte-range lock, exclusive; LK_LOCK gives up after 10 s
            while True:
                try:
                    msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
                    break
                except OSError:
                    continue
        yield
    finally:
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            else:  # pragma: no cover
                os.lseek(fd, 0, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        finally:
            os.close(fd)


class WeightStore:
    """A content-addressed store of weight files and checkpoint snapshots (see the module doc)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root).expanduser() if root is not None else default_root()

    def __repr__(self) -> str:
        return f"WeightStore({str(self.root)!r})"

    @classmethod
    def of_snapshot(cls, path: str | os.PathLike) -> WeightStore | None:
        """The store holding the snapshot directory `path`, or None when it is not a store snapshot
        (a copied snapshot elsewhere is treated as a plain directory)."""
        path = Path(path).absolute()
        root = path.parent.parent.parent
        if (
            path.parent.parent.name == "snapshots"
            and (path / MANIFEST).is_file()
            and (root / "blobs").is_dir()
        ):
            return cls(root)
        return None

    # -- paths ----------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / _check_digest(digest)

    def snapshot_path(self, source_id: str, revision: str) -> Path:
        """Where the snapshot of (source_id, revision) lives (whether or not it exists)."""
        return self.root / "snapshots" / _encode(source_id, "source") / _encode(revision, "revision")

    def _meta(self, digest: str, suffix: str) -> Path:
        return self.root / "meta" / "sha256" / f"{digest}{suffix}"

    # -- locks ----------------------------------------------------------------------------------
    def _store_lock(self, *, shared: bool):
        return _file_lock(self.root / "locks" / "store.lock", shared=shared)

    def _entry_lock(self, snapshot: Path, *, shared: bool, suffix: str = ".lock"):
        snapshot = Path(snapshot)
        return _file_lock(
            self.root / "locks" / snapshot.parent.name / f"{snapshot.name}{suffix}", shared=shared
        )

    def reading(self, snapshot: str | os.PathLike):
        """Context manager: hold the snapshot directory unchanged (no replace, no evict by another
        process or thread) while it is verified and its files opened."""
        return self._entry_lock(Path(snapshot), shared=True)

    def downloading(self, source_id: str, revision: str):
        """Context manager: one downloader of (source_id, revision) at a time; the others wait and
        then find it stored."""
        return self._entry_lock(
            self.snapshot_path(source_id, revision), shared=False, suffix=".download.lock"
        )

    @contextlib.contextmanager
    def _staging(self, suffix: str, what: str) -> Iterator[Path]:
        """A fresh tmp/ path for an in-flight write. On any exception the path is removed and an
        OSError becomes a StoreError (ENOSPC says the disk is full); on success whatever the body
        did not move away is removed."""
        tmp_dir = self.root / "tmp"
        try:
            tmp_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise _store_error(e, what, self.root) from e
        path = tmp_dir / f"{os.getpid()}-{secrets.token_hex(8)}{suffix}"
        with _in_flight_lock:
            _in_flight.add(path.name)
        try:
            yield path
        except OSError as e:
            raise _store_error(e, what, self.root) from e
        finally:
            _remove(path)
            with _in_flight_lock:
                _in_flight.discard(path.name)

    @contextlib.contextmanager
    def tmp_dir(self, what: str) -> Iterator[Path]:
        """A fresh empty directory under tmp/ (the blobs' filesystem, so files move in without a
        copy), removed on exit. `what` describes the work for error messages."""
        with self._staging(".dir", what) as path:
            path.mkdir()
            yield path

    # -- blobs ----------------------------------------------------------------------------------
    def put_bytes(self, data: bytes | bytearray | memoryview, *, expected: str | None = None) -> str:
        """Store `data`; returns its sha256 hex digest."""
        view = memoryview(data).cast("B")
        digest = hashlib.sha256(view).hexdigest()
        _check_expected(digest, expected, "bytes")
        if self._recorded_good(digest):
            return digest
        with self._staging(".part", f"storing {len(view)} bytes") as tmp:
            with open(tmp, "wb") as fh:
                for start in range(0, len(view), CHUNK):
                    _write(fh, view[start : start + CHUNK])
                fh.flush()
                os.fsync(fh.fileno())
            self._install_blob(tmp, digest, f"{len(view)} bytes")
        return digest

    def put_file(self, src: str | os.PathLike, *, move: bool = False, expected: str | None = None) -> str:
        """Store the contents of `src`; returns its sha256 hex digest. With move=True the file is
        moved into the store when it is on the same filesystem (no copy), and is gone afterwards."""
        src = Path(src)
        try:
            size = src.stat().st_size
        except OSError as e:
            raise WeightsError(f"cannot store {src}: {e.strerror or e}") from e
        with self._staging(".part", f"storing {src.name} ({size} bytes)") as tmp:
            moved = False
            if move and not src.is_symlink():
                with contextlib.suppress(OSError):
                    os.replace(src, tmp)
                    moved = True
            if moved:
                with open(tmp, "r+b") as fh:
                    os.fsync(fh.fileno())
            else:
                with open(src, "rb") as fin, open(tmp, "wb") as fout:
                    with progress(size, f"storing {src.name}", min_total=PROGRESS_MIN_BYTES) as p:
                        while chunk := fin.read(CHUNK):
                            _write(fout, chunk)
                            p.update(len(chunk))
                    fout.flush()
                    os.fsync(fout.fileno())
            # hash what is on disk, not what was read: this is the verification of the write
            digest = _hash_file(tmp, f"hashing {src.name}")
            _check_expected(digest, expected, str(src))
            self._install_blob(tmp, digest, src.name)
            if move and not moved:
                _remove(src)
        return digest

    def _install_blob(self, tmp: Path, digest: str, what: str) -> None:
        """Move a fully written and hashed tmp file to blobs/sha256/<digest>."""
        target = self.blob_path(digest)
        if self._recorded_good(digest):
            return  # an identical, verified blob is already there; keep it (tmp is dropped)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(tmp, target)
        except PermissionError:
            # Windows refuses to replace a file that is open; an existing good copy will do
            if not (target.exists() and _hash_file(target, f"checking {what}") == digest):
                raise
        _fsync_dir(target.parent)
        self._record(digest, target)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def open_blob(self, digest: str) -> Path:
        """The path of a blob whose contents match `digest` (hashed again if the file changed
        since its last check). A mismatch evicts the blob and raises WeightsError."""
        path = self.blob_path(digest)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise WeightsError(f"blob sha256:{digest} is not in the weight store {self.root}") from None
        if self._recorded_good(digest, st):
            return path
        actual = _hash_file(path, f"verifying {digest[:12]}")
        if actual != digest:
            evicted = self._evict_blob(digest)
            raise WeightsError(
                f"corrupt cache entry {path}: sha256 is {actual}, expected {digest}; evicted it"
                + (f" and the snapshots {', '.join(f'{s}@{r}' for s, r in evicted)}" if evicted else "")
            )
        self._record(digest, path, st)
        return path

    def _recorded_good(self, digest: str, st: os.stat_result | None = None) -> bool:
        """True when the blob exists and its (size, mtime_ns) is what it was when last hashed good."""
        try:
            st = st or self.blob_path(digest).stat()
            rec = json.loads(self._meta(digest, ".verified").read_text())
            return rec["size"] == st.st_size and rec["mtime_ns"] == st.st_mtime_ns
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def _record(self, digest: str, path: Path, st: os.stat_result | None = None) -> None:
        st = st or path.stat()
        rec = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "checked": time.time()}
        with contextlib.suppress(WeightsError):  # only a cache: next read hashes again
            self._write_json(self._meta(digest, ".verified"), rec)

    def _evict_blob(self, digest: str) -> list[tuple[str, str]]:
        """Remove a bad blob, its verification record and every snapshot that names it."""
        evicted = []
        for path, manifest in self._manifests():
            if any(f.get("sha256") == digest for f in manifest["files"].values()):
                self._evict_snapshot(path)
                evicted.append((manifest["source"], manifest["revision"]))
        _remove(self._meta(digest, ".verified"))
        self._discard(self.blob_path(digest))
        return evicted

    # -- tensor digest sidecar -----------------------------------------------------------------
    def tensor_digests(self, blob_digest: str) -> dict[str, str]:
        """Per-tensor digests stored for a safetensors blob ({} when none)."""
        out = {}
        try:
            lines = self._meta(_check_digest(blob_digest), ".tensors.jsonl").read_text().splitlines()
        except OSError:
            return out
        for line in lines:
            try:
                name, digest = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash
            if isinstance(name, str) and isinstance(digest, str) and _HEX64.fullmatch(digest):
                out[name] = digest
        return out

    def add_tensor_digests(self, blob_digest: str, digests: Mapping[str, str]) -> None:
        """Append per-tensor digests for a blob (best effort: a failure only costs a re-hash)."""
        if not digests:
            return
        path = self._meta(_check_digest(blob_digest), ".tensors.jsonl")
        text = "".join(json.dumps([n, d]) + "\n" for n, d in digests.items())
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(text)

    # -- snapshots ------------------------------------------------------------------------------
    def add_snapshot(
        self,
        source_id: str,
        revision: str,
        files: Mapping[str, str | os.PathLike],
        *,
        move: bool = False,
    ) -> Path:
        """Store `files` ({filename in the checkpoint: path on disk}) as the snapshot
        (source_id, revision), replacing any earlier one atomically. Returns its directory."""
        target = self.snapshot_path(source_id, revision)
        names = [_check_filename(n) for n in files]
        with self._store_lock(shared=True), _pending_digests() as pending:  # prune waits for us
            digests = {}
            for n in names:
                digests[n] = self.put_file(files[n], move=move)
                pending(digests[n])
            with self._entry_lock(target, shared=False):
                if not self._same_snapshot(target, source_id, revision, digests):
                    self._assemble(source_id, revision, digests, target)
        return target

    def _same_snapshot(self, target: Path, source_id: str, revision: str, digests: dict[str, str]) -> bool:
        """True (and the snapshot marked used) when `target` already holds exactly these files,
        unchanged: re-importing the same content then leaves the directory that readers use alone."""
        manifest = _read_manifest(target)
        if manifest is None or (manifest["source"], manifest["revision"]) != (source_id, revision):
            return False
        if {n: r["sha256"] for n, r in manifest["files"].items()} != digests:
            return False
        for name, rec in manifest["files"].items():
            try:
                st = (target / name).stat()
            except OSError:
                return False
            if (st.st_size, st.st_mtime_ns) != (rec["size"], rec["mtime_ns"]):
                return False
        with contextlib.suppress(OSError):
            os.utime(target / MANIFEST)
        return True

    def _assemble(self, source_id: str, revision: str, digests: dict[str, str], target: Path) -> None:
        with self.tmp_dir(f"adding snapshot {source_id}@{revision}") as tmp:
            records = {}
            for name, digest in digests.items():
                dst = tmp / name
                dst.parent.mkdir(parents=True, exist_ok=True)
                _materialise(self.open_blob(digest), dst, digest)
                st = dst.stat()
                records[name] = {"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
            manifest = {
                "format": 1,
                "source": source_id,
                "revision": revision,
                "created": time.time(),
                "files": records,
            }
            _write_file(tmp / MANIFEST, json.dumps(manifest, indent=1).encode())
            self._swap_in(tmp, target)

    def _swap_in(self, new: Path, target: Path) -> None:
        """Move the directory `new` to `target`, replacing what is there: one atomic exchange where
        the system has one (then `new` holds the old snapshot, and its tmp/ entry goes with it), else
        two renames (a process killed between them leaves no snapshot, never a partial one)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and _exchange(new, target):
            _fsync_dir(target.parent)
            return
        for _ in range(10):
            try:
                os.replace(new, target)
                break
            except OSError:
                if not target.exists():
                    raise
                with (
                    self._staging(".old", f"replacing {target}") as old,
                    contextlib.suppress(FileNotFoundError),
                ):
                    os.replace(target, old)
        else:
            raise StoreError(f"could not replace snapshot {target}: another writer keeps recreating it")
        _fsync_dir(target.parent)

    def snapshot(self, source_id: str, revision: str | None = None) -> Path | None:
        """The verified snapshot directory of (source_id, revision), or None when not stored.
        revision=None picks the most recently used revision. A corrupt snapshot is evicted and
        raises WeightsError."""
        if revision is None:
            candidates = list((self.root / "snapshots" / _encode(source_id, "source")).glob(f"*/{MANIFEST}"))
            if not candidates:
                return None
            path = max(candidates, key=lambda p: _stat(p, "st_mtime")).parent
        else:
            path = self.snapshot_path(source_id, revision)
        with self.reading(path):
            if not (path / MANIFEST).is_file():
                return None
            self.verify_snapshot(path)
            with contextlib.suppress(OSError):
                os.utime(path / MANIFEST)  # last used
        return path

    def check_content(
        self, path: str | os.PathLike, name: str, expected: str, st: os.stat_result, data
    ) -> None:
        """Check the bytes `data` of the snapshot file `name` (as mapped; `st` its stat when opened)
        against the manifest's sha256 `expected`, unless this process already hashed that file good
        (same inode, size and mtime). A mismatch evicts the snapshot (and the blob, when the file is
        a link to it) if it still serves that file, and raises WeightsError naming the file and what
        to do."""
        path = Path(path)
        key = (st.st_dev, st.st_ino)
        if _content_checked.get(key) == (st.st_size, st.st_mtime_ns, expected):
            return
        actual = hash_buffer(data, f"verifying {name}")
        if actual == expected:
            _content_checked[key] = (st.st_size, st.st_mtime_ns, actual)
            return
        file = path / name
        manifest = _read_manifest(path)
        with contextlib.suppress(OSError):
            if os.path.samestat(st, file.stat()):  # not replaced meanwhile: the store serves these bytes
                with contextlib.suppress(OSError):
                    if os.path.samestat(st, self.blob_path(expected).stat()):
                        self._evict_blob(expected)
                self._evict_snapshot(path)
        what = f"{manifest['source']}@{manifest['revision']}" if manifest else str(path)
        raise WeightsError(
            f"corrupt weights in the weight store: {file} has sha256 {actual}, expected {expected} "
            f"(its size and modification time are unchanged: the bytes changed on disk); evicted "
            f"{what}. Import it again (an hf: source downloads again when loaded), and run "
            f"`accelkit cache verify` to check the rest of the store"
        )

    def verify_snapshot(self, path: str | os.PathLike, *, full: bool = False) -> dict:
        """Check a snapshot directory against its manifest (files whose size and mtime are as
        recorded are trusted unless full=True). Returns the manifest. On a mismatch the snapshot
        (and a blob sharing the bad file) is evicted and WeightsError raised."""
        path = Path(path)
        if path.absolute().parent.parent != (self.root / "snapshots").absolute():
            raise WeightsError(f"{path} is not a snapshot directory of the weight store {self.root}")
        manifest = _read_manifest(path)
        if manifest is None:
            self._evict_snapshot(path)
            raise WeightsError(f"snapshot {path} has a missing or malformed manifest {MANIFEST}; evicted it")
        changed = False
        for name, rec in manifest["files"].items():
            file = path / name
            try:
                st = file.stat()
            except OSError:
                self._evict_snapshot(path)
                raise WeightsError(f"corrupt cache entry {path}: {name} is missing; evicted it") from None
            if not full and (st.st_size, st.st_mtime_ns) == (rec["size"], rec["mtime_ns"]):
                continue
            actual = _hash_file(file, f"verifying {name}") if st.st_size == rec["size"] else "(size differs)"
            if actual != rec["sha256"]:
                blob = self.root / "blobs" / "sha256" / rec["sha256"]
                with contextlib.suppress(OSError):
                    if os.path.samestat(st, blob.stat()):
                        self._evict_blob(rec["sha256"])
                self._evict_snapshot(path)
                raise WeightsError(
                    f"corrupt cache entry {file}: sha256 {actual}, expected {rec['sha256']} "
                    f"({st.st_size} bytes, expected {rec['size']}); evicted {manifest['source']}@{manifest['revision']}"
                )
            rec["mtime_ns"], changed = st.st_mtime_ns, True
        if changed:
            with contextlib.suppress(WeightsError):
                self._write_json(path / MANIFEST, manifest)
        return manifest

    def _evict_snapshot(self, path: Path) -> None:
        """Make a snapshot unservable at once (manifest first), then delete what can be deleted."""
        _remove(path / MANIFEST)
        self._discard(path)
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # the source directory, when it was its last revision

    def _discard(self, path: Path) -> None:
        """Delete a file or directory; if that fails (Windows: open files) move it to tmp/ for prune."""
        try:
            _remove(path, strict=True)
        except OSError:
            with contextlib.suppress(OSError):
                os.replace(path, self.root / "tmp" / f"{os.getpid()}-{secrets.token_hex(8)}.evicted")

    def _manifests(self) -> Iterator[tuple[Path, dict]]:
        """(directory, manifest) of every well-formed snapshot."""
        for path in sorted((self.root / "snapshots").glob(f"*/*/{MANIFEST}")):
            manifest = _read_manifest(path.parent)
            if manifest is not None:
                yield path.parent, manifest

    # -- management -----------------------------------------------------------------------------
    def ls(self) -> list[Entry]:
        """Every stored snapshot, sorted by source then revision."""
        entries = []
        for path, m in self._manifests():
            with contextlib.suppress(OSError):
                last_used = (path / MANIFEST).stat().st_mtime
                files = {n: r["sha256"] for n, r in m["files"].items()}
                size = sum(r["size"] for r in m["files"].values())
                entries.append(Entry(m["source"], m["revision"], path, files, size, m["created"], last_used))
        return sorted(entries, key=lambda e: (e.source, e.revision))

    def verify(self, *, callback: ProgressHook | None = None) -> VerifyReport:
        """Hash every blob and every snapshot file that is not a link to a blob. Bad blobs and the
        snapshots that name them are evicted; a missing blob is restored from a good snapshot.
        Imports by other processes wait until it is done."""
        with self._store_lock(shared=False):
            return self._verify(callback)

    def _verify(self, callback: ProgressHook | None) -> VerifyReport:
        report = VerifyReport()
        blobs = [p for p in (self.root / "blobs" / "sha256").glob("*") if _HEX64.fullmatch(p.name)]
        total = sum(_stat(p, "st_size") for p in blobs)
        with progress(total, "verifying weight store", callback=callback) as p:
            for blob in blobs:
                size = _stat(blob, "st_size")
                report.checked += 1
                report.bytes += size
                if _hash_file(blob) == blob.name:
                    self._record(blob.name, blob)
                else:
                    report.bad.append(blob.name)
                    report.evicted += self._evict_blob(blob.name)
                p.update(size)
        for path, manifest in list(self._manifests()):
            for name, rec in manifest["files"].items():
                blob = self.root / "blobs" / "sha256" / rec["sha256"]
                with contextlib.suppress(OSError):
                    if os.path.samefile(path / name, blob):
                        continue  # checked above
                report.checked += 1
                report.bytes += rec["size"]
                try:
                    good = _hash_file(path / name) == rec["sha256"]
                except OSError:
                    good = False
                if not good:
                    self._evict_snapshot(path)
                    report.evicted.append((manifest["source"], manifest["revision"]))
                    break
                if not blob.exists():
                    self.put_file(path / name)
                    report.restored.append(rec["sha256"])
        # on a read-only store nothing could be evicted: say so instead of claiming it
        gone = []
        for source, revision in report.evicted:
            path = self.snapshot_path(source, revision)
            if (path / MANIFEST).exists():
                report.failed.append((str(path), _why_not_removed(path / MANIFEST)))
            else:
                gone.append((source, revision))
        report.evicted = gone
        report.failed += [
            (str(self.blob_path(d)), _why_not_removed(self.blob_path(d)))
            for d in report.bad
            if self.has_blob(d)
        ]
        return report

    def prune(
        self,
        keep: int | None = None,
        older_than: float | timedelta | None = None,
        dry_run: bool = False,
        *,
        grace: float = 3600.0,
    ) -> PruneReport:
        """Free space; returns what was removed, what was freed, and what could not be removed and
        why (a read-only store removes nothing and says so). dry_run=True only reports.

        keep: keep only this many most recently used revisions of each source.
        older_than: drop snapshots not used for this long (seconds or a timedelta).
        Always drops leftovers of interrupted writes in tmp/, snapshot directories without a
        manifest, and blobs that no remaining snapshot names; blobs that no snapshot named are kept
        for `grace` seconds after they were stored (a snapshot being assembled by another process
        may be about to name them). Waits for imports in flight (other processes included)."""
        with self._store_lock(shared=False):
            return self._prune(keep, older_than, dry_run, grace)

    def _prune(self, keep, older_than, dry_run: bool, grace: float) -> PruneReport:
        now = time.time()
        if isinstance(older_than, timedelta):
            older_than = older_than.total_seconds()
        snapshots: set[Path] = set()
        files: set[Path] = set()
        kept: set[str] = set()
        released: set[str] = set()  # named by a snapshot dropped now
        by_source: dict[str, list[Entry]] = {}
        for e in self.ls():
            by_source.setdefault(e.source, []).append(e)
        for entries in by_source.values():
            entries.sort(key=lambda e: e.last_used, reverse=True)
            for i, e in enumerate(entries):
                if (keep is not None and i >= keep) or (
                    older_than is not None and now - e.last_used > older_than
                ):
                    snapshots.add(e.path)
                    released.update(e.files.values())
                else:
                    kept.update(e.files.values())
        for path in (self.root / "snapshots").glob("*/*"):
            if _read_manifest(path) is None:
                snapshots.add(path)  # half-evicted or unreadable: never served
        with _in_flight_lock:
            kept.update(_pending)
        for blob in (self.root / "blobs" / "sha256").glob("*"):
            stored_at = max(_stat(blob, "st_mtime"), _stat(blob, "st_ctime"))
            if blob.name in kept or (blob.name not in released and now - stored_at < grace):
                kept.add(blob.name)  # named, or a young orphan that a snapshot being assembled may name
            else:
                files.add(blob)
        files.update(p for p in (self.root / "meta" / "sha256").glob("*") if p.name.split(".")[0] not in kept)
        files.update(p for p in (self.root / "tmp").glob("*") if _is_stale(p, now))

        names = {e.path: (e.source, e.revision) for e in self.ls()}
        candidates = [*snapshots, *files]
        report = PruneReport(dry_run=dry_run)
        if dry_run:
            report.freed = _freed_bytes(candidates)
            report.evicted = sorted(names[p] for p in snapshots if p in names)
            report.removed = len(candidates) - len(report.evicted)
            return report
        links = _links(candidates)
        for path in sorted(snapshots):
            with self._entry_lock(path, shared=False):  # not while another process opens it
                why = _try_remove(path / MANIFEST) or _try_remove(path)  # unservable first, then gone
            with contextlib.suppress(OSError):
                path.parent.rmdir()  # the source directory, when it was its last revision
            if why is not None:
                report.failed.append((str(path), why))
            elif path in names:
                report.evicted.append(names[path])
            else:
                report.removed += 1
        for path in sorted(files):
            why = _try_remove(path)
            if why is not None:
                report.failed.append((str(path), why))
            else:
                report.removed += 1
        report.freed = sum(
            st.st_size
            for st, paths in links.values()
            if len(paths) >= st.st_nlink and not any(os.path.lexists(p) for p in paths)
        )
        return report

    def size(self) -> int:
        """Bytes the store takes on disk (hard links counted once)."""
        seen, total = set(), 0
        for dirpath, _, filenames in os.walk(self.root):
            for name in filenames:
                with contextlib.suppress(OSError):
                    st = os.stat(os.path.join(dirpath, name))
                    if (st.st_dev, st.st_ino) not in seen:
                        seen.add((st.st_dev, st.st_ino))
                        total += st.st_size
        return total

    def _write_json(self, path: Path, obj) -> None:
        """Atomically replace `path` with `obj` as JSON."""
        with self._staging(".part", f"writing {path.name}") as tmp:
            _write_file(tmp, json.dumps(obj, indent=1).encode())
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, path)


# -- helpers ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _pending_digests() -> Iterator[Callable[[str], None]]:
    """Mark blobs as about to be named by a snapshot, so that prune in this process keeps them."""
    added: list[str] = []

    def add(digest: str) -> None:
        with _in_flight_lock:
            _pending[digest] = _pending.get(digest, 0) + 1
        added.append(digest)

    try:
        yield add
    finally:
        with _in_flight_lock:
            for digest in added:
                _pending[digest] -= 1
                if not _pending[digest]:
                    del _pending[digest]


def _check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
        raise WeightsError(f"not a sha256 hex digest: {digest!r}")
    return digest


def _check_expected(digest: str, expected: str | None, what: str) -> None:
    if expected is not None and digest != expected.lower():
        raise WeightsError(f"{what}: sha256 is {digest}, expected {expected}")


def _encode(name: str, what: str) -> str:
    if not isinstance(name, str) or name in ("", ".", ".."):
        raise WeightsError(f"invalid snapshot {what} {name!r}")
    return quote(name, safe="")


def _check_filename(name: str) -> str:
    parts = PurePosixPath(name).parts
    if (
        not isinstance(name, str)
        or not parts
        or name.startswith("/")
        or "\\" in name
        or any(p in (".", "..") for p in parts)
        or name == MANIFEST
    ):
        raise WeightsError(f"invalid snapshot filename {name!r}: expected a relative path like 'config.json'")
    return name


def _read_manifest(path: Path) -> dict | None:
    try:
        m = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        files = m["files"]
        if not isinstance(m["source"], str) or not isinstance(m["revision"], str):
            return None
        for name, rec in files.items():
            _check_filename(name)
            if not (_HEX64.fullmatch(rec["sha256"]) and isinstance(rec["size"], int)):
                return None
            rec.setdefault("mtime_ns", None)
        m.setdefault("created", 0.0)
        return m
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # WeightsError is a ValueError
        return None


def hash_buffer(data, desc: str) -> str:
    """sha256 hex of a buffer (a memory map), with progress for large ones."""
    view = memoryview(data).cast("B")
    h = hashlib.sha256()
    with progress(len(view), desc, min_total=PROGRESS_MIN_BYTES) as p:
        for start in range(0, len(view), CHUNK):
            h.update(view[start : start + CHUNK])
            p.update(min(CHUNK, len(view) - start))
    return h.hexdigest()


def _hash_file(path: Path, desc: str | None = None) -> str:
    h = hashlib.sha256()
    size = _stat(path, "st_size")
    with (
        open(path, "rb") as fh,
        progress(size, desc or f"hashing {path.name}", min_total=PROGRESS_MIN_BYTES) as p,
    ):
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            p.update(len(chunk))
    return h.hexdigest()


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        _write(fh, data)
        fh.flush()
        os.fsync(fh.fileno())


def _materialise(blob: Path, dst: Path, digest: str) -> None:
    """Put the blob's contents at dst: a hard link where the filesystem allows, else a checked copy."""
    try:
        os.link(blob, dst)
        return
    except OSError:
        pass
    with open(blob, "rb") as fin, open(dst, "wb") as fout:
        while chunk := fin.read(CHUNK):
            _write(fout, chunk)
        fout.flush()
        os.fsync(fout.fileno())
    if _hash_file(dst) != digest:
        raise StoreError(f"copy of blob {digest} to {dst} does not match its digest")


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two directories (Linux renameat2 RENAME_EXCHANGE); False where the
    system or filesystem cannot."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _remove(path: Path, strict: bool = False) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass
    except OSError:
        if strict:
            raise


def _stat(path: Path, attribute: str) -> float:
    """`path.stat().<attribute>`, or 0 when the file is gone."""
    try:
        return getattr(path.stat(), attribute)
    except OSError:
        return 0


def _fsync_dir(path: Path) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _store_error(e: OSError, what: str, root: Path) -> StoreError:
    if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        try:
            free = f"{shutil.disk_usage(root).free} bytes free"
        except OSError:
            free = "free space unknown"
        return StoreError(
            f"disk full while {what} in the weight store {root} ({free}); nothing was stored. "
            f"Free space (accelkit cache prune) or set {ENV_ROOT} to a larger disk"
        )
    return StoreError(
        f"failed while {what} in the weight store {root}: {e.strerror or e}; nothing was stored"
    )


def _is_stale(path: Path, now: float) -> bool:
    """Whether a tmp/ entry is a leftover of an interrupted write (not one in flight)."""
    if path.name in _in_flight:
        return False
    try:
        newest = max([path.stat().st_mtime] + [p.stat().st_mtime for p in path.rglob("*")])
    except OSError:
        return True
    age = now - newest
    pid_text = path.name.split("-", 1)[0]
    pid = int(pid_text) if pid_text.isdigit() else None
    if age > _STALE_TMP_S or pid == os.getpid():
        return True  # ours and not in flight: a crashed write of this process
    if pid is not None and os.name == "posix":
        return age > 60 and not _pid_alive(pid)
    return age > 3600


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _links(paths: list[Path]) -> dict[tuple[int, int], list]:
    """{(dev, inode): [stat, {file names}]} of every file in `paths` (files and trees)."""
    links: dict[tuple[int, int], list] = {}
    for path in paths:
        files = [path] if not path.is_dir() else [p for p in path.rglob("*") if p.is_file()]
        for f in files:
            with contextlib.suppress(OSError):
                st = f.stat()
                entry = links.setdefault((st.st_dev, st.st_ino), [st, set()])
                entry[1].add(str(f))
    return links


def _freed_bytes(paths: list[Path]) -> int:
    """Bytes freed by deleting `paths` (files and trees): a hard-linked file counts only when all
    of its links are among them."""
    return sum(st.st_size for st, names in _links(paths).values() if len(names) >= st.st_nlink)


def _why_not_removed(path: Path) -> str:
    """Why `path`, which eviction left in place, cannot be removed."""
    return _try_remove(path) or "removed only now"


def _try_remove(path: Path) -> str | None:
    """Remove a file or tree; None when it is gone, else why it could not be removed."""
    try:
        _remove(path, strict=True)
    except OSError as e:
        if sys.platform == "win32" and e.errno == errno.EACCES:
            return f"{e.strerror or e}: in use by another process; prune again later"
        if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return f"{e.strerror or e}: the weight store is read-only here"
        return e.strerror or str(e)
    return None
