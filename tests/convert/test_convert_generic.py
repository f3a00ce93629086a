"""Folder and CSV converters: task types, subjects, splits independent of row order, BUSI."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from fixtures.writing import tree_bytes, write_image
from medimeta.convert import SplitOptions, TaskColumns, convert_csv, convert_folder
from medimeta.errors import LabelError, SourceTreeError, SplitError
from medimeta.format.reader import DatasetFolder
from medimeta.format.verify import verify_dataset
from medimeta.splitting import read_split_manifest


def _images(base: Path, n: int, mode: str = "L") -> list[str]:
    names = [f"img/{i // 3:02d}_scan {i}.png" for i in range(n)]
    for i, name in enumerate(names):
        write_image(base / name, (30 + i % 5, 26), mode, seed=i)
    return names


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_csv_rows_in_any_order_give_the_same_dataset(tmp_path: Path) -> None:
    names = _images(tmp_path / "data", 30)
    rows = [[n, ("cyst", "mass", "normal")[i % 3], f"S{i // 3}", i] for i, n in enumerate(names)]
    header = ["path", "finding", "subject", "age"]
    first = _write_csv(tmp_path / "a" / "table.csv", header, rows)
    rng = np.random.default_rng(7)
    shuffled = [rows[i] for i in rng.permutation(30)]
    second = _write_csv(tmp_path / "b" / "table.csv", header, shuffled)
    task = [TaskColumns("finding", "multiclass", ("finding",))]
    kw = {"subject_column": "subject", "image_dir": tmp_path / "data", "channels": 1}
    one = convert_csv(first, tmp_path / "r1", "mine", task, **kw)
    two = convert_csv(second, tmp_path / "r2", "mine", task, workers=2, **kw)
    assert tree_bytes(one) == tree_bytes(two)
    folder = DatasetFolder(one)
    assert verify_dataset(one).ok
    assert dict(folder.spec.task("finding").labels) == {0: "cyst", 1: "mass", 2: "normal"}
    frame = folder.annotations
    assert frame.groupby("patient_id")["split"].nunique().max() == 1  # subjects never split
    assert frame["original_filepath"].tolist() == sorted(names, key=lambda n: int(n[-6:-4].strip()))
    assert frame["age"].tolist()[:2] == [0, 1]
    manifest = read_split_manifest(one / "split_manifest.json")
    assert manifest["group_column"] == "patient_id" and manifest["seed"] == 42
    assert folder.info["split_manifest"] == "split_manifest.json"


def test_csv_task_types(tmp_path: Path) -> None:
    names = _images(tmp_path, 12, mode="RGB")
    rows = [
        [n, i % 2, (0, 2, 5)[i % 3], int(i % 4 == 0), int(i % 3 == 0), "a|c" if i % 2 else ""]
        for i, n in enumerate(names)
    ]
    table = _write_csv(tmp_path / "t.csv", ["path", "bin", "grade", "x", "y", "tags"], rows)
    tasks = [
        TaskColumns("bin", "binary", ("bin",)),
        TaskColumns("grade", "ordinal", ("grade",)),
        TaskColumns("xy", "multilabel", ("x", "y")),
        TaskColumns("tags", "multilabel", ("tags",), classes=("a", "b", "c")),
    ]
    path = convert_csv(table, tmp_path / "out", "types", tasks)
    folder = DatasetFolder(path)
    assert folder.num_channels == 3 and verify_dataset(path).ok
    assert dict(folder.task("bin").labels) == {0: "negative", 1: "positive"}
    assert folder.task("grade").keys == (0, 2, 5)  # ordinal keys kept as given
    assert folder.labels("grade").tolist()[:3] == [0, 2, 5]
    assert folder.labels("xy").tolist()[:2] == [[1, 1], [0, 0]]
    assert folder.labels("tags").tolist()[:2] == [[0, 0, 0], [1, 0, 1]]
    assert folder.annotations["tags"].tolist()[1] == "a|c"


def test_label_problems_are_named(tmp_path: Path) -> None:
    names = _images(tmp_path, 4)
    rows = [[names[0], "low"], [names[1], "high"], [names[2], ""], [names[3], "low"]]
    table = _write_csv(tmp_path / "t.csv", ["path", "label"], rows)
    with pytest.raises(LabelError, match=r"row 3 \(img/00_scan 2.png\): label is empty"):
        convert_csv(table, tmp_path / "out", "x", [TaskColumns("label")])
    rows[2][1] = "mid"
    table = _write_csv(tmp_path / "t.csv", ["path", "label"], rows)
    with pytest.raises(LabelError, match="need their order"):
        convert_csv(table, tmp_path / "out", "x", [TaskColumns("label", "ordinal")])
    with pytest.raises(LabelError, match="exactly two"):
        convert_csv(table, tmp_path / "out", "x", [TaskColumns("label", "binary")])
    ordered = TaskColumns("label", "ordinal", classes=("low", "mid", "high"))
    path = convert_csv(table, tmp_path / "out", "x", [ordered])
    assert DatasetFolder(path).labels("label").tolist() == [0, 2, 1, 0]
    rows[1][0] = "img/none.png"
    table = _write_csv(tmp_path / "t.csv", ["path", "label"], rows)
    with pytest.raises(SourceTreeError, match="img/none.png"):
        convert_csv(table, tmp_path / "out", "y", [TaskColumns("label")])


def test_source_splits_are_kept_or_completed_by_subject(tmp_path: Path) -> None:
    names = _images(tmp_path, 24)
    split = ["train", "val", "test"]
    rows = [[n, i % 2, f"S{i // 2}", split[(i // 2) % 3]] for i, n in enumerate(names)]
    table = _write_csv(tmp_path / "t.csv", ["path", "y", "subj", "part"], rows)
    kw = {"subject_column": "subj", "split_column": "part"}
    kept = DatasetFolder(convert_csv(table, tmp_path / "o", "kept", [TaskColumns("y")], **kw))
    assert (kept.annotations["split"] == kept.annotations["original_split"]).all()
    rows = [[n, y, s, "testing" if p == "test" else "training"] for n, y, s, p in rows]
    table = _write_csv(tmp_path / "t.csv", ["path", "y", "subj", "part"], rows)
    made = convert_csv(
        table,
        tmp_path / "o",
        "made",
        [TaskColumns("y")],
        split_options=SplitOptions(holdout=0.25),
        **kw,
    )
    frame = DatasetFolder(made).annotations
    assert set(frame.loc[frame["original_split"] == "test", "split"]) == {"test"}
    assert (frame["split"] == "val").sum() == 4  # 25 % of the 8 training subjects, 2 rows each
    assert frame.groupby("patient_id")["split"].nunique().max() == 1
    rows[0][2] = rows[-1][2]  # one subject in source train and source test
    table = _write_csv(tmp_path / "t.csv", ["path", "y", "subj", "part"], rows)
    with pytest.raises(SplitError, match="more than one split"):
        convert_csv(table, tmp_path / "o", "leak", [TaskColumns("y")], **kw)


def test_folder_with_subjects_and_excludes(tmp_path: Path) -> None:
    for cls, count in (("benign", 6), ("malignant", 4), ("normal", 0)):
        (tmp_path / "src" / cls).mkdir(parents=True)
        for i in range(count):
            write_image(tmp_path / "src" / cls / f"pat{i % 3}_img{i}.png", (50, 40), "L", i)
            write_image(tmp_path / "src" / cls / f"pat{i % 3}_img{i}_mask.png", (50, 40), "L", i)
    path = convert_folder(
        tmp_path / "src",
        tmp_path / "out",
        "f",
        "case",
        exclude=["*_mask.png"],
        subject_pattern=r"^\w+/(pat\d)_",
    )
    folder = DatasetFolder(path)
    assert folder.num_samples == 10 and verify_dataset(path).ok
    assert dict(folder.task("case").labels) == {0: "benign", 1: "malignant", 2: "normal"}
    assert set(folder.annotations["patient_id"]) == {"pat0", "pat1", "pat2"}
    assert folder.annotations.groupby("patient_id")["split"].nunique().max() == 1
    with pytest.raises(LabelError, match="need their order"):
        convert_folder(tmp_path / "src", tmp_path / "out", "g", "case", target="ordinal")
    with pytest.raises(LabelError, match="exactly two classes"):
        convert_folder(tmp_path / "src", tmp_path / "out", "g", "case", target="binary")


@pytest.mark.realdata
def test_busi_folder_conversion(realdata: Path, tmp_path: Path) -> None:
    path = convert_folder(
        realdata / "busi-256",
        tmp_path,
        "busi",
        "case category",
        channels=1,
        workers=2,
        domain="Breast ultrasound",
        license="CC BY 4.0",
    )
    assert verify_dataset(path).ok
    folder = DatasetFolder(path)
    assert folder.num_samples == 780
    counts = np.bincount(folder.labels("case category"))
    assert dict(zip(folder.task("case category").class_names, counts.tolist(), strict=True)) == {
        "benign": 437,
        "malignant": 210,
        "normal": 133,
    }
    assert dict(folder.spec.splits) == {"train": 546, "val": 78, "test": 156}
    frame = folder.annotations
    assert frame["original_filepath"][0] == "benign/benign (1).png"
    assert frame["original_image_size"][0] == "(256, 256)"
