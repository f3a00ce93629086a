"""oct and pneumonia builders on a fake CellData tree: patient ids, splits by patient."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from builders.conftest import info_of, labels_by_file, open_built, reference_pixels, row_of
from fakes import zip_folder
from fakes.kermany import OCT, make_celldata
from medimeta.builders import build_dataset, get_builder, plan_build
from medimeta.errors import SourceTreeError


@pytest.fixture(scope="module")
def cell(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    src = tmp_path_factory.mktemp("kermany")
    facts = make_celldata(src / "x")
    archive = zip_folder(src / "x" / "CellData", src / "ZhangLabData.zip")
    return src, facts, archive


def _patient_splits(folder) -> dict[tuple[str, int], set[str]]:
    ann = folder.annotations
    out: dict[tuple[str, int], set[str]] = {}
    for pid, orig, split in zip(
        ann["patient_id"], ann["original_split"], ann["split"], strict=True
    ):
        out.setdefault((orig, int(pid)), set()).add(split)
    return out


def test_oct(cell: tuple[Path, dict, Path], tmp_path: Path) -> None:
    src, facts, archive = cell
    built = build_dataset("oct", archive, root=tmp_path, partial=True).path
    folder = open_built(built)
    oct_facts = {k: f for k, f in facts.items() if k.startswith("OCT/")}
    assert labels_by_file(folder, "disease class") == {
        k: OCT.index(f["class"]) for k, f in oct_facts.items()
    }
    assert labels_by_file(folder, "urgent referral") == {
        k: int(f["class"] in ("CNV", "DME")) for k, f in oct_facts.items()
    }
    groups = _patient_splits(folder)
    assert all(len(s) == 1 for s in groups.values())  # one split per patient
    assert {next(iter(s)) for (orig, _), s in groups.items() if orig == "test"} == {"test"}
    rel = "OCT/train/DME/DME-11-2.jpeg"
    expected = reference_pixels(src / "x" / "CellData" / rel, "L", "pad", "thumbnail")
    assert np.array_equal(folder.image_store("hdf5").read(row_of(folder, rel)), expected)
    assert folder.annotations["original_image_ratio"][row_of(folder, rel)] == pytest.approx(1.25)


def test_pneumonia(cell: tuple[Path, dict, Path], tmp_path: Path) -> None:
    src, facts, _ = cell
    built = build_dataset("pneumonia", src / "x", root=tmp_path, partial=True).path
    folder = open_built(built)
    xray = {k: f for k, f in facts.items() if k.startswith("chest_xray/")}
    subs = {"NORMAL": 0, "BACTERIA": 1, "VIRUS": 2}
    assert labels_by_file(folder, "disease class") == {k: subs[f["sub"]] for k, f in xray.items()}
    assert labels_by_file(folder, "pneumonia presence") == {
        k: int(f["class"] == "PNEUMONIA") for k, f in xray.items()
    }
    groups = _patient_splits(folder)
    train_patients = {pid for (orig, pid) in groups if orig == "train"}
    assert all(len(groups[("train", pid)]) == 1 for pid in train_patients)
    notes = info_of(built)["notes"]
    assert any("shared by the source train and test" in n for n in notes)  # patient 201
    rel = "chest_xray/test/PNEUMONIA/VIRUS-203-0001.jpeg"
    expected = reference_pixels(src / "x" / "CellData" / rel, "L", "pad", "resize")
    assert np.array_equal(folder.image_store("hdf5").read(row_of(folder, rel)), expected)


def test_bad_file_name_is_reported(tmp_path: Path) -> None:
    make_celldata(tmp_path)
    bad = tmp_path / "CellData" / "OCT" / "train" / "CNV" / "CNV-10-1.jpeg"
    bad.rename(bad.with_name("CNV_10_1.jpeg"))
    with pytest.raises(SourceTreeError, match=r"CNV_10_1\.jpeg: expected a name"):
        plan_build(get_builder("oct"), tmp_path, partial=True)
