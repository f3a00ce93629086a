"""derm builder on fake ISIC 2018 Task 3 zips (+ groupings, HAM10000 metadata)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from builders.conftest import labels_by_file, open_built, reference_pixels, row_of, split_sizes
from fakes.derm import make_isic
from medimeta.builders import build_dataset, get_builder, plan_build
from medimeta.errors import SourceTreeError


@pytest.fixture(scope="module")
def derm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    src = tmp_path_factory.mktemp("isic")
    facts = make_isic(src / "dl")
    result = build_dataset(
        "derm", src / "dl", root=tmp_path_factory.mktemp("derm-out"), partial=True
    )
    return src, facts, result.path


def test_labels_source_splits_and_metadata(derm: tuple[Path, dict, Path]) -> None:
    _, facts, built = derm
    folder = open_built(built)
    assert labels_by_file(folder, "disease category") == {p: f["label"] for p, f in facts.items()}
    assert split_sizes(folder) == {"train": 14, "val": 7, "test": 7}
    assert split_sizes(folder, original=True) == split_sizes(folder)
    ann = folder.annotations
    i = row_of(folder, "ISIC2018_Task3_Training_Input/ISIC_0024306.jpg")
    assert (ann["lesion_id"][i], ann["sex"][i], ann["localization"][i]) == (
        "HAM_0000000",
        "female",
        "back",
    )
    assert ann["diagnosis_confirm_type"][i] == "histopathology"
    j = row_of(folder, "ISIC2018_Task3_Test_Input/ISIC_0034524.jpg")
    assert ann.isna()["lesion_id"][j]  # metadata only covers the training images


def test_centre_crop_then_thumbnail(derm: tuple[Path, dict, Path]) -> None:
    src, _, built = derm
    folder = open_built(built)
    rel = "ISIC2018_Task3_Validation_Input/ISIC_0034323.jpg"
    with zipfile.ZipFile(src / "dl" / "ISIC2018_Task3_Validation_Input.zip") as zf:
        zf.extract(rel, src / "check")
    expected = reference_pixels(src / "check" / rel, "RGB", "crop", "thumbnail")
    assert np.array_equal(folder.image_store("hdf5").read(row_of(folder, rel)), expected)


def test_missing_ground_truth_and_images(tmp_path: Path) -> None:
    make_isic(tmp_path, zipped=False, metadata=False)
    (tmp_path / "ISIC2018_Task3_Test_GroundTruth" / "ISIC2018_Task3_Test_GroundTruth.csv").unlink()
    (tmp_path / "ISIC2018_Task3_Training_Input" / "ISIC_0024307.jpg").unlink()
    with pytest.raises(SourceTreeError) as err:
        plan_build(get_builder("derm"), tmp_path, partial=True)
    assert "ISIC2018_Task3_Test_GroundTruth.csv: not found" in str(err.value)
    (tmp_path / "ISIC2018_Task3_Test_Input").rename(tmp_path / "elsewhere")
    plan = plan_build(
        get_builder("derm"),
        [
            tmp_path / "ISIC2018_Task3_Training_Input",
            tmp_path / "ISIC2018_Task3_Training_GroundTruth",
            tmp_path / "ISIC2018_Task3_Validation_Input",
            tmp_path / "ISIC2018_Task3_Validation_GroundTruth",
        ],
        partial=True,
    )
    assert plan.counts() == {"train": 13, "val": 7, "test": 0}
    assert any("ISIC_0024307.jpg" in w for w in plan.report.warnings)
