"""``medimeta list``, ``info`` and ``verify`` through the real CLI entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from fixtures.release import ToySpec, make_release_dataset
from medimeta.cli.app import app

runner = CliRunner()


def test_list_marks_present_datasets(tmp_path: Path) -> None:
    make_release_dataset(tmp_path, ToySpec(dataset_id="mine"))
    result = runner.invoke(app, ["list", "--root", str(tmp_path)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "organs_sagittal" in result.output and "Breast Ultrasound" in result.output
    assert "Other datasets in the root (not in the release): mine" in result.output


def test_list_filters_and_env_root(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["list", "--domain", "retinal fundus"],
        env={"MEDIMETA_ROOT": str(tmp_path), "COLUMNS": "250"},
    )
    assert result.exit_code == 0, result.output
    assert "dr_uwf" in result.output and "bus" not in result.output.split()


def test_info_shows_tasks_and_licence() -> None:
    result = runner.invoke(app, ["info", "dr_regular"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "Artifact" in result.output and "10: Cover the entire posterior pole" in result.output
    assert "CC BY-SA 4.0" in result.output


def test_verify_exit_codes(tmp_path: Path) -> None:
    path = make_release_dataset(tmp_path, ToySpec(dataset_id="mine"))
    ok = runner.invoke(app, ["verify", "--root", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    assert "1 of 1 dataset OK" in ok.output
    np.save(path / "task_labels" / "Malignancy.npy", np.full(12, 5))
    bad = runner.invoke(app, ["verify", "mine", "--root", str(tmp_path)])
    assert bad.exit_code == 1 and "ERROR" in bad.output and "Malignancy.npy" in bad.output
    missing = runner.invoke(app, ["verify", "bus", "--root", str(tmp_path)])
    assert missing.exit_code == 1 and "not present" in missing.output


def test_console_script_reports_library_errors_cleanly() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from medimeta.cli.app import main; main()", "info", "buss"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "did you mean 'bus'" in proc.stderr and "Traceback" not in proc.stderr


def test_info_knows_converted_datasets_with_counts(tmp_path: Path) -> None:
    path = make_release_dataset(tmp_path, ToySpec(dataset_id="breastmnist"))
    result = runner.invoke(
        app, ["info", "breastmnist", "--root", str(tmp_path)], env={"COLUMNS": "80"}
    )
    assert result.exit_code == 0, result.output
    assert "breastmnist present at" in result.output
    assert "splits: train 8, val 0, test 4" in result.output
    labels = np.load(path / "task_labels" / "case category.npy")
    as_json = runner.invoke(app, ["info", "breastmnist", "--root", str(tmp_path), "--json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)["present"]
    task = next(t for t in data["tasks"] if t["name"] == "case category")
    assert [c["all"] for c in task["classes"]] == [int((labels == k).sum()) for k in (0, 1, 2)]
    assert sum(c["train"] + c["test"] for c in task["classes"]) == 12


def test_info_of_a_release_dataset_in_the_root_adds_counts(tmp_path: Path) -> None:
    make_release_dataset(tmp_path, ToySpec(dataset_id="bus", name="Breast Ultrasound"))
    result = runner.invoke(app, ["info", "bus", "--root", str(tmp_path)], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "bus: Breast Ultrasound (Breast ultrasound)" in result.output  # the catalog entry
    assert "bus present at" in result.output and "case category" in result.output


def test_info_unknown_id_suggests_root_datasets(tmp_path: Path) -> None:
    make_release_dataset(tmp_path, ToySpec(dataset_id="breastmnist"))
    result = runner.invoke(app, ["info", "breastmnst", "--root", str(tmp_path)])
    assert result.exit_code != 0
    assert "did you mean 'breastmnist'" in str(result.exception)


def test_list_fits_80_columns_and_has_json(tmp_path: Path) -> None:
    make_release_dataset(tmp_path, ToySpec(dataset_id="breastmnist"))
    result = runner.invoke(app, ["list", "--root", str(tmp_path)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    for ds_id in ("organs_sagittal", "mammo_calc", "skinl_photo", "breastmnist"):
        assert any(ds_id in line.split() for line in lines), ds_id  # ids are never cut
    assert "malignan…" not in result.output and "…" not in result.output
    rows = json.loads(runner.invoke(app, ["list", "--root", str(tmp_path), "--json"]).output)
    by_id = {r["id"]: r for r in rows}
    assert len(rows) == 20 and by_id["breastmnist"]["present"] and not by_id["bus"]["present"]
    assert by_id["breastmnist"]["in_catalog"] is False
    assert by_id["dr_regular"]["tasks"][0] == "DR level"


def test_partial_builds_are_listed_and_inspectable(tmp_path: Path) -> None:
    import yaml

    path = make_release_dataset(tmp_path, ToySpec(dataset_id="bus", name="Breast Ultrasound"))
    info = yaml.safe_load((path / "info.yaml").read_text())
    (path / "info.yaml").write_text(yaml.safe_dump({**info, "partial": True}, sort_keys=False))
    rows = json.loads(runner.invoke(app, ["list", "--root", str(tmp_path), "--json"]).output)
    assert next(r for r in rows if r["id"] == "bus")["partial"] is True
    listed = runner.invoke(app, ["list", "--root", str(tmp_path)], env={"COLUMNS": "80"})
    assert any("partial" in line and " bus " in line for line in listed.output.splitlines())
    shown = runner.invoke(app, ["info", "bus", "--root", str(tmp_path)], env={"COLUMNS": "100"})
    assert shown.exit_code == 0 and "bus partial build at" in shown.output
