"""DeepDRiD builders (dr_regular, dr_uwf): eye-level grades, xlsx labels, ungradable images."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from builders.conftest import open_built
from fakes import zip_folder
from fakes.deepdrid import make_deepdrid_tree
from medimeta.builders import build_dataset, get_builder
from medimeta.builders.engine.scan import scan_sources
from medimeta.builders.sources.deepdrid import process_deepdrid
from medimeta.builders.sources.deepdrid.tables import eye_grade, eye_letter, read_xlsx_rows
from medimeta.errors import LabelError, SourceTreeError
from medimeta.logs import plural


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory):
    return make_deepdrid_tree(tmp_path_factory.mktemp("deepdrid"))


def _plan(path: Path, dataset_id: str, partial: bool = True):
    return get_builder(dataset_id).plan(scan_sources(path), partial=partial)


def test_eye_grade_rules():
    row = {"image_id": "5_l1", "left_eye_dr_level": "2", "right_eye_dr_level": ""}
    assert eye_grade(row, "x").grade == 2 and eye_grade(row, "x").eye == "left"
    odd = {"image_id": "56_r3", "left_eye_dr_level": "1", "right_eye_dr_level": ""}
    got = eye_grade(odd, "x")
    assert got.eye == "left" and got.letter == "right" and got.letter_disagrees
    both = {"image_id": "7_r1", "left_eye_dr_level": "0", "right_eye_dr_level": "3"}
    assert eye_grade(both, "x").grade == 3
    with pytest.raises(LabelError, match="eye"):
        eye_grade({"image_id": "7", "left_eye_dr_level": "", "right_eye_dr_level": ""}, "x")
    assert eye_letter("121_l3") == "left" and eye_letter("r2") == "right"
    assert eye_letter("abc") is None


def test_regular_uses_eye_level_grades(fake):
    plan = _plan(fake.root, "dr_regular")
    got = {r.annotations["image_id"]: r for r in plan.records}
    assert set(got) == set(fake.regular)
    for image_id, rec in got.items():
        assert dict(rec.labels) == fake.regular[image_id]
        assert rec.split == rec.original_split == fake.regular_split[image_id]
    # patient 1: left eye 0, right eye 2, patient-level 2 (the release gave both eyes 2)
    assert (
        got["1_l1"].labels["DR level"] == 0 and got["1_l1"].annotations["patient_dr_level"] == "2"
    )
    assert got["6_r3"].annotations["eye"] == "left"
    differ = sum(
        1
        for i, r in got.items()
        if r.split != "test" and fake.patient_level[i] != r.labels["DR level"]
    )
    assert differ > 0
    assert any(f"{plural(differ, 'image')} with another DR level" in n for n in plan.notes)
    assert any("1 image whose image_id eye letter disagrees" in n for n in plan.notes)
    assert got["1_l1"].annotations["source"] == "Nicheng"
    # ordered by split, then patient number
    splits = [r.split for r in plan.records]
    assert splits == sorted(splits, key=("train", "val", "test").index)


def test_uwf_drops_ungradable_and_finds_unprefixed_file(fake):
    plan = _plan(fake.root, "dr_uwf")
    got = {r.annotations["image_id"]: r for r in plan.records}
    assert {i: r.labels["DR level"] for i, r in got.items()} == fake.uwf
    assert {i: r.split for i, r in got.items()} == fake.uwf_split
    assert got["12_l3"].original_filepath.endswith("Images/12/l3.jpg")
    assert any("ungradable" in n and "1 train" in n and "1 test" in n for n in plan.notes)


def test_xlsx_reader_normalises_headers_and_numbers(fake):
    path = fake.root / "regular_fundus_images" / "Online-Challenge1&2-Evaluation"
    rows = read_xlsx_rows((path / "Challenge2_labels.xlsx").read_bytes(), "c2")
    assert set(rows[0]) == {
        "image_id",
        "overall_quality",
        "artifact",
        "clarity",
        "field_definition",
    }
    assert rows[0]["clarity"].isdigit()  # 10.0 in the sheet -> "10"


def test_images_are_cropped_and_thumbnailed(fake):
    rec = _plan(fake.root, "dr_regular").records[0]
    image, ann = process_deepdrid(rec)
    assert image.size == (224, 224) and image.mode == "RGB"
    assert ann["original_image_size"] == (300, 260)


def test_build_from_zip_keeps_raw_ordinal_keys(tmp_path: Path, fake):
    zip_folder(fake.root, tmp_path / "dl" / "DeepDRiD-master.zip")
    result = build_dataset("dr_regular", tmp_path / "dl", root=tmp_path / "out", partial=True)
    folder = open_built(result.path)
    ids = list(folder.annotations["image_id"])
    artifact = folder.labels("Artifact")
    expected = np.array([fake.regular[i]["Artifact"] for i in ids])
    assert np.array_equal(artifact, expected)
    assert set(np.unique(artifact)) <= {0, 1, 4, 6, 8, 10}
    quality = folder.labels("Overall quality")
    assert np.array_equal(quality, [fake.regular[i]["Overall quality"] for i in ids])
    assert folder.split_indices("val").size == sum(v == "val" for v in fake.regular_split.values())


def test_missing_image_rejected_before_writing(tmp_path: Path, fake):
    root = tmp_path / "tree"
    shutil.copytree(fake.root, root)
    (
        root / "ultra-widefield_images" / "ultra-widefield-training" / "Images" / "3" / "3_l1.jpg"
    ).unlink()
    out = tmp_path / "out"
    with pytest.raises(SourceTreeError, match="3_l1"):
        build_dataset("dr_uwf", root, root=out)
    assert not (out / "dr_uwf").exists()


def test_missing_evaluation_grades_are_a_problem(tmp_path: Path, fake):
    root = tmp_path / "tree"
    shutil.copytree(fake.root, root)
    (
        root / "regular_fundus_images" / "Online-Challenge1&2-Evaluation" / "Challenge1_labels.xlsx"
    ).unlink()
    with pytest.raises(SourceTreeError, match="DR_Levels"):
        _plan(root, "dr_regular")
