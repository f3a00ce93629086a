"""Hostile converter inputs: each class of fault refused with one clear line, nothing written.

One generated fake per class of fault (no binary fixtures): MedMNIST arrays of unequal length,
non-integer, missing or unknown labels, broken members; CSV labels 1.5 / NaN / abc, image
paths leaving the image folder (absolute, ``..``, symbolic links), unreadable CSVs and images;
folder names that are not integer keys; MedFMC lists with escaping paths or bad encodings.
Every case checks the message (file, place, value) and that the root holds no dataset, no
staging folder and no cache afterwards, and that the input is unchanged.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from fixtures.writing import make_npz, write_image
from medimeta.cli.convert import app
from medimeta.convert import TaskColumns, convert_csv, convert_folder, convert_medfmc
from medimeta.convert.medmnist import convert_medmnist
from medimeta.errors import (
    FormatError,
    LabelError,
    OptionError,
    OutsidePathError,
    SourceTreeError,
)


def assert_nothing_written(root: Path) -> None:
    """No dataset, staging, cache or other file under ``root`` (lock files aside)."""
    if not root.exists():
        return
    left = [
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.parent.name != "locks"
    ]
    dirs = [p.name for p in root.iterdir() if p.name != ".medimeta"]
    cache = root / ".medimeta" / "cache"
    assert not left and not dirs and not cache.exists(), (left, dirs)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- MedMNIST --------------------------------------------------------------------------------


def _npz(tmp_path: Path, flag: str = "pneumoniamnist", **edit: Any) -> Path:
    """pneumoniamnist-like arrays (5/2/3 grey 28 px) with some arrays replaced by ``edit``
    (a flag without a published MD5, so the checksum does not speak first)."""
    path = tmp_path / f"{flag}.npz"
    width = 14 if flag == "chestmnist" else 1
    arrays = make_npz(path, size=28, channels=1, counts=(5, 2, 3), label_width=width)
    arrays.update(edit)
    np.savez_compressed(path, **arrays)
    return path


def _labels(n: int, *values: float) -> np.ndarray:
    out = np.zeros((n, 1), dtype=np.float64)
    out[: len(values), 0] = values
    return out


def _broken_member(tmp_path: Path) -> Path:
    path = _npz(tmp_path)
    buf = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, b"\x93NUMPY garbage" if info.filename == "val_labels.npy" else data)
    path.write_bytes(buf.getvalue())
    return path


def _short_image_member(tmp_path: Path) -> Path:
    path = _npz(tmp_path)
    buf = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, data[:-300] if info.filename == "test_images.npy" else data)
    path.write_bytes(buf.getvalue())
    return path


def _not_a_zip(tmp_path: Path) -> Path:
    path = tmp_path / "pneumoniamnist.npz"
    path.write_bytes(b"not a zip" * 50)
    return path


MEDMNIST: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "labels-fewer-than-images": (
        lambda d: _npz(d, train_labels=np.zeros((2, 1), np.uint8)),
        ("train_labels has 2 rows but train_images has 5 images", "3 images without a label"),
    ),
    "labels-more-than-images": (
        lambda d: _npz(d, test_labels=np.zeros((7, 1), np.uint8)),
        ("test_labels has 7 rows but test_images has 3", "extra labels"),
    ),
    "label-not-integer": (
        lambda d: _npz(d, val_labels=_labels(2, 0, 1.5)),
        ("val_labels row 1", "1.5", "integers in [0, 1]"),
    ),
    "label-nan": (
        lambda d: _npz(d, train_labels=_labels(5, 1, 0, np.nan)),
        ("train_labels row 2", "nan"),
    ),
    "label-unknown-key": (
        lambda d: _npz(d, test_labels=np.array([[0], [7], [1]], np.uint8)),
        ("test_labels row 1", "7", "task 'pneumonia'"),
    ),
    "multilabel-not-0-1": (
        lambda d: _npz(d, "chestmnist", val_labels=np.full((2, 14), 2, np.uint8)),
        ("val_labels row 0", "integers in [0, 1]"),
    ),
    "label-wrong-width": (
        lambda d: _npz(d, train_labels=np.zeros((5, 3), np.uint8)),
        ("train_labels has an unexpected shape", "(5, 1)"),
    ),
    "images-not-square-stack": (
        lambda d: _npz(d, train_images=np.zeros((5, 28), np.uint8)),
        ("train_images is not a stack of square images",),
    ),
    "labels-pickled-objects": (
        lambda d: _npz(d, val_labels=np.array([[0], ["x"]], dtype=object)),
        ("not a readable MedMNIST .npz", "val_labels"),
    ),
    "member-not-npy": (_broken_member, ("val_labels.npy is not a readable .npy array",)),
    "image-member-truncated": (
        _short_image_member,
        ("not a readable MedMNIST .npz", "test_images"),
    ),
    "not-a-zip": (_not_a_zip, ("not a readable MedMNIST .npz", "BadZipFile")),
}


@pytest.mark.parametrize("fault", sorted(MEDMNIST))
def test_medmnist_fault_is_refused_and_nothing_written(tmp_path: Path, fault: str) -> None:
    make, words = MEDMNIST[fault]
    source = make(tmp_path)
    before = digest(source)
    root = tmp_path / "out"
    with pytest.raises(FormatError) as info:
        convert_medmnist(source, root)
    text = str(info.value)
    assert str(source) in text
    for word in words:
        assert word in text, (word, text)
    assert_nothing_written(root)
    assert digest(source) == before  # nothing lost


# -- CSV -------------------------------------------------------------------------------------


def _images(base: Path, n: int) -> list[str]:
    names = [f"img/{i:02d}.png" for i in range(n)]
    for i, name in enumerate(names):
        write_image(base / name, (30, 26), "L", seed=i)
    return names


def _csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _table(tmp_path: Path, labels: list[object], *, column: str = "label") -> Path:
    names = _images(tmp_path / "data", len(labels))
    rows = [[n, v] for n, v in zip(names, labels, strict=True)]
    return _csv(tmp_path / "data" / "t.csv", ["path", column], rows)


def _outside_absolute(tmp_path: Path) -> Path:
    table = _table(tmp_path, [0, 1, 0, 1])
    write_image(tmp_path / "elsewhere" / "x.png", (20, 20), "L", seed=9)
    rows = list(csv.reader(table.open()))
    rows[2][0] = str(tmp_path / "elsewhere" / "x.png")
    return _csv(table, rows[0], rows[1:])


def _outside_dotdot(tmp_path: Path) -> Path:
    table = _table(tmp_path, [0, 1, 0, 1])
    write_image(tmp_path / "secret.png", (20, 20), "L", seed=9)
    rows = list(csv.reader(table.open()))
    rows[3][0] = "img/../../secret.png"
    return _csv(table, rows[0], rows[1:])


def _outside_symlink(tmp_path: Path) -> Path:
    table = _table(tmp_path, [0, 1, 0, 1])
    write_image(tmp_path / "private" / "scan.png", (20, 20), "L", seed=9)
    (tmp_path / "data" / "img" / "linked.png").symlink_to(tmp_path / "private" / "scan.png")
    rows = list(csv.reader(table.open()))
    rows[1][0] = "img/linked.png"
    return _csv(table, rows[0], rows[1:])


def _not_an_image(tmp_path: Path) -> Path:
    table = _table(tmp_path, [0, 1, 0, 1])
    (tmp_path / "data" / "img" / "02.png").write_text("this is no PNG")
    return table


def _write(tmp_path: Path, data: bytes) -> Path:
    _images(tmp_path / "data", 2)
    path = tmp_path / "data" / "t.csv"
    path.write_bytes(data)
    return path


#: class of fault -> (make the CSV, error type, words; extra convert_csv keywords)
CSV: dict[str, tuple[Callable[[Path], Path], type[Exception], tuple[str, ...], dict[str, Any]]] = {
    "label-not-integer": (
        lambda d: _table(d, [0, 1, 1.5, 0]),
        LabelError,
        ("row 3 (img/02.png)", "'1.5' is not an integer", "--classes"),
        {},
    ),
    "label-nan": (
        lambda d: _table(d, [0, 1, 1, "nan"]),
        LabelError,
        ("row 4 (img/03.png)", "missing ('nan')", "fill in the cell"),
        {},
    ),
    "label-text-among-numbers": (
        lambda d: _table(d, [0, "abc", 1, 0]),
        LabelError,
        ("row 2 (img/01.png)", "'abc' is not a number", "holds numbers"),
        {},
    ),
    "binary-label-not-0-1": (
        lambda d: _table(d, [0, 1, 2, 1]),
        LabelError,
        ("row 3 (img/02.png)", "binary label 2 is not 0 or 1"),
        {"target": "binary"},
    ),
    "multilabel-cell-missing": (
        lambda d: _csv(
            d / "data" / "t.csv",
            ["path", "a", "b"],
            [[n, 1, "NA" if i == 1 else 0] for i, n in enumerate(_images(d / "data", 3))],
        ),
        LabelError,
        ("row 2 (img/01.png)", "column 'b'", "'NA' is missing"),
        {"tasks": [TaskColumns("ab", "multilabel", ("a", "b"))]},
    ),
    "subject-missing": (
        lambda d: _csv(
            d / "data" / "t.csv",
            ["path", "label", "who"],
            [
                [n, i % 2, "NaN" if i == 2 else f"P{i}"]
                for i, n in enumerate(_images(d / "data", 4))
            ],
        ),
        LabelError,
        ("row 3 (img/02.png)", "no 'who'", "'NaN'"),
        {"subject_column": "who"},
    ),
    "path-absolute": (
        _outside_absolute,
        OutsidePathError,
        ("row 2", "is an absolute path", "--allow-outside-paths"),
        {},
    ),
    "path-dotdot": (
        _outside_dotdot,
        OutsidePathError,
        ("row 3", "img/../../secret.png", "contains '..'"),
        {},
    ),
    "path-symlink-outside": (
        _outside_symlink,
        OutsidePathError,
        ("row 1", "img/linked.png", "symbolic link", "private/scan.png"),
        {},
    ),
    "path-listed-twice": (
        lambda d: _csv(
            d / "data" / "t.csv",
            ["path", "label"],
            [[n, 0] for n in _images(d / "data", 2)] + [["img/00.png", 1]],
        ),
        SourceTreeError,
        ("row 3 (img/00.png)", "listed twice", "row 1"),
        {},
    ),
    "path-missing-file": (
        lambda d: _csv(
            d / "data" / "t.csv",
            ["path", "label"],
            [[n, 0] for n in _images(d / "data", 2)] + [["img/gone.png", 1]],
        ),
        SourceTreeError,
        ("row 3 (img/gone.png)", "does not exist"),
        {},
    ),
    "image-unreadable": (
        _not_an_image,
        SourceTreeError,
        ("row 3 (img/02.png)", "not a readable image", "UnidentifiedImageError"),
        {},
    ),
    "csv-not-utf8": (
        lambda d: _write(d, "path,label\nimg/00.png,caf\xe9\n".encode("latin-1")),
        SourceTreeError,
        ("is not UTF-8", "CSV UTF-8"),
        {},
    ),
    "csv-not-parsable": (
        lambda d: _write(d, b'path,label\nimg/00.png,0\n"img/01.png,1,2,3\nx,y,z,w\n'),
        SourceTreeError,
        ("cannot be read as a CSV", "ParserError"),
        {},
    ),
    "csv-rows-wider-than-header": (
        lambda d: _write(d, b"path,label\nimg/00.png,0,x\nimg/01.png,1,y\n"),
        SourceTreeError,
        ("more fields than its header",),
        {},
    ),
}


@pytest.mark.parametrize("fault", sorted(CSV))
def test_csv_fault_is_refused_and_nothing_written(tmp_path: Path, fault: str) -> None:
    make, error, words, kw = CSV[fault]
    table = make(tmp_path)
    before = digest(table)
    root = tmp_path / "out"
    tasks = kw.pop("tasks", None) or [TaskColumns("label", kw.pop("target", "multiclass"))]
    with pytest.raises(error) as info:
        convert_csv(table, root, "mine", tasks, **kw)
    text = str(info.value)
    assert str(table) in text or "t.csv" in text, text
    for word in words:
        assert word in text, (word, text)
    assert "Traceback" not in text and "\n" not in text
    assert_nothing_written(root)
    assert digest(table) == before


def test_outside_paths_are_read_with_the_opt_in_and_recorded(tmp_path: Path) -> None:
    table = _outside_symlink(tmp_path)
    path = convert_csv(
        table, tmp_path / "out", "mine", [TaskColumns("label")], allow_outside_paths=True
    )
    info = yaml.safe_load((path / "info.yaml").read_text())
    assert info["converted_from"]["allow_outside_paths"] is True


def test_integral_decimals_and_names_stay_valid(tmp_path: Path) -> None:
    table = _table(tmp_path, ["0.0", "1.0", "2", "1"])
    from medimeta.format.reader import DatasetFolder

    folder = DatasetFolder(convert_csv(table, tmp_path / "out", "dec", [TaskColumns("label")]))
    assert folder.task("label").keys == (0, 1, 2)
    named = _table(tmp_path / "n", ["benign", "malignant", "benign", "None"])
    folder = DatasetFolder(convert_csv(named, tmp_path / "out", "nam", [TaskColumns("label")]))
    assert dict(folder.task("label").labels) == {0: "None", 1: "benign", 2: "malignant"}


# -- class folders and MedFMC ----------------------------------------------------------------


def _folders(tmp_path: Path, names: tuple[str, ...]) -> Path:
    for k, name in enumerate(names):
        for i in range(2):
            write_image(tmp_path / "src" / name / f"{i}.png", (30, 30), "L", seed=10 * k + i)
    return tmp_path / "src"


def _folder_with_link(tmp_path: Path) -> Path:
    src = _folders(tmp_path, ("a", "b"))
    write_image(tmp_path / "private" / "p.png", (30, 30), "L", seed=1)
    (src / "a" / "zz.png").symlink_to(tmp_path / "private" / "p.png")
    return src


FOLDERS: dict[str, tuple[Callable[[Path], Path], type[Exception], tuple[str, ...]]] = {
    "folder-name-not-integer": (
        lambda d: _folders(d, ("0", "1", "1.5")),
        LabelError,
        ("'1.5' is not an integer", "1.5/0.png"),
    ),
    "folder-image-links-outside": (
        _folder_with_link,
        OutsidePathError,
        ("'a/zz.png'", "symbolic link"),
    ),
}


@pytest.mark.parametrize("fault", sorted(FOLDERS))
def test_folder_fault_is_refused_and_nothing_written(tmp_path: Path, fault: str) -> None:
    make, error, words = FOLDERS[fault]
    src = make(tmp_path)
    with pytest.raises(error) as info:
        convert_folder(src, tmp_path / "out", "f", "case")
    text = str(info.value)
    assert str(src) in text
    for word in words:
        assert word in text, (word, text)
    assert_nothing_written(tmp_path / "out")


def test_folder_bad_subject_pattern_is_an_option_error(tmp_path: Path) -> None:
    src = _folders(tmp_path, ("a", "b"))
    with pytest.raises(OptionError, match=r"subject pattern '\(unclosed' is not a regular"):
        convert_folder(src, tmp_path / "out", "f", "case", subject_pattern="(unclosed")
    assert_nothing_written(tmp_path / "out")


def _medfmc(tmp_path: Path, train: bytes, test: bytes = b"b.png 1\n") -> Path:
    base = tmp_path / "colon"
    for name in ("a.png", "b.png"):
        write_image(base / "images" / name, (30, 30), "RGB", seed=len(name))
    write_image(tmp_path / "stolen.png", (30, 30), "RGB", seed=3)
    (base / "trainval.txt").write_bytes(train)
    (base / "test_WithLabel.txt").write_bytes(test)
    return base


MEDFMC: dict[str, tuple[bytes, type[Exception], tuple[str, ...]]] = {
    "list-path-escapes": (
        b"a.png 0\n../../stolen.png 1\n",
        OutsidePathError,
        ("trainval.txt:2", "contains '..'"),
    ),
    "list-not-utf8": (b"caf\xe9.png 0\n", SourceTreeError, ("trainval.txt", "not UTF-8")),
    "list-label-not-0-1": (b"a.png 2\n", LabelError, ("trainval.txt:1", "one label 0/1")),
}


@pytest.mark.parametrize("fault", sorted(MEDFMC))
def test_medfmc_fault_is_refused_and_nothing_written(tmp_path: Path, fault: str) -> None:
    train, error, words = MEDFMC[fault]
    base = _medfmc(tmp_path, train)
    with pytest.raises(error) as info:
        convert_medfmc(base, tmp_path / "out")
    for word in words:
        assert word in str(info.value), (word, str(info.value))
    assert_nothing_written(tmp_path / "out")


# -- the command line: one line, no traceback ------------------------------------------------


def _invoke(args: list[str]) -> Any:
    result = CliRunner().invoke(app, args)
    assert "Traceback" not in result.output, result.output
    return result


def test_cli_forms_print_one_line_and_exit_1(tmp_path: Path) -> None:
    table = CSV["label-not-integer"][0](tmp_path / "a")
    result = _invoke(["csv", str(table), "--root", str(tmp_path / "out"), "--id", "x", "-q"])
    assert result.exit_code == 1 and "error:" in result.stderr and "'1.5'" in result.stderr
    npz = MEDMNIST["labels-fewer-than-images"][0](tmp_path)
    result = _invoke(["medmnist", str(npz), "--root", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 1 and "train_labels has 2 rows" in result.stderr
    outside = _outside_dotdot(tmp_path / "b")
    result = _invoke(["csv", str(outside), "--root", str(tmp_path / "out"), "--id", "y", "-q"])
    assert result.exit_code == 1 and "contains '..'" in result.stderr
    assert_nothing_written(tmp_path / "out")


def test_cli_bad_ratios_are_a_usage_error(tmp_path: Path) -> None:
    table = _table(tmp_path, [0, 1, 0, 1])
    args = ["csv", str(table), "--root", str(tmp_path / "out"), "--id", "z", "--ratios", "a,b,c"]
    result = _invoke(args)
    assert result.exit_code == 2 and "--ratios 'a,b,c'" in result.output
    assert_nothing_written(tmp_path / "out")
