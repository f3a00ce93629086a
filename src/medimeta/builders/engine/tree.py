"""The merged, read-only tree of raw source files: :class:`SourceTree` of :class:`SourceFile`.

Paths are virtual POSIX paths (how they are mounted: :mod:`medimeta.builders.engine.scan`).
:func:`match_path` is the glob used to find files in the tree. :meth:`SourceFile.open` reads any
file lazily: a file on disk directly, a zip member of an archive on disk through the per-process
handle cache of :mod:`medimeta.builders.engine.archives`; files inside tar archives or nested
archives are streamed (best copied once with
:func:`medimeta.builders.engine.staging.stage_files` before many are read).
"""

from __future__ import annotations

import bisect
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cached_property
from pathlib import Path
from typing import IO

from medimeta.builders.engine.archives import archive_kind, open_chain, zip_handle


def match_path(path: str, pattern: str) -> bool:
    """Segment-wise glob match: ``*`` stays within one folder level, ``**`` spans any number.

    Matching is case-insensitive (publishers mix ``.JPG`` and ``.jpg``).
    """
    return _match(path.lower().split("/"), pattern.lower().split("/"))


def _match(parts: list[str], pats: list[str]) -> bool:
    if not pats:
        return not parts
    if pats[0] == "**":
        return any(_match(parts[i:], pats[1:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], pats[0]) and _match(parts[1:], pats[1:])


@dataclass(frozen=True)
class SourceFile:
    """One raw file: ``path`` in the merged tree, read from ``origin`` through ``members``.

    ``origin`` is a file on disk: the file itself (``members == ()``) or the outermost archive.
    ``members`` names the member in each nested archive, outermost first. Picklable.
    """

    path: str
    origin: Path
    members: tuple[str, ...] = ()
    size: int | None = None

    @property
    def name(self) -> str:
        """Base name, e.g. ``benign (1).png``."""
        return self.path.rsplit("/", 1)[-1]

    @property
    def stem(self) -> str:
        """Base name without its last suffix."""
        return self.name.rsplit(".", 1)[0] if "." in self.name else self.name

    @property
    def suffix(self) -> str:
        """Lower-case last suffix with the dot, e.g. ``.png``."""
        return "." + self.name.rsplit(".", 1)[1].lower() if "." in self.name else ""

    @property
    def parent(self) -> str:
        """Virtual folder holding the file (``""`` at the top)."""
        return self.path.rsplit("/", 1)[0] if "/" in self.path else ""

    @property
    def needs_staging(self) -> bool:
        """True when reading it means streaming through a tar or a nested archive."""
        if not self.members:
            return False
        return len(self.members) > 1 or archive_kind(self.origin.name) != "zip"

    def location(self) -> str:
        """Where the bytes live, for messages: ``/dl/x.zip!dir/a.png``."""
        return "!".join([str(self.origin), *self.members])

    def relative_to(self, prefix: str) -> str:
        """Path below ``prefix`` (a folder path ending in ``/`` or ``""``)."""
        return self.path[len(prefix) :] if self.path.startswith(prefix) else self.path

    def open(self) -> IO[bytes]:
        """A binary file object with the file's bytes (caller closes it)."""
        if not self.members:
            return open(self.origin, "rb")
        if not self.needs_staging:
            return zip_handle(self.origin).open(self.members[0])
        with open_chain(self.origin, self.members) as fh:
            return io.BytesIO(fh.read())

    def read_bytes(self) -> bytes:
        """The file's content."""
        with self.open() as fh:
            return fh.read()


class SourceTree:
    """The merged view of all given sources: virtual path -> :class:`SourceFile` (sorted)."""

    def __init__(
        self,
        files: Iterable[SourceFile],
        *,
        given: Sequence[Path] = (),
        archives: Sequence[str] = (),
        notes: Sequence[str] = (),
    ) -> None:
        self.files: dict[str, SourceFile] = {f.path: f for f in sorted(files, key=_path_key)}
        self._paths = list(self.files)
        self.given = tuple(given)
        self.archives = tuple(archives)
        self.notes = list(notes)

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[SourceFile]:
        return iter(self.files.values())

    def __contains__(self, path: object) -> bool:
        return path in self.files

    def describe(self) -> str:
        """The given paths, for messages."""
        return ", ".join(str(p) for p in self.given) or "<no source>"

    def get(self, path: str) -> SourceFile | None:
        """The file at ``path`` or None."""
        return self.files.get(path)

    def under(self, prefix: str) -> list[SourceFile]:
        """Files below folder ``prefix`` (``""`` for all; otherwise ending in ``/``)."""
        if not prefix:
            return list(self.files.values())
        lo = bisect.bisect_left(self._paths, prefix)
        hi = bisect.bisect_left(self._paths, prefix[:-1] + chr(ord(prefix[-1]) + 1))
        return [self.files[p] for p in self._paths[lo:hi]]

    def glob(self, pattern: str, prefix: str = "") -> list[SourceFile]:
        """Files below ``prefix`` whose path relative to it matches ``pattern`` (see match_path)."""
        return [f for f in self.under(prefix) if match_path(f.relative_to(prefix), pattern)]

    @cached_property
    def dirs(self) -> frozenset[str]:
        """Every virtual folder (no trailing slash; ``""`` is the top)."""
        out = {""}
        for path in self._paths:
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                out.add("/".join(parts[:i]))
        return frozenset(out)

    def listdir(self, prefix: str) -> list[str]:
        """Names of the files and folders directly in folder ``prefix``."""
        names = {f.relative_to(prefix).split("/", 1)[0] for f in self.under(prefix)}
        return sorted(names)


def _path_key(f: SourceFile) -> str:
    return f.path
