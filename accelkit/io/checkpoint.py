"""Opening a Hugging Face checkpoint directory: config, tokenizer/preprocessor files and safetensors weights.

A directory written by transformers' save_pretrained, or a weight-store snapshot (verified first):

    ckpt = Checkpoint.open("path/to/bert")
    ckpt.config["hidden_size"], ckpt.names()[:3], ckpt.array("embeddings.word_embeddings.weight")
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np

from accelkit.errors import ConfigError, WeightsError
from accelkit.io.safetensors import SafetensorsFile, TensorInfo
from accelkit.io.store import MANIFEST, WeightStore

WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"
_SHARD = re.compile(r"model-(\d+)-of-(\d+)\.safetensors")
_OTHER_FORMATS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5", "flax_model.msgpack")


def read_json(path: str | os.PathLike, error: type[WeightsError] = ConfigError) -> dict:
    """Parse a JSON object file; a malformed one raises `error` naming the file and the position."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"{path}: cannot read: {e}") from e
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{path}: malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from e
    if not isinstance(value, dict):
        raise error(f"{path}: expected a JSON object, found {type(value).__name__}")
    return value


def read_preprocessor_config(path: str | os.PathLike, what: str) -> dict:
    """``path/preprocessor_config.json`` (or the file ``path`` itself) as a dict, for the processor ``what``."""
    file = Path(path)
    if file.is_dir():
        file = file / "preprocessor_config.json"
    if not file.is_file():
        raise WeightsError(f"{what}: no preprocessor config at {file}")
    return read_json(file)


def tensor_digest(info: TensorInfo, raw) -> str:
    """sha256 hex of `json.dumps([dtype, shape])`, a newline, then the tensor's stored bytes."""
    h = hashlib.sha256(json.dumps([info.dtype, list(info.shape)]).encode() + b"\n")
    h.update(raw)
    return h.hexdigest()


