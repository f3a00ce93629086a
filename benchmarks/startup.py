"""Start-up time of the ``medimeta`` command: the median wall time of whole runs.

Runs ``medimeta --help``, ``medimeta list`` and ``medimeta info bus`` (and, for reference,
``python -c pass`` and ``python -c "import torch"``, the floor and what a lazy CLI avoids) as
fresh processes, ``--repeats`` times each after one warm-up run, and writes the medians to
``benchmarks/results/startup.json``.

Usage: python benchmarks/startup.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
COMMANDS = {
    "python -c pass (floor)": [sys.executable, "-c", "pass"],
    "python -c 'import torch' (avoided)": [sys.executable, "-c", "import torch"],
    "medimeta --help": [sys.executable, "-m", "medimeta", "--help"],
    "medimeta list": [sys.executable, "-m", "medimeta", "list"],
    "medimeta info bus": [sys.executable, "-m", "medimeta", "info", "bus"],
}


def wall_times(argv: list[str], repeats: int) -> list[float]:
    """Seconds of ``repeats`` runs of ``argv`` (after one warm-up run)."""
    env = {**os.environ, "COLUMNS": "100"}
    subprocess.run(argv, capture_output=True, check=True, env=env)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True, env=env)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    rows = {}
    for name, argv in COMMANDS.items():
        times = wall_times(argv, args.repeats)
        rows[name] = {
            "median_s": statistics.median(times),
            "min_s": min(times),
            "max_s": max(times),
        }
        print(f"{name:40s} median {rows[name]['median_s']:.3f} s  (min {min(times):.3f})")
    result = {
        "benchmark": "startup",
        "protocol": {"repeats": args.repeats, "warmup_runs": 1, "what": "whole-process wall"},
        "load_1min": os.getloadavg()[0],
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "results": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "startup.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
