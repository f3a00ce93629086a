"""Run in a subprocess (or under torchrun) by the benchmark tests.

``bench_worker.py CONFIG.json``: ``root``, ``out``, ``cache``, ``chunk``, ``targets`` and the
``settings`` of :class:`BenchSettings`; with ``kill_after`` (a list of substrings) the process
SIGKILLs itself at the first log line containing all of them after ``kill_from`` appeared.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import warnings
from pathlib import Path

import torch

from medimeta.bench.runner import run_benchmark
from medimeta.bench.settings import BenchSettings
from medimeta.features.cache import FeatureCache


def main(config_file: str) -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    cfg = json.loads(Path(config_file).read_text(encoding="utf-8"))
    armed = {"on": "kill_from" not in cfg}

    def log(line: str) -> None:
        print(line, flush=True)
        if cfg.get("kill_from") and cfg["kill_from"] in line:
            armed["on"] = True
        if armed["on"] and cfg.get("kill_after") and all(s in line for s in cfg["kill_after"]):
            os.kill(os.getpid(), signal.SIGKILL)

    settings = BenchSettings(**cfg["settings"], targets=tuple(cfg["targets"]))
    run_benchmark(
        cfg["root"],
        settings,
        out=cfg["out"],
        cache=FeatureCache(cfg["cache"], chunk=cfg.get("chunk", 64)),
        log=log,
    )


if __name__ == "__main__":
    main(sys.argv[1])
