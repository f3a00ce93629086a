"""bus builder on fake BUSI trees: locating, validation, labels, masks, splits, pixels."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from builders.conftest import info_of, labels_by_file, nothing_written, open_built, split_sizes
from fakes import zip_folder
from fakes.bus import make_busi
from medimeta.builders import build_dataset, get_builder, plan_build
from medimeta.errors import SourceTreeError


@pytest.fixture(scope="module")
def busi(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    src = tmp_path_factory.mktemp("busi-src")
    facts = make_busi(src)
    return src, facts


@pytest.fixture(scope="module")
def built(busi: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory) -> Path:
    src, _ = busi
    root = tmp_path_factory.mktemp("busi-out")
    result = build_dataset("bus", src / "Dataset_BUSI_with_GT", root=root, partial=True)
    assert result.num_samples == 9
    return result.path


def test_labels_tasks_and_partial_info(built: Path, busi: tuple[Path, dict]) -> None:
    _, facts = busi
    folder = open_built(built)
    assert [t.name for t in folder.spec.tasks] == ["case category", "malignancy"]
    category = labels_by_file(folder, "case category")
    malignancy = labels_by_file(folder, "malignancy")
    keys = {"normal": 0, "benign": 1, "malignant": 2}
    assert category == {name: keys[f["class"]] for name, f in facts.items()}
    assert malignancy == {name: int(f["class"] == "malignant") for name, f in facts.items()}
    info = info_of(built)
    assert info["partial"] is True
    assert info["total_num_samples"] == 9
    assert info["original_splits_num_samples"] == {"train": 9, "val": 0, "test": 0}
    assert any("mask" in note for note in info["notes"])


def test_split_is_release_rule_and_manifest(built: Path) -> None:
    folder = open_built(built)
    # floor(0.7 * 9) = 6, floor(0.1 * 9) = 0, rest 3
    assert split_sizes(folder) == {"train": 6, "val": 0, "test": 3}
    manifest = json.loads((built / "split_manifest.json").read_text())
    assert manifest["seed"] == 42 and manifest["group_column"] == "original_filepath"
    assert manifest["counts"]["test"]["rows"] == 3


def test_pixels_are_grey_padded_and_resized(built: Path, busi: tuple[Path, dict]) -> None:
    src, facts = busi
    folder = open_built(built)
    ann = folder.annotations
    store = folder.image_store("hdf5")
    for name in ("benign (1).png", "normal (2).png"):
        rel = f"{name.split(' ')[0]}/{name}"
        i = int(np.flatnonzero(ann["original_filepath"] == rel)[0])
        raw = Image.open(src / "Dataset_BUSI_with_GT" / rel).convert("L")
        side = max(raw.size)
        canvas = Image.new("L", (side, side), 0)
        canvas.paste(raw, (round((side - raw.size[0]) / 2), round((side - raw.size[1]) / 2)))
        expected = np.asarray(canvas.resize((224, 224), Image.Resampling.BICUBIC))
        assert np.array_equal(store.read(i), expected), rel
        assert ann["original_image_size"][i] == str(tuple(facts[rel]["size"]))
    small = ann["original_filepath"] == "benign (1).png"
    assert not small.any()  # paths are relative to the class-folder level
    upscaled = dict(zip(ann["original_filepath"], ann["upscaled"].astype(str), strict=True))
    assert upscaled == {k: str(max(f["size"]) < 224) for k, f in facts.items()}
    assert "True" in upscaled.values()  # 150x200 sources are padded to 200 and enlarged


def test_masks_unite_every_lesion(built: Path) -> None:
    folder = open_built(built)
    ann = folder.annotations
    row = int(np.flatnonzero(ann["original_filepath"] == "malignant/malignant (1).png")[0])
    assert ann["number_of_masks"][row] == 2
    assert ann["original_mask_path"][row] == (
        "malignant/malignant (1)_mask.png|malignant/malignant (1)_mask_1.png"
    )
    assert ann["mask_path"][row] == f"masks/{row:06d}.tiff"
    mask = np.asarray(Image.open(built / ann["mask_path"][row]))
    assert mask.shape == (224, 224) and mask.dtype == bool
    # the fake image is 260x260: box (10..60, 10..50) and second box (100..140, 120..160)
    scale = 224 / 260
    assert mask[int(30 * scale), int(30 * scale)] and mask[int(140 * scale), int(120 * scale)]
    assert not mask[int(200 * scale), int(200 * scale)]


def test_archive_and_folder_levels_give_identical_builds(
    busi: tuple[Path, dict], built: Path, tmp_path: Path
) -> None:
    src, _ = busi
    archive = zip_folder(src / "Dataset_BUSI_with_GT", tmp_path / "dl" / "Dataset_BUSI.zip")
    ref = np.load(built / "task_labels" / "case category.npy")
    for i, given in enumerate([archive, archive.parent, src]):
        result = build_dataset("bus", given, root=tmp_path / f"out{i}", partial=True)
        assert np.array_equal(np.load(result.path / "task_labels" / "case category.npy"), ref)
        assert (result.path / "images.hdf5").read_bytes() == (built / "images.hdf5").read_bytes()


def test_incomplete_tree_fails_before_writing(busi: tuple[Path, dict], tmp_path: Path) -> None:
    src, _ = busi
    with pytest.raises(SourceTreeError, match="9 samples found; the release has 780"):
        build_dataset("bus", src, root=tmp_path / "out")
    assert nothing_written(tmp_path / "out")


def test_complete_tree_needs_no_partial(busi: tuple[Path, dict], release_counts) -> None:
    src, _ = busi
    release_counts("bus", {"train": 9})
    plan = plan_build(get_builder("bus"), src)
    assert plan.report.ok and plan.num_samples == 9
    assert plan.aux_columns == {"masks": "mask_path"}


def test_missing_mask_and_class_folder_are_listed(tmp_path: Path, release_counts) -> None:
    make_busi(tmp_path)
    base = tmp_path / "Dataset_BUSI_with_GT"
    (base / "benign" / "benign (2)_mask.png").unlink()
    for f in (base / "normal").iterdir():
        f.unlink()
    (base / "normal").rmdir()
    (base / "README.txt").write_text("added by someone")
    release_counts("bus", {"train": 9})
    with pytest.raises(SourceTreeError) as err:
        plan_build(get_builder("bus"), tmp_path)
    text = str(err.value)
    assert "benign/benign (2)_mask.png" in text
    assert "normal/normal (*).png" in text
    assert re.search(r"unexpected: \S*/Dataset_BUSI_with_GT/README\.txt", text)
    plan = plan_build(get_builder("bus"), tmp_path, partial=True)
    assert plan.num_samples == 6
    assert any("benign (2)_mask.png" in w for w in plan.report.warnings)


def test_wrong_tree_lists_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "src" / "cats").mkdir(parents=True)
    (tmp_path / "src" / "cats" / "a.png").write_bytes(b"x")
    with pytest.raises(SourceTreeError) as err:
        build_dataset("bus", tmp_path / "src", root=tmp_path / "out")
    for cls in ("benign", "malignant", "normal"):
        assert f"{cls}/{cls} (*).png" in str(err.value)
    assert nothing_written(tmp_path / "out")


def test_tree_without_masks_warns(tmp_path: Path) -> None:
    make_busi(tmp_path, masks=False, wrapper="busi-copy")
    plan = plan_build(get_builder("bus"), tmp_path / "busi-copy", partial=True)
    assert plan.aux_columns == {}
    assert any("no lesion masks" in w for w in plan.report.warnings)
    assert all(not rec.source[1] for rec in plan.records)
