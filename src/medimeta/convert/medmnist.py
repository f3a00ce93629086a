"""MedMNIST 2D ``.npz`` -> MedIMeta dataset folder.

* Splits: MedMNIST's official train/val/test are both the MedIMeta splits and the original
  splits; samples keep MedMNIST's order (train, then val, then test).
* Task: one task per collection, type and label names from MedMNIST (``medmnist_info``).
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

import contextlib
import functools
import os
import re
import shutil
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from medimeta.catalog import get_catalog
from medimeta.convert.common import file_md5, provenance
from medimeta.convert.medmnist_info import (
    AUTHORS,
    CITATION,
    HOMEPAGE,
    KNOWN_MD5,
    MEDMNIST_2D,
    PAPER_DOI_URL,
    PAPER_TITLE,
    SIZES,
    MedMNISTInfo,
)
from medimeta.errors import ChecksumMismatchError, FormatError, UnknownNameError, check_choice
from medimeta.format import layout
from medimeta.format.record import SampleRecord
from medimeta.format.writer import write_dataset
from medimeta.safeio import atomic_open

RESAMPLING = {"nearest": Image.Resampling.NEAREST, "bicubic": Image.Resampling.BICUBIC}
CACHE_DIR = ".medimeta/cache"
_KEYS = [f"{s}_{kind}" for s in layout.SPLIT_NAMES for kind in ("images", "labels")]
_ARRAYS: dict[str, np.ndarray] = {}


def flag_from_name(path: Path) -> str:
    """The flag of ``breastmnist.npz`` / ``breastmnist_224.npz``; UnknownNameError otherwise."""
    match = re.fullmatch(r"([a-z]+)(?:_(\d+))?", path.stem.lower())
    if match is None or match.group(1) not in MEDMNIST_2D:
        raise UnknownNameError(
            "MedMNIST 2D flag (from the file name; pass flag=/--flag)", path.stem, MEDMNIST_2D
        )
    return match.group(1)


def _npy_header(archive: zipfile.ZipFile, key: str, path: Path) -> tuple[tuple[int, ...], Any]:
    with archive.open(f"{key}.npy") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    if fortran:
        raise FormatError(path, "Fortran-ordered arrays are not supported", key=key)
    return tuple(shape), dtype


def _extract(archive: zipfile.ZipFile, key: str, target: Path) -> Path:
    """Stream ``key.npy`` out of the archive (no full array in memory); reuse a finished copy."""
    member = archive.getinfo(f"{key}.npy")
    if target.is_file() and target.stat().st_size == member.file_size:
        return target
    with archive.open(member) as src, atomic_open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 22)
    return target


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


def _check_md5(path: Path, info: MedMNISTInfo, size: int, md5: str, check: bool) -> bool:
    expected = KNOWN_MD5.get(info.file_name(size))
    if expected is None or not check:
        return False
    if md5 != expected:
        raise ChecksumMismatchError(
            f"{path}: MD5 {md5} does not match MedMNIST's published {expected} for "
            f"{info.file_name(size)}; the file is corrupted or was modified. Download it again "
            f"(`medimeta download medmnist:{info.flag} --size {size}`), or pass "
            "check_md5=False (--no-md5-check) to convert this copy anyway (recorded as unverified)"
        )
    return True


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


def _read_checked(
    path: Path, info: MedMNISTInfo, cache: Path, md5: str, check_md5: bool
) -> tuple[dict[str, Any], dict[str, np.ndarray], int, bool]:
    """Array shapes and labels of the archive (images extracted to ``cache``), its image size
    and whether its MD5 was verified; FormatError for unreadable or mis-shaped archives."""
    try:
        shapes, labels = _read_archive(path, cache)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error) as exc:
        # A broken archive with a known MD5 is best explained by the checksum.
        named = re.fullmatch(r"[a-z]+_(\d+)", path.stem.lower())
        _check_md5(path, info, int(named.group(1)) if named else 28, md5, check_md5)
        raise FormatError(
            path,
            f"not a readable MedMNIST .npz ({type(exc).__name__}: {exc})",
            fix="download the file again",
        ) from None
    size = int(shapes["train_images"][0][1])
    verified = _check_md5(path, info, size, md5, check_md5)
    check_choice("MedMNIST size", str(size), [str(s) for s in SIZES])
    expected_tail = (size, size, 3) if info.channels == 3 else (size, size)
    for split in layout.SPLIT_NAMES:
        shape, dtype = shapes[f"{split}_images"]
        if np.dtype(dtype) != np.uint8 or tuple(shape[1:]) != expected_tail:
            raise FormatError(
                path,
                f"{split}_images has an unexpected layout for {info.flag}",
                key=f"{split}_images",
                expected=f"uint8 (N, *{expected_tail})",
                actual=f"{np.dtype(dtype)} {shape}",
            )
    return shapes, labels, size, verified


def _count_notes(
    info: MedMNISTInfo, shapes: dict[str, Any], labels: dict[str, np.ndarray]
) -> list[str]:
    """One note per split whose counts differ from MedMNIST's official ones."""
    notes = []
    for split, official in zip(layout.SPLIT_NAMES, info.n_samples, strict=True):
        count = int(shapes[f"{split}_images"][0][0])
        if count != official or labels[split].shape[0] != count:
            notes.append(f"{split}: {count} images, MedMNIST 3.0.2 lists {official}")
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
) -> Path:
    """Convert one MedMNIST 2D ``.npz`` into ``<root>/<id>``; return the folder.

    ``dataset_id`` defaults to ``<flag>`` for 28 px and ``<flag>_<size>`` otherwise.
    """
    path = Path(npz_path)
    root = Path(root)
    check_choice("resample", resample, tuple(RESAMPLING))
    info = MEDMNIST_2D[check_choice("MedMNIST 2D flag", flag, MEDMNIST_2D)] if flag else None
    info = info or MEDMNIST_2D[flag_from_name(path)]
    md5 = file_md5(path)
    cache = root / CACHE_DIR / f"medmnist-{md5[:16]}"
    shapes, labels, size, verified = _read_checked(path, info, cache, md5, check_md5)
    notes = _count_notes(info, shapes, labels)
    if notes:
        warnings.warn(
            f"{path}: sample counts differ from MedMNIST's: {'; '.join(notes)}", stacklevel=2
        )
    records = _records(info, path.name, labels)
    dataset_id = dataset_id or (info.flag if size == 28 else f"{info.flag}_{size}")
    extra = provenance(
        "medmnist",
        path.name,
        flag=info.flag,
        size=size,
        md5=md5,
        md5_verified=verified,
        resample=resample,
    )
    if notes:
        extra["notes"] = "Sample counts differ from MedMNIST's: " + "; ".join(notes)
    process = functools.partial(medmnist_image, str(cache), resample)
    folder = write_dataset(
        root,
        _info_dict(info, dataset_id, size, resample),
        records,
        process,
        workers=workers,
        extra_info=extra,
        overwrite=overwrite,
        resume=resume,
        progress=progress,
    )
    shutil.rmtree(cache, ignore_errors=True)
    _remove_if_empty(root / CACHE_DIR)
    return folder


def _read_archive(path: Path, cache: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Array headers, the (small) label arrays, and the image arrays extracted to ``cache``."""
    with zipfile.ZipFile(path) as archive:
        names = sorted(n.removesuffix(".npy") for n in archive.namelist())
        if sorted(_KEYS) != names:
            raise FormatError(
                path,
                "not a MedMNIST 2D archive",
                key="arrays",
                expected=sorted(_KEYS),
                actual=names,
            )
        shapes = {key: _npy_header(archive, key, path) for key in _KEYS}
        for split in layout.SPLIT_NAMES:
            _extract(archive, f"{split}_images", cache / f"{split}_images.npy")
    with np.load(path, allow_pickle=False) as npz:
        labels = {s: np.asarray(npz[f"{s}_labels"]) for s in layout.SPLIT_NAMES}
    return shapes, labels


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


def _remove_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):  # not empty: another conversion is using it
        path.rmdir()
