"""Tiny fake raw trees in the exact layouts the publishers distribute (one module per source).

Shared helpers: deterministic images (a gradient plus an index-dependent offset, so every
file differs), zip and tar.gz packing of a folder the way publishers ship them.
"""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def fake_pixels(width: int, height: int, channels: int, seed: int) -> np.ndarray:
    """A smooth, seed-dependent uint8 image (H, W[, C])."""
    y, x = np.mgrid[0:height, 0:width]
    base = (x * 3 + y * 2 + seed * 37) % 256
    if channels == 1:
        return base.astype(np.uint8)
    planes = [(base + 60 * c) % 256 for c in range(channels)]
    return np.stack(planes, axis=-1).astype(np.uint8)


def write_image(
    path: Path, size: tuple[int, int], *, mode: str = "RGB", seed: int = 0, **save: object
) -> Path:
    """Write a fake image of ``size`` (w, h) and ``mode`` (L, RGB, RGBA); format from suffix."""
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    arr = fake_pixels(size[0], size[1], channels, seed)
    if mode == "RGBA":
        arr[..., 3] = 255 - (seed % 7)  # a not-quite-opaque alpha that must be dropped
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode).save(path, **save)  # type: ignore[arg-type]
    return path


def write_mask(path: Path, size: tuple[int, int], box: tuple[int, int, int, int]) -> Path:
    """A binary lesion mask (0/255, mode L) with ``box`` = (x0, y0, x1, y1) set."""
    arr = np.zeros((size[1], size[0]), dtype=np.uint8)
    x0, y0, x1, y1 = box
    arr[y0:y1, x0:x1] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, "L").save(path)
    return path


def zip_folder(folder: Path, archive: Path, *, top: str | None = None) -> Path:
    """Zip ``folder`` with its name (or ``top``) as the top folder, like publishers' zips."""
    name = top if top is not None else folder.name
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder).as_posix()
            arc = f"{name}/{rel}" if name else rel
            if path.is_dir():
                zf.writestr(arc + "/", "")
            else:
                zf.write(path, arc)
    return archive


def tar_folder(folder: Path, archive: Path) -> Path:
    """``tar czf archive folder`` (the folder's name as the top entry)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(folder, arcname=folder.name)
    return archive
