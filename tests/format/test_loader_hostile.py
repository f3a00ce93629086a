"""Broken dataset folders: ``verify`` rejects each one, and so does every loader.

One fake per class of fault. Each case asserts the clear error (the file named, the essential
words), that ``verify`` reports it, that the CLI prints no traceback, and that the folder was
left as it was (a loader never repairs or deletes anything).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from fixtures.release import ToySpec, make_release_dataset
from medimeta.cli.app import app
from medimeta.data import MedIMeta, MedIMetaMultiTask
from medimeta.errors import MedIMetaError
from medimeta.format.verify import verify_dataset

TASK = "case category"
Breaker = Callable[[Path], None]


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines), encoding="utf-8")


def _info(folder: Path) -> dict:
    return yaml.safe_load((folder / "info.yaml").read_text(encoding="utf-8"))


def _set_info(folder: Path, **changes: object) -> None:
    info = _info(folder) | changes
    (folder / "info.yaml").write_text(yaml.safe_dump(info, sort_keys=False), encoding="utf-8")


def val_sample_also_in_train(f: Path) -> None:
    # the toy has no val split: copy a test sample into train (and keep counts consistent)
    test = _lines(f / "splits" / "test.txt")
    train = _lines(f / "splits" / "train.txt")
    _write_lines(f / "splits" / "train.txt", [*train[:-1], test[0]])


def empty_train_split(f: Path) -> None:
    (f / "splits" / "train.txt").write_text("", encoding="utf-8")


def split_file_short(f: Path) -> None:
    _write_lines(f / "splits" / "test.txt", _lines(f / "splits" / "test.txt")[:-1])


def duplicate_split_line(f: Path) -> None:
    lines = _lines(f / "splits" / "test.txt")
    _write_lines(f / "splits" / "test.txt", [*lines[:-1], lines[0]])


def split_index_beyond_dataset(f: Path) -> None:
    lines = _lines(f / "splits" / "test.txt")
    _write_lines(f / "splits" / "test.txt", [*lines[:-1], "images/000099.tiff"])


def split_line_not_a_path(f: Path) -> None:
    lines = _lines(f / "splits" / "test.txt")
    _write_lines(f / "splits" / "test.txt", [*lines[:-1], "hello world"])


def split_file_not_utf8(f: Path) -> None:
    (f / "splits" / "test.txt").write_bytes(b"images/\xff\xfe000001.tiff")


def original_split_overlap(f: Path) -> None:
    lines = _lines(f / "original_splits" / "train.txt")
    _set_info(f, original_splits_num_samples={"train": len(lines) - 1, "val": 0, "test": 1})
    _write_lines(f / "original_splits" / "train.txt", lines[:-1])
    _write_lines(f / "original_splits" / "test.txt", lines[:1])


def task_name_escapes(f: Path) -> None:
    info = _info(f)
    info["tasks"][0]["task_name"] = "../../../x"
    (f / "info.yaml").write_text(yaml.safe_dump(info, sort_keys=False), encoding="utf-8")


def dataset_id_with_separator(f: Path) -> None:
    _set_info(f, id="toy/../other")


def info_not_utf8(f: Path) -> None:
    raw = (f / "info.yaml").read_bytes()
    (f / "info.yaml").write_bytes(raw.replace(b"Toy Dataset", b"Toy \xe9\xff Dataset"))


def info_not_a_mapping(f: Path) -> None:
    (f / "info.yaml").write_text("- just\n- a list\n", encoding="utf-8")


def info_bad_yaml(f: Path) -> None:
    (f / "info.yaml").write_text("id: toy\ntasks: [unclosed\n", encoding="utf-8")


def input_size_disagrees(f: Path) -> None:
    _set_info(f, input_size=[1, 128, 128])


def channels_disagree(f: Path) -> None:
    _set_info(f, input_size=[3, 224, 224])


def hdf5_truncated(f: Path) -> None:
    data = (f / "images.hdf5").read_bytes()
    (f / "images.hdf5").write_bytes(data[: len(data) // 3])


def hdf5_empty(f: Path) -> None:
    (f / "images.hdf5").write_bytes(b"")


def hdf5_wrong_key(f: Path) -> None:
    with h5py.File(f / "images.hdf5", "w") as h:
        h.create_dataset("pixels", (12, 224, 224), np.uint8)


def hdf5_float_pixels(f: Path) -> None:
    with h5py.File(f / "images.hdf5", "w") as h:
        h.create_dataset("images", (12, 224, 224), np.float32)


def total_count_disagrees_with_hdf5(f: Path) -> None:
    with h5py.File(f / "images.hdf5", "w") as h:
        h.create_dataset("images", (11, 224, 224), np.uint8)


def labels_truncated(f: Path) -> None:
    path = f / "task_labels" / f"{TASK}.npy"
    path.write_bytes(path.read_bytes()[:70])


def labels_pickled(f: Path) -> None:
    np.save(f / "task_labels" / f"{TASK}.npy", np.array([{"a": 1}] * 12, dtype=object))


def labels_fractional(f: Path) -> None:
    np.save(f / "task_labels" / f"{TASK}.npy", np.full(12, 1.5))


def labels_out_of_range(f: Path) -> None:
    np.save(f / "task_labels" / f"{TASK}.npy", np.full(12, 7))


def labels_wrong_length(f: Path) -> None:
    np.save(f / "task_labels" / f"{TASK}.npy", np.zeros(11, dtype=np.int64))


def labels_missing(f: Path) -> None:
    (f / "task_labels" / f"{TASK}.npy").unlink()


def annotations_out_of_order(f: Path) -> None:
    frame = pd.read_csv(f / "annotations.csv")
    frame.iloc[::-1].to_csv(f / "annotations.csv", index=False)


def annotations_short(f: Path) -> None:
    frame = pd.read_csv(f / "annotations.csv")
    frame.iloc[:-5].to_csv(f / "annotations.csv", index=False)


def annotations_not_csv(f: Path) -> None:
    (f / "annotations.csv").write_bytes(b'"filepath\n\x00\xff\xfe"unterminated')


def annotations_first_column(f: Path) -> None:
    frame = pd.read_csv(f / "annotations.csv")
    frame[[*frame.columns[1:], "filepath"]].to_csv(f / "annotations.csv", index=False)


def annotations_split_disagrees(f: Path) -> None:
    frame = pd.read_csv(f / "annotations.csv")
    frame["split"] = "train"
    frame.to_csv(f / "annotations.csv", index=False)


# (breaker, words in the error, what the loader is: "open" fails at MedIMeta(...),
#  "metadata" when annotations are read, "labels" when the broken task is loaded)
CASES: list[tuple[Breaker, str, str]] = [
    (val_sample_also_in_train, "more than one split", "open"),
    (empty_train_split, "0 lines, info.yaml splits_num_samples.train = 8", "open"),
    (split_file_short, "splits_num_samples.test", "open"),
    (duplicate_split_line, "sample twice", "open"),
    (split_index_beyond_dataset, "beyond the dataset", "open"),
    (split_line_not_a_path, "images/NNNNNN.tiff", "open"),
    (split_file_not_utf8, "not UTF-8", "open"),
    (original_split_overlap, "more than one split", "open"),
    (task_name_escapes, "cannot be used as a file name", "open"),
    (dataset_id_with_separator, "cannot be used as a file name", "open"),
    (info_not_utf8, "not UTF-8", "open"),
    (info_not_a_mapping, "mapping", "open"),
    (info_bad_yaml, "not valid YAML", "open"),
    (input_size_disagrees, "input_size", "open"),
    (channels_disagree, "wrong shape", "open"),
    (hdf5_truncated, "not a readable HDF5 file", "open"),
    (hdf5_empty, "not a readable HDF5 file", "open"),
    (hdf5_wrong_key, "no dataset named 'images'", "open"),
    (hdf5_float_pixels, "wrong dtype", "open"),
    (total_count_disagrees_with_hdf5, "wrong shape", "open"),
    (labels_truncated, "not a readable plain numpy array", "labels"),
    (labels_pickled, "not a readable plain numpy array", "labels"),
    (labels_fractional, "whole numbers", "labels"),
    (labels_out_of_range, "not allowed", "labels"),
    (labels_wrong_length, "wrong shape", "labels"),
    (labels_missing, "missing", "labels"),
    (annotations_out_of_order, "not keyed by 'filepath'", "metadata"),
    (annotations_short, "7 rows, expected 12", "metadata"),
    (annotations_not_csv, "annotations.csv", "metadata"),
    (annotations_first_column, "first column must be 'filepath'", "metadata"),
    (annotations_split_disagrees, "'split' column disagrees", "metadata"),
]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _load(root: Path, where: str) -> None:
    if where == "open":
        MedIMeta(root, "toy", "Malignancy", split="train")
    elif where == "labels":
        MedIMeta(root, "toy", TASK, split="train")
    else:
        MedIMetaMultiTask(root, "toy", metadata=["original_filepath"])


@pytest.mark.parametrize(("breaker", "words", "where"), CASES, ids=[c[0].__name__ for c in CASES])
def test_loader_refuses_what_verify_refuses(
    tmp_path: Path, breaker: Breaker, words: str, where: str
) -> None:
    folder = make_release_dataset(tmp_path, ToySpec(dataset_id="toy"))
    MedIMetaMultiTask(tmp_path, "toy", metadata=["original_filepath"])  # intact: loads
    breaker(folder)
    before = _snapshot(folder)
    report = verify_dataset(folder)
    assert not report.ok, report.format()
    assert words in "\n".join(report.problems), report.format()
    with pytest.raises(MedIMetaError) as err:
        _load(tmp_path, where)
    message = str(err.value)
    assert words in message
    assert str(folder) in message or "toy" in message  # names the folder or file
    cli = CliRunner().invoke(app, ["verify", "--root", str(tmp_path)])
    assert cli.exit_code == 1 and "Traceback" not in cli.output, cli.output
    assert _snapshot(folder) == before  # nothing repaired, moved or deleted


def test_corpus_size() -> None:
    assert len(CASES) >= 30
