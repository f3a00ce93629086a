"""Streaming reads of images inside ``.tar.gz`` archives (ChestX-ray14's 12 image archives).

A gzip stream cannot be seeked, so reading one member costs decompressing everything before
it. Instead of copying the archives' content to disk first, samples are ordered by their
position in the archive and every process keeps one open stream per archive (a *cursor*) that
only moves forward: each process decompresses each archive at most once when it is asked for
members in increasing position (the dataset writer hands out records in index order), and
re-opens the stream only when asked for a member behind it.

:func:`member_positions` lists an archive's member names in stream order (one pass over the
headers; no image is decoded), which fixes that order.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from medimeta.builders.engine.archives import archive_kind
from medimeta.builders.engine.tree import SourceFile
from medimeta.errors import SourceTreeError


@dataclass(frozen=True)
class TarMember:
    """One file inside a tar archive, addressed for streaming (picklable record ``source``).

    ``origin`` is the file on disk (the tar archive, or a zip holding it); ``chain`` names the
    zip members leading to the tar archive (usually empty); ``member`` is the name inside the
    tar; ``position`` its index in the tar stream and ``last`` the index of the archive's last
    wanted member (the stream is closed after it).
    """

    origin: Path
    chain: tuple[str, ...]
    member: str
    position: int
    last: int
    path: str

    def location(self) -> str:
        return "!".join([str(self.origin), *self.chain, self.member])


def split_source(f: SourceFile) -> tuple[Path, tuple[str, ...], str]:
    """``(origin, chain to the tar, member)`` of a file that lives inside a tar archive."""
    if not f.members:
        raise SourceTreeError(f"{f.path}: not inside an archive")
    return f.origin, f.members[:-1], f.members[-1]


def _open_tar(stack: ExitStack, origin: Path, chain: tuple[str, ...]) -> tarfile.TarFile:
    fh: IO[bytes] = stack.enter_context(origin.open("rb"))
    container = origin.name
    for member in chain:
        if archive_kind(container) != "zip":
            raise SourceTreeError(
                f"{origin}: a tar archive inside {container!r} (another tar) cannot be streamed; "
                "extract the outer archive first"
            )
        zf = stack.enter_context(zipfile.ZipFile(fh))
        fh = stack.enter_context(zf.open(member))
        container = member
    return stack.enter_context(tarfile.open(fileobj=fh, mode="r|*"))


def member_positions(origin: Path, chain: tuple[str, ...] = ()) -> dict[str, int]:
    """Member name -> position in the stream, for the regular files of a tar archive."""
    out: dict[str, int] = {}
    try:
        with ExitStack() as stack:
            for info in _open_tar(stack, origin, chain):
                if info.isfile():
                    out.setdefault(info.name, len(out))
    except (tarfile.TarError, EOFError, OSError, zipfile.BadZipFile) as exc:
        where = "!".join([str(origin), *chain])
        raise SourceTreeError(f"{where}: cannot read this tar archive ({exc})") from exc
    return out


class _Cursor:
    """A forward-only reader over one tar stream."""

    def __init__(self, origin: Path, chain: tuple[str, ...]) -> None:
        self.origin, self.chain = origin, chain
        self._stack: ExitStack | None = None
        self._iter: Any = None
        self._tar: tarfile.TarFile | None = None
        self.position = -1

    def _open(self) -> tarfile.TarFile:
        self.close()
        self._stack = ExitStack()
        self._tar = _open_tar(self._stack, self.origin, self.chain)
        self._iter = iter(self._tar)
        self.position = -1
        return self._tar

    def read(self, member: str, position: int) -> bytes:
        tar = self._tar
        if tar is None or position <= self.position:
            tar = self._open()
        for info in self._iter:
            if not info.isfile():
                continue
            self.position += 1
            if info.name == member:
                data = tar.extractfile(info)
                if data is None:  # pragma: no cover - regular files always have data
                    break
                return data.read()
        where = "!".join([str(self.origin), *self.chain])
        raise SourceTreeError(
            f"{where}: member {member!r} not found where the listing put it; the archive changed "
            "since the build was planned; run the build again"
        )

    def close(self) -> None:
        if self._stack is not None:
            self._stack.close()
        self._stack, self._tar, self._iter = None, None, None


_CURSORS: dict[tuple[int, Path, tuple[str, ...]], _Cursor] = {}


def read_member(item: TarMember) -> bytes:
    """The bytes of ``item``, read through this process's cursor on its archive."""
    key = (os.getpid(), item.origin, item.chain)
    cursor = _CURSORS.get(key)
    if cursor is None:
        for other in [k for k in _CURSORS if k[0] == key[0]]:
            _CURSORS.pop(other).close()  # one archive at a time per process
        cursor = _CURSORS[key] = _Cursor(item.origin, item.chain)
    try:
        data = cursor.read(item.member, item.position)
    except (tarfile.TarError, EOFError, OSError, zipfile.BadZipFile) as exc:
        _CURSORS.pop(key).close()
        raise SourceTreeError(f"{item.location()}: cannot read ({exc})") from exc
    if item.position >= item.last:
        _CURSORS.pop(key).close()
    return data


def close_cursors() -> None:
    """Close this process's open archive streams."""
    for key in [k for k in _CURSORS if k[0] == os.getpid()]:
        _CURSORS.pop(key).close()
