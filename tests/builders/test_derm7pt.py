"""skinl_photo / skinl_derm builders on a fake derm7pt release_v0 tree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from builders.conftest import labels_by_file, open_built, reference_pixels, row_of, split_sizes
from fakes import tar_folder
from fakes.derm7pt import make_release
from medimeta.builders import build_dataset, get_builder, plan_build
from medimeta.errors import SourceTreeError

GROUPED = {
    "basal cell carcinoma": 0,
    "nevus": 1,
    "melanoma": 2,
    "miscellaneous": 3,
    "seborrheic keratosis": 4,
}


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list, Path]:
    src = tmp_path_factory.mktemp("derm7pt")
    rows = make_release(src / "x")
    archive = tar_folder(src / "x" / "release_v0", src / "release_v0.tar.gz")
    return src, rows, archive


@pytest.mark.parametrize("dataset_id,column", [("skinl_photo", "clinic"), ("skinl_derm", "derm")])
def test_build_labels_splits_pixels(
    release: tuple[Path, list, Path], tmp_path: Path, dataset_id: str, column: str
) -> None:
    src, rows, archive = release
    built = build_dataset(dataset_id, archive, root=tmp_path, partial=True).path
    folder = open_built(built)
    assert split_sizes(folder) == {"train": 4, "val": 2, "test": 3}
    by_file = {f"images/{r[column]}": r for r in rows}
    grouped = labels_by_file(folder, "Diagnosis grouped")
    expected = {
        "basal cell carcinoma": "basal cell carcinoma",
        "melanoma (in situ)": "melanoma",
        "clark nevus": "nevus",
        "reed or spitz nevus": "nevus",
        "melanoma metastasis": "melanoma",
        "seborrheic keratosis": "seborrheic keratosis",
        "lentigo": "miscellaneous",
        "dermatofibroma": "miscellaneous",
        "vascular lesion": "miscellaneous",
    }
    assert grouped == {k: GROUPED[expected[r["diagnosis"]]] for k, r in by_file.items()}
    vessels = labels_by_file(folder, "Vascular Structures grouped")
    assert vessels["images/NEL/NEL000.JPG" if column == "clinic" else "images/NEL/Nel001.jpg"] == 1
    pig = labels_by_file(folder, "Pigmentation grouped")
    assert sorted(set(pig.values())) == [0, 1, 2]
    ann = folder.annotations
    assert set(ann["management"]) == {"excision"} and "seven_point_score" in ann.columns
    rel = next(k for k in by_file if "Fhl b" in k)
    expected_px = reference_pixels(src / "x" / "release_v0" / rel, "RGB", "pad", "thumbnail")
    assert np.array_equal(folder.image_store("hdf5").read(row_of(folder, rel)), expected_px)


def test_invalid_criterion_value_is_reported(tmp_path: Path) -> None:
    make_release(tmp_path)
    meta = tmp_path / "release_v0" / "meta" / "meta.csv"
    meta.write_text(meta.read_text().replace("arborizing", "spiral", 1))
    with pytest.raises(SourceTreeError, match="Vascular Structures: 'spiral'"):
        plan_build(get_builder("skinl_photo"), tmp_path, partial=True)


def test_missing_index_file_is_essential(tmp_path: Path) -> None:
    make_release(tmp_path)
    (tmp_path / "release_v0" / "meta" / "valid_indexes.csv").unlink()
    with pytest.raises(SourceTreeError, match="valid_indexes.csv"):
        plan_build(get_builder("skinl_derm"), tmp_path, partial=True)
