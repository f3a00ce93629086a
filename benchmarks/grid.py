"""The authors' frozen-feature grid for one backbone: how fast the batched solvers are.

On real BUSI features (EfficientNet-Lite0, ImageNet weights, 224 px; built from
``../shared/realdata/busi-256``) and on synthetic features of the same shape (780 x 1280,
standard normal), for each of the authors' ten shot levels (1, 2, 3, 5, 7, 10, 15, 20, 25, 30;
10 query images per class, 100 episodes each) and each frozen solver (linear-probe,
protonet, knn, simpleshot, meta-baseline's cosine centroids), it measures the episodes/s of
the batched solver (all 100 episodes at once, torch's threads as in the runner) and of
the per-episode path (the same learner one episode at a time; on 10 episodes, scaled), in
the same run, and extrapolates the whole grid: 54 tasks x 10 shot levels x 100 episodes,
with BUSI's 3 classes standing for every task (more classes mean larger episodes; the figure
is the order of magnitude, not a promise).

Also timed, with ``--old-main DIR`` (a checkout of the toolkit before this change, e.g.
``git worktree add /tmp/oldmain 3c8f583``): the warm 100-episode 5-shot linear probe as a
whole command, and the first and second ``benchmark --dry-run`` of BUSI, BreastMNIST and PBC
with the default method set, for this checkout and the old one alternately (medians). Run it
with Python's bytecode caches allowed (``env -u PYTHONDONTWRITEBYTECODE``), as on a user's
machine: without them every command compiles the package again (about 0.2 s more for this
checkout's larger package).

Run: ``.venv/bin/python benchmarks/grid.py [--old-main /tmp/oldmain] [--repeats 3]
[--parts rates,estimates,commands]`` (writes benchmarks/results/grid.json after each part; the
parts not measured are kept from the file).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
REAL = Path(os.environ.get("MEDIMETA_REALDATA", REPO.parent / "shared" / "realdata"))
SHOTS = (1, 2, 3, 5, 7, 10, 15, 20, 25, 30)
SOLVERS = (
    ("linear-probe", {}),
    ("protonet", {}),
    ("knn", {}),
    ("simpleshot", {}),
    ("meta-baseline", {"tau": 10}),
)
GRID_EPISODES = 54 * 10 * 100


def _log(text: str) -> None:
    print(text, flush=True)


def _medimeta(python: Path, source: Path | None) -> list[str]:
    env = f"PYTHONPATH={source}" if source else ""
    return ["env", env, str(python), "-m", "medimeta"] if env else [str(python), "-m", "medimeta"]


def prepare(work: Path) -> Path:
    """bus, breastmnist and pbc built/converted from the real data into ``work/data``."""
    data = work / "data"
    if not (data / "bus").is_dir():
        py = [sys.executable, "-m", "medimeta"]
        steps = [
            [*py, "build", "bus", "--source", str(REAL / "busi-256"), "--root", str(data), "-q"],
            [*py, "build", "pbc", "--source", str(REAL / "pbc-subset"), "--root", str(data),
             "--partial", "-q"],
            [*py, "convert", "medmnist", str(REAL / "medmnist-v2-28" / "breastmnist.npz"),
             "--root", str(data), "-q"],
        ]  # fmt: skip
        for cmd in steps:
            subprocess.run(cmd, check=True)
    return data


def busi_table(data: Path, cache: Path) -> Any:
    """Features of every BUSI image (computed once into ``cache``)."""
    import numpy as np

    from medimeta.features.cache import FeatureCache
    from medimeta.features.reader import EpisodeReader
    from medimeta.format.reader import DatasetFolder, locate_dataset
    from medimeta.models.build import build_backbone, make_normalizer
    from medimeta.train.fewshot import FewShotConfig

    backbone = build_backbone("efficientnet_lite0", pretrained=True)
    reader = EpisodeReader(
        image_size=224, normalizer=make_normalizer(FewShotConfig(), backbone), device="cpu"
    )
    folder = locate_dataset(data, "bus")
    rows = np.arange(DatasetFolder(folder).num_samples)
    return FeatureCache(cache).table(
        folder=folder, split="all", rows=rows, backbone=backbone,
        backbone_name="efficientnet_lite0", reader=reader, log=_log,
    )  # fmt: skip


def solver_rates(table: Any, data: Path, repeats: int) -> dict[str, Any]:
    """Per shot level and solver: batched and per-episode episodes/s (medians)."""
    from medimeta.episodes import EpisodeSampler
    from medimeta.features.table import episode_batch
    from medimeta.train.fewshot import FewShotConfig

    class Reader:
        device = torch.device("cpu")

    out: dict[str, Any] = {}
    for shots in SHOTS:
        sampler = EpisodeSampler.from_root(
            data, "bus:case category", None, shots=shots, queries=10, seed=0, num_episodes=100
        )
        episodes = list(sampler.sample())
        batch = episode_batch(table, episodes)
        row: dict[str, Any] = {}
        for name, stage in SOLVERS:
            cfg = FewShotConfig(method=name)
            spec = cfg.spec
            batched, single = [], []
            one = spec.scorer(None, Reader(), cfg, stage, table)  # type: ignore[arg-type]
            for _ in range(repeats):
                t0 = time.perf_counter()
                spec.score_batch(batch, cfg, stage)  # type: ignore[arg-type]
                batched.append(len(episodes) / (time.perf_counter() - t0))
                t0 = time.perf_counter()
                for ep in episodes[:10]:
                    one(ep, 0)
                single.append(10 / (time.perf_counter() - t0))
            b, s = statistics.median(batched), statistics.median(single)
            row[name] = {"batched_eps": round(b, 1), "per_episode_eps": round(s, 2),
                         "ratio": round(b / s, 1)}  # fmt: skip
        out[str(shots)] = row
        _log(f"{shots:>2}-shot: " + ", ".join(
            f"{k} {v['batched_eps']:.0f} eps/s ({v['ratio']:.0f}x)" for k, v in row.items()
        ))  # fmt: skip
    return out


def grid_minutes(rates: dict[str, Any]) -> dict[str, float]:
    """Extrapolated minutes of the whole grid per solver (batched and per episode)."""
    out = {}
    for name, _ in SOLVERS:
        for kind in ("batched_eps", "per_episode_eps"):
            seconds = sum(54 * 100 / rates[str(s)][name][kind] for s in SHOTS)
            out[f"{name} {kind.split('_eps')[0]}"] = round(seconds / 60, 2)
    out["all solvers batched"] = round(sum(v for k, v in out.items() if "batched" in k), 2)
    return out


def commands(data: Path, work: Path, old: Path | None, repeats: int) -> dict[str, Any]:
    """Warm linear probe and first/second dry-run, this checkout and the old one."""
    python = Path(sys.executable)
    variants = {"new": None, **({"old": old / "src"} if old else {})}
    episodes = work / "bus.episodes.json"
    subprocess.run(
        [*_medimeta(python, None), "episodes", "sample", "--root", str(data), "--task",
         "bus:case category", "--shots", "5", "--query", "10", "--episodes", "100", "--seed",
         "0", "--out", str(episodes), "--force", "-q"], check=True,
    )  # fmt: skip
    probe: dict[str, list[float]] = {k: [] for k in variants}
    dry: dict[str, dict[str, list[float]]] = {k: {"first": [], "second": []} for k in variants}
    auroc: dict[str, str] = {}
    for name, src in variants.items():  # warm the caches
        _fewshot(python, src, data, episodes, work / f"fs-{name}", work / f"cache-{name}")
    for _ in range(repeats):
        for name, src in variants.items():
            t0 = time.perf_counter()
            out = _fewshot(python, src, data, episodes, work / f"fs-{name}", work / f"cache-{name}")
            probe[name].append(time.perf_counter() - t0)
            auroc[name] = next(line for line in out.splitlines() if "linear probe) |" in line)
            for which in ("first", "second"):
                if which == "first":
                    shutil.rmtree(work / f"dry-{name}", ignore_errors=True)
                    shutil.rmtree(work / f"dcache-{name}", ignore_errors=True)
                t0 = time.perf_counter()
                subprocess.run(
                    [*_medimeta(python, src), "benchmark", "--root", str(data), "--targets",
                     "bus,breastmnist,pbc", "--backbones", "efficientnet_lite0", "--out",
                     str(work / f"dry-{name}"), "--cache", str(work / f"dcache-{name}"),
                     "--dry-run", "-q"], check=True, capture_output=True,
                )  # fmt: skip
                dry[name][which].append(time.perf_counter() - t0)
    med = {k: round(statistics.median(v), 2) for k, v in probe.items()}
    dry_med = {k: {w: round(statistics.median(t), 1) for w, t in v.items()} for k, v in dry.items()}
    return {"warm_linear_probe_s": med, "table_rows": auroc, "dry_run_s": dry_med,
            "probe_times": probe, "dry_times": dry}  # fmt: skip


def estimates(data: Path, work: Path) -> dict[str, Any]:
    """The cost model against the clock: a real benchmark of BUSI (grey) and PBC (RGB), both
    224 px, with the methods that run in CI (20 episodes, 10 fine-tuning steps); per cell the
    estimate, the measured seconds and their ratio, and per method the grey / RGB estimates."""
    from medimeta.runs.record import read_run

    out = work / "estimates"
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run(
        [*_medimeta(Path(sys.executable), None), "benchmark", "--root", str(data), "--targets",
         "bus,pbc", "--backbones", "efficientnet_lite0", "--methods",
         "linear-probe,protonet,knn,simpleshot,im-pt", "--episodes", "20", "--steps", "10",
         "--out", str(out), "--cache", str(work / "estimates-cache"), "-q"],
        check=True, capture_output=True,
    )  # fmt: skip
    plan = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    cells = []
    for c in plan["cells"]:
        seconds = float((read_run(Path(c["folder"])).cell or {}).get("seconds") or 0.0)
        estimate = float(c["estimate_s"] or 0.0)
        ratio = round(seconds / estimate, 2) if estimate else None
        row = {"cell": c["label"], "estimate_s": round(estimate, 2)}
        cells.append({**row, "measured_s": round(seconds, 2), "measured_over_estimate": ratio})
        _log(f"{c['label']}: estimated {estimate:.1f} s, measured {seconds:.1f} s ({ratio}x)")
    grey_rgb = {}
    for method in ("linear-probe", "protonet", "knn", "simpleshot", "im-pt"):
        est = {t: sum(c["estimate_s"] for c in cells if c["cell"].startswith(f"{method} {t}:"))
               for t in ("bus", "pbc")}  # fmt: skip
        per_episode = {t: v / 20 for t, v in est.items()}
        grey_rgb[method] = round(per_episode["bus"] / per_episode["pbc"], 2) if est["pbc"] else None
    ratios = [c["measured_over_estimate"] for c in cells if c["measured_over_estimate"]]
    median = statistics.median(ratios) if ratios else None
    return {"cells": cells, "grey_over_rgb_estimate": grey_rgb, "median_ratio": median}


def _fewshot(
    python: Path, src: Path | None, data: Path, episodes: Path, out: Path, cache: Path
) -> str:
    done = subprocess.run(
        [*_medimeta(python, src), "fewshot", "--root", str(data), "--episodes-file",
         str(episodes), "--method", "linear-probe", "--backbone", "efficientnet_lite0",
         "--out", str(out), "--fresh", "--cache", str(cache), "-q"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return done.stdout


PARTS = ("rates", "estimates", "commands")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old-main", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument(
        "--parts", default=",".join(PARTS),
        help="which parts to measure (rates, estimates, commands); the others are kept from "
        "the existing results file",
    )  # fmt: skip
    args = parser.parse_args()
    from medimeta.runs.files import environment, write_json

    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if unknown := sorted(set(parts) - set(PARTS)):
        parser.error(f"--parts: unknown {unknown}; valid: {', '.join(PARTS)}")
    target = REPO / "benchmarks" / "results" / "grid.json"
    result: dict[str, Any] = json.loads(target.read_text()) if target.is_file() else {}
    result.update(what=__doc__.split("\n")[0], environment=environment())
    work = args.work or Path(tempfile.mkdtemp(prefix="grid-"))
    data = prepare(work)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    if "rates" in parts:
        real = busi_table(data, work / "features")
        gen = np.random.default_rng(0)
        from medimeta.features.table import FeatureTable

        synthetic = FeatureTable(real.indices, gen.standard_normal(real.features.shape, np.float32))
        for name, table in (("busi_features", real), ("synthetic_features", synthetic)):
            _log(f"== {name}")
            rates = solver_rates(table, data, args.repeats)
            result[name] = {"rates": rates, "grid_minutes": grid_minutes(rates)}
            _log(f"whole grid (54 x 10 x 100 episodes), minutes: {result[name]['grid_minutes']}")
        write_json(target, result)  # each part as soon as it is measured
    if "estimates" in parts:
        result["estimates"] = estimates(data, work)
        _log(f"grey / RGB estimates: {result['estimates']['grey_over_rgb_estimate']}")
        write_json(target, result)
    if "commands" in parts:
        result["commands"] = commands(data, work, args.old_main, args.repeats)
        _log(f"commands: {result['commands']['warm_linear_probe_s']} "
             f"dry-run: {result['commands']['dry_run_s']}")  # fmt: skip
        write_json(target, result)


if __name__ == "__main__":
    main()
