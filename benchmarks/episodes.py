"""Episode throughput: index sampling, episodes with images, and the raw read of the same rows.

Generates release-format datasets in a temporary folder (RGB and grey, 224x224), then for
5-way 5-shot/10-query RGB and 3-way 5-shot/10-query grey measures (median of repeats):

* index sampling: episodes/s of ``EpisodeSampler.episode(i)`` (labels only);
* with images: episodes/s of ``EpisodeLoader.load`` (uint8, and float normalised), of
  sampling plus loading together, and of that through a 2-worker DataLoader;
* raw read: the same global rows read one by one with h5py (``dset[i]``), in the same run;
* per-sample dataset path: ``MedIMeta[i]`` per row, the way per-item samplers load episodes.

Run: ``.venv/bin/python benchmarks/episodes.py`` (writes benchmarks/results/episodes.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from fixtures.release import ToySpec, ToyTask, make_release_dataset  # noqa: E402
from medimeta import MedIMeta  # noqa: E402
from medimeta.episodes import EpisodeLoader, EpisodeSampler, EpisodeStream  # noqa: E402

CONFIGS = {
    "rgb_5way_5shot_10query": {"channels": 3, "classes": 5, "shots": 5, "queries": 10},
    "grey_3way_5shot_10query": {"channels": 1, "classes": 3, "shots": 5, "queries": 10},
}


def timed(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds per function; one warm-up each, then the repeats round-robin, so that
    load from other processes on the machine hits every variant alike."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def make_dataset(root: Path, name: str, channels: int, classes: int, samples: int) -> Path:
    task = ToyTask("class", "MULTICLASS_CLASSIFICATION", {k: f"c{k}" for k in range(classes)})
    train = samples * 7 // 10
    spec = ToySpec(
        dataset_id=name,
        channels=channels,
        splits={"train": train, "val": samples // 10, "test": samples - train - samples // 10},
        tasks=(task,),
        with_tiff=False,
    )
    return make_release_dataset(root, spec)


def bench_config(
    root: Path, name: str, cfg: dict, samples: int, episodes: int, repeats: int
) -> dict:
    folder = make_dataset(root, name, cfg["channels"], cfg["classes"], samples)
    sampler = EpisodeSampler(
        folder, "class", None, shots=cfg["shots"], queries=cfg["queries"], seed=0
    )
    index_n = 20 * episodes

    def run(fn: Callable[[int], object], n: int) -> Callable[[], None]:
        def loop() -> None:
            for i in range(n):
                fn(i)  # results are dropped, as a training loop would: no memory build-up

        return loop

    eps = [sampler.episode(i) for i in range(episodes)]
    rows = [np.concatenate([e.support_indices, e.query_indices]) for e in eps]
    per_episode = int(rows[0].size)
    uint8 = EpisodeLoader(dtype="uint8")
    floats = EpisodeLoader(dtype="float")
    stream = EpisodeStream(sampler, floats, num_episodes=episodes, rank=0, world_size=1)
    workers = DataLoader(stream, batch_size=None, num_workers=2, persistent_workers=True)
    stream8 = EpisodeStream(sampler, uint8, num_episodes=episodes, rank=0, world_size=1)
    workers8 = DataLoader(stream8, batch_size=None, num_workers=2, persistent_workers=True)
    data = MedIMeta(root, name, "class")
    fh = h5py.File(folder / "images.hdf5", "r")
    dset = fh["images"]

    def raw() -> None:
        for r in rows:
            for g in r.tolist():
                dset[g]

    def per_sample() -> None:
        for r in rows:
            torch.stack([data[int(g)][0] for g in r])

    t = timed(
        {
            "index_sampling": run(sampler.episode, index_n),
            "with_images_uint8": run(lambda i: uint8.load(eps[i]), episodes),
            "with_images_float": run(lambda i: floats.load(eps[i]), episodes),
            "sample_and_load_float": run(lambda i: floats.load(sampler.episode(i)), episodes),
            "sample_and_load_float_2_workers": lambda: sum(1 for _ in workers),
            "sample_and_load_uint8_2_workers": lambda: sum(1 for _ in workers8),
            "raw_h5py_per_row": raw,
            "per_sample_dataset_path_float": per_sample,
        },
        repeats,
    )
    fh.close()
    rate = {k: (index_n if k == "index_sampling" else episodes) / v for k, v in t.items()}
    raw_rate = rate["raw_h5py_per_row"]
    return {
        "dataset": {"samples": samples, "channels": cfg["channels"], "classes": cfg["classes"]},
        "episode": {
            "ways": cfg["classes"],
            "shots": cfg["shots"],
            "queries": cfg["queries"],
            "images": per_episode,
        },
        "episodes_per_s": {k: round(v, 2) for k, v in rate.items()},
        "raw_rows_per_s": round(raw_rate * per_episode, 1),
        "ratio_to_raw": {
            k: round(rate[k] / raw_rate, 3)
            for k in rate
            if k not in ("index_sampling", "raw_h5py_per_row")
        },
    }


def machine() -> dict:
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "h5py": h5py.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
    }
    try:
        import psutil

        info["memory_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3000, help="images per generated dataset")
    parser.add_argument("--episodes", type=int, default=40, help="episodes per timed pass")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "episodes.json"
    )
    args = parser.parse_args()
    results = {"machine": machine(), "settings": vars(args) | {"out": str(args.out)}, "configs": {}}
    with tempfile.TemporaryDirectory(prefix="medimeta-bench-episodes-") as tmp:
        for name, cfg in CONFIGS.items():
            res = bench_config(Path(tmp), name, cfg, args.samples, args.episodes, args.repeats)
            results["configs"][name] = res
            rate, ratio = res["episodes_per_s"], res["ratio_to_raw"]
            print(f"{name}: {res['episode']['images']} images/episode")
            for key, value in rate.items():
                extra = f"  ({ratio[key]:.2f} x raw)" if key in ratio else ""
                print(f"  {key:32s} {value:10.1f} episodes/s{extra}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp_out, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
