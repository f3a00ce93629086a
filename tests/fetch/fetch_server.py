"""A tiny Zenodo stand-in on 127.0.0.1: the records API plus file downloads with HTTP Range.

Tests register files per record (or at a plain path, as a weights host serves them) and queue
faults per file (HTTP 500, a connection dropped after n bytes, a stall until released, a
different body). Every request is logged with its Range start and the bytes actually sent, so
tests can assert what was (re-)requested.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ZENODO = "https://zenodo.org"


@dataclass
class Fault:
    """What to do instead of a normal answer, for one request."""

    status: int | None = None  # answer with this HTTP error status
    drop_after: int | None = None  # send this many body bytes, then close the connection
    stall_after: int | None = None  # send this many body bytes, then wait (see stall_seconds)
    stall_seconds: float | None = None  # None: wait until `release` is set (max 30 s)
    body: bytes | None = None  # serve these bytes instead of the registered file
    redirect: bool = False  # answer 302 to the same path (as Zenodo redirects to its storage)


@dataclass
class Logged:
    path: str
    range_start: int | None
    status: int
    sent: int = 0


@dataclass
class RemoteEntry:
    key: str
    data: bytes
    md5: str
    size: int


@dataclass
class StubState:
    records: dict[str, dict[str, RemoteEntry]] = field(default_factory=dict)
    paths: dict[str, bytes] = field(default_factory=dict)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    always: dict[str, Fault] = field(default_factory=dict)
    log: list[Logged] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


_FILE = re.compile(r"^/api/records/(\w+)/files/([^/]+)/content$")
_RECORD = re.compile(r"^/api/records/(\w+)$")


def _handler(state: StubState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
            pass

        def _log(self, status: int, start: int | None = None) -> Logged:
            entry = Logged(self.path, start, status)
            with state.lock:
                state.log.append(entry)
            return entry

        def _error(self, status: int) -> None:
            self._log(status)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if m := _RECORD.match(path):
                self._record(m.group(1))
            elif m := _FILE.match(path):
                self._file(m.group(1), m.group(2))
            elif path in state.paths:
                self._send(state.paths[path], path)
            else:
                self._error(404)

        def _fault(self, path: str) -> Fault | None:
            with state.lock:
                queue = state.faults.get(path)
                if queue:
                    return queue.pop(0)
                return state.always.get(path)

        def _record(self, record: str) -> None:
            fault = self._fault(self.path)
            if record not in state.records:
                return self._error(404)
            if fault is not None and fault.status is not None:
                return self._error(fault.status)
            files = [
                {
                    "key": e.key,
                    "size": e.size,
                    "checksum": f"md5:{e.md5}",
                    "links": {"self": f"{ZENODO}/api/records/{record}/files/{e.key}/content"},
                }
                for e in state.records[record].values()
            ]
            body = json.dumps({"id": int(record), "files": files}).encode()
            self._log(200).sent = len(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _file(self, record: str, key: str) -> None:
            entry = state.records.get(record, {}).get(key)
            if entry is None:
                return self._error(404)
            self._send(entry.data, self.path.split("?", 1)[0])

        def _send(self, registered: bytes, path: str) -> None:
            fault = self._fault(path)
            if fault is not None and fault.status is not None:
                return self._error(fault.status)
            if fault is not None and fault.redirect:
                self._log(302, None)
                self.send_response(302)
                self.send_header("Location", self.path.split("?", 1)[0] + "?redirected=1")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = fault.body if fault is not None and fault.body is not None else registered
            start = None
            if m := re.match(r"bytes=(\d+)-$", self.headers.get("Range", "")):
                start = int(m.group(1))
            if start is not None and start >= len(data):
                self._log(416, start)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206 if start else 200
            logged = self._log(status, start)
            begin = start or 0
            self.send_response(status)
            self.send_header("Content-Length", str(len(data) - begin))
            if status == 206:
                self.send_header("Content-Range", f"bytes {begin}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            body = data[begin:]
            limit = None
            if fault is not None:
                limit = fault.drop_after if fault.drop_after is not None else fault.stall_after
            try:
                if limit is None:
                    self.wfile.write(body)
                    logged.sent = len(body)
                    return
                self.wfile.write(body[:limit])
                logged.sent = min(limit, len(body))
                if fault is not None and fault.stall_after is not None:
                    if fault.stall_seconds is None:
                        state.release.wait(30)
                    else:
                        state.release.wait(fault.stall_seconds)
                        self.wfile.write(body[limit:])
                        logged.sent = len(body)
                        return
                self.close_connection = True
            except OSError:  # the client went away (killed on purpose by a test)
                self.close_connection = True

    return Handler


class ZenodoStub:
    """Start with ``start()``; ``base`` is the mirror URL to hand to the code under test."""

    def __init__(self) -> None:
        self.state = StubState()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ZenodoStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.state.release.set()
        self._server.shutdown()
        self._server.server_close()

    def add(
        self, record: str, key: str, data: bytes, *, md5: str | None = None, size: int | None = None
    ) -> RemoteEntry:
        """Serve ``data`` as ``key``; ``md5``/``size`` override what the records API claims."""
        real = hashlib.md5(data, usedforsecurity=False).hexdigest()
        entry = RemoteEntry(key, data, md5 or real, len(data) if size is None else size)
        self.state.records.setdefault(record, {})[key] = entry
        return entry

    def add_path(self, path: str, data: bytes) -> str:
        """Serve ``data`` at the plain URL path ``path`` (``/models/<file>``); returns it."""
        self.state.paths[path] = data
        return path

    def file_path(self, record: str, key: str) -> str:
        return f"/api/records/{record}/files/{key}/content"

    def record_path(self, record: str) -> str:
        return f"/api/records/{record}"

    def queue(self, path: str, *faults: Fault) -> None:
        self.state.faults.setdefault(path, []).extend(faults)

    def requests(self, path: str) -> list[Logged]:
        with self.state.lock:
            return [e for e in self.state.log if e.path.split("?", 1)[0] == path]
