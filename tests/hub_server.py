"""A local stand-in for the Hugging Face Hub, enough for huggingface_hub 2.x `snapshot_download`.

Serves repositories from memory on 127.0.0.1 (a random port, one thread per connection), with the
routes and headers huggingface_hub reads (see its hf_api.py, _snapshot_download.py and
file_download.py):

    GET  /api/models/{repo}/revision/{rev}      {"id", "sha", "siblings": [{"rfilename"}]}
    GET  /api/models/{repo}/tree/{rev}          [{"type": "file", "path", "size", "oid", "lfs"?}]
    HEAD /{repo}/resolve/{rev}/{file}           X-Repo-Commit, ETag, X-Linked-Etag, X-Linked-Size,
    GET  /{repo}/resolve/{rev}/{file}           Content-Length, Accept-Ranges; Range -> 206

Unknown repositories, revisions and files answer 404 with the `X-Error-Code` huggingface_hub maps to
RepositoryNotFoundError, RevisionNotFoundError and EntryNotFoundError. `drop_once` names files
whose first full GET is cut off half way (the connection is closed), so that the client resumes
with a Range request. Every request is logged in `requests` as (method, path, Range header).

    with HubServer({"org/m": {"main": {"config.json": b"{}", ...}}}) as hub:
        env["HF_ENDPOINT"] = hub.url
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

_REVISION = re.compile(r"^/api/models/([^/]+/[^/]+)/revision/([^/]+)$")
_TREE = re.compile(r"^/api/models/([^/]+/[^/]+)/tree/([^/]+)$")
_RESOLVE = re.compile(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


def _git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubServer:
    """Serve `repos` ({repo_id: {revision name: {filename: bytes}}}) the way the Hub does.
    Files ending in .safetensors are served as LFS files (ETag = sha256 of the content)."""

    def __init__(self, repos: dict[str, dict[str, dict[str, bytes]]], *, drop_once: tuple[str, ...] = ()):
        self.repos = repos
        self.commits: dict[str, tuple[str, str]] = {}  # commit sha -> (repo, revision name)
        for repo, revisions in repos.items():
            for name, files in revisions.items():
                h = hashlib.sha1(repo.encode() + name.encode())
                for fname in sorted(files):
                    h.update(fname.encode() + hashlib.sha256(files[fname]).digest())
                self.commits[h.hexdigest()] = (repo, name)
        self.drop_once = set(drop_once)
        self.requests: list[tuple[str, str, str | None]] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def commit(self, repo: str, revision: str) -> str:
        return next(c for c, rr in self.commits.items() if rr == (repo, revision))

    def downloads(self, filename: str) -> list[tuple[str, str, str | None]]:
        """The GET requests for `filename` so far."""
        return [
            r
            for r in self.requests
            if r[0] == "GET" and "/resolve/" in r[1] and r[1].endswith("/" + filename)
        ]

    def start(self) -> HubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- lookup -----------------------------------------------------------------------------------
    def _files(self, repo: str, revision: str) -> tuple[str, dict[str, bytes]] | tuple[str, None]:
        """(error code, None) or (commit sha, files) of a repo at a revision name or commit sha."""
        if repo not in self.repos:
            return "RepoNotFound", None
        if revision in self.repos[repo]:
            return self.commit(repo, revision), self.repos[repo][revision]
        if revision in self.commits and self.commits[revision][0] == repo:
            return revision, self.repos[repo][self.commits[revision][1]]
        return "RevisionNotFound", None

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                self._serve(body=True)

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def _serve(self, body: bool) -> None:
                path = urlsplit(self.path).path
                with server._lock:
                    server.requests.append((self.command, path, self.headers.get("Range")))
                if m := _REVISION.match(path):
                    return self._revision(unquote(m[1]), unquote(m[2]), body)
                if m := _TREE.match(path):
                    return self._tree(unquote(m[1]), unquote(m[2]), body)
                if m := _RESOLVE.match(path):
                    return self._resolve(unquote(m[1]), unquote(m[2]), unquote(m[3]), body)
                self._error(404, "EntryNotFound", f"no route {path}", body)

            def _json(self, obj, body: bool) -> None:
                data = json.dumps(obj).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def _error(self, status: int, code: str, message: str, body: bool) -> None:
                data = json.dumps({"error": message}).encode()
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", message)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def _lookup(self, repo: str, revision: str, body: bool):
                sha, files = server._files(repo, revision)
                if files is None:
                    self._error(404, sha, f"{repo}@{revision}: {sha}", body)
                return sha, files

            def _revision(self, repo: str, revision: str, body: bool) -> None:
                sha, files = self._lookup(repo, revision, body)
                if files is not None:
                    siblings = [{"rfilename": n} for n in sorted(files)]
                    self._json(
                        {"id": repo, "modelId": repo, "sha": sha, "private": False, "siblings": siblings},
                        body,
                    )

            def _tree(self, repo: str, revision: str, body: bool) -> None:
                _, files = self._lookup(repo, revision, body)
                if files is None:
                    return
                entries = []
                for name in sorted(files):
                    data = files[name]
                    entry = {"type": "file", "path": name, "size": len(data), "oid": _git_blob_sha(data)}
                    if name.endswith(".safetensors"):
                        lfs = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
                        entry["lfs"] = lfs
                    entries.append(entry)
                self._json(entries, body)

            def _resolve(self, repo: str, revision: str, name: str, body: bool) -> None:
                sha, files = self._lookup(repo, revision, body)
                if files is None:
                    return
                if name not in files:
                    return self._error(404, "EntryNotFound", f"{name} not in {repo}@{revision}", body)
                data = files[name]
                lfs = name.endswith(".safetensors")
                etag = hashlib.sha256(data).hexdigest() if lfs else _git_blob_sha(data)
                start, end = 0, len(data)
                ranged = self.headers.get("Range")
                if ranged and (m := _RANGE.match(ranged.strip())):
                    start = int(m[1])
                    end = min(int(m[2]) + 1, len(data)) if m[2] else len(data)
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                self.send_response(206 if ranged else 200)
                self.send_header("X-Repo-Commit", sha)
                self.send_header("ETag", f'"{etag}"')
                if lfs:
                    self.send_header("X-Linked-Etag", f'"{etag}"')
                    self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Type", "application/octet-stream")
                if ranged:
                    self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
                self.send_header("Content-Length", str(end - start))
                self.end_headers()
                if not body:
                    return
                with server._lock:
                    drop = not ranged and name in server.drop_once
                    server.drop_once.discard(name)
                if drop:  # half the body, then the connection goes away
                    self.wfile.write(data[start : start + (end - start) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(data[start:end])

        return Handler
