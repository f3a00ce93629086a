"""Get one checked file of a record onto disk: reuse a local copy or download it, under a lock."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import filelock

from medimeta.errors import (
    ChecksumMismatchError,
    DatasetNotFoundError,
    DownloadDeadlineError,
    DownloadError,
)
from medimeta.fetch.files import file_problem
from medimeta.fetch.http import download_file
from medimeta.fetch.options import FetchOptions, FetchPaths
from medimeta.fetch.progress import make_progress
from medimeta.fetch.zenodo import RemoteFile, public_url
from medimeta.safeio import replace

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalFile:
    """A file ready to use: its path, the MD5 it was checked against (None: unchecked), source."""

    path: Path
    md5: str | None
    source: str
    downloaded: bool


@contextmanager
def install_lock(root: Path, name: str, options: FetchOptions) -> Iterator[None]:
    """Hold the per-name lock under ``<root>/.medimeta/locks`` (other processes wait)."""
    path = FetchPaths(root).lock(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(path, timeout=options.lock_timeout)
    try:
        lock.acquire()
    except filelock.Timeout as err:
        raise DownloadError(
            f"another process has been installing {name!r} for more than "
            f"{options.lock_timeout:.0f} s (lock file {path}). Wait for it to finish, or stop it "
            "and run again; the lock is released when that process ends."
        ) from err
    try:
        yield
    finally:
        lock.release()


def local_candidates(root: Path, key: str, options: FetchOptions) -> list[Path]:
    """Where a copy of ``key`` may already be: the download cache, ``--from DIR``, the root."""
    places = [FetchPaths(root).archive(key)]
    if options.from_dir is not None:
        places.append(Path(options.from_dir) / key)
    places.append(Path(root) / key)
    return places


def find_local(
    root: Path, key: str, remote: RemoteFile | None, md5: str | None, options: FetchOptions
) -> LocalFile | None:
    """A local copy of ``key`` that matches the record, or None.

    A damaged copy in the download cache is deleted (it is ours); a damaged copy the user put
    elsewhere raises ChecksumMismatchError rather than being silently ignored.
    """
    size = remote.size if remote is not None else None
    md5 = md5 or (remote.md5 if remote is not None else None)
    cache = FetchPaths(root).archive(key)
    for path in local_candidates(root, key, options):
        if not path.is_file():
            continue
        if md5 is None and size is None:
            logger.warning("%s: no checksum known (offline without a cached manifest)", path)
            return LocalFile(path, None, str(path), downloaded=False)
        problem = file_problem(path, size=size, md5=md5)
        if problem is None:
            return LocalFile(path, md5, str(path), downloaded=path == cache)
        if path == cache:
            logger.warning("deleting damaged cached download %s: %s", path, problem)
            path.unlink()
            continue
        raise ChecksumMismatchError(
            f"{path}: {problem}. This local copy of {key} does not match the published file; "
            "delete or replace it (or move it away to download a fresh copy)."
        )
    return None


def manual_help(key: str, url: str, md5: str | None, size: int | None, target: Path) -> str:
    """How to place ``key`` by hand: commands a user can paste."""
    expected = f"md5 {md5}" if md5 else "md5 unknown (checked against the record when online)"
    if size is not None:
        expected += f", {size:,} bytes"
    check = f"  md5sum '{target}'   # must print {md5}\n" if md5 else ""
    return (
        f"  url:      {url}\n"
        f"  expected: {expected}\n"
        f"  target:   {target}\n"
        "To place the file by hand, then run the same command again:\n"
        f"  mkdir -p '{target.parent}'\n"
        f"  curl -L -C - -o '{target}' '{url}'\n"
        f"{check}"
        "or put the file in a folder DIR and add --offline --from DIR; institutional mirrors: "
        "--mirror URL or MEDIMETA_MIRROR."
    )


def obtain_file(
    root: Path,
    key: str,
    remote: RemoteFile | None,
    options: FetchOptions,
    *,
    md5: str | None = None,
    label: str = "",
    record: str = "",
) -> LocalFile:
    """A checked local copy of record file ``key``: found locally or downloaded to the cache.

    ``md5`` overrides the record's checksum (for published values kept as data). Raises
    DatasetNotFoundError offline when no copy exists, DownloadError or ChecksumMismatchError
    (with the URL, the expected checksum, the target path and how to place the file by hand).
    """
    paths = FetchPaths(root)
    found = find_local(root, key, remote, md5, options)
    if found is not None:
        return found
    md5 = md5 or (remote.md5 if remote is not None else None)
    target = paths.archive(key)
    if options.offline or remote is None:
        where = ", ".join(str(p) for p in local_candidates(root, key, options))
        url = (
            remote.url(options.base)
            if remote is not None
            else public_url(record, key, options.base)
        )
        reason = "offline mode" if options.offline else "not in the record's file list"
        raise DatasetNotFoundError(
            f"{label or key}: no copy of {key} found ({reason}; looked in: {where}).\n"
            + manual_help(key, url, md5, remote.size if remote else None, target)
        )
    url = remote.url(options.base)
    part = paths.part(key)
    logger.info("downloading %s (%s bytes) from %s", key, f"{remote.size:,}", url)
    try:
        download_file(
            url,
            part,
            size=remote.size,
            md5=md5,
            options=options,
            progress=make_progress(options.quiet),
            label=label or key,
        )
    except DownloadDeadlineError as err:
        raise DownloadDeadlineError(f"could not download {key} in time: {err}") from err
    except (DownloadError, ChecksumMismatchError) as err:
        raise type(err)(
            f"could not download {key}: {err}\n" + manual_help(key, url, md5, remote.size, target)
        ) from err
    replace(part, target)
    return LocalFile(target, md5, url, downloaded=True)
