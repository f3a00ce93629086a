"""MedMNIST 2D ``.npz`` -> MedIMeta dataset folder.

* Splits: MedMNIST's official train/val/test are both the MedIMeta splits and the original
  splits; samples keep MedMNIST's order (train, then val, then test).
* Task: one task per collection, type and label names from MedMNIST
  (:mod:`medimeta.catalog.medmnist`).
* Pixels: channel count preserved; images are enlarged to 224x224 with nearest neighbour by
  default, exactly the "(224)" protocol of MedMNIST's own benchmark (``resample="bicubic"``
  is the alternative). 224-px files are copied unchanged. ``original_image_size`` and
  ``upscaled`` record what happened.
* Integrity: the file's MD5 is checked against MedMNIST's published value when one is known
  (``ChecksumMismatchError`` otherwise); sample counts are compared with MedMNIST's.
* Memory: image arrays are streamed out of the (compressed) archive into uncompressed ``.npy``
  files under ``<root>/.medimeta/cache/`` and memory-mapped, so RSS does not grow with N.
"""

from __future__ import annotations

import functools
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from medimeta.catalog import get_catalog
from medimeta.catalog.medmnist import (
    AUTHORS,
    CITATION,
    HOMEPAGE,
    MEDMNIST_2D,
    PAPER_DOI_URL,
    PAPER_TITLE,
    MedMNISTInfo,
)
from medimeta.convert.common import file_md5, provenance
from medimeta.convert.medmnist_npz import (
    CACHE_DIR,
    check_labels,
    extract_images,
    image_cache,
    inspect_npz,
    read_labels,
)
from medimeta.errors import UnknownNameError, check_choice
from medimeta.format import layout
from medimeta.format.record import SampleRecord
from medimeta.format.writer import write_dataset
from medimeta.format.writer.stage import check_target
from medimeta.logs import plural

__all__ = ["CACHE_DIR", "convert_medmnist", "flag_from_name", "medmnist_image"]

RESAMPLING = {"nearest": Image.Resampling.NEAREST, "bicubic": Image.Resampling.BICUBIC}
_ARRAYS: dict[str, np.ndarray] = {}


def flag_from_name(path: Path) -> str:
    """The flag of ``breastmnist.npz`` / ``breastmnist_224.npz``; UnknownNameError otherwise."""
    match = re.fullmatch(r"([a-z]+)(?:_(\d+))?", path.stem.lower())
    if match is None or match.group(1) not in MEDMNIST_2D:
        raise UnknownNameError(
            "MedMNIST 2D flag (from the file name; pass flag=/--flag)",
            path.stem,
            MEDMNIST_2D,
            where=str(path),
        )
    return match.group(1)


def medmnist_image(
    cache: str, resample: str, record: SampleRecord
) -> tuple[Image.Image | np.ndarray, dict[str, Any]]:
    """Process function: one MedMNIST image from the memory-mapped cache, at 224x224."""
    split, index = record.source
    path = os.path.join(cache, f"{split}_images.npy")
    if path not in _ARRAYS:
        _ARRAYS[path] = np.load(path, mmap_mode="r")
    pixels = np.asarray(_ARRAYS[path][index])
    size = int(pixels.shape[0])
    annotations = {"original_image_size": (size, size), "upscaled": size < layout.IMAGE_SIZE}
    if size == layout.IMAGE_SIZE:
        return np.ascontiguousarray(pixels), annotations
    target = (layout.IMAGE_SIZE, layout.IMAGE_SIZE)
    return Image.fromarray(pixels).resize(target, RESAMPLING[resample]), annotations