class Checkpoint:
    """The files of one checkpoint directory, with its weights memory-mapped (see `open`)."""

    def __init__(
        self,
        directory: Path,
        config: dict,
        files: dict[str, SafetensorsFile],
        where: dict[str, str],
        store: WeightStore | None = None,
        manifest: dict | None = None,
    ):
        self.directory = directory
        self.config = config
        self._files = files  # weight filename -> open file
        self._where = where  # tensor name -> weight filename
        self._store = store
        self._manifest = manifest
        self._digests: dict[str, str] = {}
        self._stored: dict[str, dict[str, str]] = {}  # blob digest -> tensor digests in the store
        self._file_digests: dict[Path, str] = {}
        self._content_ok: set[str] = set()  # weight files of a store snapshot hashed good

        def optional(name: str) -> Path | None:
            path = directory / name
            return path if path.is_file() else None

        self.config_path = directory / "config.json"
        self.tokenizer_path = optional("tokenizer.json")
        self.tokenizer_config_path = optional("tokenizer_config.json")
        self.preprocessor_config_path = optional("preprocessor_config.json")
        self.generation_config_path = optional("generation_config.json")
        load = lambda p: read_json(p) if p else None  # noqa: E731
        self.tokenizer_config: dict | None = load(self.tokenizer_config_path)
        self.preprocessor_config: dict | None = load(self.preprocessor_config_path)
        self.generation_config: dict | None = load(self.generation_config_path)
        self.source: str | None = manifest["source"] if manifest else None
        self.revision: str | None = manifest["revision"] if manifest else None

    @classmethod
    def open(cls, directory: str | os.PathLike) -> Checkpoint:
        """Open a Hugging Face layout directory: config.json plus model.safetensors, or shards
        named by model.safetensors.index.json. A store snapshot is verified first."""
        directory = Path(directory)
        if not directory.is_dir():
            hint = "; pass the directory that holds it" if directory.is_file() else ""
            raise WeightsError(f"checkpoint directory {directory} does not exist{hint}")
        store = WeightStore.of_snapshot(directory)
        if store is None:
            return cls._open(directory, None, None)
        with store.reading(directory):  # not replaced or evicted by another process meanwhile
            return cls._open(directory, store, store.verify_snapshot(directory))

    @classmethod
    def _open(cls, directory: Path, store: WeightStore | None, manifest: dict | None) -> Checkpoint:
        found = sorted(p.name for p in directory.iterdir() if p.name != MANIFEST)
        if not (directory / "config.json").is_file():
            listing = ", ".join(found[:20]) + (f", ... ({len(found)} in all)" if len(found) > 20 else "")
            raise WeightsError(
                f"{directory} is not a checkpoint: it has no config.json "
                f"({'found: ' + listing if found else 'the directory is empty'})"
            )
        config = read_json(directory / "config.json")
        files, where = _open_weights(directory, found)
        try:
            return cls(directory, config, files, where, store, manifest)
        except BaseException:
            for f in files.values():
                f.close()
            raise

    # -- tensors ------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return list(self._where)

    def __contains__(self, name: object) -> bool:
        return name in self._where

    def __len__(self) -> int:
        return len(self._where)

    @property
    def weight_files(self) -> list[Path]:
        return [f.path for f in self._files.values()]

    @property
    def nbytes(self) -> int:
        return sum(self.info(n).nbytes for n in self._where)

    def _file(self, name: str) -> SafetensorsFile:
        try:
            return self._files[self._where[name]]
        except KeyError:
            close = difflib.get_close_matches(name, self._where, n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise WeightsError(
                f"checkpoint {self.directory} has no tensor {name!r} ({len(self._where)} tensors){hint}"
            ) from None

    def info(self, name: str) -> TensorInfo:
        return self._file(name).info(name)

    def _checked(self, name: str) -> SafetensorsFile:
        """The file holding tensor `name`, its content checked against the store's digest first
        (a store snapshot: once per file and process; see WeightStore.check_content)."""
        file = self._file(name)
        filename = self._where[name]
        if self._store is not None and filename not in self._content_ok:
            rec = self._manifest["files"].get(filename)
            if rec is None:
                raise WeightsError(
                    f"{file.path}: not listed in the manifest of the store snapshot {self.directory}"
                )
            self._store.check_content(self.directory, filename, rec["sha256"], file.stat, file.buffer())
            self._content_ok.add(filename)
        return file

    def raw(self, name: str) -> np.ndarray:
        """The stored bytes of a tensor (a uint8 view of the memory map)."""
        return self._checked(name).raw(name)

    def array(self, name: str, dtype=None) -> np.ndarray:
        """The tensor as numpy: a zero-copy read-only view when no conversion is needed."""
        return self._checked(name).array(name, dtype)

    def tensor_digest(self, name: str) -> str:
        """sha256 of (dtype, shape, stored bytes) of a tensor: computed once, then remembered in
        memory and, for a store snapshot, in the store so that a later load does not hash again."""
        if name in self._digests:
            return self._digests[name]
        file = self._checked(name)  # a remembered digest is only as good as the bytes it stands for
        blob = self._blob_of(self._where[name])
        if blob is not None:
            if blob not in self._stored:
                self._stored[blob] = self._store.tensor_digests(blob)
            if name in self._stored[blob]:
                self._digests[name] = self._stored[blob][name]
                return self._digests[name]
        digest = self._digests[name] = tensor_digest(file.info(name), file.raw(name))
        if blob is not None:
            self._stored[blob][name] = digest
            self._store.add_tensor_digests(blob, {name: digest})
        return digest

    def _blob_of(self, filename: str) -> str | None:
        if self._store is None:
            return None
        rec = self._manifest["files"].get(filename)
        return rec["sha256"] if rec else None

    def file_digest(self, path: str | os.PathLike) -> str:
        """sha256 hex of a file of the checkpoint (a name inside the directory, or a path)."""
        path = Path(path)
        if not path.is_absolute():
            path = self.directory / path
        try:
            rel = path.relative_to(self.directory).as_posix()
        except ValueError:
            rel = None
        known = self._blob_of(rel) if rel else None
        if known is not None:
            return known
        if path not in self._file_digests:
            h = hashlib.sha256()
            try:
                with open(path, "rb") as fh:
                    while chunk := fh.read(8 * 1024 * 1024):
                        h.update(chunk)
            except OSError as e:
                raise WeightsError(f"cannot hash {path}: {e.strerror or e}") from e
            self._file_digests[path] = h.hexdigest()
        return self._file_digests[path]

    # -- lifetime -----------------------------------------------------------------------------
    def close(self) -> None:
        for f in self._files.values():
            f.close()

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        kind = self.config.get("model_type", "?")
        return f"Checkpoint({str(self.directory)!r}, model_type={kind!r}, tensors={len(self)}, nbytes={self.nbytes})"


def _open_weights(directory: Path, found: list[str]) -> tuple[dict[str, SafetensorsFile], dict[str, str]]:
    """Open the weight files; returns ({filename: file}, {tensor name: filename})."""
    files: dict[str, SafetensorsFile] = {}
    try:
        if WEIGHTS_NAME in found:
            f = files[WEIGHTS_NAME] = SafetensorsFile(directory / WEIGHTS_NAME)
            return files, dict.fromkeys(f.keys(), WEIGHTS_NAME)
        if INDEX_NAME in found:
            return files, _open_index(directory, files)
        shards = sorted(n for n in found if _SHARD.fullmatch(n))
        if shards:
            return files, _open_unindexed_shards(directory, shards, files)
    except BaseException:
        for f in files.values():
            f.close()
        raise
    others = [n for n in _OTHER_FORMATS if n in found]
    if others:
        raise WeightsError(
            f"{directory} has weights only as {', '.join(others)}; accelkit reads safetensors. Convert with "
            "transformers: AutoModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)"
        )
    stray = [n for n in found if n.endswith(".safetensors")]
    raise WeightsError(
        f"{directory} has no weights: expected {WEIGHTS_NAME} or {INDEX_NAME} with its shards"
        + (f" (found {', '.join(stray)})" if stray else "")
    )


def _open_index(directory: Path, files: dict[str, SafetensorsFile]) -> dict[str, str]:
    index_path = directory / INDEX_NAME
    weight_map = read_json(index_path, WeightsError).get("weight_map")
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise WeightsError(f"{index_path}: 'weight_map' must be an object of tensor name -> shard filename")
    for shard in sorted(set(weight_map.values())):
        if "/" in shard or "\\" in shard or shard in ("", ".", ".."):
            raise WeightsError(f"{index_path}: shard name {shard!r} is not a file name")
        if not (directory / shard).is_file():
            count = sum(1 for v in weight_map.values() if v == shard)
            raise WeightsError(f"{index_path}: names shard {shard} ({count} tensors), which is missing")
        files[shard] = SafetensorsFile(directory / shard)
    for name, shard in weight_map.items():
        if name not in files[shard]:
            raise WeightsError(
                f"{index_path}: says tensor {name!r} is in {shard}, but that shard has no such tensor"
            )
    return dict(weight_map)


def _open_unindexed_shards(
    directory: Path, shards: list[str], files: dict[str, SafetensorsFile]
) -> dict[str, str]:
    totals = {int(_SHARD.fullmatch(n).group(2)) for n in shards}
    if len(totals) != 1 or len(shards) != totals.pop():
        raise WeightsError(
            f"{directory}: no {INDEX_NAME}, and the shards found do not form one set: {', '.join(shards)}"
        )
    where: dict[str, str] = {}
    for shard in shards:
        files[shard] = SafetensorsFile(directory / shard)
        for name in files[shard].keys():
            if name in where:
                raise WeightsError(f"{directory}: tensor {name!r} is in both {where[name]} and {shard}")
            where[name] = shard
    return where
