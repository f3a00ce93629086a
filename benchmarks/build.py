"""Build throughput and memory of the dataset writer.

1. BUSI: converts ../shared/realdata/busi-256 (780 PNG, 256x256) with ``convert_folder`` at
   1 and 2 workers, each run in a fresh process: images/s of the whole build (validation,
   images, labels, CSV, sync, verify, rename), images/s of the image stage alone, and peak RSS
   (the main process, the largest worker, and the sampled sum over the process tree).
2. Flatness: builds a generated source (default 20,000 grey images made in ``process`` from
   the sample index, so the source itself needs no memory) with 2 workers and samples the
   process tree's RSS as the build advances; RSS must not grow with the number written.

Prints a summary and writes ``benchmarks/results/build.json``.
Usage: python benchmarks/build.py [--repeats 3] [--large 20000] [--workdir DIR] [--skip-large]

The 1- vs 2-worker ratio needs two otherwise idle cores. On a shared Linux machine with
autogroup scheduling, run it in its own session with a raised group priority:
``setsid bash -c 'echo -15 > /proc/$$/autogroup; exec python benchmarks/build.py'``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
REALDATA = Path(os.environ.get("MEDIMETA_REALDATA", REPO.parent / "shared" / "realdata"))
MB = 1024 * 1024


class TreeRSS:
    """Samples the memory of this process and its children while a build runs.

    ``peak_rss`` is the largest sum of RSS (every 50 ms; cheap). ``peak`` is the largest sum of
    PSS (proportional set size: pages shared by forked workers count once in total), sampled
    every 0.5 s because reading it costs ~4 ms per process.
    """

    def __init__(self, interval: float = 0.05, pss_every: int = 10) -> None:
        self.interval = interval
        self.pss_every = pss_every
        self.peak = 0
        self.peak_rss = 0
        self._ticks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _tree() -> list[psutil.Process]:
        me = psutil.Process()
        return [me, *me.children(recursive=True)]

    def sample_rss(self) -> int:
        total = 0
        for proc in self._tree():
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        self.peak_rss = max(self.peak_rss, total)
        return total

    def sample(self) -> int:
        """Sum of PSS over the process tree now (also updates ``peak``)."""
        total = 0
        for proc in self._tree():
            with contextlib.suppress(psutil.Error):
                info = proc.memory_full_info()
                total += getattr(info, "pss", info.rss)
        self.peak = max(self.peak, total)
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._ticks += 1
            self.sample_rss()
            if self._ticks % self.pss_every == 0:
                self.sample()

    def __enter__(self) -> TreeRSS:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _maxrss_mb(who: int) -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(who).ru_maxrss * scale / MB


def _cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def generated_image(record: Any) -> np.ndarray:
    """Process function of the flatness run: a smooth grey image from the sample index."""
    i = int(record.source)
    ramp = np.add.outer(np.arange(224), np.arange(224)) + i
    return (ramp % 256).astype(np.uint8)


def child_busi(workdir: Path, workers: int) -> dict[str, Any]:
    """One BUSI conversion in this (fresh) process."""
    import h5py  # noqa: F401  (imports are not part of the build time)
    import pandas  # noqa: F401

    from medimeta.convert import convert_folder

    start_cpu = _cpu_s(resource.RUSAGE_SELF)

    marks: list[tuple[float, int]] = []
    out = workdir / f"busi-w{workers}"
    shutil.rmtree(out, ignore_errors=True)
    with TreeRSS() as rss:
        start = time.perf_counter()
        convert_folder(
            REALDATA / "busi-256",
            out,
            "busi",
            "case category",
            channels=1,
            workers=workers,
            progress=lambda done, n: marks.append((time.perf_counter(), done)),
        )
        total = time.perf_counter() - start
    first, last = marks[0], marks[-1]
    shutil.rmtree(out, ignore_errors=True)
    return {
        "workers": workers,
        "cpu_s_main": _cpu_s(resource.RUSAGE_SELF) - start_cpu,
        "cpu_s_workers": _cpu_s(resource.RUSAGE_CHILDREN),
        "seconds": total,
        "images_per_s": 780 / total,
        "image_stage_images_per_s": (last[1] - first[1]) / (last[0] - first[0]),
        "peak_rss_main_mb": _maxrss_mb(resource.RUSAGE_SELF),
        "peak_rss_worker_mb": _maxrss_mb(resource.RUSAGE_CHILDREN),
        "peak_pss_tree_mb": rss.peak / MB,
        "peak_rss_tree_sum_mb": rss.peak_rss / MB,
    }


def child_large(workdir: Path, n: int, workers: int) -> dict[str, Any]:
    """A generated N-image build; RSS of the process tree sampled along the way."""
    from medimeta.format.writer import SampleRecord, write_dataset

    info = {
        "id": "generated",
        "name": "Generated",
        "summary": "benchmark",
        "domain": "Benchmark",
        "tasks": [
            {
                "task_name": "class",
                "task_target": "MULTICLASS_CLASSIFICATION",
                "labels": {0: "a", 1: "b", 2: "c"},
            }
        ],
        "input_size": [1, 224, 224],
        "license": "CC BY 4.0",
    }
    records = [
        SampleRecord(i, {"class": i % 3}, ("train", "val", "test")[i % 3], "train", f"gen/{i}")
        for i in range(n)
    ]
    checkpoints = sorted({n // 10, n // 4, n // 2, 3 * n // 4, n})
    curve: list[dict[str, float]] = []
    out = workdir / f"large-{n}"
    shutil.rmtree(out, ignore_errors=True)
    with TreeRSS() as rss:

        def progress(done: int, total: int) -> None:
            if checkpoints and done >= checkpoints[0]:
                checkpoints.pop(0)
                curve.append(
                    {
                        "done": done,
                        "tree_pss_mb": rss.sample() / MB,
                        "main_rss_mb": psutil.Process().memory_info().rss / MB,
                    }
                )

        start = time.perf_counter()
        write_dataset(out, info, records, generated_image, workers=workers, progress=progress)
        seconds = time.perf_counter() - start
    shutil.rmtree(out, ignore_errors=True)
    return {
        "n": n,
        "workers": workers,
        "seconds": seconds,
        "images_per_s": n / seconds,
        "rss_curve": curve,
        "peak_pss_tree_mb": rss.peak / MB,
        "peak_rss_tree_sum_mb": rss.peak_rss / MB,
        "peak_rss_main_mb": _maxrss_mb(resource.RUSAGE_SELF),
        "peak_rss_worker_mb": _maxrss_mb(resource.RUSAGE_CHILDREN),
    }


def run_child(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--large", type=int, default=20_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, workdir, *rest = args.child
        result = (
            child_busi(Path(workdir), int(rest[0]))
            if kind == "busi"
            else child_large(Path(workdir), int(rest[0]), int(rest[1]))
        )
        print(json.dumps(result))
        return
    if not (REALDATA / "busi-256").is_dir():
        sys.exit(f"{REALDATA / 'busi-256'} not found (set MEDIMETA_REALDATA)")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="medimeta-build-bench-"))
    report: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_before": os.getloadavg(),
        },
        "busi": [],
    }
    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    for _ in range(args.repeats):
        for workers in (1, 2):  # interleaved, so background load hits both alike
            runs[workers].append(run_child("busi", str(workdir), str(workers)))
    for workers, results in runs.items():
        summary = {
            "workers": workers,
            "images_per_s": statistics.median(r["images_per_s"] for r in results),
            "image_stage_images_per_s": statistics.median(
                r["image_stage_images_per_s"] for r in results
            ),
            "peak_rss_main_mb": max(r["peak_rss_main_mb"] for r in results),
            "peak_rss_worker_mb": max(r["peak_rss_worker_mb"] for r in results),
            "peak_pss_tree_mb": max(r["peak_pss_tree_mb"] for r in results),
            "runs": results,
        }
        report["busi"].append(summary)
        print(
            f"BUSI 780 PNG, {workers} worker(s): {summary['images_per_s']:.0f} images/s "
            f"(image stage {summary['image_stage_images_per_s']:.0f}/s), peak RSS main "
            f"{summary['peak_rss_main_mb']:.0f} MB, worker {summary['peak_rss_worker_mb']:.0f}"
            f" MB, tree (PSS) {summary['peak_pss_tree_mb']:.0f} MB"
        )
    one, two = report["busi"]
    report["speedup_2_workers"] = two["images_per_s"] / one["images_per_s"]
    report["speedup_2_workers_image_stage"] = (
        two["image_stage_images_per_s"] / one["image_stage_images_per_s"]
    )
    print(
        f"2 workers / 1 worker: {report['speedup_2_workers']:.2f}x whole build, "
        f"{report['speedup_2_workers_image_stage']:.2f}x image stage"
    )
    if not args.skip_large:
        small = run_child("large", str(workdir), str(max(1, args.large // 10)), "2")
        large = run_child("large", str(workdir), str(args.large), "2")
        report["flatness"] = {"small": small, "large": large}
        growth = large["peak_pss_tree_mb"] - small["peak_pss_tree_mb"]
        report["flatness"]["peak_growth_mb"] = growth
        print(
            f"generated {small['n']}: peak tree PSS {small['peak_pss_tree_mb']:.0f} MB; "
            f"{large['n']}: {large['peak_pss_tree_mb']:.0f} MB (growth {growth:+.0f} MB), "
            f"{large['images_per_s']:.0f} images/s"
        )
        for point in large["rss_curve"]:
            print(
                f"  after {point['done']:>6} images: tree PSS {point['tree_pss_mb']:.0f} MB, "
                f"main {point['main_rss_mb']:.0f} MB"
            )
    report["machine"]["load_after"] = os.getloadavg()
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "build.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS / 'build.json'}")


if __name__ == "__main__":
    main()
