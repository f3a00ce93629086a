"""Episode throughput beside the same run's limits and torchcross 0.0.6 over medimeta 0.0.6.

Generates release-format datasets in a temporary folder (RGB and grey, 224x224), then for
5-way 5-shot/10-query RGB and 3-way 5-shot/10-query grey measures (medians of round-robin
repeats, 1 torch thread):

* index sampling: episodes/s of ``EpisodeSampler.episode(i)`` (labels only);
* with images: episodes/s of ``EpisodeLoader.load`` (uint8, and float normalised), of sampling
  plus loading together, and the per-sample dataset path ``MedIMeta[i]`` for comparison;
* the peer: torchcross 0.0.6's ``FewShotMetaDataset`` over medimeta 0.0.6's ``MedIMeta`` with
  float images (``benchmarks/anchor/peer.py`` in the ``--anchor-python`` interpreter, same
  folder), run between the two halves of our repeats;
* the limits for the same rows (benchmarks/anchor/harness.py): raw read, writing the float
  output once (new and reused buffer), converting a cache-resident row into a reused buffer;
  and h5py's per-row read as before;
* workers 0 and 2 through ``EpisodeStream`` + DataLoader: steady state with persistent workers
  (start-up, the time to the first episode, apart).

Run: ``.venv/bin/python benchmarks/episodes.py [--anchor-python PATH]`` (writes
benchmarks/results/episodes.json).
"""

from __future__ import annotations

import argparse
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

from anchor.harness import (  # noqa: E402
    anchor_python,
    limits,
    load,
    machine,
    medians,
    run_peer,
    show,
    timed,
)
from fixtures.release import ToySpec, ToyTask, make_release_dataset  # noqa: E402
from medimeta import MedIMeta  # noqa: E402
from medimeta.episodes import EpisodeLoader, EpisodeSampler, EpisodeStream  # noqa: E402
from medimeta.safeio import write_json  # noqa: E402

CONFIGS = {
    "rgb_5way_5shot_10query": {"channels": 3, "classes": 5, "shots": 5, "queries": 10},
    "grey_3way_5shot_10query": {"channels": 1, "classes": 3, "shots": 5, "queries": 10},
}


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


def stream_rates(
    sampler: EpisodeSampler, loader: EpisodeLoader, n: int, epochs: int
) -> dict[str, object]:
    """Steady-state episodes/s through ``EpisodeStream`` with workers 0 and 2 (persistent,
    median of full epochs after the first); start-up (seconds to the first episode) apart."""
    out: dict[str, object] = {}
    for k in (0, 2):
        stream = EpisodeStream(sampler, loader, num_episodes=n, rank=0, world_size=1)
        dl = DataLoader(stream, batch_size=None, num_workers=k, persistent_workers=k > 0)
        t0 = time.perf_counter()
        it = iter(dl)
        next(it)
        startup = time.perf_counter() - t0
        for _ in it:
            pass
        rates = []
        for _ in range(epochs):
            t0 = time.perf_counter()
            c = sum(1 for _ in dl)
            rates.append(c / (time.perf_counter() - t0))
        out[f"workers{k}"] = {
            "steady_episodes_per_s": round(statistics.median(rates), 1),
            "epochs": [round(r, 1) for r in rates],
            "startup_s": round(startup, 3),
        }
        del it, dl
    w0 = out["workers0"]["steady_episodes_per_s"]  # type: ignore[index]
    w2 = out["workers2"]["steady_episodes_per_s"]  # type: ignore[index]
    out["ratio_workers2_to_workers0"] = round(w2 / w0, 3)
    return out


def _per_episode(fn: Callable[[], int], per_episode: int) -> Callable[[], int]:
    """A rows/s limit as an episodes/s function."""

    def run() -> int:
        return fn() // per_episode

    return run


def _loop(fn: Callable[[int], object], n: int) -> Callable[[], int]:
    def run() -> int:
        for i in range(n):
            fn(i)  # results are dropped, as a training loop would
        return n

    return run


