"""Claims, the cell function, tasks rebuilt from the plan and the folder status, without
Slurm: a live claim is never taken, a dead or silent one is; a task computes what the local
executor computes, byte for byte; ``benchmark status`` reads the folder alone."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from bench_helpers import tiny_settings
from typer.testing import CliRunner

from medimeta.bench.claims import CellClaim, read_claim, stale_reason
from medimeta.bench.runner import run_benchmark
from medimeta.bench.status import folder_status, status_table
from medimeta.bench.tasks import (
    CellRun,
    TaskSpec,
    execute_cell,
    load_plan,
    plan_cells,
    run_embedding,
    run_task,
)
from medimeta.cli.app import app
from medimeta.errors import BenchmarkError, FormatError
from medimeta.features.cache import FeatureCache
from medimeta.runs.files import write_json
from medimeta.runs.record import CLAIM_FILE, FAILED_FILE, RUN_FILE, read_run

SETTINGS = {"methods": ("linear-probe", "protonet", "knn"), "targets": ("target",)}


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _claim(folder: Path, **changes: Any) -> None:
    now = time.time()
    record = {
        "token": "other",
        "host": socket.gethostname(),
        "pid": os.getppid(),  # alive: pytest's parent
        "pid_start": None,
        "job": {"id": "77_3"},
        "claimed": now,
        "heartbeat": now,
        "ttl": 600.0,
        **changes,
    }
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / CLAIM_FILE, record)


def test_a_live_claim_is_refused_and_a_dead_or_silent_one_taken_over(tmp_path: Path) -> None:
    mine = CellClaim(tmp_path / "a")
    assert mine.take() is None
    held = read_claim(tmp_path / "a")
    assert held is not None and held["pid"] == os.getpid() and held["host"]
    other = CellClaim(tmp_path / "a")
    assert other.take() is not None  # a live process holds it
    other.release()  # not its claim: left alone
    assert (tmp_path / "a" / CLAIM_FILE).is_file()
    mine.release()
    assert not (tmp_path / "a" / CLAIM_FILE).exists()

    _claim(tmp_path / "live", host="elsewhere")
    assert CellClaim(tmp_path / "live").take() is not None
    for name, change in {
        "dead": {"pid": _dead_pid()},
        "silent": {"host": "elsewhere", "heartbeat": time.time() - 601},
    }.items():
        _claim(tmp_path / name, **change)
        claim = CellClaim(tmp_path / name)
        assert claim.take() is None, name
        assert claim.took_over and ("is gone" in claim.took_over or "heartbeat" in claim.took_over)
        claim.release()


def test_a_requeued_job_takes_the_claim_of_its_earlier_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _claim(tmp_path, host="node7", job={"id": "77_3"})
    assert stale_reason(read_claim(tmp_path) or {}) is None
    monkeypatch.setenv("SLURM_JOB_ID", "80")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "77")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert "requeued" in (stale_reason(read_claim(tmp_path) or {}) or "")
    claim = CellClaim(tmp_path)
    assert claim.take() is None
    assert (read_claim(tmp_path) or {})["job"]["id"] == "77_3"
    claim.release()


def test_the_heartbeat_renews_a_held_claim(tmp_path: Path) -> None:
    claim = CellClaim(tmp_path, ttl=2.0)
    assert claim.take() is None
    first = (read_claim(tmp_path) or {})["heartbeat"]
    time.sleep(1.4)
    assert (read_claim(tmp_path) or {})["heartbeat"] > first
    assert stale_reason(read_claim(tmp_path) or {}) is None
    claim.release()


def _race(folder: str, start: float, queue: Any) -> None:
    time.sleep(max(start - time.time(), 0))
    claim = CellClaim(Path(folder))
    won = claim.take() is None
    queue.put(won)
    time.sleep(1.0)  # hold it while the others try
    claim.release()


def test_of_processes_racing_for_a_claim_exactly_one_wins(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    start = time.time() + 1.0
    procs = [ctx.Process(target=_race, args=(str(tmp_path), start, queue)) for _ in range(6)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert sorted(results) == [False] * 5 + [True]


def _plan(root: Path, out: Path, cache: Path, **changes: Any) -> list[Any]:
    summary = run_benchmark(
        root,
        tiny_settings(**{**SETTINGS, **changes}),
        out=out,
        cache=FeatureCache(cache),
        dry_run=True,
    )
    return list(summary["cells"])


def test_the_cell_function_skips_claimed_cells_and_records_failures(
    bench_root: Path, tmp_path: Path
) -> None:
    cells = _plan(bench_root, tmp_path / "b", tmp_path / "c", shots=(1,))
    run = CellRun(bench_root, FeatureCache(tmp_path / "c"))
    claimed, failing, fine = cells
    _claim(claimed.folder, host="elsewhere")
    got = execute_cell(claimed, run)
    assert got.status == "claimed" and "77_3" in got.detail
    assert not (claimed.folder / RUN_FILE).exists()

    failing.folder.mkdir(parents=True)
    (failing.folder / "episodes").write_text("not a folder", encoding="utf-8")
    got = execute_cell(failing, run)
    assert got.status == "failed"
    assert (failing.folder / FAILED_FILE).read_text().strip() == got.detail
    assert not (failing.folder / CLAIM_FILE).exists()  # released

    assert execute_cell(fine, run).status == "computed"
    assert execute_cell(fine, run).status == "finished"
    record = read_run(fine.folder)
    assert record.cell is not None and record.cell["hash"] == fine.hash
    assert "slurm" not in record.cell  # not run by a Slurm job

    statuses = {s.label: s for s in folder_status(tmp_path / "b", queue={})}
    assert [statuses[c.label].state for c in cells] == ["running", "failed", "done"]
    assert "77_3" in statuses[claimed.label].detail and statuses[claimed.label].job == "77_3"
    assert statuses[failing.label].detail == got_line(failing.folder)
    table = status_table(tmp_path / "b", list(statuses.values()))
    assert "3 cells: 1 done, 1 running, 0 pending, 1 failed, 0 skipped" in table


def got_line(folder: Path) -> str:
    return (folder / FAILED_FILE).read_text().strip()


def test_tasks_rebuilt_from_the_plan_give_the_local_tables_byte_for_byte(
    bench_root: Path, tmp_path: Path
) -> None:
    local = run_benchmark(
        bench_root, tiny_settings(**SETTINGS), out=tmp_path / "local", cache=tmp_path / "lc"
    )
    assert local["failed"] == []
    cells = _plan(bench_root, tmp_path / "tasks", tmp_path / "tc")
    plan_file = tmp_path / "tasks" / "plan.json"
    plan = load_plan(plan_file)
    assert plan["cache"] == str((tmp_path / "tc").resolve())
    hashes = tuple(c.hash for c in cells)
    assert [c.hash for c in plan_cells(plan, hashes, plan_file)] == list(hashes)
    assert run_embedding(TaskSpec(str(plan_file), hashes, name="embed"))["rows"] > 0
    first = run_task(TaskSpec(str(plan_file), hashes[:2], name="t0"))
    second = run_task(TaskSpec(str(plan_file), hashes, name="t1"))
    assert set(first["outcomes"].values()) == {"computed"}
    assert list(second["outcomes"].values()) == ["finished", "finished", "computed"]
    from medimeta.bench.merge import merge_folder

    merge_folder(tmp_path / "tasks")
    for suffix in (".csv", ".md", ".tex"):
        a = (tmp_path / "local" / f"results{suffix}").read_bytes()
        assert (tmp_path / "tasks" / f"results{suffix}").read_bytes() == a, suffix
    assert {s.state for s in folder_status(tmp_path / "tasks")} == {"done"}
    runner = CliRunner()
    got = runner.invoke(app, ["benchmark", "status", str(tmp_path / "tasks"), "-q"])
    assert got.exit_code == 0 and got.output.startswith("3 cells: 3 done, 0 running"), got.output
    got = runner.invoke(app, ["benchmark", "collect", str(tmp_path / "tasks")])
    assert got.exit_code == 0 and "| ProtoNet | tiny_cnn |" in got.output, got.output
    empty = runner.invoke(app, ["benchmark", "status", str(tmp_path)])
    assert empty.exit_code != 0 and "no benchmark plan here" in str(empty.exception)


def test_a_plan_whose_data_changed_is_refused_with_the_fix(
    bench_root: Path, tmp_path: Path
) -> None:
    cells = _plan(bench_root, tmp_path / "p", tmp_path / "c", methods=("knn",), shots=(1,))
    plan_file = tmp_path / "p" / "plan.json"
    plan = json.loads(plan_file.read_text())
    plan["settings"]["queries"] = 3  # the cell rebuilt now has another protocol
    plan_file.write_text(json.dumps(plan))
    with pytest.raises(FormatError, match="no longer matches .* plan again"):
        plan_cells(load_plan(plan_file), [cells[0].hash], plan_file)
    with pytest.raises(FormatError, match="no such cell"):
        plan_cells(load_plan(plan_file), ["0" * 64], plan_file)
    del plan["settings"]
    plan_file.write_text(json.dumps(plan))
    with pytest.raises(FormatError, match="key: settings"):
        load_plan(plan_file)


def test_a_failed_cell_fails_its_task_after_the_others_ran(
    bench_root: Path, tmp_path: Path
) -> None:
    cells = _plan(bench_root, tmp_path / "f", tmp_path / "c", methods=("knn", "protonet"))
    cells[0].folder.mkdir(parents=True)
    (cells[0].folder / "episodes").write_text("not a folder", encoding="utf-8")
    spec = TaskSpec(str(tmp_path / "f" / "plan.json"), tuple(c.hash for c in cells), name="t")
    with pytest.raises(BenchmarkError, match="1 of 2 cells failed"):
        run_task(spec)
    assert (cells[0].folder / FAILED_FILE).is_file()
    assert (cells[1].folder / RUN_FILE).is_file()
