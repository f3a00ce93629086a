"""Reading members of (nested) zip and tar archives, without extracting them.

:func:`archive_kind` tells archives from other files by suffix. :func:`open_chain` streams the
innermost member of a chain of nested archives; :func:`zip_handle` keeps one open ``ZipFile``
per archive on disk and process (so reading zip members from worker processes is cheap), closed
by :func:`close_cached_archives`. How paths and archives become one virtual tree is described in
:mod:`medimeta.builders.engine.scan`; the files of that tree are
:class:`~medimeta.builders.engine.tree.SourceFile`.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

from medimeta.errors import SourceTreeError

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


def archive_kind(name: str) -> str | None:
    """``"zip"``, ``"tar"`` or None, from a file name's suffix (case-insensitive)."""
    lower = name.lower()
    if lower.endswith(".zip"):
        return "zip"
    if lower.endswith((".tar", ".tar.gz", ".tgz")):
        return "tar"
    return None


_ZIP_CACHE: dict[tuple[int, Path], zipfile.ZipFile] = {}


def zip_handle(path: Path) -> zipfile.ZipFile:
    """This process's open ``ZipFile`` of the archive at ``path`` (opened on first use)."""
    # One handle per process: worker processes must not share the parent's file position.
    key = (os.getpid(), path)
    handle = _ZIP_CACHE.get(key)
    if handle is None:
        handle = _ZIP_CACHE[key] = zipfile.ZipFile(path)
    return handle


def close_cached_archives() -> None:
    """Close the zip handles this process opened for reading."""
    for key in [k for k in _ZIP_CACHE if k[0] == os.getpid()]:
        _ZIP_CACHE.pop(key).close()


@contextmanager
def open_chain(origin: Path, members: Sequence[str]) -> Iterator[IO[bytes]]:
    """Stream the innermost member of a chain of nested archives."""
    with ExitStack() as stack:
        fh: IO[bytes] = stack.enter_context(open(origin, "rb"))
        container = origin.name
        for member in members:
            fh = _open_member(stack, fh, container, member)
            container = member
        yield fh


def seekable(stack: ExitStack, fh: IO[bytes]) -> IO[bytes]:
    """``fh`` itself, or a spooled copy when it cannot seek (a zip read out of a tar stream)."""
    if fh.seekable():
        return fh
    spool = stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 - closed by the stack
    shutil.copyfileobj(fh, spool)
    spool.seek(0)
    return spool


def _open_member(stack: ExitStack, fh: IO[bytes], container: str, member: str) -> IO[bytes]:
    if archive_kind(container) == "zip":
        zf = stack.enter_context(zipfile.ZipFile(seekable(stack, fh)))
        return stack.enter_context(zf.open(member))
    tf = stack.enter_context(tarfile.open(fileobj=fh, mode="r|*"))  # noqa: SIM115
    for info in tf:
        if info.name == member:
            extracted = tf.extractfile(info)
            if extracted is not None:
                return extracted
    raise SourceTreeError(f"{container}: member {member!r} not found (archive changed?)")
