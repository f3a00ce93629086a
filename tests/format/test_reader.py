"""Reader rules of reference §1: info.yaml, HDF5/TIFF, splits, task labels, annotations."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from fixtures.release import ToySpec, make_release_dataset
from medimeta.errors import DatasetNotFoundError, FormatError, UnknownNameError
from medimeta.format import layout
from medimeta.format.reader import DatasetFolder, find_datasets, locate_dataset, read_info_file


@pytest.fixture()
def toy(tmp_path: Path) -> Path:
    return make_release_dataset(tmp_path, ToySpec(dataset_id="toy", channels=1, seed=3))


def test_info_yaml_uses_yaml11_numbers(tmp_path: Path) -> None:
    p = tmp_path / "info.yaml"
    p.write_text("id: cxr\ntotal_num_samples: 112_120\nlabels:\n  0: F\n  1: M\n  2: NO\n")
    info = read_info_file(p)
    assert info["total_num_samples"] == 112120
    assert info["labels"] == {0: "F", 1: "M", 2: False}  # why the release quotes "NO"


def test_labels_follow_release_conventions(toy: Path) -> None:
    folder = DatasetFolder(toy)
    assert folder.labels("case category").shape == (12,)
    assert folder.labels("Malignancy").shape == (12,)  # binary stored flat
    assert folder.labels("finding labels").shape == (12, 4)
    dr = folder.labels("DR level")
    assert set(dr.tolist()) <= {0, 1, 4, 6, 8, 10}
    assert all(a.dtype == np.int64 for a in (dr, folder.labels("finding labels")))


def test_task_file_name_keeps_spaces_and_capitals(toy: Path) -> None:
    assert (toy / "task_labels" / "DR level.npy").is_file()
    assert layout.task_label_path(toy, "DR level").name == "DR level.npy"


def test_missing_split_file_is_empty_split(toy: Path) -> None:
    folder = DatasetFolder(toy)
    assert not (toy / "splits" / "val.txt").exists()
    assert folder.split_indices("val").size == 0
    both = folder.split_indices(["train", "test"])
    assert both.tolist() == sorted(both.tolist()) and both.size == 12
    assert folder.split_indices("train", original=True).size == 12


def test_split_file_missing_while_info_lists_samples(toy: Path) -> None:
    (toy / "splits" / "test.txt").unlink()
    with pytest.raises(FormatError, match="splits_num_samples.test"):
        DatasetFolder(toy).split_indices("test")


def test_split_lines_parse_like_the_original(toy: Path) -> None:
    p = toy / "splits" / "test.txt"
    text = p.read_text()
    assert not text.endswith("\n")
    p.write_text(text.replace("/", "\\") + "\n")  # backslashes and a trailing newline are accepted
    assert DatasetFolder(toy).split_indices("test").size == 4
    with pytest.raises(UnknownNameError, match="did you mean 'test'"):
        DatasetFolder(toy).split_indices("tset")


def test_bad_split_line_names_file(toy: Path) -> None:
    (toy / "splits" / "test.txt").write_text("images/abc.tiff")
    with pytest.raises(FormatError, match=r"test\.txt.*images/abc\.tiff"):
        DatasetFolder(toy).split_indices("test")


@pytest.mark.parametrize(
    ("task", "array", "match"),
    [
        (
            "case category",
            np.array([0, 1, 7] * 4),
            "label value not allowed.*expected: \\[0, 1, 2\\]; actual: 7",
        ),
        (
            "case category",
            np.zeros(5, dtype=np.int64),
            "wrong shape.*expected: \\(12,\\); actual: \\(5,\\)",
        ),
        ("finding labels", np.zeros((12, 3), dtype=np.int64), "expected: \\(12, 4\\)"),
        ("finding labels", np.full((12, 4), 2), "expected: \\[0, 1\\]; actual: 2"),
        ("DR level", np.full(12, 2), "expected: \\[0, 1, 4, 6, 8, 10\\]; actual: 2"),
        ("case category", np.full(12, 0.5), "whole numbers"),
    ],
)
def test_label_validation_names_file_key_expected_actual(
    toy: Path, task: str, array: np.ndarray, match: str
) -> None:
    np.save(toy / "task_labels" / f"{task}.npy", array)
    with pytest.raises(FormatError, match=match) as info:
        DatasetFolder(toy).labels(task)
    assert f"{task}.npy" in str(info.value) and f"key: {task}" in str(info.value)


def test_float_labels_with_whole_values_are_cast(toy: Path) -> None:
    np.save(toy / "task_labels" / "case category.npy", np.array([0.0, 1.0, 2.0] * 4))
    labels = DatasetFolder(toy).labels("case category")
    assert labels.dtype == np.int64 and labels.tolist() == [0, 1, 2] * 4


def test_missing_label_file_and_unknown_task(toy: Path) -> None:
    (toy / "task_labels" / "Malignancy.npy").unlink()
    folder = DatasetFolder(toy)
    with pytest.raises(DatasetNotFoundError, match="Malignancy.npy"):
        folder.labels("Malignancy")
    with pytest.raises(UnknownNameError, match="did you mean 'case category'"):
        folder.task("case categroy")


def test_hdf5_shape_and_dtype_checked(toy: Path) -> None:
    with h5py.File(toy / "images.hdf5", "w") as f:
        f.create_dataset("images", (12, 224, 224, 3), np.uint8)
    with pytest.raises(
        FormatError, match=r"expected: \(12, 224, 224\); actual: \(12, 224, 224, 3\)"
    ):
        DatasetFolder(toy).image_store()
    with h5py.File(toy / "images.hdf5", "w") as f:
        f.create_dataset("images", (12, 224, 224), np.float32)
    with pytest.raises(FormatError, match="expected: 'uint8'; actual: 'float32'"):
        DatasetFolder(toy).image_store()
    with h5py.File(toy / "images.hdf5", "w") as f:
        f.create_dataset("pixels", (12, 224, 224), np.uint8)
    with pytest.raises(FormatError, match="no dataset named 'images'"):
        DatasetFolder(toy).image_store()


@pytest.mark.parametrize("channels", [1, 3])
def test_backends_return_identical_pixels(tmp_path: Path, channels: int) -> None:
    folder = DatasetFolder(make_release_dataset(tmp_path, ToySpec(channels=channels, seed=4)))
    idx = np.array([5, 0, 11, 3, 3])
    ref = folder.image_store("tiff").read_batch(idx)
    with h5py.File(folder.path / "images.hdf5", "r") as f:
        raw = f["images"][...]
    np.testing.assert_array_equal(ref, raw[idx])
    for backend in ("memmap", "hdf5", "auto"):
        store = folder.image_store(backend)
        np.testing.assert_array_equal(store.read_batch(idx), ref)
        np.testing.assert_array_equal(store.read(11), raw[11])


def test_chunked_compressed_hdf5_falls_back_to_h5py(toy: Path) -> None:
    with h5py.File(toy / "images.hdf5", "r") as f:
        data = f["images"][...]
    with h5py.File(toy / "images.hdf5", "w") as f:
        f.create_dataset("images", data=data, chunks=(1, 224, 224), compression="gzip")
    folder = DatasetFolder(toy)
    store = folder.image_store()
    assert store.backend == "hdf5"
    np.testing.assert_array_equal(store.read_batch([3, 1]), data[[3, 1]])
    with pytest.raises(FormatError, match="cannot be memory-mapped"):
        folder.image_store("memmap")


def test_annotations_and_metadata(toy: Path) -> None:
    folder = DatasetFolder(toy)
    frame = folder.annotations
    assert frame.columns[0] == "filepath" and len(frame) == 12
    assert list(frame.columns[1:6]) == [
        "split",
        "tasks/case category",
        "tasks/Malignancy",
        "tasks/finding labels",
        "tasks/DR level",
    ]
    meta = folder.metadata(["patient_id"])
    assert meta["patient_id"][3] == "P001"
    with pytest.raises(UnknownNameError, match="did you mean 'patient_id'"):
        folder.metadata(["patient id"])


def test_find_and_locate_by_id_not_folder_name(tmp_path: Path) -> None:
    make_release_dataset(tmp_path, ToySpec(dataset_id="alpha"))
    shutil.move(tmp_path / "alpha", tmp_path / "renamed")
    with pytest.warns(RuntimeWarning, match="folder name differs"):
        assert find_datasets(tmp_path) == {"alpha": tmp_path / "renamed"}
    with pytest.warns(RuntimeWarning):
        assert locate_dataset(tmp_path, "alpha") == tmp_path / "renamed"


def test_locate_errors_are_actionable(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        locate_dataset(tmp_path / "nope", "bus")
    with pytest.raises(DatasetNotFoundError, match="medimeta download bus"):
        locate_dataset(tmp_path, "bus")
    with pytest.raises(UnknownNameError, match="did you mean 'bus'"):
        locate_dataset(tmp_path, "buss")
