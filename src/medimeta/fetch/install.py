"""Turn a checked dataset zip into an installed dataset folder, all or nothing.

Steps: extract into a staging folder under ``<root>/.medimeta/staging/<id>/`` (same file system
as the target, never scanned by the loader), check that its ``info.yaml`` declares ``<id>``, run
``verify`` on it, then, holding the writer's build lock of ``<id>``, rename it to ``<root>/<id>``
and write the completion marker ``<root>/<id>/.medimeta-complete.json`` last. A folder without
the marker is never treated as installed. The staging folder is removed on success and on any
error; one left by a killed process is removed by the next install of that id.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import filelock

from medimeta.errors import DownloadError, FormatError
from medimeta.fetch.archive import archive_dataset_id, safe_extract
from medimeta.fetch.files import md5_file
from medimeta.fetch.options import FetchPaths
from medimeta.safeio import replace, write_json

logger = logging.getLogger(__name__)

MARKER = ".medimeta-complete.json"
MARKER_SCHEMA = 1


class VerifyResult(Protocol):
    """What a verifier returns (``medimeta.format.verify.VerifyReport`` fits)."""

    @property
    def ok(self) -> bool: ...

    @property
    def problems(self) -> list[str]: ...

    def format(self) -> str: ...


Verifier = Callable[[Path], VerifyResult]


def default_verifier(path: Path) -> VerifyResult:
    """``medimeta.format.verify.verify_dataset`` (imported on use)."""
    from medimeta.format.verify import verify_dataset

    result: VerifyResult = verify_dataset(path)
    return result


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The completion record of an installed dataset folder, or None when absent or unreadable."""
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("complete") is True else None


def is_installed(root: Path, dataset_id: str) -> bool:
    """True when ``<root>/<id>`` carries a valid completion marker."""
    folder = Path(root) / dataset_id
    return folder.is_dir() and read_marker(folder) is not None


def _pending_path(root: Path, dataset_id: str) -> Path:
    return FetchPaths(root).staging / f"{dataset_id}.pending.json"


def check_target_free(root: Path, dataset_id: str, *, force: bool) -> None:
    """Raise unless ``<root>/<id>`` is absent, ours to replace, or ``force`` is set.

    An unmarked folder that an interrupted install of ours left behind (its pending record
    exists) is replaced silently; any other unmarked folder may be the user's own work.
    """
    target = Path(root) / dataset_id
    if not (target.exists() or target.is_symlink()) or force:
        return
    if read_marker(target) is not None or _pending_path(root, dataset_id).is_file():
        return
    raise DownloadError(
        f"{target} exists but is not a completed download (no {MARKER} in it). It may be a "
        "partial copy or a dataset you built yourself. Move or delete it, or pass force=True "
        "(`medimeta download --force`) to replace it."
    )


def _remove_tree(path: Path, root: Path) -> None:
    """Delete ``path`` by first moving it into staging, so the root never shows half a folder."""
    staging = FetchPaths(root).staging
    staging.mkdir(parents=True, exist_ok=True)
    trash = Path(tempfile.mkdtemp(prefix=".trash-", dir=staging))
    replace(path, trash / path.name)
    shutil.rmtree(trash, ignore_errors=True)


def clean_staging(root: Path, dataset_id: str) -> None:
    """Remove staging folders that an earlier, interrupted install of ``dataset_id`` left."""
    staging = FetchPaths(root).staging
    if not staging.is_dir():
        return
    shutil.rmtree(staging / dataset_id, ignore_errors=True)
    for entry in staging.glob(".trash-*"):
        shutil.rmtree(entry, ignore_errors=True)


def check_archive_id(zip_path: Path, folder: Path, dataset_id: str) -> None:
    """FormatError unless the extracted ``folder`` is dataset ``dataset_id`` (its info.yaml)."""
    actual = archive_dataset_id(zip_path, folder)
    if actual != dataset_id:
        raise FormatError(
            zip_path,
            f"the archive holds dataset {actual!r}, not {dataset_id!r}",
            key="info.yaml: id",
            expected=dataset_id,
            actual=actual,
            fix=f"nothing was installed; {zip_path.name} is not the release file of "
            f"{dataset_id!r}: get {dataset_id}.zip again (or, if you want {actual!r}, name the "
            f"zip {actual}.zip and install {actual!r})",
        )


@contextlib.contextmanager
def _publish_lock(root: Path, dataset_id: str, timeout: float) -> Iterator[None]:
    """The writer's per-id build lock, so a build and an install never publish the same id at
    once (the installer holds its own download lock already; the order is always this one)."""
    path = FetchPaths(root).lock(f"build-{dataset_id}")
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(path, timeout=timeout)
    try:
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            logger.warning("waiting for a build of %s to finish (lock %s)", dataset_id, path)
            lock.acquire()
    except filelock.Timeout as err:
        raise DownloadError(
            f"a build of {dataset_id!r} has held {path} for more than {timeout:.0f} s; wait for "
            "it to finish (or stop it) and run again. Nothing was installed."
        ) from err
    try:
        yield
    finally:
        lock.release()


def install_archive(
    zip_path: Path,
    root: Path,
    dataset_id: str,
    *,
    md5: str | None,
    source: str,
    verifier: Verifier | None = None,
    force: bool = False,
    lock_timeout: float = 6 * 3600.0,
) -> Path:
    """Extract, verify and move the dataset in ``zip_path`` to ``<root>/<dataset_id>``.

    The caller holds the dataset's lock and has already checked the zip's size and MD5 when a
    checksum is known (``md5`` is recorded in the marker; None means it was not checked).
    Raises UnsafeArchiveError, FormatError (damaged zip, another dataset's zip, failed verify)
    or DownloadError. On any error nothing is installed and the staging folder is removed.
    """
    root = Path(root)
    paths = FetchPaths(root)
    target = root / dataset_id
    check_target_free(root, dataset_id, force=force)
    (paths.staging / dataset_id).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=paths.staging / dataset_id))
    try:
        folder = safe_extract(zip_path, staging / dataset_id, dataset_id)
        check_archive_id(zip_path, folder, dataset_id)
        report = (verifier or default_verifier)(folder)
        if not report.ok:
            raise FormatError(
                zip_path,
                "the extracted dataset fails verification:\n" + report.format(),
                fix="nothing was installed; delete the zip and download it again, or report "
                "the problem if it persists",
            )
        with _publish_lock(root, dataset_id, lock_timeout):
            check_target_free(root, dataset_id, force=force)  # a build may have finished
            _move_into_place(zip_path, root, dataset_id, folder, md5=md5, source=source)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):  # another install of this id may be using it
            staging.parent.rmdir()
    logger.info("installed %s", target)
    return target


def _move_into_place(
    zip_path: Path, root: Path, dataset_id: str, folder: Path, *, md5: str | None, source: str
) -> None:
    """Rename the checked ``folder`` to ``<root>/<id>``, then write the marker last."""
    target = root / dataset_id
    pending = _pending_path(root, dataset_id)
    write_json(pending, {"dataset_id": dataset_id, "source": source}, sort_keys=True)
    if target.exists() or target.is_symlink():
        logger.info("replacing %s", target)
        _remove_tree(target, root)
    replace(folder, target)
    record = {
        "complete": True,
        "schema": MARKER_SCHEMA,
        "dataset_id": dataset_id,
        "archive": zip_path.name,
        "md5": md5 or md5_file(zip_path),
        "checksum_verified": md5 is not None,
        "size": zip_path.stat().st_size,
        "source": source,
        "installed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_json(target / MARKER, record, sort_keys=True)
    pending.unlink(missing_ok=True)