def _info_dict(info: MedMNISTInfo, dataset_id: str, size: int, resample: str) -> dict[str, Any]:
    record = get_catalog().related("medmnist")
    how = "unchanged" if size == layout.IMAGE_SIZE else f"resized to 224 ({resample})"
    return {
        "id": dataset_id,
        "name": f"{info.python_class} ({size}x{size})",
        "summary": f"MedMNIST v2 {info.python_class}, {size}x{size} px images {how}, "
        "with MedMNIST's official splits.",
        "domain": info.domain,
        "tasks": [
            {
                "task_name": info.task_name,
                "task_target": info.target.value,
                "labels": info.label_dict,
            }
        ],
        "input_size": [info.channels, layout.IMAGE_SIZE, layout.IMAGE_SIZE],
        "domain_overlaps": [],
        "subject_overlaps": list(info.overlaps),
        "license": info.license,
        "project_website": HOMEPAGE,
        "download_url": f"https://doi.org/{record.doi}",
        "DOI": record.doi,
        "original_data": [
            {
                "name": f"MedMNIST v2 {info.python_class}",
                "title": PAPER_TITLE,
                "url": HOMEPAGE,
                "license": info.license,
                "authors": AUTHORS,
                "paper_title": PAPER_TITLE,
                "paper_url": PAPER_DOI_URL,
                "citations": [CITATION],
            }
        ],
    }


def _count_notes(info: MedMNISTInfo, shapes: dict[str, Any]) -> list[str]:
    """One note per split whose image count differs from MedMNIST's official one (labels have
    been checked to match the images row for row)."""
    notes = []
    for split, official in zip(layout.SPLIT_NAMES, info.n_samples, strict=True):
        count = int(shapes[f"{split}_images"][0][0])
        if count != official:
            notes.append(f"{split}: {plural(count, 'image')}, MedMNIST 3.0.2 lists {official}")
    return notes


def convert_medmnist(
    npz_path: str | Path,
    root: str | Path,
    *,
    dataset_id: str | None = None,
    flag: str | None = None,
    resample: str = "nearest",
    check_md5: bool = True,
    workers: int = 1,
    overwrite: bool = False,
    resume: bool = True,
    progress: Any = None,
    derived_from: Sequence[str] = (),
) -> Path:
    """Convert one MedMNIST 2D ``.npz`` into ``<root>/<id>``; return the folder.

    ``dataset_id`` defaults to ``<flag>`` for 28 px and ``<flag>_<size>`` otherwise. The file
    is checked whole (:mod:`medimeta.convert.medmnist_npz`) before anything is written.
    """
    path = Path(npz_path)
    root = Path(root)
    check_choice("resample", resample, tuple(RESAMPLING))
    info = MEDMNIST_2D[check_choice("MedMNIST 2D flag", flag, MEDMNIST_2D)] if flag else None
    info = info or MEDMNIST_2D[flag_from_name(path)]
    md5 = file_md5(path)
    shapes, size, verified = inspect_npz(path, info, md5, check_md5)
    dataset_id = dataset_id or (info.flag if size == 28 else f"{info.flag}_{size}")
    if not overwrite:
        check_target(root, dataset_id, overwrite=False)  # before extracting anything
    labels = read_labels(path)
    check_labels(path, info, labels)
    with image_cache(root, md5) as cache:
        extract_images(path, shapes, cache)
        notes = _count_notes(info, shapes)
        if notes:
            warnings.warn(
                f"{path}: sample counts differ from MedMNIST's: {'; '.join(notes)}", stacklevel=2
            )
        extra = provenance(
            "medmnist",
            path.name,
            flag=info.flag,
            size=size,
            md5=md5,
            md5_verified=verified,
            resample=resample,
            derived_from=derived_from,
        )
        if notes:
            extra["notes"] = "Sample counts differ from MedMNIST's: " + "; ".join(notes)
        return write_dataset(
            root,
            _info_dict(info, dataset_id, size, resample),
            _records(info, path.name, labels),
            functools.partial(medmnist_image, str(cache), resample),
            workers=workers,
            extra_info=extra,
            overwrite=overwrite,
            resume=resume,
            progress=progress,
        )


def _records(info: MedMNISTInfo, file_name: str, labels: dict[str, np.ndarray]) -> list:
    records = []
    multilabel = info.target.short == "multilabel"
    for split in layout.SPLIT_NAMES:
        for j, row in enumerate(labels[split].reshape(labels[split].shape[0], -1)):
            label = [int(v) for v in row] if multilabel else int(row[0])
            records.append(
                SampleRecord(
                    source=(split, j),
                    labels={info.task_name: label},
                    split=split,
                    original_split=split,
                    original_filepath=f"{file_name}:{split}_images[{j}]",
                )
            )
    return records
