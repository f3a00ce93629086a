"""``verify``: every rule is checked, problems are reported together, good folders pass."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fixtures.release import ToySpec, make_release_dataset
from medimeta.format.verify import verify_dataset


@pytest.fixture()
def toy(tmp_path: Path) -> Path:
    return make_release_dataset(
        tmp_path, ToySpec(channels=3, seed=5, splits={"train": 6, "val": 2, "test": 4})
    )


def test_good_folder_passes(toy: Path) -> None:
    report = verify_dataset(toy, deep=True)
    assert report.ok, report.format()
    text = report.format()
    assert "OK" in text and "TIFF files: 12 present, 12 compared" in text
    assert "splits: disjoint and covering" in text


def _problems(path: Path) -> str:
    report = verify_dataset(path)
    assert not report.ok
    return "\n".join(report.problems)


def test_count_mismatch_with_info(toy: Path) -> None:
    lines = (toy / "splits" / "train.txt").read_text().split("\n")
    (toy / "splits" / "train.txt").write_text("\n".join(lines[:-1]))
    text = _problems(toy)
    assert "5 lines, info.yaml splits_num_samples.train = 6" in text
    assert "1 sample in no split" in text


def test_overlapping_splits(toy: Path) -> None:
    first = (toy / "splits" / "train.txt").read_text().split("\n")[0]
    val = toy / "splits" / "val.txt"
    val.write_text(val.read_text() + "\n" + first)
    assert "more than one split" in _problems(toy)


def test_tiff_disagrees_with_hdf5(toy: Path) -> None:
    Image.fromarray(np.zeros((224, 224, 3), np.uint8)).save(toy / "images" / "000000.tiff")
    assert "000000.tiff: pixels differ from images.hdf5 row 0" in _problems(toy)


def test_missing_tiff_and_bad_hdf5_reported_together(toy: Path) -> None:
    (toy / "images" / "000003.tiff").unlink()
    with h5py.File(toy / "images.hdf5", "w") as f:
        f.create_dataset("images", (12, 224, 224), np.uint8)
    text = _problems(toy)
    assert "1 of 12 TIFFs missing" in text
    assert "expected: (12, 224, 224, 3); actual: (12, 224, 224)" in text


def test_bad_labels_and_annotations(toy: Path) -> None:
    np.save(toy / "task_labels" / "Malignancy.npy", np.full(12, 3))
    frame = pd.read_csv(toy / "annotations.csv")
    frame.iloc[:-1].to_csv(toy / "annotations.csv", index=False)
    text = _problems(toy)
    assert "Malignancy.npy" in text and "actual: 3" in text
    assert "11 rows, expected 12" in text


def test_annotation_split_column_checked(toy: Path) -> None:
    frame = pd.read_csv(toy / "annotations.csv")
    frame["split"] = "train"
    frame.to_csv(toy / "annotations.csv", index=False)
    assert "'split' column disagrees" in _problems(toy)


def test_unreadable_info(tmp_path: Path) -> None:
    (tmp_path / "info.yaml").write_text("id: [unclosed\n")
    assert "not valid YAML" in _problems(tmp_path)


def test_release_dataset_compared_with_catalog(tmp_path: Path) -> None:
    path = make_release_dataset(tmp_path, ToySpec(dataset_id="bus", channels=1))
    text = _problems(path)
    assert "tasks ['case category', 'Malignancy'" in text and "catalog" in text
