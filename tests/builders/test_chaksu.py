"""Chákṣu builder (glaucoma): decisions with typos, cup/disc masks, patient-aware splits."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from builders.conftest import open_built
from fakes.chaksu import fusion_mask, make_chaksu_tree
from medimeta.builders import build_dataset, get_builder
from medimeta.builders.engine.scan import scan_sources
from medimeta.builders.sources.chaksu import (
    fused_masks,
    label_name_key,
    patient_of,
    process_chaksu,
    verdict,
)
from medimeta.errors import LabelError, SourceTreeError
from medimeta.preprocess import pad_to_square


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory):
    return make_chaksu_tree(tmp_path_factory.mktemp("chaksu"))


def _plan(path: Path, partial: bool = True):
    return get_builder("glaucoma").plan(scan_sources(path), partial=partial)


def test_disc_is_the_larger_region_and_contains_the_cup():
    fused = fusion_mask((120, 100), (60, 50), 30, 12)
    disc, cup = fused_masks(fused)
    assert disc.sum() > cup.sum() > 0
    assert not np.any(cup & ~disc)  # cup inside disc
    assert disc.sum() == (fused > 0).sum() and cup.sum() == (fused == 255).sum()


def test_decisions_and_name_rules():
    assert verdict("NORMAL", "x") == 0
    assert verdict("GLAUCOMA SUSPECT", "x") == verdict("GLAUCOMA  SUSUPECT", "x") == 1
    with pytest.raises(LabelError, match="MAYBE"):
        verdict("MAYBE", "x.csv line 3")
    assert label_name_key("Image101.jpg-Image101-1.jpg") == "image101"
    assert patient_of("P12_3") == "P12" and patient_of("Image5") is None


def test_labels_joined_by_split_device_and_name(fake):
    plan = _plan(fake.root)
    assert len(plan.records) == len(fake.labels)
    for rec in plan.records:
        split, device = rec.original_split, rec.annotations["device"]
        assert (
            rec.labels["Glaucoma suspect"]
            == fake.labels[(split, device, rec.annotations["image_name"])]
        )
        assert rec.source.mask is not None and "STAPLE" in rec.source.mask.path
    remidio_test = [
        r
        for r in plan.records
        if r.original_split == "test" and r.annotations["device"] == "Remidio"
    ]
    assert remidio_test and all("Remedio" in r.source.mask.path for r in remidio_test)
    assert all("Expert" not in r.source.mask.path for r in plan.records)


def test_split_is_patient_aware(fake):
    plan = _plan(fake.root)
    by_group: dict[str, set[str]] = {}
    for rec in plan.records:
        key = rec.patient_id or rec.original_filepath
        by_group.setdefault(key, set()).add(rec.split)
        if rec.original_split == "test":
            assert rec.split == "test"
    assert all(len(s) == 1 for s in by_group.values())
    # P3 has images from two devices: one group
    p3 = [r for r in plan.records if r.patient_id == "P3"]
    assert {r.annotations["device"] for r in p3} == {"Forus", "Remidio"}
    assert {r.split for r in plan.records} == {"train", "val", "test"}


def test_masks_are_aligned_with_the_image(fake):
    plan = _plan(fake.root)
    for rec in plan.records[:4]:
        image, ann, aux = process_chaksu(rec)
        assert image.size == (224, 224) and image.mode == "RGB"
        disc = np.asarray(aux["masks/disc"], dtype=bool)
        cup = np.asarray(aux["masks/cup"], dtype=bool)
        assert disc.shape == cup.shape == (224, 224)
        assert disc.sum() > cup.sum() > 0 and not np.any(cup & ~disc)
        assert ann["disc_area_px"] > ann["cup_area_px"] and ann["cup_outside_disc_px"] == 0
        # The disc centre lands where the padded, resized image puts it.
        (cx, cy), _, _ = fake.circles[rec.annotations["image_name"]]
        w, h = ann["original_image_size"]
        side = max(w, h)
        px = np.zeros((h, w), dtype=bool)
        px[cy, cx] = True
        pad = pad_to_square(px)
        ys, xs = np.nonzero(pad)
        expected = (xs[0] * 224 / side, ys[0] * 224 / side)
        ys, xs = np.nonzero(disc)
        assert abs(xs.mean() - expected[0]) < 3 and abs(ys.mean() - expected[1]) < 3


def test_build_writes_masks_and_notes(tmp_path: Path, fake):
    result = build_dataset("glaucoma", fake.root, root=tmp_path, partial=True)
    folder = open_built(result.path)
    ann = folder.annotations
    assert (folder.path / "masks" / "disc" / "000000.tiff").is_file()
    assert ann["mask_disc_staple_path"].iloc[0] == "masks/disc/000000.tiff"
    disc = np.asarray(Image.open(folder.path / "masks" / "disc" / "000000.tiff"), dtype=bool)
    cup = np.asarray(Image.open(folder.path / "masks" / "cup" / "000000.tiff"), dtype=bool)
    assert disc.sum() > cup.sum() > 0
    assert any("disc = STAPLE fusion > 85" in n for n in folder.info["notes"])


def test_incomplete_tree_rejected_before_writing(tmp_path: Path, fake):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(fake.root / "Train.zip", src / "Train.zip")
    out = tmp_path / "out"
    with pytest.raises(SourceTreeError, match="Test"):
        build_dataset("glaucoma", src, root=out)
    assert not (out / "glaucoma").exists()


def test_image_without_label_row_is_a_problem(tmp_path: Path, fake):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(fake.root / "Test.zip", src / "Test.zip")
    with (
        zipfile.ZipFile(fake.root / "Train.zip") as zin,
        zipfile.ZipFile(src / "Train.zip", "w") as zout,
    ):
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename.endswith("Bosch_majority.csv"):
                data = b"\n".join(data.splitlines()[:-1]) + b"\n"  # drop the last row
            zout.writestr(item, data)
    with pytest.raises(SourceTreeError, match="no row in the Bosch decision CSV"):
        _plan(src)
