"""Safe zip extraction for dataset archives (no zip-slip, no escaping links, the right dataset).

Every member name is checked before anything is written: absolute paths, drive letters,
backslashes and ``..`` parts are refused, and so are members listed twice, members that are
both a file and a folder, encrypted members and special files. Regular files are written
first; symbolic links are created last, and no member may lie below a link, so nothing is
ever written through one. Once everything is extracted, every link is resolved against the
**final** tree: it must lead to an existing file or folder inside the dataset folder that is
not the dataset folder itself or a folder holding the link (a loop). A chain of links, or a
link that a later link redirects, is therefore judged by where it finally leads.

A zip may hold the dataset files at its top or inside one top folder (normally ``<id>/``);
either way they land in ``<dest>``. :func:`archive_dataset_id` reads the id the extracted
``info.yaml`` declares, so the installer can refuse ``bus.zip`` holding another dataset.
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

from medimeta.errors import DownloadError, FormatError, UnsafeArchiveError
from medimeta.safeio import archive_member_parts

_JUNK_TOP = {"__MACOSX"}
_COPY_CHUNK = 1024 * 1024
_REFUSED = "refusing to extract this archive (nothing was installed)"
_REFETCH = "get the file from the official record again"


@dataclass(frozen=True)
class _Member:
    info: zipfile.ZipInfo
    rel: tuple[str, ...]  # path below the dataset folder
    kind: str  # "dir", "file" or "link"


def _kind(info: zipfile.ZipInfo) -> str:
    file_type = stat.S_IFMT(info.external_attr >> 16)
    if info.is_dir() or file_type == stat.S_IFDIR:
        return "dir"
    if file_type == stat.S_IFLNK:
        return "link"
    # Many zip writers store permission bits only (no type): that is a regular file.
    if file_type in (0, stat.S_IFREG):
        return "file"
    return "special"


def _dataset_prefix(zip_path: Path, names: list[tuple[str, ...]], dataset_id: str) -> int:
    """How many leading parts to strip: 1 when the files sit in one top folder, else 0."""
    if ("info.yaml",) in names:
        return 0
    tops = {parts[0] for parts in names}
    if len(tops) == 1 and (next(iter(tops)), "info.yaml") in names:
        return 1
    hint = f"expected '{dataset_id}/info.yaml' or 'info.yaml'"
    raise FormatError(
        zip_path,
        "archive holds no dataset folder",
        key="info.yaml",
        expected=hint,
        actual=f"top-level entries {sorted(tops)[:5]}",
        fix="check that this is a MedIMeta dataset zip (one per dataset, named <id>.zip)",
    )


def _open_zip(zip_path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise FormatError(
            zip_path,
            f"not a readable zip archive ({type(err).__name__}: {err})",
            fix="the file is damaged or incomplete: delete it and download it again",
        ) from err


def _unsafe(zip_path: Path, name: str, problem: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(f"{zip_path}: member {name!r} {problem}; {_REFUSED}. {_REFETCH}.")


def _members(zip_path: Path, zf: zipfile.ZipFile, dataset_id: str) -> list[_Member]:
    """The archive's members below the dataset folder, every name and type checked."""
    infos = [
        i for i in zf.infolist() if archive_member_parts(zip_path, i.filename)[0] not in _JUNK_TOP
    ]
    parts = [archive_member_parts(zip_path, i.filename) for i in infos]
    for info in infos:
        if _kind(info) == "special":
            raise _unsafe(zip_path, info.filename, "is not a file, folder or link")
        if info.flag_bits & 0x1:
            raise _unsafe(zip_path, info.filename, "is encrypted")
    files = [p for p, i in zip(parts, infos, strict=True) if not i.is_dir()]
    strip = _dataset_prefix(zip_path, files, dataset_id)
    members = [
        _Member(info, member[strip:], _kind(info))
        for info, member in zip(infos, parts, strict=True)
        if member[strip:]
    ]
    _check_member_paths(zip_path, members)
    return members


def _check_member_paths(zip_path: Path, members: list[_Member]) -> None:
    """No path listed twice, no file or link that is also a folder of another member."""
    leaves: dict[tuple[str, ...], str] = {}
    folders: set[tuple[str, ...]] = set()
    for m in members:
        folders.update(m.rel[:n] for n in range(1, len(m.rel)))
        if m.kind == "dir":
            folders.add(m.rel)
        elif m.rel in leaves:
            raise _unsafe(zip_path, m.info.filename, f"is listed twice (also {leaves[m.rel]!r})")
        else:
            leaves[m.rel] = m.info.filename
    clash = sorted(set(leaves) & folders)
    if clash:
        raise _unsafe(
            zip_path, leaves[clash[0]], "is a file or link and also a folder holding other members"
        )


