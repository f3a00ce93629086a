"""How bytes arrive safely: record manifests, resumable downloads, checksums, safe extraction.

Main entry points: :func:`ensure_dataset` / :func:`download` (MedIMeta release datasets),
:func:`plan` (dry run), :func:`install_medmnist` (MedMNIST 2D file → MedIMeta folder).
"""

from __future__ import annotations

from medimeta.fetch.install import MARKER, install_archive, is_installed, read_marker
from medimeta.fetch.medmnist import (
    MEDMNIST_2D_FLAGS,
    MEDMNIST_2D_SIZES,
    download_medmnist,
    install_medmnist,
    is_medmnist_spec,
    medmnist_filename,
    parse_medmnist_spec,
    plan_medmnist,
)
from medimeta.fetch.options import (
    MIRROR_ENV,
    ZENODO_BASE,
    FetchOptions,
    FetchPaths,
    record_id,
    resolve_base,
    rewrite_url,
)
from medimeta.fetch.plan import PlanItem
from medimeta.fetch.release import (
    archive_key,
    available_datasets,
    download,
    ensure_dataset,
    plan,
)
from medimeta.fetch.zenodo import Manifest, RemoteFile, load_manifest

__all__ = [
    "MARKER",
    "MEDIMETA_RECORD",
    "MEDMNIST_2D_FLAGS",
    "MEDMNIST_2D_SIZES",
    "MEDMNIST_RECORD",
    "MIRROR_ENV",
    "ZENODO_BASE",
    "FetchOptions",
    "FetchPaths",
    "Manifest",
    "PlanItem",
    "RemoteFile",
    "archive_key",
    "available_datasets",
    "download",
    "download_medmnist",
    "ensure_dataset",
    "install_archive",
    "install_medmnist",
    "is_installed",
    "is_medmnist_spec",
    "load_manifest",
    "medmnist_filename",
    "parse_medmnist_spec",
    "plan",
    "plan_medmnist",
    "read_marker",
    "record_id",
    "resolve_base",
    "rewrite_url",
]


def __getattr__(name: str) -> str:
    # The record ids live in the catalog; these names stay for code written against them.
    if name == "MEDIMETA_RECORD":
        return record_id()
    if name == "MEDMNIST_RECORD":
        return record_id("medmnist")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
