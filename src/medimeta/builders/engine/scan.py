"""Scanning given paths into one merged :class:`~medimeta.builders.engine.tree.SourceTree`.

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

Nothing is extracted while scanning. Reading the files is lazy
(:meth:`~medimeta.builders.engine.tree.SourceFile.open`; archive members through
:mod:`medimeta.builders.engine.archives`); files inside tar archives or nested archives are best
copied once with :func:`medimeta.builders.engine.staging.stage_files` before many are read.
"""

from __future__ import annotations

import functools
import os
import tarfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from medimeta.builders.engine.archives import archive_kind, seekable
from medimeta.builders.engine.tree import SourceFile, SourceTree
from medimeta.errors import SourceTreeError
from medimeta.logs import plural
from medimeta.safeio import archive_member_parts

IGNORED_NAMES = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})


def is_ignored(name: str) -> bool:
    """True for names the scanner skips: hidden files, macOS and Windows metadata."""
    return name.startswith(".") or name in IGNORED_NAMES


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
                zf = stack.enter_context(zipfile.ZipFile(seekable(stack, fh)))
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
        f"{plural(n, 'file')} in {where} also on disk, extracted: the extracted copies are used"
        for where, n in sorted(out.shadowed.items())
    ]
    return SourceTree(out.files.values(), given=given, archives=out.archives, notes=notes)
