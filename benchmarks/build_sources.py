"""Build throughput of ``medimeta build bus`` on the real BUSI images (busi-256), 1 vs 2 workers.

Each repeat builds ``bus`` from ``../shared/realdata/busi-256`` into a fresh temporary root
(780 images: decode PNG, grey, pad, bicubic resize, TIFF + HDF5 row, annotations, verify).
Also timed: the planning phase alone (scan the tree, validate it, read labels, assign splits).
``--synthetic`` instead writes a BUSI-like tree (780 speckled 256x256 RGB PNGs in the BUSI
class folders and proportions) for machines without the real data.
Prints medians and writes ``benchmarks/results/build_sources.json`` (or ``--out``).
Usage: python benchmarks/build_sources.py [--repeats 3] [--source PATH] [--workers 1 2]
       [--synthetic] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from medimeta.builders import build_dataset, get_builder, plan_build

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DEFAULT_SOURCE = (
    Path(os.environ.get("MEDIMETA_REALDATA", REPO.parent / "shared" / "realdata")) / "busi-256"
)


def synthetic_busi(folder: Path) -> Path:
    """780 speckled 256x256 RGB PNGs named and split like BUSI (437 / 210 / 133)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    x = np.mgrid[0:256, 0:256][1]
    for cls, n in (("benign", 437), ("malignant", 210), ("normal", 133)):
        (folder / cls).mkdir(parents=True, exist_ok=True)
        for k in range(1, n + 1):
            speckle = rng.gamma(2.0, 30.0, (256, 256)) + 40 * np.sin((x + k) / 17.0)
            grey = np.clip(speckle, 0, 255).astype(np.uint8)
            rgb = np.repeat(grey[..., None], 3, axis=2)
            Image.fromarray(rgb).save(folder / cls / f"{cls} ({k}).png")
    return folder


def time_build(source: Path, workers: int, workdir: Path) -> tuple[float, int]:
    root = Path(tempfile.mkdtemp(prefix=f"bus-w{workers}-", dir=workdir))
    try:
        start = time.perf_counter()
        result = build_dataset("bus", source, root=root, workers=workers)
        return time.perf_counter() - start, result.num_samples
    finally:
        shutil.rmtree(root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--synthetic", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "build_sources.json")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.gettempdir())
    if args.synthetic:
        args.source = synthetic_busi(Path(tempfile.mkdtemp(dir=workdir)) / "busi-synthetic")
    if not args.source.is_dir():
        raise SystemExit(f"{args.source} not found (set MEDIMETA_REALDATA)")

    plan_times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        plan = plan_build(get_builder("bus"), args.source)
        plan_times.append(time.perf_counter() - start)

    runs: dict[str, dict[str, object]] = {}
    time_build(args.source, 1, workdir)  # warm the page cache and imports once
    for workers in args.workers:
        seconds = []
        n = 0
        for _ in range(args.repeats):
            elapsed, n = time_build(args.source, workers, workdir)
            seconds.append(elapsed)
        median = statistics.median(seconds)
        runs[str(workers)] = {
            "seconds": [round(s, 3) for s in seconds],
            "median_seconds": round(median, 3),
            "images_per_second": round(n / median, 1),
        }
        print(f"workers={workers}: {n} images, median {median:.2f} s, {n / median:.1f} images/s")
    base = runs[str(args.workers[0])]["median_seconds"]
    for run in runs.values():
        run["speedup_vs_first"] = round(float(base) / float(run["median_seconds"]), 2)
    plan_median = statistics.median(plan_times)
    print(f"plan only (scan + validate + splits): median {plan_median:.3f} s")
    out = {
        "benchmark": "build bus from "
        + ("a synthetic BUSI-like tree" if args.synthetic else "busi-256")
        + " (780 PNG, 256x256 RGB)",
        "dataset": "bus",
        "images": plan.num_samples,
        "repeats": args.repeats,
        "plan_median_seconds": round(plan_median, 3),
        "runs_by_workers": runs,
        "machine": {
            "cpus": os.cpu_count(),
            "usable_cpus": len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else None,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        },
        "notes": "wall time of build_dataset: scan, validate, decode, preprocess, TIFF + HDF5, "
        "annotations.csv, fsync and verify; page cache warm (one untimed build first)",
    }
    target = args.out
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
