"""The dataset writer: release layout file by file, validation, parallel identity, resume."""

from __future__ import annotations

import csv
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from PIL import Image

from fixtures.release import ToySpec, make_release_dataset
from fixtures.writing import (
    fail_on_marker,
    synthetic_image,
    synthetic_rgb,
    toy_info,
    toy_records,
    tree_bytes,
    wrong_mode,
    wrong_size,
)
from medimeta.catalog import get_catalog
from medimeta.errors import BuildError, DatasetExistsError, FormatError, LabelError, SplitError
from medimeta.format.reader import DatasetFolder, find_datasets
from medimeta.format.verify import verify_dataset
from medimeta.format.writer import SampleRecord, write_dataset
from medimeta.format.writer.files import INFO_KEY_ORDER, license_text

RELEASE_FILES = {"info.yaml", "LICENSE", "images.hdf5", "annotations.csv"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("written")
    return write_dataset(
        root,
        toy_info(),
        toy_records(),
        synthetic_image,
        aux_columns={"masks": "mask_path"},
        extra_info={"partial": False, "notes": "made by a test"},
    )


def test_layout_matches_the_release_file_by_file(built: Path, tmp_path: Path) -> None:
    release = make_release_dataset(tmp_path, ToySpec(dataset_id="ref", channels=1))
    ours = {p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file()}
    assert ours >= RELEASE_FILES
    assert {f"images/{i:06d}.tiff" for i in range(24)} <= ours
    assert {f"masks/{i:06d}.tiff" for i in range(24)} <= ours
    assert {f"task_labels/{t['task_name']}.npy" for t in toy_info()["tasks"]} <= ours
    assert {"splits/train.txt", "splits/val.txt", "splits/test.txt"} <= ours
    # 24 samples, original split: train for 20, test for 4, none in val -> no val file.
    assert {"original_splits/train.txt", "original_splits/test.txt"} <= ours
    assert "original_splits/val.txt" not in ours
    with h5py.File(built / "images.hdf5") as ours_h5, h5py.File(release / "images.hdf5") as ref:
        assert list(ours_h5.keys()) == list(ref.keys()) == ["images"]
        a, b = ours_h5["images"], ref["images"]
        assert a.shape == (24, 224, 224) and a.dtype == b.dtype == np.uint8
        assert (a.chunks, a.compression, b.chunks) == (None, None, None)
        assert dict(a.attrs) == dict(b.attrs) == {}
    for name in ("case category", "Malignancy", "finding labels", "DR level"):
        ours_arr = np.load(built / "task_labels" / f"{name}.npy", allow_pickle=False)
        ref_arr = np.load(release / "task_labels" / f"{name}.npy", allow_pickle=False)
        assert ours_arr.dtype == ref_arr.dtype == np.int64
        assert ours_arr.ndim == ref_arr.ndim and len(ours_arr) == 24
    with Image.open(built / "images" / "000005.tiff") as img:
        assert (img.size, img.mode, img.info.get("compression")) == ((224, 224), "L", "raw")
    with Image.open(built / "masks" / "000005.tiff") as mask:
        assert mask.mode == "1"


def test_split_files_have_no_trailing_newline_and_index_order(built: Path) -> None:
    for sub in ("splits", "original_splits"):
        for path in (built / sub).iterdir():
            text = path.read_text()
            assert not text.endswith("\n") and "\r" not in text
            lines = text.split("\n")
            assert lines == sorted(lines) and all(ln.startswith("images/") for ln in lines)
    expected = [f"images/{i:06d}.tiff" for i, r in enumerate(toy_records()) if r.split == "val"]
    assert (built / "splits" / "val.txt").read_text() == "\n".join(expected)


def test_annotations_column_order_and_text(built: Path) -> None:
    with open(built / "annotations.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    header = rows[0]
    assert header[:8] == [
        "filepath",
        "split",
        "tasks/case category",
        "tasks/Malignancy",
        "tasks/finding labels",
        "tasks/DR level",
        "original_filepath",
        "original_split",
    ]
    assert header[8] == "patient_id"
    assert header[9:] == sorted(header[9:])
    assert set(header[9:]) >= {
        "DR level",
        "Malignancy",
        "case category",
        "finding labels",
        "mask_path",
        "original_image_size",
        "score",
        "zeta",
    }
    row = dict(zip(header, rows[4], strict=True))  # sample 3
    assert row["filepath"] == "images/000003.tiff"
    assert row["tasks/finding labels"] == "[1, 1, 0]" and row["finding labels"] == "A|B"
    assert row["tasks/DR level"] == "6" and row["DR level"] == "c"
    assert row["tasks/Malignancy"] == "1" and row["Malignancy"] == "malignant finding"
    assert row["original_image_size"] == "(300, 200)" and row["mask_path"] == "masks/000003.tiff"
    assert row["original_filepath"] == "raw/case 3.png" and row["patient_id"] == "P001"
    empty = dict(zip(header, rows[1], strict=True))
    assert empty["finding labels"] == ""  # no positive label


def test_info_yaml_has_release_keys_in_order_plus_extras(built: Path) -> None:
    info = yaml.safe_load((built / "info.yaml").read_text())
    keys = list(info)
    release_keys = [k for k in keys if k in INFO_KEY_ORDER]
    assert release_keys == [k for k in INFO_KEY_ORDER if k in info]
    assert keys[-2:] == ["partial", "notes"]
    assert info["total_num_samples"] == 24
    assert info["splits_num_samples"] == {"train": 12, "val": 6, "test": 6}
    assert info["original_splits_num_samples"] == {"train": 20, "val": 0, "test": 4}
    assert (built / "LICENSE").read_text().count("\n") == 1
    assert "https://creativecommons.org/licenses/by-sa/4.0/" in (built / "LICENSE").read_text()


def test_reader_and_verify_accept_the_folder(built: Path) -> None:
    report = verify_dataset(built, deep=True)
    assert report.ok, report.format()
    folder = DatasetFolder(built)
    records = toy_records()
    assert folder.labels("DR level").tolist() == [r.labels["DR level"] for r in records]
    assert folder.labels("finding labels").tolist() == [r.labels["finding labels"] for r in records]
    pixels = folder.image_store("memmap").read_batch([0, 7])
    assert np.array_equal(pixels[1], synthetic_image(records[7])[0])
    assert np.array_equal(folder.image_store("tiff").read(7), pixels[1])


def test_serial_and_parallel_builds_are_byte_identical(tmp_path: Path) -> None:
    info, records = toy_info("rgb", channels=3), toy_records(40, patient=False)
    one = write_dataset(tmp_path / "a", info, records, synthetic_rgb, workers=1)
    two = write_dataset(tmp_path / "b", info, records, synthetic_rgb, workers=2, chunksize=3)
    assert tree_bytes(one) == tree_bytes(two)
    assert "patient_id" not in (one / "annotations.csv").read_text().splitlines()[0]


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"case category": 3}, LabelError, "label 3 is not a key"),
        ({"DR level": 2}, LabelError, r"keys: \[0, 1, 4, 6\]"),
        ({"finding labels": [1, 0]}, LabelError, "exactly 3 values"),
        ({"finding labels": [2, 0, 0]}, LabelError, "exactly 3 values"),
        ({"Malignancy": 0.5}, LabelError, "not a whole number"),
        ({"Malignancy": True}, LabelError, "boolean"),
    ],
)
def test_bad_labels_fail_before_any_file(
    tmp_path: Path, change: dict, error: type, match: str
) -> None:
    records = toy_records(8)
    bad = records[5]
    records[5] = SampleRecord(
        bad.source, {**bad.labels, **change}, bad.split, bad.original_split, bad.original_filepath
    )
    with pytest.raises(error, match=match):
        write_dataset(tmp_path, toy_info(), records, synthetic_image)
    assert list(tmp_path.iterdir()) == []


