"""``benchmark --executor slurm`` on a real single-node Slurm (``slurm_cluster.py``): job
arrays after an embedding job give the table of ``--executor local`` byte for byte and
``benchmark status`` reports the cells done; a cancelled array, submitted again (twice at
once), finishes only the missing cells and computes none of them twice. Without Slurm: the
options, the task chunks and the refusals."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from slurm_cluster import SlurmCluster

from medimeta.bench.slurm import SlurmSettings, chunk, parse_options, parse_time
from medimeta.errors import OptionError
from medimeta.runs.record import RUN_FILE, read_run, submission_files

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
TINY = {
    "--targets": "target",
    "--methods": "linear-probe,protonet,knn",
    "--backbones": "tiny_cnn",
    "--shots": "1,2",
    "--query": "2",
    "--episodes": "3",
    "--image-size": "16",
    "--steps": "5",
}
COMPUTED = re.compile(r"\[([0-9a-f]{10})\]: computed")


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    # the jobs inherit this environment through sbatch: they import this checkout's package
    path = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, **(extra or {}), "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def _cli(args: list[str], env: dict[str, str], timeout: float = 200) -> str:
    got = subprocess.run(
        [sys.executable, "-m", "medimeta", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert got.returncode == 0, got.stdout[-3000:] + got.stderr[-3000:]
    return got.stdout


def _bench(root: Path, out: Path, *extra: str, **changes: str) -> list[str]:
    """The tiny plan's command (``changes``: other option values, e.g. ``methods="im-pt"``)."""
    cache = out.with_name(out.name + "-cache")
    options = {**TINY, **{f"--{k}": v for k, v in changes.items()}}
    where = ["--root", str(root), "--out", str(out), "--cache", str(cache)]
    return ["benchmark", *where, *[x for kv in options.items() for x in kv], *extra]


def _status(out: Path, env: dict[str, str]) -> list[dict[str, str]]:
    return list(json.loads(_cli(["benchmark", "status", str(out), "--json"], env)))


