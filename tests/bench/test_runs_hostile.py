"""Damaged and edited run folders heal: nothing in a folder is trusted, nothing fails for good.

A finished benchmark (two few-shot cells, one supervised cell; tiny_cnn) is copied for each
class of fault and damaged as a crash or a careless hand would: an episode result truncated or
edited (with and without recomputing its digest), copied from another episode, scores made
NaN; a finished cell's episode file, record or prediction file edited, its record cut short;
a supervised cell's last checkpoint truncated. The benchmark is run again: every damaged file
is named in one warning line and computed again, no ``failed.txt`` appears, and the merged
table holds the numbers of the undamaged run. ``results merge`` leaves damaged records out
with a warning, and a finished plan in a folder that cannot be written says "nothing to do"
and exits 0 without writing anything.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from bench_helpers import tiny_settings

import medimeta.safeio as safeio
from medimeta.bench.merge import merge_results
from medimeta.bench.runner import FAILED_FILE, run_benchmark
from medimeta.cli.app import main
from medimeta.evaluate.metrics import UndefinedMetricWarning
from medimeta.runs.integrity import DamagedResultWarning, seal
from medimeta.runs.record import RUN_FILE, read_run

SETTINGS = tiny_settings(methods=("linear-probe", "protonet", "supervised"), targets=("target",))


def _run(root: Path, out: Path) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return run_benchmark(root, SETTINGS, out=out, cache=out.parent / "cache")


@pytest.fixture(scope="module")
def finished(bench_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs-hostile") / "bench"
    summary = _run(bench_root, out)
    assert summary["failed"] == [] and len(summary["cells"]) == 3
    return out


def _copy(finished: Path, tmp_path: Path) -> Path:
    out = tmp_path / "bench"
    shutil.copytree(finished, out)
    return out


def _cell(out: Path, method: str) -> Path:
    (cell,) = [p for p in (out / "cells").iterdir() if f"_{method}_" in p.name]
    return cell


def _auroc(cell: Path) -> float:
    return float(json.loads((cell / RUN_FILE).read_text())["summary"]["auroc"]["mean"])


def _episode(cell: Path, index: int = 1) -> Path:
    return cell / "episodes" / f"episode_{index:05d}.json"


def _edit_json(path: Path, change: Callable[[dict], None], *, reseal: bool) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(seal(data) if reseal else data))


def _set_auroc(value: float) -> Callable[[dict], None]:
    def change(d: dict) -> None:
        d["metrics"]["auroc"] = value

    return change


def _nan_scores(d: dict) -> None:
    d["predictions"]["scores"][0] = [float("nan")] * len(d["predictions"]["scores"][0])


def _unfinished(edit: Callable[[Path], None]) -> Callable[[Path], None]:
    """The cell lost its record (killed before the end), then ``edit`` hits an episode file."""

    def damage(cell: Path) -> None:
        (cell / RUN_FILE).unlink()
        edit(_episode(cell))

    return damage


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _copy_episode_0(path: Path) -> None:
    shutil.copyfile(path.with_name("episode_00000.json"), path)


def _edit_record_summary(cell: Path) -> None:
    data = json.loads((cell / RUN_FILE).read_text())
    data["summary"]["auroc"]["mean"] = 0.123
    (cell / RUN_FILE).write_text(json.dumps(data))


def _edit_predictions(cell: Path) -> None:
    path = cell / "predictions_query.csv"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ",0.999"
    path.write_text("\n".join(lines) + "\n")


#: class of fault -> (cell damaged, damage, words of the warning)
FAULTS: dict[str, tuple[str, Callable[[Path], None], str]] = {
    "unfinished-episode-truncated": (
        "linear-probe",
        _unfinished(_truncate),
        "episode result not used, it is computed again: cannot be read as JSON",
    ),
    "unfinished-auroc-edited": (
        "linear-probe",
        _unfinished(lambda p: _edit_json(p, _set_auroc(0.123), reseal=False)),
        "does not match its sha256",
    ),
    "unfinished-auroc-edited-and-resealed": (
        "protonet",
        _unfinished(lambda p: _edit_json(p, _set_auroc(0.123), reseal=True)),
        "its auroc 0.123 is not the",
    ),
    "unfinished-episode-copied-from-another": (
        "linear-probe",
        _unfinished(_copy_episode_0),
        "it is the result of episode 0",
    ),
    "unfinished-scores-nan-resealed": (
        "protonet",
        _unfinished(lambda p: _edit_json(p, _nan_scores, reseal=True)),
        "finite numbers",
    ),
    "finished-episode-file-edited": (
        "linear-probe",
        lambda c: _edit_json(_episode(c), _set_auroc(0.123), reseal=True),
        "files changed since it finished: episodes/episode_00001.json (changed)",
    ),
    "finished-record-edited": (
        "protonet",
        _edit_record_summary,
        "run record not trusted: its content does not match its sha256",
    ),
    "finished-record-truncated": (
        "linear-probe",
        lambda c: _truncate(c / RUN_FILE),
        "its record is not used",
    ),
    "finished-predictions-edited": (
        "protonet",
        _edit_predictions,
        "predictions_query.csv (changed)",
    ),
    "finished-episode-file-deleted": (
        "protonet",
        lambda c: _episode(c, 2).unlink(),
        "episodes/episode_00002.json (missing)",
    ),
    "supervised-last-checkpoint-truncated": (
        "supervised",
        lambda c: ((c / RUN_FILE).unlink(), _truncate(c / "last.safetensors")),
        "cannot resume from it, training starts again",
    ),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_damaged_run_files_are_recomputed_never_trusted(
    bench_root: Path, finished: Path, tmp_path: Path, fault: str
) -> None:
    method, damage, words = FAULTS[fault]
    out = _copy(finished, tmp_path)
    cell = _cell(out, method)
    expected = _auroc(cell)
    damage(cell)
    with pytest.warns(DamagedResultWarning) as caught:
        summary = _run(bench_root, out)
    text = " ".join(str(w.message) for w in caught if w.category is DamagedResultWarning)
    assert words in text, text
    assert str(cell) in text and "\n" not in text
    assert summary["failed"] == [] and not (cell / FAILED_FILE).exists()
    assert read_run(cell).cell is not None  # finished again, sealed and trusted
    assert _auroc(cell) == pytest.approx(expected)
    merged = json.loads((out / "results.json").read_text())
    assert "12.3" not in (out / "results.md").read_text() and merged["tables"]
    again = _run(bench_root, out)  # healed: nothing left to do, no warning
    assert all(c.status == "done" for c in again["cells"])


def test_merge_leaves_a_damaged_record_out_with_a_warning(finished: Path, tmp_path: Path) -> None:
    out = _copy(finished, tmp_path)
    _edit_record_summary(_cell(out, "protonet"))
    with pytest.warns(DamagedResultWarning, match="run left out of the merged tables"):
        merged = merge_results([out / "cells"], tmp_path / "table.md")
    assert merged["records"] == 2
    assert "ProtoNet" not in (tmp_path / "table.md").read_text()
    for cell in (out / "cells").iterdir():
        _truncate(cell / RUN_FILE)
    with pytest.warns(DamagedResultWarning), pytest.raises(Exception, match="no finished run"):
        merge_results([out / "cells"])


def _cli(root: Path, out: Path) -> list[str]:
    return [
        "benchmark", "--root", str(root), "--targets", "target", "--methods", "linear-probe",
        "--backbones", "tiny_cnn", "--shots", "2", "--query", "2", "--episodes", "3",
        "--image-size", "16", "--steps", "5", "--out", str(out), "--cache",
        str(out.parent / "cache"),
    ]  # fmt: skip


def _main(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def _state(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_a_finished_plan_in_a_read_only_folder_has_nothing_to_do(
    bench_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "bench"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _main(_cli(bench_root, out)) == 0
    capsys.readouterr()
    before = _state(out)

    def read_only(src: object, dst: object) -> None:  # what a read-only folder answers
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(safeio, "replace", read_only)
    code = _main(_cli(bench_root, out))
    text = capsys.readouterr()
    assert code == 0, text
    assert "nothing to do: 1 of 1 cell finished" in text.out + text.err
    assert "Traceback" not in text.out + text.err
    assert _state(out) == before  # nothing written, nothing left behind
