"""fundus builder on a fake RFMiD tree: multi-hot labels, BOM CSVs, source splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from builders.conftest import labels_by_file, open_built, reference_pixels, row_of, split_sizes
from fakes import zip_folder
from fakes.fundus import TOP, make_rfmid
from medimeta.builders import build_dataset, get_builder, plan_build
from medimeta.catalog import get_dataset
from medimeta.errors import SourceTreeError

DISEASES = list(get_dataset("fundus").task("disease labels").class_names)


@pytest.fixture(scope="module")
def rfmid(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    src = tmp_path_factory.mktemp("rfmid")
    facts = make_rfmid(src / "x", DISEASES)
    archive = zip_folder(src / "x" / TOP, src / f"{TOP}.zip")
    result = build_dataset(
        "fundus", archive, root=tmp_path_factory.mktemp("fundus-out"), partial=True
    )
    return src, facts, result.path


def test_labels_and_splits(rfmid: tuple[Path, dict, Path]) -> None:
    _, facts, built = rfmid
    folder = open_built(built)
    assert labels_by_file(folder, "disease presence") == {k: f["risk"] for k, f in facts.items()}
    assert labels_by_file(folder, "disease labels") == {k: f["diseases"] for k, f in facts.items()}
    assert split_sizes(folder) == {"train": 3, "val": 3, "test": 3}
    ann = folder.annotations
    assert (ann["split"] == ann["original_split"]).all()


def test_crop_and_thumbnail(rfmid: tuple[Path, dict, Path]) -> None:
    src, _, built = rfmid
    folder = open_built(built)
    rel = "1. Original Images/b. Validation Set/2.png"
    expected = reference_pixels(src / "x" / TOP / rel, "RGB", "crop", "thumbnail")
    assert np.array_equal(folder.image_store("hdf5").read(row_of(folder, rel)), expected)


def test_label_rows_without_images_and_bad_values(tmp_path: Path) -> None:
    make_rfmid(tmp_path, DISEASES)
    (tmp_path / TOP / "1. Original Images" / "c. Testing Set" / "3.png").unlink()
    with pytest.raises(SourceTreeError, match=r"c\. Testing Set/3\.png \(listed in"):
        plan_build(get_builder("fundus"), tmp_path)
    csv = tmp_path / TOP / "2. Groundtruths" / "a. RFMiD_Training_Labels.csv"
    csv.write_text(csv.read_text(encoding="utf-8-sig").replace("\n2,1,", "\n2,2,"))
    with pytest.raises(SourceTreeError, match="labels other than 0/1"):
        plan_build(get_builder("fundus"), tmp_path, partial=True)
