"""Reading a MedMNIST 2D ``.npz`` safely: headers, layout, labels, MD5 and the image cache.

Everything is checked before anything is written: the six arrays are present, images are
uint8 stacks of the flag's shape, every label array has exactly one row per image (no image is
dropped for want of a label) and every label is an integer key of the task (multi-label: 0/1).
Image arrays are streamed into ``<root>/.medimeta/cache/medmnist-<md5>/`` (memory-mapped by
the workers); the cache is held under a lock and removed when the conversion ends, also on
errors, and a cache left by a killed conversion is removed by the next one.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import filelock
import numpy as np

from medimeta.catalog.medmnist import KNOWN_MD5, SIZES, MedMNISTInfo
from medimeta.errors import ChecksumMismatchError, FormatError
from medimeta.format import layout
from medimeta.logs import plural
from medimeta.safeio import atomic_open

CACHE_DIR = ".medimeta/cache"
KEYS = [f"{s}_{kind}" for s in layout.SPLIT_NAMES for kind in ("images", "labels")]
_CACHE_PREFIX = "medmnist-"


def _headers(archive: zipfile.ZipFile, path: Path) -> dict[str, tuple[tuple[int, ...], Any]]:
    names = sorted(n.removesuffix(".npy") for n in archive.namelist())
    if sorted(KEYS) != names:
        raise FormatError(
            path,
            "not a MedMNIST 2D archive",
            key="arrays",
            expected=sorted(KEYS),
            actual=names,
        )
    headers = {}
    for key in KEYS:
        try:
            headers[key] = _npy_header(archive, key, path)
        except FormatError:
            raise
        except (OSError, ValueError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
            raise FormatError(
                path,
                f"{key}.npy is not a readable .npy array ({type(exc).__name__}: {exc})",
                key=key,
                fix="download the file again",
            ) from None
    return headers


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


def _image_size(path: Path, shapes: dict[str, Any]) -> int:
    shape, dtype = shapes["train_images"]
    if len(shape) not in (3, 4) or shape[1] != shape[2]:
        raise FormatError(
            path,
            "train_images is not a stack of square images",
            key="train_images",
            expected="(N, size, size) or (N, size, size, 3)",
            actual=f"{np.dtype(dtype)} {shape}",
            fix="download the file again",
        )
    return int(shape[1])


def inspect_npz(
    path: Path, info: MedMNISTInfo, md5: str, check_md5: bool
) -> tuple[dict[str, Any], int, bool]:
    """Array headers, image size and whether the MD5 was verified; FormatError for unreadable,
    mis-shaped or inconsistent archives (before anything is extracted or written)."""
    try:
        with zipfile.ZipFile(path) as archive:
            shapes = _headers(archive, path)
    except FormatError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error) as exc:
        # A broken archive with a known MD5 is best explained by the checksum.
        named = re.fullmatch(r"[a-z]+_(\d+)", path.stem.lower())
        _check_md5(path, info, int(named.group(1)) if named else 28, md5, check_md5)
        raise FormatError(
            path,
            f"not a readable MedMNIST .npz ({type(exc).__name__}: {exc})",
            fix="download the file again",
        ) from None
    size = _image_size(path, shapes)
    verified = _check_md5(path, info, size, md5, check_md5)
    if size not in SIZES:
        raise FormatError(
            path,
            f"{size}x{size} px is not a MedMNIST size",
            key="train_images",
            expected=list(SIZES),
            actual=size,
            fix="convert an official MedMNIST file (28, 64, 128 or 224 px)",
        )
    _check_layout(path, info, shapes, size)
    return shapes, size, verified


def _check_layout(path: Path, info: MedMNISTInfo, shapes: dict[str, Any], size: int) -> None:
    """Image arrays uint8 of the flag's shape; label arrays with one row per image."""
    expected_tail = (size, size, 3) if info.channels == 3 else (size, size)
    width = len(info.label_dict) if info.target.short == "multilabel" else 1
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
        rows, (label_shape, _) = shape[0], shapes[f"{split}_labels"]
        if not label_shape or label_shape[0] != rows:
            got = label_shape[0] if label_shape else 0
            raise FormatError(
                path,
                f"{split}_labels has {got} rows but {split}_images has {rows} images "
                f"({abs(rows - got)} {'images without a label' if got < rows else 'extra labels'}"
                "); nothing was written",
                key=f"{split}_labels",
                expected=f"{rows} rows",
                actual=f"{got} rows",
                fix="the file is damaged or was edited: download it again",
            )
        if len(label_shape) > 2 or int(np.prod(label_shape[1:], dtype=np.int64)) != width:
            raise FormatError(
                path,
                f"{split}_labels has an unexpected shape for {info.flag}",
                key=f"{split}_labels",
                expected=f"({rows}, {width})",
                actual=tuple(label_shape),
                fix="the file is damaged or was edited: download it again",
            )


