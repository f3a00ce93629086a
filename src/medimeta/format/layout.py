"""Names and paths of the MedIMeta on-disk format (one dataset folder, as released)."""

from __future__ import annotations

import os
import re
from pathlib import Path

INFO_FILE = "info.yaml"
LICENSE_FILE = "LICENSE"
HDF5_FILE = "images.hdf5"
HDF5_KEY = "images"
IMAGES_DIR = "images"
SPLITS_DIR = "splits"
ORIGINAL_SPLITS_DIR = "original_splits"
TASK_LABELS_DIR = "task_labels"
ANNOTATIONS_FILE = "annotations.csv"
SPLIT_NAMES = ("train", "val", "test")
IMAGE_SIZE = 224
ROOT_ENV = "MEDIMETA_ROOT"
DEFAULT_ROOT = Path("data") / "MedIMeta"

_INDEX_RE = re.compile(r"(\d+)\.tiff?$")


def image_name(index: int) -> str:
    """Relative path of sample ``index``'s TIFF, e.g. ``images/000123.tiff``."""
    return f"{IMAGES_DIR}/{index:06d}.tiff"


def index_from_line(line: str) -> int:
    """Sample index of a split-file line such as ``images/000123.tiff`` (``\\`` also accepted)."""
    name = line.strip().replace("\\", "/").rsplit("/", 1)[-1]
    match = _INDEX_RE.fullmatch(name)
    if match is None:
        raise ValueError(f"not an image path of the form images/NNNNNN.tiff: {line.strip()!r}")
    return int(match.group(1))


def task_label_path(folder: Path, task_name: str) -> Path:
    """Path of a task's label array; the file stem is the task name verbatim (spaces kept)."""
    return folder / TASK_LABELS_DIR / f"{task_name}.npy"


def split_path(folder: Path, split: str, *, original: bool = False) -> Path:
    """Path of ``splits/<split>.txt`` or ``original_splits/<split>.txt``."""
    return folder / (ORIGINAL_SPLITS_DIR if original else SPLITS_DIR) / f"{split}.txt"


def default_root() -> Path:
    """The data root: ``$MEDIMETA_ROOT`` if set, else ``./data/MedIMeta``."""
    env = os.environ.get(ROOT_ENV)
    return Path(env) if env else DEFAULT_ROOT
