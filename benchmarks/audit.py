"""``medimeta audit`` at scale, and the thresholds' precision and recall on known cases.

Timing (``benchmarks/results/audit.json``): a generated grey dataset of ``--n`` (100,000)
images at 224 px, smooth random structure plus pixel noise, with planted duplicates (1 %
exact copies, 0.5 % JPEG re-encodings, 0.5 % 28 px copies) and two images per patient; the
audit (no suspect labels) runs cold (descriptors computed), then warm (descriptors cached);
then a second dataset of ``--cross`` (20,000) images, 10 % of them 28 px copies of the first,
is compared with it. Reports the estimate printed before the run, the measured times and the
recall/precision of the planted pairs.

Calibration (``benchmarks/results/audit_calibration.json``, needs ``../shared/realdata``):
BreastMNIST against ``bus`` at thresholds 0.90 ... 0.98 (paired share, malignancy agreement of
best partners, the precision that agreement implies, mutual best matches); a simulated
MedMNIST pipeline on ``bus`` (each image center-cropped to a random 70-100 % of its width,
area-downsampled to 28 px, bicubic back to 224: a known pairing) with precision and recall;
within-``bus`` pairs whose BUSI file numbers are within 10 of each other in the same class
folder (consecutive frames of one examination) as a precision proxy; ``bus`` against ``pbc``.

Usage: nice python benchmarks/audit.py [--n 100000] [--cross 20000] [--dir DIR] [--keep]
       [--skip-scale] [--skip-calibration]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import yaml
from PIL import Image

from medimeta.audit import compute_descriptors, find_pairs
from medimeta.audit.duplicates import mutual_best, paired_mask
from medimeta.audit.run import AuditOptions, run_audit
from medimeta.format.reader import DatasetFolder
from medimeta.safeio import write_json

RESULTS = Path(__file__).resolve().parent / "results"
REALDATA = Path(
    os.environ.get("MEDIMETA_REALDATA", Path(__file__).resolve().parents[2] / "shared" / "realdata")
)
THRESHOLDS = (0.90, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98)


# -- generated datasets ---------------------------------------------------------------------
def smooth(rng: np.random.Generator, n: int) -> np.ndarray:
    out = np.empty((n, 224, 224), np.uint8)
    for i in range(n):
        cells = rng.integers(30, 226, (10, 10), dtype=np.uint8)
        out[i] = np.asarray(Image.fromarray(cells).resize((224, 224), Image.Resampling.BICUBIC))
    noise = rng.integers(-3, 4, out.shape, dtype=np.int16)
    return np.clip(out.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def low_res(img: np.ndarray) -> np.ndarray:
    small = Image.fromarray(img).resize((28, 28), Image.Resampling.BOX)
    return np.asarray(small.resize((224, 224), Image.Resampling.BICUBIC))


def jpeg(img: np.ndarray) -> np.ndarray:
    import io

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=75)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())))


def write_folder(root: Path, ds_id: str, n: int, fill) -> Path:
    """A release-layout folder of ``n`` grey images written block by block by ``fill(start,
    stop) -> uint8 (k, 224, 224)``; one binary task, 70/10/20 splits, two images per patient."""
    out = root / ds_id
    (out / "splits").mkdir(parents=True)
    (out / "task_labels").mkdir()
    with h5py.File(out / "images.hdf5", "w") as f:
        dset = f.create_dataset("images", (n, 224, 224), np.uint8)
        for s in range(0, n, 2048):
            dset[s : min(s + 2048, n)] = fill(s, min(s + 2048, n))
    rng = np.random.default_rng(len(ds_id))
    split = rng.choice(["train", "val", "test"], n, p=[0.7, 0.1, 0.2])
    names = np.array([f"images/{i:06d}.tiff" for i in range(n)])
    for s in ("train", "val", "test"):
        (out / "splits" / f"{s}.txt").write_text("\n".join(names[split == s]))
    (out / "original_splits").mkdir()
    (out / "original_splits" / "train.txt").write_text("\n".join(names))
    labels = (np.arange(n) % 2).astype(np.int64)
    np.save(out / "task_labels" / "finding.npy", labels)
    info = {
        "id": ds_id, "name": ds_id, "domain": "Generated", "summary": "benchmark",
        "tasks": [{"task_name": "finding", "task_target": "BINARY_CLASSIFICATION",
                   "labels": {0: "no", 1: "yes"}}],
        "input_size": [1, 224, 224], "total_num_samples": n,
        "splits_num_samples": {s: int((split == s).sum()) for s in ("train", "val", "test")},
        "original_splits_num_samples": {"train": n, "val": 0, "test": 0},
        "license": "CC0",
    }  # fmt: skip
    (out / "info.yaml").write_text(yaml.safe_dump(info, sort_keys=False))
    frame = pd.DataFrame({"filepath": names, "split": split, "tasks/finding": labels})
    frame["original_filepath"] = [f"gen/{i}.png" for i in range(n)]
    frame["original_split"] = "train"
    frame["patient_id"] = [f"P{i // 2:06d}" for i in range(n)]
    frame.to_csv(out / "annotations.csv", index=False)
    return out


def planted(n: int, seed: int) -> dict[int, tuple[int, str]]:
    """copy index -> (original index, kind) for 2 % of ``n``."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(n, 4 * (n // 100), replace=False)
    originals, copies = idx[: len(idx) // 2], idx[len(idx) // 2 :]
    kinds = ["exact"] * (n // 100) + ["jpeg"] * (n // 200) + ["28px"] * (n // 200)
    return {int(c): (int(o), k) for c, o, k in zip(copies, originals, kinds, strict=False)}


def one(seed: int, i: int) -> np.ndarray:
    """Image ``i`` of a generated dataset (the same on every call)."""
    return smooth(np.random.default_rng([seed, i]), 1)[0]


def _generate(root: Path, n: int, cross: int) -> tuple[dict, dict]:
    """The big dataset with planted duplicates and the cross dataset; returns the truths."""
    plant = planted(n, 1)

    def fill_big(start: int, stop: int) -> np.ndarray:
        imgs = np.stack([one(7, i) for i in range(start, stop)])
        for c in range(start, stop):
            if c in plant:
                o, kind = plant[c]
                src = one(7, o)
                imgs[c - start] = (
                    src if kind == "exact" else jpeg(src) if kind == "jpeg" else low_res(src)
                )
        return imgs

    if not (root / "gen_big" / "info.yaml").is_file():  # a kept work folder is reused
        write_folder(root, "gen_big", n, fill_big)
    big = DatasetFolder(root / "gen_big").image_store()
    pick = np.random.default_rng(2).choice(n, cross // 10, replace=False)
    copies = {i: int(o) for i, o in enumerate(pick)}

    def fill_small(start: int, stop: int) -> np.ndarray:
        imgs = np.stack([one(99, i) for i in range(start, stop)])
        for c in range(start, min(stop, len(copies))):
            imgs[c - start] = low_res(big.read(copies[c]))
        return imgs

    if cross and not (root / "gen_cross" / "info.yaml").is_file():
        write_folder(root, "gen_cross", cross, fill_small)
    return plant, copies


def _recall(table, truth: set[tuple[int, int]]) -> dict[str, Any]:
    found = {(int(i), int(j)) for i, j in zip(table.ia, table.ib, strict=True)}
    hit = len(found & truth)
    return {
        "planted": len(truth),
        "found": len(found),
        "planted_found": hit,
        "recall": hit / len(truth) if truth else None,
        "precision": hit / len(found) if found else None,
    }


def scale(work: Path, n: int, cross: int) -> dict[str, Any]:
    root = work / "MedIMeta"
    reused = (root / "gen_big" / "info.yaml").is_file()
    t0 = time.perf_counter()
    plant, copies = _generate(root, n, cross)
    gen_s = time.perf_counter() - t0
    print(f"generated (or found) {n:,} + {cross:,} images in {gen_s:.0f} s", flush=True)
    shutil.rmtree(work / "cache", ignore_errors=True)  # the first run is cold
    opts = AuditOptions(labels=False, across=False, cache=work / "cache")
    runs, estimates = {}, {}
    for label in ("cold", "warm"):
        run = run_audit(root, ["gen_big"], work / f"out-{label}", opts, log=print)
        runs[label] = run.report["audit"]["timings"]
        estimates[label] = run.report["audit"]["estimate"]
        table = run.tables[0]
    truth = {tuple(sorted((c, o))) for c, (o, _k) in plant.items()}
    result: dict[str, Any] = {
        "images": n,
        "generate_s": None if reused else gen_s,
        "estimate_cold": estimates["cold"],
        "estimate_warm": estimates["warm"],
        "within_cold": runs["cold"],
        "within_warm": runs["warm"],
        "within_pairs": _recall(table, truth),
        "by_kind": {
            k: _recall(table, {tuple(sorted((c, o))) for c, (o, kk) in plant.items() if kk == k})[
                "recall"
            ]
            for k in ("exact", "jpeg", "28px")
        },
        "subjects": run.report["datasets"]["gen_big"]["subjects"][0]["leaking_subjects"],
    }
    if cross:
        twins: dict[int, set[int]] = {}
        for c, (o, _k) in plant.items():  # a copy of o in big is a copy of o's twins too
            twins.setdefault(o, {o}).add(c)
            twins.setdefault(c, {c}).add(o)
        truth_cross = {(i, t) for i, o in copies.items() for t in twins.get(o, {o})}
        result["cross"] = _cross(root, work, truth_cross, n, cross)
    return result


def _cross(root: Path, work: Path, truth: set, n: int, cross: int) -> dict[str, Any]:
    from medimeta.audit.store import AuditCache

    cache = AuditCache(work / "cache")
    t0 = time.perf_counter()
    a = cache.descriptors(DatasetFolder(root / "gen_cross"))
    desc_s = time.perf_counter() - t0
    b = cache.descriptors(DatasetFolder(root / "gen_big"))
    t0 = time.perf_counter()
    table = find_pairs(a, b)
    pair_s = time.perf_counter() - t0
    print(f"cross {cross:,} x {n:,}: {pair_s:.1f} s, {len(table):,} pairs", flush=True)
    return {
        "a_images": cross,
        "b_images": n,
        "descriptors_s": desc_s,
        "pairing_s": pair_s,
        "scored_pair_combinations": table.result.products,
        "choice": table.result.choice,
        **_recall(table, truth),
    }


# -- calibration on real data ----------------------------------------------------------------
def _build_real(work: Path) -> Path:
    from typer.testing import CliRunner

    from medimeta.cli.app import app

    root = work / "real" / "MedIMeta"
    steps = [
        ["convert", "medmnist", str(REALDATA / "medmnist-v2-28" / "breastmnist.npz")],
        ["build", "bus", "--source", str(REALDATA / "busi-256")],
        ["build", "pbc", "--source", str(REALDATA / "pbc-subset"), "--partial"],
    ]
    for args in steps:
        result = CliRunner().invoke(app, [*args, "--root", str(root), "-q"])
        assert result.exit_code == 0, result.output
    return root


def _breast(bm, bus, root: Path) -> dict[str, Any]:
    """Paired share, agreement, implied precision and mutual best, per threshold."""
    mal_bm = np.load(root / "breastmnist" / "task_labels" / "malignancy.npy") == 0
    mal_bus = np.load(root / "bus" / "task_labels" / "malignancy.npy") == 1
    p = mal_bm.mean()
    chance = p * mal_bus.mean() + (1 - p) * (1 - mal_bus.mean())
    rows = {}
    for thr in THRESHOLDS:
        table = find_pairs(bm, bus, threshold=thr)
        paired = paired_mask(table, "a")
        agree = mal_bm == mal_bus[table.result.best_a_index]
        a = float(agree[paired].mean())
        rows[f"{thr:.2f}"] = {
            "paired_pct": 100 * float(paired.mean()),
            "bus_paired_pct": 100 * float(paired_mask(table, "b").mean()),
            "agreement_pct": 100 * a,
            "all_pairs_agreement_pct": 100 * float((mal_bm[table.ia] == mal_bus[table.ib]).mean()),
            "implied_precision_pct": 100 * (a - chance) / (1 - chance),
            "mutual_best_pct": 100 * float(mutual_best(table)[paired].mean()),
            "pairs": len(table),
            "seconds": table.result.seconds,
        }
        print(f"breastmnist x bus @ {thr:.2f}: {rows[f'{thr:.2f}']}", flush=True)
    return {"chance_agreement_pct": 100 * chance, "by_threshold": rows}


def _simulated(bus_folder: Path, work: Path) -> dict[str, Any]:
    """A MedMNIST-like copy of bus with a known pairing (random order)."""
    store = DatasetFolder(bus_folder).image_store()
    rng = np.random.default_rng(5)
    n = store.num_samples
    order = rng.permutation(n)  # copy k is bus image order[k]
    imgs = np.empty((n, 224, 224), np.uint8)
    for k, i in enumerate(order):
        src = store.read(int(i))
        keep = round(224 * rng.uniform(0.7, 1.0))
        left = (224 - keep) // 2
        crop = Image.fromarray(src[:, left : left + keep]).resize((28, 28), Image.Resampling.BOX)
        imgs[k] = np.asarray(crop.resize((224, 224), Image.Resampling.BICUBIC))
    write_folder(work / "sim", "sim28", n, lambda s, e: imgs[s:e])
    sim = compute_descriptors(DatasetFolder(work / "sim" / "sim28"))
    bus = compute_descriptors(DatasetFolder(bus_folder))
    near_dup = find_pairs(bus, threshold=0.95)  # BUSI's own near-duplicates also count
    twins: dict[int, set[int]] = {i: {i} for i in range(n)}
    for i, j in zip(near_dup.ia, near_dup.ib, strict=True):
        twins[int(i)].add(int(j))
        twins[int(j)].add(int(i))
    rows = {}
    for thr in THRESHOLDS:
        table = find_pairs(sim, bus, threshold=thr)
        paired = paired_mask(table, "a")
        best = table.result.best_a_index
        right = np.array([best[k] in twins[int(order[k])] for k in range(n)])
        exact_right = best == order
        rows[f"{thr:.2f}"] = {
            "recall_pct": 100 * float((paired & right).mean()),
            "precision_pct": 100 * float(right[paired].mean()) if paired.any() else None,
            "precision_strict_pct": 100 * float(exact_right[paired].mean())
            if paired.any()
            else None,
        }
        print(f"simulated 28 px x bus @ {thr:.2f}: {rows[f'{thr:.2f}']}", flush=True)
    return rows


def _within_bus(bus, root: Path) -> dict[str, Any]:
    """Within-bus pairs per threshold, the share whose BUSI files are nearby frames (same
    folder, numbers within 10: a lower bound of the true share, BUSI also repeats images under
    distant numbers) and the pairs per score band (duplicates form a separate mode)."""
    ann = pd.read_csv(root / "bus" / "annotations.csv")
    parsed = ann["original_filepath"].str.extract(r"^(\w+)/\w+ \((\d+)\)\.png$")
    folder, number = parsed[0].to_numpy(), parsed[1].astype(int).to_numpy()
    rows: dict[str, Any] = {}
    for thr in THRESHOLDS:
        table = find_pairs(bus, threshold=thr)
        near = (folder[table.ia] == folder[table.ib]) & (
            np.abs(number[table.ia] - number[table.ib]) <= 10
        )
        rows[f"{thr:.2f}"] = {
            "pairs": len(table),
            "nearby_frames_pct": 100 * float(near.mean()) if len(table) else None,
            "images_in_pairs": int(np.unique(np.concatenate([table.ia, table.ib])).size),
        }
    table = find_pairs(bus, threshold=0.85)
    edges = (0.85, 0.88, 0.9, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99, 1.01)
    counts = np.histogram(table.score, bins=edges)[0]
    rows["pairs_per_band"] = {
        f"{lo:.2f}-{hi:.2f}": int(c)
        for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True)
    }
    return rows


def calibration(work: Path) -> dict[str, Any]:
    root = _build_real(work)
    bm = compute_descriptors(DatasetFolder(root / "breastmnist"))
    bus = compute_descriptors(DatasetFolder(root / "bus"))
    pbc = compute_descriptors(DatasetFolder(root / "pbc"))
    unrelated = find_pairs(bus, pbc)
    unrelated_bm = find_pairs(bm, pbc)
    return {
        "breastmnist_vs_bus": _breast(bm, bus, root),
        "simulated_medmnist_vs_bus": _simulated(root / "bus", work),
        "within_bus": _within_bus(bus, root),
        "bus_vs_pbc": {"pairs": len(unrelated), "best": float(unrelated.result.best_a.max())},
        "breastmnist_vs_pbc": {
            "pairs": len(unrelated_bm),
            "best": float(unrelated_bm.result.best_a.max()),
        },
    }


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_1min": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--cross", type=int, default=20_000)
    parser.add_argument("--dir", type=Path, default=None, help="work folder [default: a temp dir]")
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--skip-calibration", action="store_true")
    args = parser.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="medimeta-audit-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if not args.skip_scale:
            res = {"benchmark": "audit", **_machine(), "results": scale(work, args.n, args.cross)}
            write_json(RESULTS / "audit.json", res)
            print(f"wrote {RESULTS / 'audit.json'}")
        if not args.skip_calibration and (REALDATA / "busi-256").is_dir():
            res = {"benchmark": "audit calibration", **_machine(), "results": calibration(work)}
            write_json(RESULTS / "audit_calibration.json", res)
            print(f"wrote {RESULTS / 'audit_calibration.json'}")
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
