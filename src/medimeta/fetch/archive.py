"""Safe zip extraction for dataset archives (no zip-slip, no escaping links).

Every member name is checked before anything is written: absolute paths, drive letters,
backslashes and ``..`` parts are refused. Symbolic links are created last, after all regular
files, and must resolve inside the extraction folder. A zip may hold the dataset files at its
top or inside one top folder (normally ``<id>/``); either way they land in ``<dest>``.
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from medimeta.errors import DownloadError, FormatError, UnsafeArchiveError
from medimeta.safeio import archive_member_parts

_JUNK_TOP = {"__MACOSX"}
_COPY_CHUNK = 1024 * 1024


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
    except (zipfile.BadZipFile, OSError) as err:
        raise FormatError(
            zip_path,
            f"not a readable zip archive ({err})",
            fix="the file is damaged or incomplete: delete it and download it again",
        ) from err


def safe_extract(zip_path: Path, dest: Path, dataset_id: str) -> Path:
    """Extract the dataset in ``zip_path`` into the new folder ``dest`` and return ``dest``.

    Raises UnsafeArchiveError for zip-slip members or escaping links, FormatError for damaged
    archives or archives without ``info.yaml``. On error ``dest`` may hold a partial tree; the
    caller extracts into a staging folder and removes it.
    """
    with _open_zip(zip_path) as zf:
        infos = [
            i
            for i in zf.infolist()
            if archive_member_parts(zip_path, i.filename)[0] not in _JUNK_TOP
        ]
        parts = [archive_member_parts(zip_path, i.filename) for i in infos]
        files = [p for p, i in zip(parts, infos, strict=True) if not i.is_dir()]
        strip = _dataset_prefix(zip_path, files, dataset_id)
        needed = sum(i.file_size for i in infos)
        dest.mkdir(parents=True, exist_ok=False)
        free = shutil.disk_usage(dest).free
        if needed > free:
            raise DownloadError(
                f"{zip_path} needs {needed:,} bytes once extracted, but {dest.parent} has only "
                f"{free:,} bytes free. Free some space or choose another --root."
            )
        links: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
        try:
            for info, member in zip(infos, parts, strict=True):
                rel = member[strip:]
                kind = _kind(info)
                if not rel:
                    continue
                if kind == "special":
                    raise UnsafeArchiveError(
                        f"{zip_path}: member {info.filename!r} is not a file, folder or link"
                    )
                target = dest.joinpath(*rel)
                if kind == "dir":
                    target.mkdir(parents=True, exist_ok=True)
                elif kind == "link":
                    links.append((info, rel))
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out, _COPY_CHUNK)
            # Links last: no regular file is ever written through a link made by this archive.
            for info, rel in links:
                _make_link(zip_path, zf, info, dest, rel)
        except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as err:
            raise FormatError(
                zip_path,
                f"archive is damaged ({err})",
                fix="delete it and download it again",
            ) from err
    return dest


def _make_link(
    zip_path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, rel: tuple[str, ...]
) -> None:
    link_target = zf.read(info).decode("utf-8", errors="replace")
    path = dest.joinpath(*rel)
    lexical = PurePosixPath(*rel[:-1], link_target) if rel[:-1] else PurePosixPath(link_target)
    inside = (
        not link_target.startswith("/")
        and ".." not in PurePosixPath(os.path.normpath(str(lexical))).parts
    )
    if inside:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(link_target, path)
        real_dest = os.path.realpath(dest)
        real = os.path.realpath(path)
        inside = real == real_dest or real.startswith(real_dest + os.sep)
        if not inside:
            path.unlink()
    if not inside:
        raise UnsafeArchiveError(
            f"{zip_path}: member {info.filename!r} is a link to {link_target!r}, which points "
            "outside the dataset folder; refusing to extract this archive."
        )
