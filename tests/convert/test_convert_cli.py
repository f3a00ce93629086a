"""``medimeta convert medmnist|medfmc|folder|csv`` through the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from fixtures.writing import make_npz, write_image
from medimeta.cli.convert import app
from medimeta.format.reader import DatasetFolder
from medimeta.format.verify import verify_dataset


def _run(*args: str) -> tuple[int, str, str]:
    root = typer.Typer()
    root.add_typer(app, name="convert")
    result = CliRunner().invoke(root, ["convert", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.realdata
def test_medmnist_command(realdata: Path, tmp_path: Path) -> None:
    npz = str(realdata / "medmnist-v2-28" / "breastmnist.npz")
    code, out, err = _run("medmnist", npz, "--root", str(tmp_path), "--id", "bm", "-j", "2")
    assert code == 0, err
    assert out.splitlines()[-1] == str(tmp_path / "bm")
    assert "780 samples {'train': 546, 'val': 78, 'test': 156}" in out
    code, out, err = _run("medmnist", npz, "--root", str(tmp_path), "--id", "bm", "-q")
    assert code == 1 and "already exists" in err and "--overwrite" in err
    code, out, err = _run(
        "medmnist",
        npz,
        "--root",
        str(tmp_path),
        "--id",
        "bm",
        "-q",
        "--overwrite",
        "--resample",
        "bicubic",
    )
    assert code == 0, err
    assert DatasetFolder(tmp_path / "bm").info["converted_from"]["resample"] == "bicubic"


def test_medmnist_command_reports_bad_input(tmp_path: Path) -> None:
    make_npz(tmp_path / "mystery.npz", size=28, channels=1, counts=(2, 1, 1))
    code, _, err = _run("medmnist", str(tmp_path / "mystery.npz"), "--root", str(tmp_path))
    assert code == 1 and "error: unknown MedMNIST 2D flag" in err
    with pytest.warns(UserWarning):
        code, _, err = _run(
            "medmnist",
            str(tmp_path / "mystery.npz"),
            "--root",
            str(tmp_path / "out"),
            "--flag",
            "octmnist",
            "-q",
        )
    assert code == 0, err
    assert verify_dataset(tmp_path / "out" / "octmnist").ok


def test_folder_and_csv_commands(tmp_path: Path) -> None:
    rows = ["path,grade,patient"]
    for i in range(12):
        cls = ("low", "high")[i % 2]
        write_image(tmp_path / "src" / cls / f"p{i // 2} img{i}.png", (40, 30), "RGB", i)
        rows.append(f"{cls}/p{i // 2} img{i}.png,{i % 3},P{i // 2}")
    (tmp_path / "src" / "list.csv").write_text("\n".join(rows) + "\n")
    code, _, err = _run(
        "folder",
        str(tmp_path / "src"),
        "--root",
        str(tmp_path / "out"),
        "--id",
        "f",
        "--task",
        "grade",
        "--target",
        "binary",
        "--classes",
        "low,high",
        "--channels",
        "1",
        "--subject-pattern",
        r"/(p\d+) ",
        "-q",
    )
    assert code == 0, err
    folder = DatasetFolder(tmp_path / "out" / "f")
    assert dict(folder.task("grade").labels) == {0: "low", 1: "high"}
    assert folder.num_channels == 1 and set(folder.annotations["patient_id"]) == {
        f"p{i}" for i in range(6)
    }
    code, _, err = _run(
        "csv",
        str(tmp_path / "src" / "list.csv"),
        "--root",
        str(tmp_path / "out"),
        "--id",
        "c",
        "--label",
        "grade",
        "--target",
        "ordinal",
        "--subject-column",
        "patient",
        "--ratios",
        "0.5,0.25,0.25",
        "--license",
        "CC BY 4.0",
        "--domain",
        "Toy",
        "-q",
    )
    assert code == 0, err
    folder = DatasetFolder(tmp_path / "out" / "c")
    assert folder.task("grade").keys == (0, 1, 2) and folder.num_channels == 3
    assert (
        (tmp_path / "out" / "c" / "LICENSE")
        .read_text()
        .startswith("This dataset is made available under the Creative Commons Attribution 4.0")
    )
    assert verify_dataset(tmp_path / "out" / "c").ok
    code, _, err = _run(
        "csv",
        str(tmp_path / "src" / "list.csv"),
        "--root",
        str(tmp_path),
        "--id",
        "bad",
        "--label",
        "nope",
        "-q",
    )
    assert code == 1 and "'nope'" in err and "not found" in err


def test_medfmc_command(tmp_path: Path) -> None:
    base = tmp_path / "colon"
    lines = {"trainval.txt": [], "test_WithLabel.txt": []}
    for i in range(8):
        name = f"slide {i // 2}_{i:04d}.png"
        write_image(base / "images" / name, (32, 32), "RGB", i)
        lines["test_WithLabel.txt" if i >= 6 else "trainval.txt"].append(f"{name} {i % 2}")
    for file, content in lines.items():
        (base / file).write_text("\n".join(content) + "\n")
    code, out, err = _run("medfmc", str(base), "--root", str(tmp_path / "out"), "-q")
    assert code == 0, err
    assert out.strip() == str(tmp_path / "out" / "medfmc_colon")
    assert verify_dataset(tmp_path / "out" / "medfmc_colon").ok
