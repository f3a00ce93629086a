"""The MedIMeta release (the catalog's Zenodo record): one ``<id>.zip`` per dataset.

``ensure_dataset(root, id)`` is the whole cascade: installed (marker present) → done; else, under
a per-id lock, find a checked zip locally (download cache, ``from_dir``, root) or download it,
then extract, verify and move it into place (see :mod:`medimeta.fetch.install`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from medimeta.catalog import get_catalog
from medimeta.errors import DatasetNotFoundError, DownloadError, UnknownNameError
from medimeta.fetch.install import (
    Verifier,
    check_target_free,
    clean_staging,
    install_archive,
    is_installed,
)
from medimeta.fetch.obtain import install_lock, local_candidates, obtain_file
from medimeta.fetch.options import FetchOptions, record_id
from medimeta.fetch.plan import PlanItem, plan_file
from medimeta.fetch.zenodo import Manifest, RemoteFile, load_manifest, public_url

logger = logging.getLogger(__name__)

ARCHIVE_SUFFIX = ".zip"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def archive_key(dataset_id: str) -> str:
    """The release file of a dataset: ``<id>.zip``."""
    return dataset_id + ARCHIVE_SUFFIX


def release_ids(manifest: Manifest) -> list[str]:
    """Dataset ids in the release manifest (every ``*.zip`` file)."""
    return sorted(k[: -len(ARCHIVE_SUFFIX)] for k in manifest.files if k.endswith(ARCHIVE_SUFFIX))


def _remote(manifest: Manifest | None, dataset_id: str) -> RemoteFile | None:
    """The record file of ``dataset_id``; UnknownNameError (with a did-you-mean over the
    record's files) for an id the record does not have or that is not a plain name."""
    choices = release_ids(manifest) if manifest is not None else []
    if not _ID.match(dataset_id) or (manifest is not None and dataset_id not in choices):
        where = f"Zenodo record {record_id()}" if manifest is not None else ""
        raise UnknownNameError("MedIMeta dataset id", dataset_id, choices, where=where)
    return manifest.files[archive_key(dataset_id)] if manifest is not None else None


def unknown_id(dataset_id: str, local_ids: list[str]) -> UnknownNameError | None:
    """The did-you-mean error for an id that is neither in the catalog nor a local zip (what is
    known without the record's file list), else None."""
    known = sorted({d.id for d in get_catalog()} | set(local_ids))
    if dataset_id in known:
        return None
    return UnknownNameError("MedIMeta dataset id", dataset_id, known, where="the catalog")


def _local_ids(root: Path, opts: FetchOptions) -> list[str]:
    """Ids of the ``<id>.zip`` files in the local places (download cache, --from, root)."""
    folders = {p.parent for p in local_candidates(root, "x.zip", opts)}
    return sorted(
        {p.name[: -len(ARCHIVE_SUFFIX)] for d in folders if d.is_dir() for p in d.glob("*.zip")}
    )


def available_datasets(
    root: Path | str,
    *,
    options: FetchOptions | None = None,
    write_cache: bool = True,
    **kw: Any,
) -> list[str]:
    """Dataset ids that can be installed: from the record, or offline from the local zips."""
    opts = FetchOptions.from_kwargs(options, **kw)
    manifest = load_manifest(Path(root), record_id(), opts, write_cache=write_cache)
    if manifest is not None:
        return release_ids(manifest)
    return _local_ids(Path(root), opts)


def ensure_dataset(
    root: Path | str,
    dataset_id: str,
    *,
    verifier: Verifier | None = None,
    options: FetchOptions | None = None,
    **kw: Any,
) -> Path:
    """Return ``<root>/<dataset_id>``, downloading and installing it first when not installed.

    Keyword arguments are :class:`FetchOptions` fields (``mirror``, ``offline``, ``from_dir``,
    ``retries``, ``timeout``, ``quiet``, ``force``, ...). ``verifier`` checks the extracted folder
    (default: ``medimeta.format.verify.verify_dataset``). Two processes asking for the same id
    do the work once: the second waits on the lock and reuses the result.
    """
    root = Path(root)
    opts = FetchOptions.from_kwargs(options, **kw)
    target = root / dataset_id
    if not opts.force and is_installed(root, dataset_id):
        return target
    _remote(None, dataset_id)  # refuse ids that are not plain names before touching the disk
    root.mkdir(parents=True, exist_ok=True)
    with install_lock(root, f"medimeta-{dataset_id}", opts):
        if not opts.force and is_installed(root, dataset_id):
            logger.info("%s was installed meanwhile by another process", dataset_id)
            return target
        clean_staging(root, dataset_id)
        check_target_free(root, dataset_id, force=opts.force)
        manifest = load_manifest(root, record_id(), opts)
        remote = _remote(manifest, dataset_id)
        try:
            local = obtain_file(
                root, archive_key(dataset_id), remote, opts, label=dataset_id, record=record_id()
            )
        except DatasetNotFoundError as err:
            unknown = unknown_id(dataset_id, _local_ids(root, opts)) if remote is None else None
            if unknown is None:
                raise
            # an unknown id: the did-you-mean is the help, not a curl line for a wrong name
            where = "offline mode" if opts.offline else "not in the record's file list"
            raise DatasetNotFoundError(
                f"{archive_key(dataset_id)}: no copy found ({where}), and {unknown}"
            ) from err
        path = install_archive(
            local.path,
            root,
            dataset_id,
            md5=local.md5,
            source=local.source,
            verifier=verifier,
            force=opts.force,
            lock_timeout=opts.lock_timeout,
        )
        if local.downloaded and not opts.keep_archive:
            local.path.unlink(missing_ok=True)
        return path


def download(
    dataset_id: str,
    root: Path | str,
    *,
    verifier: Verifier | None = None,
    options: FetchOptions | None = None,
    **kw: Any,
) -> Path:
    """Download and install one MedIMeta dataset; same as ``ensure_dataset(root, dataset_id)``."""
    return ensure_dataset(root, dataset_id, verifier=verifier, options=options, **kw)


def plan(
    dataset_ids: list[str],
    root: Path | str,
    *,
    options: FetchOptions | None = None,
    **kw: Any,
) -> list[PlanItem]:
    """What installing ``dataset_ids`` would fetch, without changing anything on disk."""
    root = Path(root)
    opts = FetchOptions.from_kwargs(options, **kw)
    failure: DownloadError | None = None
    try:
        manifest = load_manifest(root, record_id(), opts, write_cache=False)
    except DownloadError as err:  # a plan is still useful: the catalog knows every dataset
        manifest, failure = None, err
    if manifest is None:  # a mistyped id is said first, with the closest ids
        for dataset_id in dataset_ids:
            unknown = unknown_id(dataset_id, _local_ids(root, opts))
            if unknown is not None:
                raise unknown from None
    if failure is not None:
        logger.warning("%s (the plan below comes from the catalog: sizes are unknown)", failure)
    unreachable = failure is not None
    items = []
    for dataset_id in dataset_ids:
        remote = _remote(manifest, dataset_id)
        key = archive_key(dataset_id)
        if not opts.force and is_installed(root, dataset_id):
            size = remote.size if remote is not None else None
            items.append(PlanItem(dataset_id, "installed", 0, size, str(root / dataset_id)))
            continue
        url = public_url(record_id(), key, opts.base) if unreachable else None
        items.append(plan_file(dataset_id, root, key, remote, opts, unreachable_url=url))
    return items


__all__ = [
    "ARCHIVE_SUFFIX",
    "PlanItem",
    "archive_key",
    "available_datasets",
    "download",
    "ensure_dataset",
    "plan",
    "release_ids",
]
