"""Benchmarks in other processes: SIGKILL then the same command (finished cells and episodes
are not recomputed), and two torchrun ranks (gloo) giving the numbers of one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bench_helpers import TINY_FEWSHOT

from medimeta.runs.record import RUN_FILE, read_run

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(SRC), str(HERE), os.environ.get("PYTHONPATH", "")]),
    }


def _config(
    tmp_path: Path, root: Path, out: str, seeds: tuple[int, ...] = (0,), **extra: Any
) -> Path:
    cfg = {
        "root": str(root),
        "out": str(tmp_path / out),
        "cache": str(tmp_path / f"{out}-cache"),
        "targets": ["target"],
        "settings": {
            "methods": ["linear-probe", "protonet", "im-pt", "knn", "supervised"],
            "backbones": ["tiny_cnn"],
            "shots": [2],
            "queries": 2,
            "episodes": 5,
            "image_size": 16,
            "seeds": list(seeds),
            "fewshot": TINY_FEWSHOT,
            "train": {"epochs": 2, "batch_size": 16, "patience": 0},
        },
        **extra,
    }
    path = tmp_path / f"{out}.json"
    path.write_text(json.dumps(cfg))
    return path


def _worker(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HERE / "bench_worker.py"), str(config)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )


def _episodes(out: Path) -> dict[tuple[str, int], list[dict[str, float]]]:
    """Per cell (method, seed): the metrics of every episode, or the supervised test metrics."""
    got: dict[tuple[str, int], list[dict[str, float]]] = {}
    for path in sorted((out / "cells").glob(f"*/{RUN_FILE}")):
        rec = read_run(path)
        assert rec.cell is not None
        key = (rec.cell["protocol"]["method"], rec.cell["protocol"]["seed"])
        if rec.kind == "supervised":
            got[key] = [rec.details["test"]["metrics"]]
        else:
            got[key] = [e["metrics"] for e in rec.per_episode]
    return got


def test_sigkill_then_the_same_command_keeps_finished_work(
    bench_root: Path, tmp_path: Path
) -> None:
    # killed in the middle of the third cell (im-pt), after its second episode file
    config = _config(
        tmp_path, bench_root, "run", kill_from="[cell 3/5]", kill_after=["episode 1:", "auroc"]
    )
    killed = _worker(config)
    assert killed.returncode == -9, killed.stdout[-2000:] + killed.stderr[-2000:]
    out = tmp_path / "run"
    done = sorted(out.glob(f"cells/*/{RUN_FILE}"))
    assert len(done) == 2  # linear-probe and protonet
    impt = next(out.glob("cells/*im-pt*"))
    assert not (impt / RUN_FILE).exists()
    kept = sorted((impt / "episodes").glob("episode_*.json"))
    assert [p.name for p in kept] == ["episode_00000.json", "episode_00001.json"]
    stamps = {p: p.stat().st_mtime_ns for p in [*done, *kept]}
    for cell in done:
        stamps.update({p: p.stat().st_mtime_ns for p in (cell.parent / "episodes").iterdir()})

    again = _worker(_config(tmp_path, bench_root, "run"))
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "3 to run, 2 done" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing finished was redone
    assert len(list(out.glob(f"cells/*/{RUN_FILE}"))) == 5
    assert len(list((impt / "episodes").glob("episode_*.json"))) == 5
    assert (out / "results.md").is_file()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.timeout(300)
def test_two_torchrun_ranks_give_the_numbers_of_one_process(
    bench_root: Path, tmp_path: Path
) -> None:
    single = _worker(_config(tmp_path, bench_root, "single", (0, 1), chunk=4))
    assert single.returncode == 0, single.stdout[-2000:] + single.stderr[-2000:]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        str(HERE / "bench_worker.py"),
        str(_config(tmp_path, bench_root, "ddp", (0, 1), chunk=4)),
    ]
    ddp = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=280)
    assert ddp.returncode == 0, ddp.stdout[-3000:] + ddp.stderr[-3000:]
    one, two = _episodes(tmp_path / "single"), _episodes(tmp_path / "ddp")
    methods = ["im-pt", "knn", "linear-probe", "protonet", "supervised"]
    assert sorted(one) == sorted(two) == [(m, s) for m in methods for s in (0, 1)]
    for method, rows in one.items():
        assert len(two[method]) == len(rows)
        for a, b in zip(rows, two[method], strict=True):
            assert b.keys() == a.keys()
            for name, value in a.items():
                assert b[name] == pytest.approx(value, abs=1e-6, nan_ok=True), (method, name)
    # the episodes of each few-shot cell were shared by the two ranks
    ranks = {
        json.loads(p.read_text())["rank"]
        for p in (tmp_path / "ddp").glob("cells/*im-pt*/episodes/episode_*.json")
    }
    assert ranks == {0, 1}
    cell = read_run(next((tmp_path / "ddp").glob("cells/*linear-probe*"))).cell
    assert cell is not None and cell["world_size"] == 2
    # the two supervised cells went to one rank each (each in one process)
    runs = [read_run(p) for p in sorted((tmp_path / "ddp").glob("cells/*supervised*"))]
    assert [r.protocol["world_size"] for r in runs] == [1, 1]
    assert {(r.cell or {}).get("rank") for r in runs} == {0, 1}
    assert not list((tmp_path / "ddp-cache").rglob("*.part-*"))  # parts merged and removed
