"""Loader throughput beside three limits measured in the same run and beside medimeta 0.0.6.

Writes a release-format dataset of N generated 224x224 images (RGB and grey), then measures with
the page cache warm, batch 64, random order, 1 torch thread (``--threads``), medians of
round-robin repeats:

- ours: ``ds.loader(64, shuffle=True)`` float ("half" and "imagenet") and uint8, the drop-in
  ``DataLoader(ds, batch_size=64, shuffle=True)``, one sample at a time (``ds[i]``), and uint8
  batches normalised by ``DeviceNormalize`` (here on the CPU);
- the peer: medimeta 0.0.6's ``DataLoader(MedIMeta(...), batch_size=64, shuffle=True)``, run by
  ``benchmarks/anchor/peer.py`` in the interpreter given by ``--anchor-python`` (set up by
  ``benchmarks/anchor/setup.sh``; default /work/anchor-venv/bin/python when it exists), over the
  same folder, between the two halves of our repeats;
- the limits (benchmarks/anchor/harness.py): the same rows read raw from the file, writing the
  float output once (new and reused buffer), converting a cache-resident row into a reused
  buffer;
- workers 0 and 2 in steady state (persistent workers; start-up, the time to the first batch,
  reported apart; fork, and the start-up with spawn).

Prints medians and ratios and writes ``benchmarks/results/loader.json``.
Usage: python benchmarks/loader.py [--n 10000] [--repeats 10] [--batches 60] [--threads 1]
       [--anchor-python PATH] [--workdir DIR] [--out PATH]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader

from anchor.harness import (
    anchor_python,
    limits,
    load,
    machine,
    medians,
    run_peer,
    show,
    timed,
)
from medimeta import MedIMeta
from medimeta.data import DeviceNormalize
from medimeta.safeio import write_json

BATCH = 64
RESULTS = Path(__file__).resolve().parent / "results"


def write_dataset(root: Path, ds_id: str, n: int, channels: int, seed: int) -> None:
    """A release-format folder (HDF5 only; TIFFs are not read by the fast path)."""
    out = root / ds_id
    for sub in ("splits", "original_splits", "task_labels"):
        (out / sub).mkdir(parents=True)
    info = {
        "id": ds_id,
        "name": f"Benchmark {ds_id}",
        "summary": "generated",
        "domain": "Benchmark",
        "tasks": [
            {
                "task_name": "class",
                "task_target": "MULTICLASS_CLASSIFICATION",
                "labels": {i: f"c{i}" for i in range(5)},
            }
        ],
        "input_size": [channels, 224, 224],
        "total_num_samples": n,
        "splits_num_samples": {"train": n, "val": 0, "test": 0},
        "original_splits_num_samples": {"train": n, "val": 0, "test": 0},
    }
    (out / "info.yaml").write_text(yaml.safe_dump(info, sort_keys=False))
    rng = np.random.default_rng(seed)
    shape = (n, 224, 224) + ((3,) if channels == 3 else ())
    with h5py.File(out / "images.hdf5", "w") as f:
        dset = f.create_dataset("images", shape, np.uint8)
        step = 500
        for a in range(0, n, step):
            b = min(n, a + step)
            dset[a:b] = rng.integers(0, 256, (b - a, *shape[1:]), dtype=np.uint8)
    lines = [f"images/{i:06d}.tiff" for i in range(n)]
    (out / "splits" / "train.txt").write_text("\n".join(lines))
    (out / "original_splits" / "train.txt").write_text("\n".join(lines))
    np.save(out / "task_labels" / "class.npy", rng.integers(0, 5, n))


def take(make: Callable[[], object], batches: int) -> Callable[[], int]:
    """Samples/s function: ``batches`` batches from a new iterator of ``make()``."""

    def run() -> int:
        n = 0
        for k, (_, y) in enumerate(make()):  # type: ignore[call-overload]
            n += len(y)
            if k + 1 >= batches:
                break
        return n

    return run


def ours(root: Path, ds_id: str, order: np.ndarray, nb: int) -> dict[str, Callable[[], int]]:
    half = MedIMeta(root, ds_id, "class")
    imnet = MedIMeta(root, ds_id, "class", normalize="imagenet")
    u8 = MedIMeta(root, ds_id, "class", dtype="uint8")
    norm = DeviceNormalize("half").to("cpu")
    singles = order[: nb * BATCH // 4].tolist()
    seeds = iter(range(10**6))

    def single() -> int:
        for i in singles:
            half[i]
        return len(singles)

    def device() -> int:
        n = 0
        for k, (x, y) in enumerate(u8.loader(BATCH, shuffle=True, seed=next(seeds))):
            norm(x)
            n += len(y)
            if k + 1 >= nb:
                break
        return n

    return {
        "ours_loader_float": take(lambda: half.loader(BATCH, shuffle=True, seed=next(seeds)), nb),
        "ours_loader_float_imagenet": take(
            lambda: imnet.loader(BATCH, shuffle=True, seed=next(seeds)), nb
        ),
        "ours_loader_uint8": take(lambda: u8.loader(BATCH, shuffle=True, seed=next(seeds)), nb),
        "ours_dropin_float": take(lambda: DataLoader(half, batch_size=BATCH, shuffle=True), nb),
        "ours_single_float": single,
        "ours_uint8_then_device_normalize_cpu": device,
    }


def workers(root: Path, ds_id: str, epochs: int) -> dict[str, object]:
    """Steady-state samples/s with persistent workers (median of full epochs after the first),
    start-up (seconds to the first batch) reported apart."""
    half = MedIMeta(root, ds_id, "class")
    u8 = MedIMeta(root, ds_id, "class", dtype="uint8")
    out: dict[str, object] = {}
    for name, make in (
        (
            "loader_float",
            lambda k, ctx: half.loader(
                BATCH,
                shuffle=True,
                seed=0,
                num_workers=k,
                persistent_workers=k > 0,
                multiprocessing_context=ctx,
            ),
        ),
        (
            "dropin_float",
            lambda k, ctx: DataLoader(
                half,
                batch_size=BATCH,
                shuffle=True,
                num_workers=k,
                persistent_workers=k > 0,
                multiprocessing_context=ctx,
            ),
        ),
        (
            "loader_uint8",
            lambda k, ctx: u8.loader(
                BATCH,
                shuffle=True,
                seed=0,
                num_workers=k,
                persistent_workers=k > 0,
                multiprocessing_context=ctx,
            ),
        ),
    ):
        for k in (0, 2):
            loader = make(k, "fork" if k else None)
            t0 = time.perf_counter()
            it = iter(loader)
            next(it)
            startup = time.perf_counter() - t0
            for _ in it:  # the rest of the first epoch: warm-up
                pass
            rates = []
            for _ in range(epochs):
                t0 = time.perf_counter()
                n = sum(len(y) for _, y in loader)
                rates.append(n / (time.perf_counter() - t0))
            out[f"{name}_workers{k}"] = {
                "steady_samples_per_s": round(statistics.median(rates), 1),
                "epochs": [round(r, 1) for r in rates],
                "startup_s": round(startup, 3),
            }
            del it, loader
        w0 = out[f"{name}_workers0"]["steady_samples_per_s"]  # type: ignore[index]
        w2 = out[f"{name}_workers2"]["steady_samples_per_s"]  # type: ignore[index]
        out[f"{name}_ratio_workers2_to_workers0"] = round(w2 / w0, 3)
    t0 = time.perf_counter()
    next(iter(half.loader(BATCH, num_workers=2, multiprocessing_context="spawn")))
    out["spawn_startup_s_workers2"] = round(time.perf_counter() - t0, 3)
    return out


def bench_one(root: Path, ds_id: str, n: int, args: argparse.Namespace) -> dict[str, object]:
    order = np.random.default_rng(0).permutation(n)
    nb = args.batches
    batches = [order[k * BATCH : (k + 1) * BATCH] for k in range(min(nb, n // BATCH))]
    store = MedIMeta(root, ds_id, "class").store
    fns = {**limits(store, batches), **ours(root, ds_id, order, nb)}
    half = args.repeats - args.repeats // 2
    rates = timed(fns, half)
    peer = run_peer(
        args.peer,
        "loader",
        root=root,
        dataset=ds_id,
        task="class",
        batch=BATCH,
        batches=max(4, nb // 4),
        repeats=3,
        threads=args.threads,
    )
    for key, values in timed(fns, args.repeats // 2).items():
        rates[key] += values
    res: dict[str, object] = {"samples_per_s": medians(rates), "peer_medimeta_0.0.6": peer}
    med = res["samples_per_s"]
    assert isinstance(med, dict)
    ratios: dict[str, float] = {}
    if peer.get("available"):
        med["peer_dropin_float"] = round(peer["median"], 1)
        for key in (
            "ours_loader_float",
            "ours_dropin_float",
            "ours_single_float",
            "ours_loader_float_imagenet",
        ):
            ratios[f"{key}_vs_peer"] = round(med[key] / peer["median"], 2)
    for key in [k for k in med if k.startswith("limit_")]:
        ratios[f"ours_loader_float_vs_{key}"] = round(med["ours_loader_float"] / med[key], 3)
    ratios["ours_dropin_vs_ours_loader"] = round(
        med["ours_dropin_float"] / med["ours_loader_float"], 3
    )
    res["ratios"] = ratios
    res["workers"] = workers(root, ds_id, args.epochs)
    return res


def report(ds_id: str, res: dict) -> None:
    med, ratios = res["samples_per_s"], res["ratios"]
    print(f"[{ds_id}] medians; beside ours: x the peer and x the limits of this run")
    show(med, "samples/s", "peer_dropin_float")
    for key, value in ratios.items():
        print(f"  {key:52s} {value:8.3f}x")
    for key, value in res["workers"].items():
        print(f"  workers {key:40s} {value}")
    if not res["peer_medimeta_0.0.6"].get("available"):
        print(f"  peer not run: {res['peer_medimeta_0.0.6'].get('why')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="images per dataset")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--batches", type=int, default=60, help="batches of 64 per repeat")
    parser.add_argument("--epochs", type=int, default=2, help="steady-state epochs (workers)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--anchor-python", dest="peer", type=Path, default=None)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS / "loader.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.peer = anchor_python(args.peer)
    load_before = load()
    work = Path(tempfile.mkdtemp(prefix="medimeta-bench-", dir=args.workdir))
    try:
        results: dict[str, object] = {}
        for ds_id, channels in (("bench_rgb", 3), ("bench_gray", 1)):
            t0 = time.perf_counter()
            write_dataset(work, ds_id, args.n, channels, seed=channels)
            print(f"[{ds_id}] wrote {args.n} images in {time.perf_counter() - t0:.1f} s")
            results[ds_id] = bench_one(work, ds_id, args.n, args)
            report(ds_id, results[ds_id])  # type: ignore[arg-type]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record = {
        "benchmark": "loader",
        "protocol": {
            "n": args.n,
            "batch": BATCH,
            "order": "random",
            "repeats": args.repeats,
            "batches_per_repeat": args.batches,
            "peer_batches_per_repeat": max(4, args.batches // 4),
            "peer_repeats": 3,
            "threads": args.threads,
            "workers": "0 unless named; workers runs: persistent, fork",
            "steady_epochs": args.epochs,
            "statistic": "median of round-robin repeats",
        },
        "machine": machine()
        | {"load_average_1_5_15_before": load_before, "load_average_1_5_15_after": load()},
        "results": results,
    }
    write_json(args.out, record, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