def test_bad_split_and_missing_task_are_rejected(tmp_path: Path) -> None:
    records = toy_records(4)
    rec = records[1]
    with pytest.raises(SplitError, match="'valid' is not one of"):
        write_dataset(
            tmp_path,
            toy_info(),
            [*records[:1], SampleRecord(rec.source, rec.labels, "valid", "train", "x.png")],
            synthetic_image,
        )
    labels = {k: v for k, v in rec.labels.items() if k != "DR level"}
    with pytest.raises(LabelError, match=r"missing \['DR level'\]"):
        write_dataset(
            tmp_path, toy_info(), [SampleRecord(0, labels, "train", "train", "x")], synthetic_image
        )


@pytest.mark.parametrize(("process", "match"), [(wrong_size, "wrong shape"), (wrong_mode, "mode")])
def test_wrong_images_name_the_record(tmp_path: Path, process, match: str) -> None:
    with pytest.raises(BuildError, match=rf"record 0 \(raw/case 0.png\).*{match}"):
        write_dataset(tmp_path, toy_info(), toy_records(4), process)
    assert find_datasets(tmp_path) == {}
    assert not (tmp_path / "toyw").exists()


def test_info_counts_must_match_unless_partial(tmp_path: Path) -> None:
    spec = get_catalog().get("bus")
    records = [
        SampleRecord(i, {"case category": 0, "malignancy": 0}, "train", "train", f"{i}")
        for i in range(3)
    ]
    with pytest.raises(FormatError, match="counts differ"):
        write_dataset(tmp_path, spec, records, _zeros)
    path = write_dataset(tmp_path, spec, records, _zeros, extra_info={"partial": True})
    report = verify_dataset(path)
    assert report.ok and any("partial" in w for w in report.warnings), report.format()
    assert DatasetFolder(path).info["total_num_samples"] == 3


def _zeros(record: SampleRecord) -> np.ndarray:
    return np.zeros((224, 224), np.uint8)