def bench_config(root: Path, name: str, cfg: dict, args: argparse.Namespace) -> dict:
    folder = make_dataset(root, name, cfg["channels"], cfg["classes"], args.samples)
    sampler = EpisodeSampler(
        folder, "class", None, shots=cfg["shots"], queries=cfg["queries"], seed=0
    )
    n = args.episodes
    eps = [sampler.episode(i) for i in range(n)]
    rows = [np.concatenate([e.support_indices, e.query_indices]) for e in eps]
    per_episode = int(rows[0].size)
    uint8 = EpisodeLoader(dtype="uint8")
    floats = EpisodeLoader(dtype="float")
    data = MedIMeta(root, name, "class")
    fh = h5py.File(folder / "images.hdf5", "r")
    dset = fh["images"]

    def raw_h5py() -> int:
        for r in rows:
            for g in r.tolist():
                dset[g]
        return n

    def per_sample() -> int:
        for r in rows[: max(2, n // 4)]:
            torch.stack([data[int(g)][0] for g in r])
        return max(2, n // 4)

    fns = {
        "index_sampling": _loop(sampler.episode, 20 * n),
        "ours_with_images_uint8": _loop(lambda i: uint8.load(eps[i]), n),
        "ours_with_images_float": _loop(lambda i: floats.load(eps[i]), n),
        "ours_sample_and_load_float": _loop(lambda i: floats.load(sampler.episode(i)), n),
        "ours_per_sample_dataset_path_float": per_sample,
        "raw_h5py_per_row": raw_h5py,
        **{k: _per_episode(f, per_episode) for k, f in limits(data.store, rows).items()},
    }
    rates = timed(fns, args.repeats - args.repeats // 2)
    peer = run_peer(
        args.peer,
        "episodes",
        root=root,
        dataset=name,
        task="class",
        shots=cfg["shots"],
        queries=cfg["queries"],
        episodes=max(4, n // 4),
        repeats=3,
        threads=args.threads,
    )
    for key, values in timed(fns, args.repeats // 2).items():
        rates[key] += values
    fh.close()
    med = medians(rates)
    ratios: dict[str, float] = {}
    if peer.get("available"):
        med["peer_torchcross_float"] = round(peer["median"], 2)
        for key in ("ours_with_images_float", "ours_sample_and_load_float"):
            ratios[f"{key}_vs_peer"] = round(med[key] / peer["median"], 2)
    for key in [k for k in med if k.startswith("limit_")]:
        ratios[f"ours_with_images_float_vs_{key}"] = round(
            med["ours_with_images_float"] / med[key], 3
        )
    ep = {"ways": cfg["classes"], "shots": cfg["shots"], "queries": cfg["queries"]}
    return {
        "dataset": {"samples": args.samples, "channels": cfg["channels"]},
        "episode": ep | {"images": per_episode},
        "episodes_per_s": med,
        "ratios": ratios,
        "peer_torchcross_0.0.6": peer,
        "workers_float": stream_rates(sampler, floats, args.stream_episodes, args.epochs),
        "workers_uint8": stream_rates(sampler, uint8, args.stream_episodes, args.epochs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000, help="images per generated dataset")
    parser.add_argument("--episodes", type=int, default=40, help="episodes per timed pass")
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--stream-episodes", type=int, default=120, help="episodes per epoch")
    parser.add_argument("--epochs", type=int, default=2, help="steady-state epochs (workers)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--anchor-python", dest="peer", type=Path, default=None)
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "episodes.json"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.peer = anchor_python(args.peer)
    results: dict = {
        "benchmark": "episodes",
        "protocol": vars(args)
        | {
            "out": str(args.out),
            "peer": str(args.peer),
            "workers": "0 unless named; workers runs: EpisodeStream, persistent, fork",
            "peer_episodes_per_repeat": max(4, args.episodes // 4),
            "peer_repeats": 3,
            "statistic": "median of round-robin repeats",
        },
        "machine": machine() | {"load_average_1_5_15_before": load()},
        "configs": {},
    }
    with tempfile.TemporaryDirectory(prefix="medimeta-bench-episodes-") as tmp:
        for name, cfg in CONFIGS.items():
            res = bench_config(Path(tmp), name, cfg, args)
            results["configs"][name] = res
            print(f"{name}: {res['episode']['images']} images/episode; medians; beside ours:")
            print("  x the peer and x the limits of this run")
            show(res["episodes_per_s"], "episodes/s", "peer_torchcross_float")
            for key, value in res["ratios"].items():
                print(f"  {key:56s} {value:8.3f}x")
            for kind in ("workers_float", "workers_uint8"):
                print(f"  {kind}: {res[kind]}")
            if not res["peer_torchcross_0.0.6"].get("available"):
                print(f"  peer not run: {res['peer_torchcross_0.0.6'].get('why')}")
    results["machine"]["load_average_1_5_15_after"] = load()
    write_json(args.out, results, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
