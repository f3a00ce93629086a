"""A merged, read-only view of raw source files on disk and inside (nested) archives.

:func:`scan_sources` turns the paths a user gives (folders, ``.zip``, ``.tar``, ``.tar.gz`` /
``.tgz`` archives, single files) into one :class:`SourceTree` of virtual POSIX paths:

* a folder ``D`` is mounted under its own name: ``D/a/b.png`` (so the folder's name can identify
  the data, e.g. ``NCT-CRC-HE-100K/ADI/...``);
* an archive given directly is mounted at the tree's top, as if extracted in place;
* an archive met anywhere (in a folder or inside another archive) is mounted in the folder that
  holds it, as ``unzip``/``tar x`` would extract it there; the archive file itself is not listed;
* a plain file given directly is mounted under its name.

When the same virtual path exists on disk and in an archive (an archive beside its extracted
copy), the file on disk wins. Hidden files (``.*``), ``__MACOSX/``, ``Thumbs.db`` and
``desktop.ini`` are ignored. Archive member names that could leave the tree (absolute paths,
``..``) raise :class:`~medimeta.errors.UnsafeArchiveError`.

Nothing is extracted while scanning. :meth:`SourceFile.open` reads any file lazily (zip members
of an archive on disk through a per-process cache of open ``ZipFile`` handles, so reading from
worker processes is cheap); files inside tar archives or nested archives are best copied once
with :func:`medimeta.builders.staging.stage_files` before many are read.
"""

from __future__ import annotations

import bisect
import functools
import io
import os
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cached_property
from pathlib import Path
from typing import IO, Any

from medimeta.errors import SourceTreeError
from medimeta.safeio import archive_member_parts

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
IGNORED_NAMES = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})


def archive_kind(name: str) -> str | None:
    """``"zip"``, ``"tar"`` or None, from a file name's suffix (case-insensitive)."""
    lower = name.lower()
    if lower.endswith(".zip"):
        return "zip"
    if lower.endswith((".tar", ".tar.gz", ".tgz")):
        return "tar"
    return None


def is_ignored(name: str) -> bool:
    """True for names the scanner skips: hidden files, macOS and Windows metadata."""
    return name.startswith(".") or name in IGNORED_NAMES


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
            return _zip_handle(self.origin).open(self.members[0])
        with _open_chain(self.origin, self.members) as fh:
            return io.BytesIO(fh.read())

    def read_bytes(self) -> bytes:
        """The file's content."""
        with self.open() as fh:
            return fh.read()


_ZIP_CACHE: dict[tuple[int, Path], zipfile.ZipFile] = {}


def _zip_handle(path: Path) -> zipfile.ZipFile:
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
def _open_chain(origin: Path, members: Sequence[str]) -> Iterator[IO[bytes]]:
    """Stream the innermost member of a chain of nested archives."""
    with ExitStack() as stack:
        fh: IO[bytes] = stack.enter_context(open(origin, "rb"))
        container = origin.name
        for member in members:
            fh = _open_member(stack, fh, container, member)
            container = member
        yield fh


def _seekable(stack: ExitStack, fh: IO[bytes]) -> IO[bytes]:
    """``fh`` itself, or a spooled copy when it cannot seek (a zip read out of a tar stream)."""
    if fh.seekable():
        return fh
    spool = stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 - closed by the stack
    shutil.copyfileobj(fh, spool)
    spool.seek(0)
    return spool


def _open_member(stack: ExitStack, fh: IO[bytes], container: str, member: str) -> IO[bytes]:
    if archive_kind(container) == "zip":
        zf = stack.enter_context(zipfile.ZipFile(_seekable(stack, fh)))
        return stack.enter_context(zf.open(member))
    tf = stack.enter_context(tarfile.open(fileobj=fh, mode="r|*"))  # noqa: SIM115
    for info in tf:
        if info.name == member:
            extracted = tf.extractfile(info)
            if extracted is not None:
                return extracted
    raise SourceTreeError(f"{container}: member {member!r} not found (archive changed?)")


@dataclass
class _Collector:
    files: dict[str, SourceFile] = field(default_factory=dict)
    archives: list[str] = field(default_factory=list)
    shadowed: dict[str, int] = field(default_factory=dict)

    def add(self, item: SourceFile) -> None:
        old = self.files.get(item.path)
        if old is None:
            self.files[item.path] = item
            return
        # The copy on disk wins over an archived one (an archive beside its extracted tree).
        loser = item if (old.members == () or item.members != ()) else old
        self.files[item.path] = old if loser is item else item
        where = str(loser.origin)
        self.shadowed[where] = self.shadowed.get(where, 0) + 1


