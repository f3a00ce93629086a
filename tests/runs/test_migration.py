"""Run records of version 0.1 (files the landed main wrote, committed under
tests/fixtures/legacy_v01) read as today's records: few-shot, supervised and benchmark cells,
in merged tables with the numbers the old tables had, in the report and in the plots."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import pytest

from medimeta.bench.merge import merge_results
from medimeta.plots import fewshot_intervals, write_report
from medimeta.runs.model import RunRecord
from medimeta.runs.record import RUN_FILE, find_run_folders, read_run, write_run

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_v01"


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    copy = tmp_path / "legacy"
    shutil.copytree(LEGACY, copy)
    return copy


def test_a_few_shot_record_of_version_01(legacy: Path) -> None:
    old = json.loads((legacy / "fewshot" / "results.json").read_text())
    record = read_run(legacy / "fewshot")
    assert record.kind == "fewshot" and record.method == "protonet"
    assert record.paper_name == "ProtoNet" and record.backbone == "tiny_cnn"
    assert record.target is not None and record.target.id == "bus:case category"
    assert record.shots == 2 and record.seed == 0
    assert record.summary == old["summary"] and record.per_episode == old["per_episode"]
    assert record.settings == old["config"]
    assert record.protocol["episodes"]["file_sha256"] == old["episodes"]["file_sha256"]
    assert record.protocol["environment"]["toolkit"] == "medimeta-toolkit"
    assert record.details["timings"] == old["timings"]
    # written again it is a record of this version, with the same content
    write_run(legacy / "fewshot", record)
    again = read_run(legacy / "fewshot")
    assert json.loads((legacy / "fewshot" / RUN_FILE).read_text())["version"] == 2
    assert again == record


def test_a_supervised_record_of_version_01(legacy: Path) -> None:
    old = json.loads((legacy / "supervised" / "result.json").read_text())
    record = read_run(legacy / "supervised")
    assert record.kind == "supervised" and record.backbone == "tiny_cnn"
    assert record.target is not None and record.target.dataset_id == "bus"
    assert record.details["test"] == old["test"] and record.settings == old["config"]
    assert record.summary["auroc"]["mean"] == old["test"]["metrics"]["auroc"]


def test_benchmark_cells_of_version_01_merge_to_the_old_numbers(
    legacy: Path, tmp_path: Path
) -> None:
    cells = find_run_folders([legacy / "bench"])
    records = [read_run(c) for c in cells]
    assert sorted(r.kind for r in records) == ["fewshot", "supervised"]
    for record in records:
        assert record.cell is not None and record.cell["status"] == "done"
        assert len(record.cell["hash"]) == 64 and record.cell["protocol"]["kind"] == record.kind
    merged = merge_results([legacy / "bench"], tmp_path / "new.csv")
    assert merged["records"] == 2
    with open(legacy / "bench" / "results_v01.csv", newline="") as fh:
        old = {(r["table"], r["training_type"], r["target"]): r for r in csv.DictReader(fh)}
    with open(tmp_path / "new.csv", newline="") as fh:
        new = {(r["table"], r["training_type"], r["target"]): r for r in csv.DictReader(fh)}
    assert new.keys() == old.keys()
    for key, row in old.items():
        for column in ("mean", "ci", "n"):
            assert new[key][column] == row[column], (key, column)


def test_old_and_new_records_together_in_report_and_plot(legacy: Path, tmp_path: Path) -> None:
    fewshot = [r for r in (read_run(c) for c in find_run_folders([legacy])) if r.kind == "fewshot"]
    assert len(fewshot) == 2
    fig = fewshot_intervals(fewshot)
    assert len(fig.axes[0].containers) == 2
    rep = write_report(tmp_path / "no-data", tmp_path / "site", runs=[legacy], verify=False)
    assert len(rep.runs) == 4 and not rep.problems
    for entry in rep.runs:
        assert "?" not in entry.target + entry.model and entry.target == "bus:case category"


def test_a_record_of_an_unknown_version_is_refused(tmp_path: Path) -> None:
    record = RunRecord(kind="fewshot")
    data = record.to_dict()
    data["version"] = 99
    (tmp_path / RUN_FILE).write_text(json.dumps(data))
    from medimeta.errors import FormatError

    with pytest.raises(FormatError, match="unknown schema version"):
        read_run(tmp_path)
    assert math.isnan(record.metric("auroc")[0])