def test_existing_dataset_is_kept_without_overwrite(tmp_path: Path) -> None:
    records = toy_records(4)
    path = write_dataset(tmp_path, toy_info(), records, synthetic_image)
    before = tree_bytes(path)
    with pytest.raises(DatasetExistsError, match="--overwrite"):
        write_dataset(tmp_path, toy_info(), records, _zeros)
    assert tree_bytes(path) == before
    write_dataset(tmp_path, toy_info(), records, _zeros, overwrite=True)
    assert tree_bytes(path) != before and verify_dataset(path).ok
    assert sorted(p.name for p in tmp_path.iterdir()) == [".medimeta", "toyw"]


def test_failed_build_resumes_where_it_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info, records = toy_info(), toy_records(30)
    seen: list[tuple[int, int]] = []
    monkeypatch.setenv("MEDIMETA_TEST_FAIL_AT", "17")
    with pytest.raises(BuildError, match=r"record 17 .*simulated failure"):
        write_dataset(tmp_path / "r", info, records, fail_on_marker, workers=2, chunksize=2)
    assert find_datasets(tmp_path / "r") == {}
    monkeypatch.delenv("MEDIMETA_TEST_FAIL_AT")
    resumed = write_dataset(
        tmp_path / "r",
        info,
        records,
        fail_on_marker,
        progress=lambda done, n: seen.append((done, n)),
    )
    assert 0 < seen[0][0] <= 17 and seen[-1] == (30, 30)
    clean = write_dataset(tmp_path / "c", info, records, fail_on_marker, resume=False)
    assert tree_bytes(resumed) == tree_bytes(clean)
    assert [p.name for p in (tmp_path / "r").iterdir() if p.name.startswith(".toyw")] == []


def test_resume_redoes_damaged_samples_and_new_inputs_start_clean(
    tmp_path: Path, monkeypatch
) -> None:
    info, records = toy_info(), toy_records(20)
    monkeypatch.setenv("MEDIMETA_TEST_FAIL_AT", "15")
    with pytest.raises(BuildError):
        write_dataset(tmp_path, info, records, fail_on_marker)
    staging = next(tmp_path.glob(".toyw.partial-*"))
    (staging / "toyw" / "images" / "000006.tiff").write_bytes(b"damaged")
    monkeypatch.setenv("MEDIMETA_TEST_FAIL_AT", "18")
    starts: list[int] = []
    with pytest.raises(BuildError):
        write_dataset(
            tmp_path, info, records, fail_on_marker, progress=lambda d, n: starts.append(d)
        )
    assert starts[0] == 6  # sample 6 failed its CRC check, so 0..5 were kept
    changed = [*records[:-1], SampleRecord(99, records[-1].labels, "train", "train", "new")]
    monkeypatch.delenv("MEDIMETA_TEST_FAIL_AT")
    starts.clear()
    write_dataset(tmp_path, info, changed, fail_on_marker, progress=lambda d, n: starts.append(d))
    assert starts[0] == 0  # other inputs: other fingerprint, the old staging folder is gone
    assert not staging.exists()


def test_license_notice_wording() -> None:
    assert license_text("Creative Commons ... (CC BY-NC-SA 4.0)") == (
        "This dataset is made available under the Creative Commons "
        "Attribution-NonCommercial-ShareAlike 4.0 International (CC BY-NC-SA 4.0) licence: "
        "https://creativecommons.org/licenses/by-nc-sa/4.0/\n"
    )
    assert license_text("my own terms") == "Licence: my own terms\n"
    with pytest.raises(BuildError, match="no licence"):
        license_text("")


def test_info_file_is_copied_byte_for_byte_with_extra_keys(tmp_path: Path) -> None:
    info = toy_info("copied")
    info.update(
        total_num_samples=8,
        splits_num_samples={"train": 4, "val": 2, "test": 2},
        original_splits_num_samples={"train": 4, "val": 0, "test": 4},
    )
    text = "# kept comment\n" + yaml.safe_dump(info, sort_keys=False)
    source = tmp_path / "info source.yaml"
    source.write_text(text)
    records = toy_records(8)
    extra = {"docs/readme.txt": b"hello", "copy.yaml": source}
    path = write_dataset(
        tmp_path / "out",
        source,
        records,
        synthetic_image,
        extra_info={"notes": "from a file"},
        extra_files=extra,
    )
    written = (path / "info.yaml").read_text()
    assert written.startswith(text) and written[len(text) :] == "notes: from a file\n"
    assert (path / "docs" / "readme.txt").read_bytes() == b"hello"
    assert (path / "copy.yaml").read_text() == text and verify_dataset(path).ok
    bad = dict(info, total_num_samples=9)
    source.write_text(yaml.safe_dump(bad))
    with pytest.raises(FormatError, match="counts differ"):
        write_dataset(tmp_path / "out2", source, records, synthetic_image)
    with pytest.raises(BuildError, match="replace a file of the format"):
        write_dataset(
            tmp_path / "out2", info, records, synthetic_image, extra_files={"annotations.csv": b""}
        )
    with pytest.raises(BuildError, match="relative path"):
        write_dataset(
            tmp_path / "out2", info, records, synthetic_image, extra_files={"../escape.txt": b""}
        )
