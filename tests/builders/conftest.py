"""Helpers for builder tests: catalog counts matching a fake tree, reading a built folder."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

import medimeta.builders.engine.registry as registry
from medimeta.catalog import get_dataset
from medimeta.format.reader import DatasetFolder
from medimeta.format.verify import verify_dataset

SetCounts = Callable[[str, dict[str, int]], None]


@pytest.fixture
def release_counts(monkeypatch: pytest.MonkeyPatch) -> SetCounts:
    """Pretend the release of ``dataset_id`` has the given source-split counts.

    Lets a tiny fake tree pass the completeness check without ``partial``.
    """

    def apply(dataset_id: str, original: dict[str, int]) -> None:
        real = get_dataset(dataset_id)
        counts = {s: original.get(s, 0) for s in ("train", "val", "test")}
        fake = dataclasses.replace(
            real, num_samples=sum(counts.values()), original_splits=counts, splits=counts
        )

        def patched(wanted: str) -> object:
            return fake if wanted == dataset_id else get_dataset(wanted)

        monkeypatch.setattr(registry, "get_dataset", patched)

    return apply


def open_built(path: Path) -> DatasetFolder:
    """The built folder, after checking that it verifies (deep)."""
    report = verify_dataset(path, deep=True)
    assert report.ok, report.format()
    return DatasetFolder(path)


def info_of(path: Path) -> dict:
    return yaml.safe_load((path / "info.yaml").read_text(encoding="utf-8"))


def split_sizes(folder: DatasetFolder, original: bool = False) -> dict[str, int]:
    return {
        s: int(folder.split_indices(s, original=original).size) for s in ("train", "val", "test")
    }


def labels_by_file(folder: DatasetFolder, task: str) -> dict[str, object]:
    """original_filepath -> stored label (list for multi-label)."""
    labels = folder.labels(task)
    ann = folder.annotations
    out: dict[str, object] = {}
    for i, name in enumerate(ann["original_filepath"]):
        value = labels[i]
        out[str(name)] = value.tolist() if isinstance(value, np.ndarray) else int(value)
    return out


def nothing_written(root: Path) -> bool:
    """True when a failed build left no dataset or staging folder under ``root``."""
    return not root.exists() or not any(root.iterdir())


def reference_pixels(path: Path, mode: str, square: str, method: str) -> np.ndarray:
    """Independent plain-PIL preprocessing: mode, pad/crop to square, resize/thumbnail 224."""
    from PIL import Image

    img = Image.open(path).convert(mode)
    w, h = img.size
    side = max(w, h) if square == "pad" else min(w, h)
    if square == "pad" and w != h:
        canvas = Image.new(mode, (side, side), 0)
        canvas.paste(img, (round((side - w) / 2), round((side - h) / 2)))
        img = canvas
    elif square == "crop" and w != h:
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side))
    if method == "thumbnail" and side >= 224:
        img.thumbnail((224, 224), Image.Resampling.BICUBIC)
    else:
        img = img.resize((224, 224), Image.Resampling.BICUBIC)
    return np.asarray(img)


def row_of(folder: DatasetFolder, original_filepath: str) -> int:
    rows = np.flatnonzero(folder.annotations["original_filepath"] == original_filepath)
    assert rows.size == 1, original_filepath
    return int(rows[0])
