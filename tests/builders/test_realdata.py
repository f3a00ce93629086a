"""Builders on real public data in ../shared/realdata (skipped when it is absent)."""

from __future__ import annotations

import csv
import io
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from builders.conftest import info_of, labels_by_file, open_built, split_sizes
from fakes import write_image, zip_folder
from medimeta.builders import build_dataset
from medimeta.builders.engine.source import SourceReport
from medimeta.builders.sources.derm7pt import case_labels, split_of_rows
from medimeta.builders.sources.fundus import parse_rfmid_labels
from medimeta.catalog import get_dataset

pytestmark = pytest.mark.realdata
PBC_KEYS = {
    "neutrophil": 0,
    "eosinophil": 1,
    "basophil": 2,
    "lymphocyte": 3,
    "monocyte": 4,
    "ig": 5,
    "erythroblast": 6,
    "platelet": 7,
}


def test_bus_from_busi_256_is_a_complete_build(realdata: Path, tmp_path: Path) -> None:
    result = build_dataset("bus", realdata / "busi-256", root=tmp_path, workers=2)
    assert not result.partial and result.num_samples == 780
    folder = open_built(result.path)
    assert np.bincount(folder.labels("case category")).tolist() == [133, 437, 210]
    assert np.bincount(folder.labels("malignancy")).tolist() == [570, 210]
    assert split_sizes(folder) == {"train": 546, "val": 78, "test": 156}
    assert "partial" not in info_of(result.path)
    assert any("no lesion masks" in w for w in result.report.warnings)
    assert sorted(Path(u).name for u in result.report.unexpected) == [
        "SOURCES.md",
        "all_captions.csv",
        "labels.csv",
    ]
    assert not (result.path / "masks").exists()


def _pbc_truth(realdata: Path) -> dict[str, int]:
    rows = csv.DictReader(io.StringIO((realdata / "pbc-subset" / "labels.csv").read_text()))
    return {r["path"]: PBC_KEYS[r["label"]] for r in rows}


def test_pbc_subset_partial(realdata: Path, tmp_path: Path) -> None:
    result = build_dataset("pbc", realdata / "pbc-subset", root=tmp_path, partial=True)
    folder = open_built(result.path)
    assert labels_by_file(folder, "cell class") == _pbc_truth(realdata)
    info = info_of(result.path)
    assert info["partial"] is True and info["total_num_samples"] == 480


def test_pbc_real_images_in_the_publisher_zip_layout(realdata: Path, tmp_path: Path) -> None:
    """A real subset repackaged as PBC_dataset_normal_DIB.zip (the publisher's layout)."""
    truth = _pbc_truth(realdata)
    chosen = {}
    for folder in PBC_KEYS:
        for rel in sorted(p for p in truth if p.startswith(f"{folder}/"))[:4]:
            chosen[rel] = truth[rel]
            dst = tmp_path / "PBC_dataset_normal_DIB" / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(realdata / "pbc-subset" / rel, dst)
    archive = zip_folder(
        tmp_path / "PBC_dataset_normal_DIB", tmp_path / "dl" / "PBC_dataset_normal_DIB.zip"
    )
    shutil.rmtree(tmp_path / "PBC_dataset_normal_DIB")
    result = build_dataset("pbc", archive, root=tmp_path / "out", partial=True)
    folder = open_built(result.path)
    assert labels_by_file(folder, "cell class") == chosen
    assert result.report.unexpected == []


def test_derm7pt_real_labels(realdata: Path) -> None:
    meta_dir = realdata / "derm7pt-meta"
    meta = pd.read_csv(meta_dir / "meta.csv", dtype=str, keep_default_na=False)
    report = SourceReport("skinl_photo", str(meta_dir))
    for dataset_id in ("skinl_photo", "skinl_derm"):
        spec = get_dataset(dataset_id)
        labels = case_labels(meta, spec.tasks, "meta.csv", report)
        assert labels is not None and report.ok, report.format()
        counts = {t.name: Counter(t.labels[row[t.name]] for row in labels) for t in spec.tasks}
        assert counts["Diagnosis grouped"] == {
            "nevus": 575,
            "melanoma": 252,
            "miscellaneous": 97,
            "seborrheic keratosis": 45,
            "basal cell carcinoma": 42,
        }
        assert counts["Diagnosis"]["melanoma"] == 252 and counts["Diagnosis"]["clark nevus"] == 399
        assert counts["Pigment Network"] == {"absent": 400, "typical": 381, "atypical": 230}
        assert counts["Blue Whitish Veil"] == {"absent": 816, "present": 195}
        assert sum(counts["Regression Structures grouped"].values()) == 1011
    indexes = {
        s: pd.read_csv(meta_dir / f"{n}_indexes.csv", dtype=str)
        for s, n in (("train", "train"), ("val", "valid"), ("test", "test"))
    }
    splits = split_of_rows(indexes, len(meta), "meta", report)
    assert Counter(splits) == {"train": 413, "val": 203, "test": 395} and report.ok


def test_rfmid_real_training_labels(realdata: Path) -> None:
    path = realdata / "labels-only" / "rfmid-csv" / "RFMiD_Training_Labels.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    diseases = get_dataset("fundus").task("disease labels").class_names
    report = SourceReport("fundus", str(path))
    rows = parse_rfmid_labels(frame, diseases, path.name, report)
    assert report.ok and not report.warnings, report.format()
    assert len(rows) == 1920
    assert Counter(r.disease_risk for r in rows) == {1: 1519, 0: 401}
    totals = np.sum([r.diseases for r in rows], axis=0)
    named = dict(zip(diseases, totals.tolist(), strict=True))
    assert (named["DR"], named["MH"], named["ODC"], named["TSLN"]) == (376, 317, 282, 186)


def test_skinl_derm_complete_build_with_real_labels(realdata: Path, tmp_path: Path) -> None:
    """Real meta/index files + synthetic images at every listed path: a non-partial build."""
    base = tmp_path / "release_v0"
    (base / "meta").mkdir(parents=True)
    for name in ("meta.csv", "train_indexes.csv", "valid_indexes.csv", "test_indexes.csv"):
        shutil.copyfile(realdata / "derm7pt-meta" / name, base / "meta" / name)
    meta = pd.read_csv(base / "meta" / "meta.csv", dtype=str, keep_default_na=False)
    for i, rel in enumerate(meta["derm"]):
        write_image(base / "images" / rel, (240, 180), seed=i, quality=90)
    result = build_dataset("skinl_derm", tmp_path, root=tmp_path / "out", workers=2)
    folder = open_built(result.path)
    assert split_sizes(folder) == {"train": 413, "val": 203, "test": 395}
    assert np.bincount(folder.labels("Diagnosis grouped")).tolist() == [42, 575, 252, 97, 45]
