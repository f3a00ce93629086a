"""Where a build happens: the staging folder, its journal, resuming and the final rename.

A build of dataset ``<id>`` under ``<root>`` works in ``<root>/.<id>.partial-<fingerprint>/``::

    build.json      fingerprint, sample count, channels, HDF5 row offset
    journal.jsonl   one JSON line per finished sample, in index order (CRCs, annotations)
    <id>/           the dataset folder being filled; info.yaml is written last

The dataset folder sits one level below a folder without ``info.yaml``, so neither our reader
nor the original loader (both scan ``<root>/*/info.yaml``) can mistake an unfinished build for
a dataset. Only a complete, verified folder is renamed to ``<root>/<id>``.

Leftovers never accumulate: all staging work of ``<id>`` happens under its build lock; the next
build of ``<id>`` resumes a staging folder with its own fingerprint and deletes the others; a
build that waited for the lock while another one published ``<id>`` stops before creating its
staging folder, and one that finds ``<id>`` taken at publishing time deletes its own.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from medimeta.errors import BuildError, DatasetExistsError
from medimeta.format import layout
from medimeta.format.writer.files import fsync_path
from medimeta.format.writer.images import Produced
from medimeta.safeio import replace, write_json

BUILD_FILE = "build.json"
JOURNAL_FILE = "journal.jsonl"
PREVIOUS_DIR = "previous"
_FLUSH_SECONDS = 0.5


def staging_dir(root: Path, dataset_id: str, fingerprint: str) -> Path:
    """``<root>/.<id>.partial-<first 16 hex digits of the fingerprint>``."""
    return root / f".{dataset_id}.partial-{fingerprint[:16]}"


def stale_staging(root: Path, dataset_id: str, keep: Path) -> list[Path]:
    """Staging folders of earlier builds of ``dataset_id`` with other inputs."""
    prefix = f".{dataset_id}.partial-"
    return sorted(p for p in root.glob(f"{prefix}*") if p.is_dir() and p != keep)


def check_target(root: Path, dataset_id: str, *, overwrite: bool) -> Path:
    """``<root>/<id>``; refuse to touch an existing folder unless ``overwrite``."""
    target = root / dataset_id
    if (target.exists() or target.is_symlink()) and not overwrite:
        raise DatasetExistsError(
            f"{target} already exists; nothing was written. Pass overwrite=True "
            "(--overwrite) to replace it, choose another id (--id), or move it away"
        )
    return target


def read_build_file(staging: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((staging / BUILD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_build_file(staging: Path, data: dict[str, Any]) -> None:
    write_json(staging / BUILD_FILE, data)


class Journal:
    """Append-only JSON lines, one per finished sample, flushed at least twice a second."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: Any = None
        self._last_flush = 0.0

    def read(self) -> tuple[list[dict[str, Any]], list[int]]:
        """Complete, well-formed leading entries and the byte offset after each."""
        entries: list[dict[str, Any]] = []
        ends: list[int] = []
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return entries, ends
        pos = 0
        while True:
            nl = data.find(b"\n", pos)
            if nl < 0:
                break  # a line cut short by a kill has no newline: ignored
            try:
                entry = json.loads(data[pos:nl])
            except ValueError:
                break
            if not isinstance(entry, dict) or entry.get("i") != len(entries):
                break
            entries.append(entry)
            ends.append(nl + 1)
            pos = nl + 1
        return entries, ends

    def open(self, keep_bytes: int) -> None:
        """Open for appending after the first ``keep_bytes`` bytes (the rest is dropped)."""
        with open(self.path, "ab") as fh:
            fh.truncate(keep_bytes)
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def append(self, produced: Produced) -> None:
        entry = {
            "i": produced.index,
            "row_crc": produced.row_crc,
            "files": produced.files,
            "aux": produced.aux,
            "annotations": produced.annotations,
        }
        self._fh.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n")
        now = time.monotonic()
        if now - self._last_flush >= _FLUSH_SECONDS:
            self._fh.flush()
            self._last_flush = now

    def close(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None


def remove_tree(path: Path) -> None:
    """Delete a staging folder (never anything outside it)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def publish(staging: Path, dataset_id: str, target: Path, *, overwrite: bool) -> None:
    """Move the finished folder to ``target`` (an old one first into the staging folder)."""
    built = staging / dataset_id
    if not (built / layout.INFO_FILE).is_file():
        raise BuildError(f"{built}: no info.yaml; the build is not finished, nothing was moved")
    if target.exists() or target.is_symlink():
        check_target(target.parent, dataset_id, overwrite=overwrite)
        # Aside, under the hidden staging folder: never visible as a second copy of the id.
        replace(target, staging / PREVIOUS_DIR)
    replace(built, target)
    fsync_path(target.parent)
    remove_tree(staging)


class BuildInterrupted(KeyboardInterrupt):
    """SIGTERM arrived during a build (handled like Ctrl-C: the staging folder is kept)."""


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into an exception while building, so pools and journals close cleanly."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: Any) -> None:
        raise BuildInterrupted(f"signal {signum}: build interrupted, staging folder kept")

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
