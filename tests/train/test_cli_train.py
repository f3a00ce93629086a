"""The train / fewshot / evaluate / score commands through typer's test runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from medimeta.cli.train import evaluate_command, fewshot_command, score_command, train_command
from medimeta.runs.record import read_run

app = typer.Typer()
app.command("train")(train_command)
app.command("fewshot")(fewshot_command)
app.command("evaluate")(evaluate_command)
app.command("score")(score_command)
RUNNER = CliRunner()


def _ok(args: list[str]) -> str:
    result = RUNNER.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.filterwarnings("ignore::medimeta.evaluate.metrics.UndefinedMetricWarning")
def test_train_score_and_evaluate(learn_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    _ok(
        [
            "train",
            "learn",
            "case category",
            "--root",
            str(learn_root),
            "--backbone",
            "tiny_cnn",
            "--image-size",
            "32",
            "--pretrained",
            "none",
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--seed",
            "0",
            "--seed",
            "1",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == [0, 1] and len(summary["auroc"]["values"]) == 2
    result = read_run(out / "seed_1")
    assert result.settings["epochs"] == 2 and result.settings["preset"] == "paper"
    preds = out / "seed_1" / "predictions_test.csv"
    text = _ok(["score", str(preds), "--json"])
    assert json.loads(text)["metrics"] == pytest.approx(result.details["test"]["metrics"])
    assert "auroc" in _ok(["score", str(preds), "--mode", "medmnist"])
    report = _ok(
        [
            "evaluate",
            "--predictions",
            str(preds),
            "--by",
            "sex",
            "--by",
            "age",
            "--bins",
            "age=0,50,100",
            "--root",
            str(learn_root),
            "--n-boot",
            "50",
            "--min-count",
            "2",
        ]
    )
    assert "## By sex" in report and "[50.0, 100.0)" in report
    saved = json.loads((out / "seed_1" / "predictions_test_subgroups.json").read_text())
    assert sum(g["n"] for g in saved["groupings"][0]["groups"]) == 24
    # without --root: the dataset folder recorded in the run's record is used
    again = RUNNER.invoke(
        app,
        ["evaluate", "--predictions", str(preds), "--by", "sex", "--n-boot", "0"],
        env={"MEDIMETA_ROOT": str(tmp_path / "elsewhere")},
    )
    assert again.exit_code == 0, again.output
    assert "## By sex" in again.output


@pytest.mark.filterwarnings("ignore::medimeta.evaluate.metrics.UndefinedMetricWarning")
def test_fewshot_command(fewshot_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "fs"
    text = _ok(
        [
            "fewshot",
            "--root",
            str(fewshot_root),
            "--target",
            "target:Malignancy",
            "--method",
            "linear-probe",
            "--shots",
            "2",
            "--query",
            "3",
            "--episodes",
            "3",
            "--backbone",
            "tiny_cnn",
            "--pretrained",
            "none",
            "--image-size",
            "16",
            "--steps",
            "5",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert "| Training Type | Backbone | target |" in text
    record = read_run(out)
    assert record.settings["probe_steps"] == 5 and record.protocol["episodes"]["evaluated"] == 3
    assert "± " in _ok(["score", str(out / "predictions_query.csv")])
