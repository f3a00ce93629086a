"""``medimeta results merge``: methods x targets, mean ± 95 % interval and counts, in the
layout of the paper's Tables 3 and 4, as Markdown, LaTeX, CSV and JSON."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from medimeta.bench.merge import find_records, merge_results, row_order
from medimeta.cli.bench import results_app
from medimeta.errors import FormatError
from medimeta.evaluate.ci import mean_ci
from medimeta.runs.model import RunRecord, TargetRef
from medimeta.runs.record import read_run, write_run
from medimeta.runs.tables import merge_tables


def _fewshot(
    folder: Path,
    ds: str,
    method: str,
    paper: str,
    values: list[float],
    shots: int = 5,
    run: str = "r",
) -> None:
    folder.mkdir(parents=True)
    record = RunRecord(
        kind="fewshot",
        method=method,
        paper_name=paper,
        target=TargetRef(ds, "t", "BINARY_CLASSIFICATION"),
        backbone="effnet",
        shots=shots,
        per_episode=[{"episode": i, "metrics": {"auroc": v}} for i, v in enumerate(values)],
        protocol={
            "config": {"backbone": "effnet"},
            "episodes": {"settings": {"shots": shots}, "file_sha256": f"sha-{ds}-{shots}"},
            "run": f"{run}-{method}-{ds}",
        },
    )
    write_run(folder, record)


def _supervised(folder: Path, ds: str, auroc: float, seed: int) -> None:
    folder.mkdir(parents=True)
    record = RunRecord(
        kind="supervised",
        method="supervised",
        paper_name="Supervised",
        target=TargetRef(ds, "t"),
        backbone="effnet",
        seed=seed,
        summary={"auroc": {"mean": auroc, "ci": None, "n": 12}},
    )
    write_run(folder, record)


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    base = tmp_path / "runs"
    rng = np.random.default_rng(0)
    _fewshot(
        base / "a" / "lp",
        "bus",
        "linear-probe",
        "ImageNet (linear probe)",
        list(rng.uniform(0.6, 0.9, 20)),
    )
    _fewshot(
        base / "a" / "lp-seed1",
        "bus",
        "linear-probe",
        "ImageNet (linear probe)",
        list(rng.uniform(0.6, 0.9, 10)),
        run="s1",
    )
    _fewshot(base / "b" / "knn", "pbc", "knn", "ImageNet (kNN)", [0.8, 0.9, float("nan"), 0.7])
    _fewshot(base / "b" / "knn1", "pbc", "knn", "ImageNet (kNN)", [0.5, 0.6], shots=1)
    _supervised(base / "sup0", "bus", 0.95, 0)
    _supervised(base / "sup1", "bus", 0.97, 1)
    return base


def test_tables_pool_episodes_and_seeds(runs: Path) -> None:
    records = find_records([runs, runs / "a"])  # a folder given twice is read once
    assert len(records) == 6
    merged = merge_tables(records, row_order=row_order())
    names = [t["table"] for t in merged["tables"]]
    assert names == ["supervised", "1-shot", "5-shot"]
    sup, _, five = merged["tables"]
    assert sup["rows"][0]["training_type"] == "Supervised"
    mean, ci = mean_ci([0.95, 0.97])
    assert sup["rows"][0]["cells"]["bus"] == pytest.approx({"mean": mean, "ci": ci, "n": 2})
    labels = [c["label"] for c in five["columns"]]
    assert labels == ["bus", "pbc"]
    rows = {r["training_type"]: r["cells"] for r in five["rows"]}
    assert list(rows) == ["ImageNet (linear probe)", "ImageNet (kNN)"]  # the paper's order
    bus_values = [
        e["metrics"]["auroc"]
        for name in ("lp", "lp-seed1")
        for e in read_run(runs / "a" / name).per_episode
    ]
    mean, ci = mean_ci(bus_values)
    expected = {"mean": mean, "ci": ci, "n": 30}
    assert rows["ImageNet (linear probe)"]["bus"] == pytest.approx(expected)
    assert rows["ImageNet (kNN)"]["pbc"]["n"] == 3  # the undefined episode is left out
    assert rows["ImageNet (linear probe)"].get("pbc") is None


def test_every_output_format(runs: Path, tmp_path: Path) -> None:
    for suffix in (".md", ".tex", ".csv", ".json"):
        merge_results([runs], tmp_path / f"table{suffix}")
    md = (tmp_path / "table.md").read_text()
    assert "### Table 3 layout: AUROC (%) on the test set, fully supervised" in md
    assert "| Supervised | effnet | 96.0 ± 12.7 (n=2) |" in md
    assert "| ImageNet (kNN) | effnet | – | 80.0 ± 24.8 (n=3) |" in md
    tex = (tmp_path / "table.tex").read_text()
    assert r"\begin{tabular}" in tex and r"96.0 $\pm$ 12.7 (n=2) \\" in tex
    rows = list(csv.DictReader((tmp_path / "table.csv").open()))
    assert {r["table"] for r in rows} == {"supervised", "1-shot", "5-shot"}
    assert rows[0]["metric"] == "auroc" and rows[0]["n"] == "2"
    data = json.loads((tmp_path / "table.json").read_text())
    assert len(data["sources"]) == 6 and data["tables"][0]["rows"][0]["cells"]["bus"]["n"] == 2
    with pytest.raises(FormatError, match="unknown output format"):
        merge_results([runs], tmp_path / "table.xlsx")
    with pytest.raises(FormatError, match="not a run folder"):
        merge_results([tmp_path / "table.md"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FormatError, match="no finished run records"):
        merge_results([tmp_path / "empty"])


def test_cli_merge(runs: Path, tmp_path: Path) -> None:
    app = typer.Typer()
    app.add_typer(results_app, name="results")
    out = tmp_path / "t.md"
    result = CliRunner().invoke(
        app,
        [
            "results",
            "merge",
            str(runs / "a"),
            str(runs / "b"),
            "--out",
            str(out),
            "--out",
            str(tmp_path / "t.csv"),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert out.is_file() and (tmp_path / "t.csv").is_file()
    assert "| ImageNet (linear probe) | effnet |" in result.output
