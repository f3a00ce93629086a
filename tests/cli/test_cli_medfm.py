"""MedFM end to end: `episodes import-medfm`, `fewshot` on the imported files, `results medfm`."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pytest
import torch

from episodes.medfm_toys import make_medfmc
from medimeta.cli.app import main
from medimeta.evaluate.compute import compute_metrics
from medimeta.runs.record import read_run
from medimeta.train.fewshot.medfm import medfm_record

TINY = ["--backbone", "tiny_cnn", "--pretrained", "none", "--image-size", "16", "--no-cache"]


@pytest.fixture(autouse=True)
def one_thread() -> object:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _invoke(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture(scope="module")
def medfm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("medfm-cli")
    root = base / "root"
    return {"root": root, **{k: make_medfmc(base / "src", root, k) for k in ("chest", "colon")}}


def _fewshot(
    root: Path, file: Path, out: Path, method: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["fewshot", "--root", str(root), "--episodes-file", str(file), "--method", method]
    code, text = _invoke([*args, *TINY, "--out", str(out), "-q"], capsys)
    assert code == 0, text


def _by_hand(run: Path, target: str) -> dict[str, float]:
    """MedFM's metrics from the run's saved query predictions."""
    p = json.loads((run / "episodes" / "episode_00000.json").read_text())["predictions"]
    return compute_metrics(target, np.asarray(p["labels"]), np.asarray(p["scores"]), mode="medfm")


def test_import_run_and_average_over_experiments(
    medfm: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = medfm["root"]
    code, text = _invoke(
        ["episodes", "import-medfm", str(medfm["chest"]), "--root", str(root),
         "--dataset", "medfmc_chest", "--out", str(tmp_path / "eps"), "--exp", "1..2"],
        capsys,
    )  # fmt: skip
    assert code == 0, text
    assert "wrote 4 episode files" in text and "duplicates" in text
    imported = read_run(tmp_path / "eps")
    assert imported.kind == "medfm-import" and len(imported.details["imported"]) == 4
    assert {i["lists"]["train"]["file"] for i in imported.details["imported"]} >= {
        "chest_1-shot_train_exp1.txt"
    }
    runs = {}
    for shots in (1, 5):
        for k in (1, 2):
            runs[shots, k] = tmp_path / f"run{shots}_{k}"
            _fewshot(root, tmp_path / "eps" / f"chest_{shots}-shot_exp{k}.json",
                     runs[shots, k], "protonet", capsys)  # fmt: skip
    record = read_run(runs[5, 1])
    assert record.target is not None
    target = str(record.target.target)
    assert record.details["medfm"]["protocol"]["experiment"] == 1
    hand = {key: _by_hand(run, target) for key, run in runs.items()}
    assert record.details["medfm"]["metrics"] == pytest.approx(hand[5, 1])
    assert "MedFM protocol: chest 5-shot experiment 1" in (runs[5, 1] / "results.md").read_text()
    dirs = [str(runs[key]) for key in sorted(runs)]
    code, text = _invoke(["results", "medfm", *dirs, "--out", str(tmp_path / "t.md")], capsys)
    assert code == 0, text
    assert "| shots | experiments | mAP | AUC |" in (tmp_path / "t.md").read_text()
    summary = read_run(tmp_path / "t.json")
    assert summary.kind == "medfm-average"
    for shots in (1, 5):
        entry = summary.details["shots"][str(shots)]
        assert entry["experiments"] == [1, 2]
        for name in ("map", "auroc"):
            values = [hand[shots, k][name] for k in (1, 2)]
            assert entry["metrics"][name]["mean"] == pytest.approx(statistics.mean(values))
            assert entry["metrics"][name]["sd"] == pytest.approx(statistics.stdev(values))
    lists = {(r["shots"], r["experiment"]): r["lists"] for r in summary.protocol["runs"]}
    assert lists[5, 2]["train"]["file"] == "chest_5-shot_train_exp2.txt"
    assert summary.method == "protonet" and summary.settings["backbone"] == "tiny_cnn"
    # refusals: one experiment twice, two methods
    code, text = _invoke(["results", "medfm", dirs[0], dirs[0]], capsys)
    assert code == 2 and "appears twice" in text
    other = tmp_path / "probe"
    _fewshot(root, tmp_path / "eps" / "chest_1-shot_exp2.json", other, "linear-probe", capsys)
    code, text = _invoke(["results", "medfm", dirs[0], str(other)], capsys)
    assert code == 2 and "mix methods" in text


def test_binary_runs_report_accuracy_and_refuse_other_datasets(
    medfm: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = medfm["root"]
    for key in ("colon", "chest"):
        code, text = _invoke(
            ["episodes", "import-medfm", str(medfm[key]), "--root", str(root), "--dataset",
             f"medfmc_{key}", "--out", str(tmp_path / "eps"), "--shots", "1", "-q"],
            capsys,
        )  # fmt: skip
        assert code == 0, text
    runs = []
    for k in (1, 2):
        runs.append(tmp_path / f"colon{k}")
        _fewshot(root, tmp_path / "eps" / f"colon_1-shot_exp{k}.json", runs[-1], "protonet", capsys)
    code, text = _invoke(["results", "medfm", *map(str, runs)], capsys)
    assert code == 0 and "| shots | experiments | Acc | AUC |" in text
    target = str(read_run(runs[0]).target.target)  # type: ignore[union-attr]
    acc = statistics.mean(_by_hand(r, target)["accuracy"] for r in runs)
    assert f"| 1 | 1, 2 | {acc:.2f} ± " in text
    chest = tmp_path / "chest1"
    _fewshot(root, tmp_path / "eps" / "chest_1-shot_exp1.json", chest, "protonet", capsys)
    code, text = _invoke(["results", "medfm", str(runs[0]), str(chest)], capsys)
    assert code == 2 and "mix datasets" in text


def test_sampled_runs_carry_no_medfm_block() -> None:
    header = {"task": {"target": "BINARY_CLASSIFICATION"}}
    assert medfm_record(header, []) is None
