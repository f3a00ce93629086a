"""The benchmark plan: cells and their protocols, calibration cached in the out folder,
estimates, --dry-run, --budget, resuming, the merged tables at the end."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path

import pytest
from bench_helpers import tiny_settings

from medimeta.bench.cells import protocol_hash
from medimeta.bench.runner import run_benchmark
from medimeta.bench.settings import (
    BenchSettings,
    format_duration,
    parse_duration,
    resolve_targets,
    split_list,
)
from medimeta.errors import OptionError, UnknownNameError
from medimeta.evaluate.metrics import UndefinedMetricWarning
from medimeta.runs.record import RUN_FILE, read_run


def _run(
    root: Path,
    out: Path,
    settings: BenchSettings,
    targets: tuple[str, ...] = (),
    budget_s: float | None = None,
    dry_run: bool = False,
) -> dict:
    lines: list[str] = []
    settings = replace(settings, targets=tuple(targets), budget_s=budget_s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        summary = run_benchmark(
            root, settings, out=out, dry_run=dry_run, cache=out / "cache", log=lines.append
        )
    summary["log"] = "\n".join(lines)
    return summary


def test_durations_lists_and_targets(bench_root: Path) -> None:
    assert parse_duration("2h") == 7200 and parse_duration("1h30m") == 5400
    assert parse_duration("90") == 90 and parse_duration("45s") == 45
    with pytest.raises(OptionError, match="duration"):
        parse_duration("two hours")
    assert format_duration(3725) == "1 h 02 min" and format_duration(75) == "1 min 15 s"
    assert split_list(["a,b", " c "]) == ["a", "b", "c"]
    assert resolve_targets(bench_root) == [
        "copy:case category",
        "source:case category",
        "target:case category",
    ]
    assert resolve_targets(bench_root, domain="target domain") == ["target:case category"]
    assert resolve_targets(bench_root, ["target:Malignancy", "source"]) == [
        "target:Malignancy",
        "source:case category",
    ]
    assert len(resolve_targets(bench_root, ["target"], all_tasks=True)) == 4
    with pytest.raises(UnknownNameError):
        resolve_targets(bench_root, ["nope"])


def test_dry_run_calibrates_estimates_and_stops(bench_root: Path, tmp_path: Path) -> None:
    settings = tiny_settings(methods=("supervised", "im-pt", "linear-probe", "knn", "mm-pt"))
    summary = _run(bench_root, tmp_path, settings, targets=["target"], dry_run=True)
    cells = summary["cells"]
    assert [c.method for c in cells] == ["supervised", "im-pt", "linear-probe", "knn", "mm-pt"]
    assert all(c.status == "todo" and c.estimate_s and c.estimate_s > 0 for c in cells)
    assert not (tmp_path / "cells").exists()  # nothing ran
    calibration = json.loads((tmp_path / "cache" / "calibration.json").read_text())
    assert {k.split("|")[0] for k in calibration} == {"forward", "train", "probe"}
    assert "benchmark plan: 5 cells, 5 to run" in summary["log"]
    assert "calibrating" in summary["log"]
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert [c["status"] for c in plan["cells"]] == ["todo"] * 5
    # embedding: knn reuses what linear-probe embeds, so it embeds nothing
    lp, knn = cells[2], cells[3]
    assert lp.detail["embed_images"] > 0 and knn.detail["embed_images"] == 0
    # a second plan reads the calibration instead of timing again
    again = _run(bench_root, tmp_path, settings, targets=["target"], dry_run=True)
    assert "calibrating" not in again["log"]
    assert json.loads((tmp_path / "cache" / "calibration.json").read_text()) == calibration


def test_budget_refuses_with_one_line(bench_root: Path, tmp_path: Path) -> None:
    settings = tiny_settings(methods=("im-pt", "linear-probe"))
    with pytest.raises(OptionError) as info:
        _run(bench_root, tmp_path, settings, targets=["target"], budget_s=0.01)
    message = str(info.value)
    assert "\n" not in message
    assert "over the budget of" in message and "most expensive: im-pt target" in message
    assert "--steps" in message and "--methods" in message
    assert not (tmp_path / "cells").exists()


def test_cells_run_record_their_protocol_and_resume(bench_root: Path, tmp_path: Path) -> None:
    settings = tiny_settings(methods=("supervised", "linear-probe", "mm-pt"), seeds=(0, 1))
    summary = _run(bench_root, tmp_path, settings, targets=["target"])
    assert summary["failed"] == []
    records = sorted((tmp_path / "cells").glob(f"*/{RUN_FILE}"))
    assert len(records) == 6
    for path in records:
        cell = read_run(path).cell
        assert cell is not None
        assert cell["hash"] == protocol_hash(cell["protocol"]) and cell["status"] == "done"
        assert cell["seconds"] > 0 and cell["estimate_s"] > 0
        p = cell["protocol"]
        assert p["backbone"]["name"] == "tiny_cnn" and p["image_size"] == 16
        assert p["normalization"] == {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
        assert read_run(path).protocol["environment"]["torch"]
        if p["kind"] == "fewshot":
            e = p["episodes"]
            assert (e["shots"], e["queries"], e["episodes"], e["split"]) == (2, 2, 3, "all")
            assert len(e["sha256"]) == 64 and e["seed"] == p["seed"]
        else:
            assert p["data"]["splits"] == {"train": 18, "val": 6, "test": 12}
    mm = [read_run(p).cell for p in records if "mm-pt" in p.parent.name]
    assert all(r is not None and r["protocol"]["sources"] == ["source:case category"] for r in mm)
    for suffix in (".md", ".json", ".csv", ".tex"):
        assert (tmp_path / f"results{suffix}").is_file()
    table = (tmp_path / "results.md").read_text()
    assert "| Supervised | tiny_cnn |" in table and "(n=2)" in table  # two seeds
    assert "| ImageNet (linear probe) | tiny_cnn |" in table and "(n=6)" in table  # 2 x 3
    stamps = {p: p.stat().st_mtime_ns for p in records}
    again = _run(bench_root, tmp_path, settings, targets=["target"])
    assert all(c.status == "done" for c in again["cells"])
    assert {p: p.stat().st_mtime_ns for p in records} == stamps
    # another setting is another cell; the finished ones stay
    more = _run(
        bench_root,
        tmp_path,
        tiny_settings(methods=("linear-probe",), episodes=4),
        targets=["target"],
    )
    assert [c.status for c in more["cells"]] == ["todo"]
    assert {p: p.stat().st_mtime_ns for p in records} == stamps
    # the merged table holds every finished cell of the folder; the two episode protocols of
    # linear-probe are not pooled but shown as two rows
    table = (tmp_path / "results.md").read_text()
    assert "| Supervised | tiny_cnn |" in table
    assert "| ImageNet (linear probe) \\[episodes=3\\] | tiny_cnn |" in table
    assert "| ImageNet (linear probe) \\[episodes=4\\] | tiny_cnn |" in table


def test_calibration_is_per_backbone_and_size_and_grey_equals_rgb(
    bench_root: Path, tmp_path: Path
) -> None:
    # target is RGB, source grey, both 16 px: one calibration, estimates alike
    settings = tiny_settings(methods=("linear-probe", "im-pt"), episodes=4)
    summary = _run(bench_root, tmp_path, settings, targets=("target", "source"), dry_run=True)
    calibration = json.loads((tmp_path / "cache" / "calibration.json").read_text())
    assert sorted(k.split("|")[0] for k in calibration) == ["forward", "probe", "train"]
    assert all("|16px|" in k and "ch|" not in k for k in calibration)  # no channels, no dataset
    assert all(v["calibration_s"] < 10 for v in calibration.values())
    by = {(c.target.split(":")[0], c.method): c.estimate_s for c in summary["cells"]}
    for method in ("linear-probe", "im-pt"):
        grey, rgb = by["source", method], by["target", method]
        assert 0.5 < grey / rgb < 2.0, (method, grey, rgb)
    # another benchmark folder with the same cache folder reads the calibration
    lines: list[str] = []
    other = replace(settings, targets=("target",))
    run_benchmark(
        bench_root, other, out=tmp_path / "o2", dry_run=True, cache=tmp_path / "cache",
        log=lines.append,
    )  # fmt: skip
    assert not any("calibrating" in line for line in lines)