@pytest.fixture(scope="module")
def local_csv(bench_root: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("local") / "run"
    _cli([*_bench(bench_root, out), "-q"], _env())
    return (out / "results.csv").read_bytes()


@pytest.mark.timeout(300)
def test_slurm_arrays_give_the_local_table_and_status_says_done(
    slurm: SlurmCluster, bench_root: Path, local_csv: bytes, tmp_path: Path
) -> None:
    env = _env(slurm.env)
    out = tmp_path / "slurm"
    args = ["--executor", "slurm", "--partition", "debug", "--task-minutes", "0.01"]
    text = _cli([*_bench(bench_root, out), *args, "--wait"], env)
    assert "after 1 embedding jobs" in text, text
    assert (out / "results.csv").read_bytes() == local_csv
    statuses = _status(out, env)
    assert [s["state"] for s in statuses] == ["done"] * 6
    (record,) = [json.loads(p.read_text()) for p in submission_files(out)]
    (embed,) = record["embedding"]
    assert len(record["tasks"]) > 1
    for task in record["tasks"]:
        assert re.fullmatch(r"\d+_\d+", task["job"]) and task["after"] == embed["job"]
    ran = {s["job"] for s in statuses}
    assert ran == {t["job"] for t in record["tasks"]}  # each record names its array task


def _computed(out: Path) -> Counter[str]:
    """How often each cell (hash prefix) was computed, from every job's log."""
    found: Counter[str] = Counter()
    for log in (out / "slurm").glob("*_log.out"):
        found.update(COMPUTED.findall(log.read_text(errors="replace")))
    return found


def _queue(slurm: SlurmCluster) -> str:
    return slurm.run("squeue", "-h", "-r", "-o", "%i").stdout


def _wait(check: object, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


@pytest.mark.timeout(300)
def test_a_cancelled_array_submitted_again_finishes_only_the_missing_cells(
    slurm: SlurmCluster, bench_root: Path, local_csv: bytes, tmp_path: Path
) -> None:
    env = _env(slurm.env)
    out = tmp_path / "cancel"
    one_by_one = ["--executor", "slurm", "--task-minutes", "0.001", "--array-parallelism", "1"]
    first = _cli([*_bench(bench_root, out), *one_by_one, "-q"], env)
    (array,) = re.findall(r"job arrays (\d+)\)", first)
    _wait(lambda: list(out.glob(f"cells/*/{RUN_FILE}")), "the first finished cell")
    assert f"{array}_" in _queue(slurm)  # the array still runs (or waits)
    slurm.run("scancel", array)
    _wait(lambda: f"{array}_" not in _queue(slurm), "the cancelled array to leave the queue")
    after_cancel = _status(out, env)
    states = Counter(s["state"] for s in after_cancel)
    assert states["done"] >= 1 and states["done"] + states["pending"] == 6, states
    pending = [s for s in after_cancel if s["state"] == "pending"]
    assert pending and all("not queued" in s["detail"] for s in pending)
    done_before = {p: p.stat().st_mtime_ns for p in out.glob(f"cells/*/{RUN_FILE}")}

    # submitted again, twice at once, each as one task: claims keep every cell to one of them
    again = [*_bench(bench_root, out), "--executor", "slurm"]
    other = subprocess.Popen([sys.executable, "-m", "medimeta", *again, "-q"], env=env)
    text = _cli([*again, "--wait"], env)
    assert other.wait(timeout=120) == 0
    assert f"{len(pending)} to run, {6 - len(pending)} done" in text
    missing = {s["hash"] for s in pending}
    for later in [json.loads(p.read_text()) for p in submission_files(out)][1:]:
        assert {h for t in later["tasks"] for h in t["cells"]} <= missing  # only those
    _wait(lambda: len(list(out.glob(f"cells/*/{RUN_FILE}"))) == 6, "every cell")
    assert {p: p.stat().st_mtime_ns for p in done_before} == done_before  # not redone
    computed = _computed(out)
    assert max(computed.values()) == 1, computed  # no cell computed twice
    assert sum(computed.values()) >= len(pending)
    for path in out.glob(f"cells/*/{RUN_FILE}"):
        cell = read_run(path).cell or {}
        assert cell["slurm"]["id"] and computed[cell["hash"][:10]] <= 1
    _cli(["benchmark", "collect", str(out), "-q"], env)
    assert (out / "results.csv").read_bytes() == local_csv


@pytest.mark.timeout(240)
def test_a_preempted_task_is_requeued_and_resumes_its_cell(
    slurm: SlurmCluster, bench_root: Path, tmp_path: Path
) -> None:
    env = _env(slurm.env)
    out = tmp_path / "requeue"
    # one long cell: fine-tuning, 5 episodes of 500 steps (still running when signalled)
    long = {"methods": "im-pt", "shots": "2", "episodes": "5", "steps": "500"}
    args = _bench(bench_root, out, "--executor", "slurm", "-q", **long)
    (job,) = re.findall(r"job arrays (\d+)\)", _cli(args, env))
    pattern = "cells/*/episodes/episode_00000.json"
    _wait(lambda: list(out.glob(pattern)), "the first episode")
    (episode,) = list(out.glob(pattern))
    stamp = episode.stat().st_mtime_ns
    slurm.run("scancel", "--signal=USR2", job)  # what Slurm sends before a preemption
    _wait(lambda: "PENDING" in _state(slurm, job), "the requeued job")
    slurm.run("scontrol", "update", f"JobId={job}", "StartTime=now")  # skip Slurm's requeue hold
    _wait(lambda: list(out.glob(f"cells/*/{RUN_FILE}")), "the requeued job's record")
    log = next((out / "slurm").glob(f"{job}_*log.out")).read_text()
    assert "Requeued job" in log and "Calling checkpoint method" in log
    assert episode.stat().st_mtime_ns == stamp  # its first episode was not run again
    cell = read_run(next(out.glob(f"cells/*/{RUN_FILE}"))).cell or {}
    assert cell["slurm"]["id"] == job and cell["slurm"]["restart_count"] == "1"
    assert [s["state"] for s in _status(out, env)] == ["done"]


def _state(slurm: SlurmCluster, job: str) -> str:
    return slurm.run("squeue", "-h", "-j", job, "-o", "%T", check=False).stdout


def test_slurm_options_are_parsed_and_checked() -> None:
    assert parse_time("90") == 90 and parse_time("1:30:00") == 90
    assert parse_time("2-00:00:00") == 2880 and parse_time("2h") == 120
    assert parse_time("45s") == 1
    assert parse_options(["constraint=a100", "--exclusive"]) == (
        ("constraint", "a100"),
        ("exclusive", "true"),
    )
    for bad in ("1:x", "0", "soon"):
        with pytest.raises(OptionError, match="--time|duration"):
            parse_time(bad)
    with pytest.raises(OptionError, match="set by the executor"):
        SlurmSettings(options=(("dependency", "afterok:1"),))
    with pytest.raises(OptionError, match="--mem"):
        SlurmSettings(mem="lots")
    with pytest.raises(OptionError, match="--task-minutes"):
        SlurmSettings(task_minutes=0)


class _Cell:
    def __init__(self, s: float) -> None:
        self.estimate_s = s


def test_cells_are_cut_into_tasks_by_their_estimates() -> None:
    cells = [_Cell(s) for s in (50, 20, 20, 200, 5, 5)]
    sizes = [[c.estimate_s for c in t] for t in chunk(cells, 60)]  # type: ignore[arg-type]
    assert sizes == [[50], [20, 20], [200], [5, 5]]
    assert len(chunk(cells, 1e9)) == 1  # type: ignore[arg-type]


def test_a_submission_without_slurm_commands_says_where_to_submit_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from medimeta.bench.slurm import submit_plan

    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch, srun or squeue
    todo = [SimpleNamespace(status="todo")]
    with pytest.raises(OptionError, match="sbatch, srun, squeue missing.*login node"):
        submit_plan(tmp_path, todo, SlurmSettings(), None, print)  # type: ignore[arg-type]
    assert not (tmp_path / "slurm").exists()


def test_slurm_options_without_the_slurm_executor_are_refused(
    bench_root: Path, tmp_path: Path
) -> None:
    got = subprocess.run(
        [sys.executable, "-m", "medimeta", *_bench(bench_root, tmp_path / "x"), "--wait"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert got.returncode == 2
    assert "--wait: Slurm options; add --executor slurm" in got.stderr
