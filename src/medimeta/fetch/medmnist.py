"""MedMNIST 2D files: fetch one ``{flag}[_{size}].npz`` and convert it.

The files come from the catalog's related record ``medmnist`` (Zenodo).

Checksums: a published MD5 kept here as data wins; otherwise the record's own ``md5:`` value
from its manifest is used. Conversion to the MedIMeta format is done by
``medimeta.convert.medmnist.convert_medmnist`` (imported on use).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from medimeta.catalog.medmnist import KNOWN_MD5
from medimeta.errors import UnknownNameError, check_choice
from medimeta.fetch.install import MARKER, is_installed
from medimeta.fetch.obtain import LocalFile, install_lock, obtain_file
from medimeta.fetch.options import FetchOptions, record_id
from medimeta.fetch.plan import PlanItem, plan_file
from medimeta.fetch.zenodo import load_manifest
from medimeta.safeio import write_json

logger = logging.getLogger(__name__)

MEDMNIST_PREFIX = "medmnist:"
MEDMNIST_2D_FLAGS = (
    "pathmnist",
    "chestmnist",
    "dermamnist",
    "octmnist",
    "pneumoniamnist",
    "retinamnist",
    "breastmnist",
    "bloodmnist",
    "tissuemnist",
    "organamnist",
    "organcmnist",
    "organsmnist",
)
MEDMNIST_2D_SIZES = (28, 64, 128, 224)
#: MD5s published by MedMNIST (one table, shared with the converter); files not listed there
#: are checked against the record manifest's MD5.
PUBLISHED_MD5 = KNOWN_MD5

Converter = Callable[..., Path]


def is_medmnist_spec(spec: str) -> bool:
    """True for ``medmnist:<flag>`` command-line names."""
    return spec.startswith(MEDMNIST_PREFIX)


def parse_medmnist_spec(spec: str) -> str:
    """The flag of ``medmnist:<flag>`` (or of a bare flag), checked against the 2D flags."""
    flag = spec[len(MEDMNIST_PREFIX) :] if is_medmnist_spec(spec) else spec
    return check_choice("MedMNIST 2D flag", flag.lower(), MEDMNIST_2D_FLAGS)


def medmnist_filename(flag: str, size: int) -> str:
    """The record's file name: ``breastmnist.npz`` for 28 px, ``breastmnist_224.npz`` else."""
    flag = parse_medmnist_spec(flag)
    check_choice("MedMNIST size", str(size), [str(s) for s in MEDMNIST_2D_SIZES])
    return f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"


def _fetch(flag: str, root: Path, size: int, opts: FetchOptions) -> LocalFile:
    key = medmnist_filename(flag, size)
    manifest = load_manifest(root, record_id("medmnist"), opts)
    remote = None
    if manifest is not None:
        if key not in manifest.files:
            where = f"Zenodo record {record_id('medmnist')}"
            raise UnknownNameError("MedMNIST file", key, manifest.files, where=where)
        remote = manifest.files[key]
    published = PUBLISHED_MD5.get(key)
    if remote is not None and published is not None and remote.md5 != published:
        logger.warning("%s: record MD5 %s differs from published %s", key, remote.md5, published)
    label = f"medmnist:{flag} {size}px"
    return obtain_file(
        root, key, remote, opts, md5=published, label=label, record=record_id("medmnist")
    )


def download_medmnist(
    flag: str,
    root: Path | str,
    *,
    size: int = 224,
    options: FetchOptions | None = None,
    **kw: Any,
) -> Path:
    """Fetch the checked ``.npz`` of one MedMNIST 2D flag and size; return its path.

    The file lands in ``<root>/.medimeta/downloads/``; a copy in ``from_dir`` or the root is used
    instead when it matches the checksum.
    """
    root = Path(root)
    opts = FetchOptions.from_kwargs(options, **kw)
    key = medmnist_filename(flag, size)
    root.mkdir(parents=True, exist_ok=True)
    with install_lock(root, f"medmnist-{key}", opts):
        return _fetch(flag, root, size, opts).path


def _default_converter(
    npz_path: Path, root: Path, dataset_id: str | None = None, overwrite: bool = False
) -> Path:
    from medimeta.convert.medmnist import convert_medmnist

    result: Path = convert_medmnist(npz_path, root, dataset_id=dataset_id, overwrite=overwrite)
    return result


def install_medmnist(
    flag: str,
    root: Path | str,
    *,
    size: int = 224,
    dataset_id: str | None = None,
    converter: Converter | None = None,
    options: FetchOptions | None = None,
    **kw: Any,
) -> Path:
    """Fetch one MedMNIST 2D file and convert it into a MedIMeta dataset folder under ``root``.

    ``dataset_id`` names the output folder (default: the converter's, ``<flag>`` for 28 px and
    ``<flag>_<size>`` otherwise); when that folder is already marked complete, nothing is
    done. The converted folder gets the same completion marker as a release download (source
    file, MD5).
    """
    root = Path(root)
    opts = FetchOptions.from_kwargs(options, **kw)
    key = medmnist_filename(flag, size)
    name = parse_medmnist_spec(flag)
    dataset_id = dataset_id or (name if size == 28 else f"{name}_{size}")
    if not opts.force and is_installed(root, dataset_id):
        return root / dataset_id
    root.mkdir(parents=True, exist_ok=True)
    with install_lock(root, f"medmnist-{key}", opts):
        if not opts.force and is_installed(root, dataset_id):
            return root / dataset_id
        local = _fetch(flag, root, size, opts)
        convert = converter or _default_converter
        folder = Path(convert(local.path, root, dataset_id=dataset_id, overwrite=opts.force))
        write_json(
            folder / MARKER,
            {
                "complete": True,
                "schema": 1,
                "dataset_id": folder.name,
                "archive": key,
                "md5": local.md5,
                "checksum_verified": local.md5 is not None,
                "source": local.source,
                "converted_from": f"medmnist:{parse_medmnist_spec(flag)}:{size}",
                "installed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
            sort_keys=True,
        )
        if local.downloaded and not opts.keep_archive:
            local.path.unlink(missing_ok=True)
        return folder


def plan_medmnist(
    flag: str,
    root: Path | str,
    *,
    size: int = 224,
    options: FetchOptions | None = None,
    **kw: Any,
) -> PlanItem:
    """What ``install_medmnist`` would fetch (nothing on disk is changed)."""
    root = Path(root)
    opts = FetchOptions.from_kwargs(options, **kw)
    key = medmnist_filename(flag, size)
    label = f"{MEDMNIST_PREFIX}{parse_medmnist_spec(flag)}"
    manifest = load_manifest(root, record_id("medmnist"), opts, write_cache=False)
    remote = manifest.files.get(key) if manifest is not None else None
    if manifest is not None and remote is None:
        where = f"Zenodo record {record_id('medmnist')}"
        raise UnknownNameError("MedMNIST file", key, manifest.files, where=where)
    return plan_file(label, root, key, remote, opts)