def _join(prefix: str, parts: Iterable[str]) -> str:
    rest = "/".join(parts)
    return f"{prefix}{rest}" if rest else prefix.rstrip("/")


def _list_archive(
    out: _Collector,
    opener: Callable[[], Any],
    label: str,
    origin: Path,
    chain: tuple[str, ...],
    mount: str,
) -> None:
    """Add an archive's members to ``out``, mounted at folder ``mount`` (``""`` or ``a/b/``)."""
    out.archives.append(label)
    kind = archive_kind(chain[-1] if chain else origin.name)
    try:
        with ExitStack() as stack:
            fh = stack.enter_context(opener())
            if kind == "zip":
                zf = stack.enter_context(zipfile.ZipFile(_seekable(stack, fh)))
                _list_zip(out, zf, label, origin, chain, mount)
            else:
                tf = stack.enter_context(tarfile.open(fileobj=fh, mode="r|*"))
                _list_tar(out, tf, label, origin, chain, mount)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise SourceTreeError(
            f"{label}: cannot read this archive ({exc}); it may be truncated. Download it again "
            "or pass the extracted folder instead."
        ) from exc


def _add_member(
    out: _Collector,
    opener: Callable[[], Any],
    parts: tuple[str, ...],
    size: int,
    label: str,
    origin: Path,
    chain: tuple[str, ...],
    mount: str,
) -> None:
    if not parts or any(is_ignored(p) for p in parts):
        return
    path = _join(mount, parts)
    if archive_kind(parts[-1]):
        parent = path.rsplit("/", 1)[0] + "/" if "/" in path else ""
        _list_archive(out, opener, f"{label}!{'/'.join(parts)}", origin, chain, parent)
    else:
        out.add(SourceFile(path, origin, chain, size))


def _list_zip(
    out: _Collector, zf: zipfile.ZipFile, label: str, origin: Path, chain: tuple, mount: str
) -> None:
    for info in zf.infolist():
        if info.is_dir():
            continue
        parts = archive_member_parts(label, info.filename, windows_separators=True)
        member = info.filename

        def opener(m: str = member) -> IO[bytes]:
            return zf.open(m)

        _add_member(out, opener, parts, info.file_size, label, origin, (*chain, member), mount)


def _list_tar(
    out: _Collector, tf: tarfile.TarFile, label: str, origin: Path, chain: tuple, mount: str
) -> None:
    for info in tf:
        if not info.isfile():
            continue
        parts = archive_member_parts(label, info.name, windows_separators=True)

        def opener(i: tarfile.TarInfo = info) -> IO[bytes]:
            fh = tf.extractfile(i)
            if fh is None:  # pragma: no cover - isfile() members always have data
                raise SourceTreeError(f"{label}: member {i.name!r} has no data")
            return fh

        _add_member(out, opener, parts, info.size, label, origin, (*chain, info.name), mount)


def _file_opener(path: Path) -> Callable[[], IO[bytes]]:
    return functools.partial(Path.open, path, "rb")  # type: ignore[return-value]


def _walk_folder(out: _Collector, folder: Path, mount: str) -> None:
    seen: set[str] = set()
    for current, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(current)
        if real in seen:  # a symlink loop
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not is_ignored(d))
        rel = Path(current).relative_to(folder).as_posix()
        base = mount if rel == "." else f"{mount}{rel}/"
        for name in sorted(names):
            if is_ignored(name):
                continue
            path = Path(current) / name
            if archive_kind(name):
                _list_archive(out, _file_opener(path), str(path), path, (), base)
            else:
                out.add(SourceFile(base + name, path))


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


def scan_sources(paths: Sequence[str | Path] | str | Path) -> SourceTree:
    """Build the merged tree of one or more source paths (module docstring: mounting rules)."""
    given = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not given:
        raise SourceTreeError("no source path given; pass the publisher's archive or folder")
    out = _Collector()
    for path in given:
        if not path.exists():
            raise SourceTreeError(
                f"{path}: no such file or folder; pass the publisher's archive, the folder "
                "holding it, or the extracted folder"
            )
        if path.is_dir():
            _walk_folder(out, path, f"{path.resolve().name}/")
        elif archive_kind(path.name):
            _list_archive(out, _file_opener(path), str(path), path, (), "")
        else:
            out.add(SourceFile(path.name, path))
    notes = [
        f"{n} file(s) in {where} also exist extracted on disk; the extracted copies are used"
        for where, n in sorted(out.shadowed.items())
    ]
    return SourceTree(out.files.values(), given=given, archives=out.archives, notes=notes)