def check_labels(path: Path, info: MedMNISTInfo, labels: dict[str, np.ndarray]) -> None:
    """Every label an integer key of the task (multi-label: 0/1); FormatError names the row."""
    multilabel = info.target.short == "multilabel"
    allowed = [0, 1] if multilabel else sorted(info.label_dict)
    for split, values in labels.items():
        flat = values.reshape(values.shape[0], -1)
        if values.dtype.kind not in "biuf":
            bad = np.ones(flat.shape[0], dtype=bool)
        else:
            number = flat.astype(np.float64)
            ok = np.isfinite(number) & (number == np.round(number)) & np.isin(number, allowed)
            bad = ~ok.all(axis=1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise FormatError(
                path,
                f"{split}_labels row {row} is not a label of task {info.task_name!r} "
                f"({plural(int(bad.sum()), 'bad row')}); nothing was written",
                key=f"{split}_labels[{row}]",
                expected=f"integers in {allowed}",
                actual=flat[row].tolist(),
                fix="the file is damaged or was edited: download it again",
            )


def _unreadable(path: Path, key: str, exc: BaseException) -> FormatError:
    return FormatError(
        path,
        f"not a readable MedMNIST .npz ({type(exc).__name__}: {exc})",
        key=key,
        fix="download the file again",
    )


def read_labels(path: Path) -> dict[str, np.ndarray]:
    """The (small) label arrays by split; FormatError when one cannot be read."""
    key = ""
    try:
        with np.load(path, allow_pickle=False) as npz:
            labels = {}
            for split in layout.SPLIT_NAMES:
                key = f"{split}_labels"
                labels[split] = np.asarray(npz[key])
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error) as exc:
        raise _unreadable(path, key, exc) from None
    return labels


def extract_images(path: Path, shapes: dict[str, Any], cache: Path) -> None:
    """Stream the image arrays into ``cache`` and check each holds what its header says."""
    key = ""
    try:
        with zipfile.ZipFile(path) as archive:
            for split in layout.SPLIT_NAMES:
                key = f"{split}_images"
                target = _extract(archive, key, cache / f"{key}.npy")
                if np.load(target, mmap_mode="r").shape != tuple(shapes[key][0]):
                    raise ValueError(f"{key}.npy holds fewer bytes than its header says")
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error) as exc:
        raise _unreadable(path, key, exc) from None


@contextlib.contextmanager
def image_cache(root: Path, md5: str) -> Iterator[Path]:
    """The cache folder of one file, held under its lock and removed on exit (also on errors).

    Cache folders of other files whose lock nobody holds were left by killed conversions:
    they are removed first.
    """
    base = root / CACHE_DIR
    cache = base / f"{_CACHE_PREFIX}{md5[:16]}"
    locks = root / ".medimeta" / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(locks / f"cache-{cache.name}.lock"):
        for orphan in sorted(base.glob(f"{_CACHE_PREFIX}*")) if base.is_dir() else []:
            if orphan != cache:
                _remove_orphan(orphan, locks / f"cache-{orphan.name}.lock")
        try:
            yield cache
        finally:
            shutil.rmtree(cache, ignore_errors=True)
            with contextlib.suppress(OSError):  # not empty: another conversion is using it
                base.rmdir()


def _remove_orphan(folder: Path, lock_path: Path) -> None:
    lock = filelock.FileLock(lock_path, timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        return  # another conversion is using it
    try:
        shutil.rmtree(folder, ignore_errors=True)
    finally:
        lock.release()
