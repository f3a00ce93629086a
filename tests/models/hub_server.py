"""A tiny Hugging Face hub stand-in on 127.0.0.1: the endpoints huggingface_hub's
``list_repo_files`` and ``snapshot_download`` call, for model repositories registered in the
test.

* ``GET /api/models/{repo}/revision/{rev}``: the model info (``sha``, ``siblings``);
* ``GET /api/models/{repo}/tree/{rev}``: the file listing (``lfs`` with the sha256 for weights);
* ``HEAD|GET /{repo}/resolve/{rev}/{file}``: a file, with ``X-Repo-Commit`` and an ``ETag``
  (weights: their sha256, as the hub's LFS etag; other files: the git blob sha1).

A revision is the repository's commit or a branch name (``main``); anything else is 404, as is
an unknown repository or file. Every request is logged (method, path).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LFS_SUFFIXES = (".safetensors", ".bin", ".h5", ".msgpack")
_INFO = re.compile(r"^/api/models/([^/]+/[^/]+)/revision/([^/?]+)")
_TREE = re.compile(r"^/api/models/([^/]+/[^/]+)/tree/([^/?]+)")
_RESOLVE = re.compile(r"^/([^/]+/[^/]+)/resolve/([^/]+)/([^?]+)")


@dataclass
class Repo:
    commit: str
    files: dict[str, bytes]
    branches: tuple[str, ...] = ("main",)

    def etag(self, name: str) -> str:
        data = self.files[name]
        if name.endswith(LFS_SUFFIXES):
            return hashlib.sha256(data).hexdigest()
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class HubState:
    repos: dict[str, Repo] = field(default_factory=dict)
    log: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_folder(self, repo_id: str, folder: Path, commit: str, **extra: bytes) -> Repo:
        files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
        self.repos[repo_id] = Repo(commit, {**files, **extra})
        return self.repos[repo_id]

    def gets(self, repo_id: str) -> list[str]:
        """Files of ``repo_id`` whose content was sent (GET on resolve)."""
        out = []
        for method, path in self.log:
            m = _RESOLVE.match(path)
            if method == "GET" and m and m.group(1) == repo_id:
                out.append(m.group(3))
        return sorted(out)


def _handler(state: HubState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str], head: bool) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _repo(self, repo_id: str, rev: str) -> Repo | None:
            repo = state.repos.get(repo_id)
            if repo is None or rev not in (repo.commit, *repo.branches):
                return None
            return repo

        def _answer(self, head: bool) -> None:
            with state.lock:
                state.log.append((self.command, self.path))
            json_type = {"Content-Type": "application/json"}
            if m := _INFO.match(self.path):
                repo = self._repo(m.group(1), m.group(2))
                if repo is not None:
                    info = {
                        "id": m.group(1),
                        "sha": repo.commit,
                        "siblings": [{"rfilename": f} for f in repo.files],
                    }
                    return self._send(200, json.dumps(info).encode(), json_type, head)
            elif m := _TREE.match(self.path):
                repo = self._repo(m.group(1), m.group(2))
                if repo is not None:
                    items = []
                    for name, data in repo.files.items():
                        item = {"type": "file", "path": name, "size": len(data)}
                        item["oid"] = hashlib.sha1(data).hexdigest()
                        if name.endswith(LFS_SUFFIXES):
                            item["lfs"] = {
                                "oid": repo.etag(name),
                                "size": len(data),
                                "pointerSize": 134,
                            }
                        items.append(item)
                    return self._send(200, json.dumps(items).encode(), json_type, head)
            elif m := _RESOLVE.match(self.path):
                repo = self._repo(m.group(1), m.group(2))
                name = m.group(3)
                if repo is not None and name in repo.files:
                    headers = {"ETag": f'"{repo.etag(name)}"', "X-Repo-Commit": repo.commit}
                    return self._send(200, repo.files[name], headers, head)
            self._send(404, b"", {"X-Error-Code": "EntryNotFound"}, head)

        def do_GET(self) -> None:
            self._answer(head=False)

        def do_HEAD(self) -> None:
            self._answer(head=True)

    return Handler


class HubServer:
    """``with HubServer() as hub:`` serves ``hub.state`` at ``hub.url``."""

    def __init__(self) -> None:
        self.state = HubState()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