def safe_extract(zip_path: Path, dest: Path, dataset_id: str) -> Path:
    """Extract the dataset in ``zip_path`` into the new folder ``dest`` and return ``dest``.

    Raises UnsafeArchiveError for zip-slip members or links that lead outside (checked on the
    final tree), FormatError for damaged archives or archives without ``info.yaml``. On error
    ``dest`` may hold a partial tree; the caller extracts into a staging folder and removes it.
    """
    with _open_zip(zip_path) as zf:
        members = _members(zip_path, zf, dataset_id)
        needed = sum(m.info.file_size for m in members)
        dest.mkdir(parents=True, exist_ok=False)
        free = shutil.disk_usage(dest).free
        if needed > free:
            raise DownloadError(
                f"{zip_path} needs {needed:,} bytes once extracted, but {dest.parent} has only "
                f"{free:,} bytes free. Free some space or choose another --root."
            )
        _write_members(zip_path, zf, members, dest)
    check_links(zip_path, dest)
    return dest


def _write_members(zip_path: Path, zf: zipfile.ZipFile, members: list[_Member], dest: Path) -> None:
    current = ""
    try:
        for m in members:
            current = m.info.filename
            target = dest.joinpath(*m.rel)
            if m.kind == "dir":
                target.mkdir(parents=True, exist_ok=True)
            elif m.kind == "file":
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(m.info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, _COPY_CHUNK)
        # Links last: no regular file is ever written through a link made by this archive.
        for m in members:
            if m.kind == "link":
                current = m.info.filename
                _make_link(zip_path, zf, m, dest)
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile, zlib.error) as err:
        raise FormatError(
            zip_path,
            f"archive is damaged ({type(err).__name__}: {err})",
            key=current,
            fix="delete it and download it again",
        ) from err
    except NotImplementedError as err:  # a compression method zipfile cannot read
        raise FormatError(
            zip_path,
            f"member uses an unsupported compression ({err})",
            key=current,
            fix="re-create the zip with deflate or store compression, or download it again",
        ) from err
    except OSError as err:
        raise DownloadError(
            f"{zip_path}: could not extract member {current!r} into {dest} ({err}); nothing was "
            "installed. Check free space and permissions of the root, then run again."
        ) from err


def _make_link(zip_path: Path, zf: zipfile.ZipFile, m: _Member, dest: Path) -> None:
    try:
        link_target = zf.read(m.info).decode("utf-8")
    except UnicodeDecodeError:
        raise _unsafe(zip_path, m.info.filename, "is a link whose target is not UTF-8") from None
    path = dest.joinpath(*m.rel)
    lexical = PurePosixPath(*m.rel[:-1], link_target) if m.rel[:-1] else PurePosixPath(link_target)
    inside = (
        bool(link_target)
        and "\x00" not in link_target
        and not link_target.startswith("/")
        and ".." not in PurePosixPath(os.path.normpath(str(lexical))).parts
    )
    if not inside:
        raise _unsafe(
            zip_path,
            m.info.filename,
            f"is a link to {link_target!r}, which points outside the dataset folder",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(link_target, path)


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def link_problem(link: Path, dest: Path) -> tuple[int, str] | None:
    """Why the symbolic link ``link`` (inside ``dest``) is unsafe in the tree as it is now:
    (0, reason) when it leads outside or nowhere, (1, reason) for a loop; None when safe."""
    real_dest = os.path.realpath(dest)
    try:
        real = os.path.realpath(link, strict=True)
    except OSError:
        return 0, "leads nowhere (a dangling link or a loop of links)"
    if not _within(real, real_dest):
        return 0, f"resolves to {real}, outside the dataset folder {real_dest}"
    if _within(os.path.realpath(link.parent), real):
        return 1, f"resolves to {real}, a folder that holds the link itself (a loop)"
    return None


def check_links(zip_path: Path, dest: Path) -> None:
    """Resolve every link of the extracted tree ``dest``; UnsafeArchiveError naming the first
    one that leads outside or nowhere (else the first that points at a folder holding it)."""
    found: list[tuple[int, str, str, str]] = []
    for dirpath, dirnames, filenames in os.walk(dest):  # links to folders are not followed
        for name in dirnames + filenames:
            link = Path(dirpath) / name
            if link.is_symlink() and (problem := link_problem(link, dest)) is not None:
                rel = link.relative_to(dest).as_posix()
                found.append((problem[0], rel, os.readlink(link), problem[1]))
    if found:
        _, rel, target, why = min(found)
        raise UnsafeArchiveError(
            f"{zip_path}: link {rel!r} -> {target!r} {why} once the whole archive is "
            f"extracted (expected: a file or folder inside the dataset folder); {_REFUSED}. "
            f"{_REFETCH}, or remove the link from the archive."
        )


def archive_dataset_id(zip_path: Path, folder: Path) -> str:
    """The ``id`` that the extracted ``folder/info.yaml`` declares (FormatError if unreadable)."""
    info = folder / "info.yaml"
    try:
        data = yaml.safe_load(info.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise FormatError(
            zip_path,
            f"its info.yaml cannot be read ({type(err).__name__}: {err})",
            key="info.yaml",
            fix="nothing was installed; delete the zip and download it again",
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str | int):
        actual = data.get("id") if isinstance(data, dict) else type(data).__name__
        raise FormatError(
            zip_path,
            "its info.yaml names no dataset id",
            key="info.yaml: id",
            expected="a dataset id such as 'bus'",
            actual=actual,
            fix="nothing was installed; delete the zip and download it again",
        )
    return str(data["id"])
