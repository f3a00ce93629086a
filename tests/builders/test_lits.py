"""LiTS organ-slice builders: box parsing, slicing, windowing, physically square crops, splits."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from builders.conftest import open_built
from fakes.lits import make_lits_tree
from medimeta.builders import build_dataset, get_builder
from medimeta.builders.engine.scan import scan_sources
from medimeta.builders.sources.lits import process_lits
from medimeta.builders.sources.lits.volumes import (
    ORGAN_NAMES,
    Volume,
    box_file_number,
    parse_box_file_text,
    volume_key,
)
from medimeta.errors import SourceTreeError
from medimeta.preprocess import crop_physically_square, ct_window

PLANES = {"organs_sagittal": 0, "organs_coronal": 1, "organs_axial": 2}


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory):
    return make_lits_tree(tmp_path_factory.mktemp("lits"))


@pytest.fixture(scope="module")
def plans(fake):
    tree = scan_sources(fake.root)
    return {ds: get_builder(ds).plan(tree, partial=True) for ds in PLANES}


def test_box_lines_are_inclusive_and_validated():
    (box,) = parse_box_file_text("kidney-l 7 10 19 0 4 3 3\n\n", "f.txt")
    assert box.label_name == "left kidney" and box.box == ((10, 20), (0, 5), (3, 4))
    assert box.inclusive == (10, 19, 0, 4, 3, 3)
    with pytest.raises(SourceTreeError, match="unknown organ"):
        parse_box_file_text("brain 1 0 1 0 1 0 1", "f.txt")
    with pytest.raises(SourceTreeError, match="8 fields"):
        parse_box_file_text("liver 1 0 1 0 1", "f.txt")
    with pytest.raises(SourceTreeError, match="order"):
        parse_box_file_text("liver 1 5 1 0 1 0 1", "f.txt")
    assert set(ORGAN_NAMES.values()) >= {"left femoral head", "right lung", "bladder"}


def test_file_name_rules():
    assert volume_key("volume-12.nii") == ("train", 12)
    assert volume_key("test-volume-59.nii.gz") == ("test", 59)
    assert volume_key("segmentation-12.nii") is None
    assert box_file_number("test-segmentation-7.txt") == 7


def test_records_labels_and_dropped_volume(fake, plans):
    plan = plans["organs_axial"]
    kept = [v for v in fake.volumes if v.spacing != (1.0, 1.0, 1.0)]
    assert len(plan.records) == sum(len(v.boxes) for v in kept)
    labels = get_builder("organs_axial").spec.task("organ label").labels
    expected = [labels_key(labels, ORGAN_NAMES[o]) for v in kept for o, _ in v.boxes]
    assert [r.labels["organ label"] for r in plan.records] == expected
    assert "volume-31" not in {r.patient_id for r in plan.records}
    assert any("volume-31" in n and "spacing" in n for n in plan.notes)
    # train volumes first, then test volumes, each by number
    order = [r.patient_id for r in plan.records]
    assert order.index("test-volume-0") > order.index("volume-30")


def labels_key(labels, name):
    return next(k for k, v in labels.items() if v == name)


def test_three_planes_share_one_volume_split(plans):
    per_plane = []
    for plan in plans.values():
        mapping: dict[str, str] = {}
        for rec in plan.records:
            assert mapping.setdefault(rec.patient_id, rec.split) == rec.split  # one split/volume
            if rec.original_split == "test":
                assert rec.split == "test"
        per_plane.append(mapping)
    assert per_plane[0] == per_plane[1] == per_plane[2]
    assert set(per_plane[0].values()) == {"train", "val", "test"}
    fingerprints = {p.split_manifest["fingerprint"] for p in plans.values()}
    assert len(fingerprints) == 1


@pytest.mark.parametrize("dataset_id", list(PLANES))
def test_slices_are_windowed_and_physically_square(fake, plans, dataset_id):
    axis = PLANES[dataset_id]
    for rec in plans[dataset_id].records:
        vol = fake.volume(rec.patient_id)
        image, ann = process_lits(rec)
        assert image.shape == (224, 224) and image.dtype == np.uint8
        (lo, hi) = rec.source.box[axis]
        index = (lo + hi - 1) // 2
        assert ann["slice_index"] == index
        rest = [a for a in range(3) if a != axis]
        spacing = [vol.spacing[a] for a in rest]
        extents = [(b - a) * s for (a, b), s in zip(ann["crop_box"], spacing, strict=True)]
        # physically square to within one voxel of the coarser axis
        assert abs(extents[0] - extents[1]) <= max(spacing) + 1e-9
        # the crop covers the organ box
        for (c0, c1), a in zip(ann["crop_box"], rest, strict=True):
            b0, b1 = rec.source.box[a]
            assert c0 <= b0 and c1 >= b1
        expected = crop_physically_square(
            ct_window(np.take(vol.data, index, axis=axis).astype(np.float32)),
            [rec.source.box[a] for a in rest],
            spacing,
        )
        assert ann["crop_box"] == expected.box
        if expected.array.shape == (224, 224):
            assert np.array_equal(image, expected.array)


def test_known_anisotropic_crop_is_square_in_millimetres(tmp_path: Path):
    from fakes.lits import FakeVolume

    vol = FakeVolume(
        "train", 5, (64, 64, 30), (0.5, 0.5, 4.0), [("liver", (20, 39, 10, 49, 12, 15))]
    )
    fake = make_lits_tree(tmp_path, [vol])
    plan = get_builder("organs_coronal").plan(scan_sources(fake.root), partial=True)
    _, ann = process_lits(plan.records[0])
    # coronal: remaining axes 0 (0.5 mm) and 2 (4 mm); box 20 voxels = 10 mm and 4 slices = 16 mm
    (r0, r1), (c0, c1) = ann["crop_box"]
    assert (c1 - c0) == 4 and (r1 - r0) == 32  # 16 mm / 0.5 mm
    assert abs((r1 - r0) * 0.5 - (c1 - c0) * 4.0) <= 4.0
    assert ann["crop_size_mm"] == (16.0, 16.0)


def test_volume_59_axes_are_corrected(fake):
    vol59 = fake.volume("test-volume-59")
    path = fake.root / "LITS-Challenge-Test-Data" / "test-volume-59.nii"
    volume = Volume.from_path(path)
    assert volume.shape == vol59.shape and volume.spacing == pytest.approx(vol59.spacing)
    for axis in range(3):
        index = vol59.shape[axis] // 2
        assert np.array_equal(volume.slice(axis, index), np.take(vol59.data, index, axis=axis))


def test_missing_volume_rejected_before_writing(tmp_path: Path, fake):
    root = tmp_path / "tree"
    shutil.copytree(fake.root, root)
    (root / "LITS Challenge" / "Training Batch 2" / "volume-29.nii").unlink()
    out = tmp_path / "out"
    with pytest.raises(SourceTreeError, match="volume-29"):
        build_dataset("organs_axial", root, root=out)
    assert not (out / "organs_axial").exists()


def test_box_outside_volume_is_a_problem(tmp_path: Path, fake):
    root = tmp_path / "tree"
    shutil.copytree(fake.root, root)
    boxes = root / "annotations for lits" / "annotations_of_training_set" / "segmentation-0.txt"
    boxes.write_text("liver 1 0 500 0 5 0 5\n", encoding="utf-8")
    with pytest.raises(SourceTreeError, match="exceeds"):
        get_builder("organs_axial").plan(scan_sources(root), partial=True)


def test_build_from_zipped_sources(tmp_path: Path, fake):
    from fakes import zip_folder

    zip_folder(fake.root, tmp_path / "src" / "LITS.zip")
    result = build_dataset("organs_sagittal", tmp_path / "src", root=tmp_path / "out", partial=True)
    folder = open_built(result.path)
    plan = get_builder("organs_sagittal").plan(scan_sources(fake.root), partial=True)
    assert folder.num_samples == len(plan.records)
    assert list(folder.annotations["patient_id"]) == [r.patient_id for r in plan.records]
    assert not (folder.path / "masks").exists()
    assert any("masks/" in n for n in folder.info["notes"])
