"""Meta-Baseline in ``medimeta benchmark``: its cell records the protocol (settings, sources,
excluded datasets) and the learned tau, resumes, and is estimated without a trained stage."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import typer
from bench_helpers import tiny_settings
from typer.testing import CliRunner

from medimeta.bench.cells import protocol_hash
from medimeta.bench.runner import run_benchmark
from medimeta.cli.bench import benchmark_command
from medimeta.errors import OptionError
from medimeta.evaluate.metrics import UndefinedMetricWarning
from medimeta.runs.record import RUN_FILE, read_run


def _run(root: Path, out: Path, *, dry_run: bool = False, budget_s: float | None = None) -> dict:
    lines: list[str] = []
    settings = tiny_settings(
        methods=("linear-probe", "meta-baseline"), targets=("target",), budget_s=budget_s
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        summary = run_benchmark(
            root, settings, out=out, dry_run=dry_run, cache=out / "cache", log=lines.append
        )
    summary["log"] = "\n".join(lines)
    return summary


def test_meta_baseline_cell_records_its_protocol_and_resumes(
    bench_root: Path, tmp_path: Path
) -> None:
    summary = _run(bench_root, tmp_path)
    assert summary["failed"] == []
    assert "sources: source:case category; excluded: copy (derived from target)" in summary["log"]
    (folder,) = [p for p in (tmp_path / "cells").iterdir() if "_meta-baseline_" in p.name]
    record = read_run(folder)
    rec = record.cell
    assert rec is not None
    p = rec["protocol"]
    assert rec["hash"] == protocol_hash(p) and p["paper_name"] == "Meta-Baseline"
    assert p["sources"] == ["source:case category"]
    assert p["excluded"]["copy"] == "derived from target"
    c = p["config"]
    assert (c["pretrain_steps"], c["meta_steps"], c["meta_shots"], c["meta_queries"]) == (
        3,
        2,
        2,
        2,
    )
    assert (c["mb_lr"], c["mb_tau"]) == (1e-3, 10.0) and "finetune_steps" not in c
    stage = record.details["stage"]
    assert isinstance(stage["tau"], float) and stage["tau"] != 10.0
    assert stage["features"]["computed"] > 0  # the trained backbone's own features
    detail = rec["estimate_detail"]
    assert detail["stage_s"] > 0 and detail["embed_images"] > 0 and rec["estimate_s"] > 0
    assert "| Meta-Baseline | tiny_cnn |" in (tmp_path / "results.md").read_text()
    calibration = json.loads((tmp_path / "cache" / "calibration.json").read_text())
    assert {k.split("|")[0] for k in calibration} == {"forward", "train", "probe"}
    stamps = {q: q.stat().st_mtime_ns for q in folder.rglob("*") if q.is_file()}
    again = _run(bench_root, tmp_path)
    assert all(cell.status == "done" for cell in again["cells"])
    assert {q: q.stat().st_mtime_ns for q in folder.rglob("*") if q.is_file()} == stamps
    # without its record the cell is to do again, but its trained stage and episodes are there
    (folder / RUN_FILE).unlink()
    plan = _run(bench_root, tmp_path, dry_run=True)
    (cell,) = [c for c in plan["cells"] if c.method == "meta-baseline"]
    assert cell.status == "todo" and cell.detail["stage_s"] == 0 and cell.detail["episodes"] == 0


def test_cli_plans_meta_baseline_with_its_options(bench_root: Path, tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(benchmark_command)
    args = ["--root", str(bench_root), "--targets", "target", "--methods", "meta-baseline"]
    args += ["--backbones", "tiny_cnn", "--shots", "2", "--query", "2", "--episodes", "2"]
    args += ["--image-size", "16", "--pretrain-steps", "7", "--meta-steps", "4"]
    args += ["--out", str(tmp_path), "--cache", str(tmp_path / "cache"), "--dry-run"]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "meta-baseline target:case category tiny_cnn 2-shot seed 0" in result.output
    assert "sources: source:case category" in result.output
    plan = json.loads((tmp_path / "plan.json").read_text())
    (cell,) = plan["cells"]
    assert cell["sources"] == ["source:case category"] and cell["estimate_s"] > 0
    assert cell["estimate_detail"]["stage_s"] > 0
    with pytest.raises(OptionError, match="--meta-steps, --pretrain-steps"):
        _run(bench_root, tmp_path / "budget", budget_s=0.001)
