"""Make the pictures of docs/plots.md from generated data (no real patient data, no network).

    .venv/bin/python docs/pictures/make_pictures.py [--work DIR]

Builds two synthetic datasets: the demo's grey ``bus`` (a generated tree in BUSI's published
layout, built by the real builder with ``--partial``; see :mod:`medimeta.synthetic`) and an RGB
``demo_colours`` made here through the writer; trains a small supervised run and two few-shot
baselines on them with the ``medimeta`` commands, and writes one PNG of each kind beside this
file. Takes
about two minutes on two CPU cores; the same seed gives the same pictures.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from medimeta.cli.app import app
from medimeta.data import MedIMeta
from medimeta.episodes import EpisodeSet
from medimeta.format import SampleRecord, write_dataset
from medimeta.plots import (
    class_grid,
    dataset_overview,
    episode_grid,
    fewshot_intervals,
    label_distribution,
    montage,
    roc_curves,
    save_figure,
    save_image,
    training_curves,
)
from medimeta.runs.record import is_run_folder, predictions_file
from medimeta.splitting import assign_splits
from medimeta.synthetic import make_busi_like_tree

HERE = Path(__file__).resolve().parent
DPI = 80  # small files for the docs
COLOURS = {0: "red cells", 1: "green cells", 2: "blue cells"}
SAMPLE_ID, TASK = "bus", "case category"


def draw_colours(record: SampleRecord) -> np.ndarray:
    """An RGB image of soft blobs tinted by the record's class (pure function of its seed)."""
    seed, colour = record.source
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:224, 0:224].astype(np.float32)
    image = np.full((224, 224, 3), 235.0, dtype=np.float32)
    for _ in range(int(rng.integers(4, 9))):
        cy, cx = rng.uniform(20, 204, 2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rng.uniform(8, 22) ** 2))
        tint = np.full(3, 40.0)  # the blob keeps the class's colour, loses the others
        tint[colour] = 210.0
        image -= blob[..., None] * (235.0 - tint)
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def make_colours(root: Path, n: int = 90) -> Path:
    """The RGB dataset ``demo_colours`` (three tints, a binary "many cells" task)."""
    if (root / "demo_colours").is_dir():
        return root / "demo_colours"
    rng = np.random.default_rng(1)
    colours = rng.integers(0, 3, n)
    subjects = [f"C{i:04d}" for i in range(n)]
    splits = assign_splits(subjects, ratios=(0.6, 0.2, 0.2), seed=1)
    info = {
        "id": "demo_colours",
        "name": "Synthetic Colours (docs)",
        "summary": "Generated RGB images of tinted blobs for the documentation pictures.",
        "domain": "Synthetic RGB",
        "tasks": [
            {"task_name": "tint", "task_target": "MULTICLASS_CLASSIFICATION", "labels": COLOURS},
        ],
        "input_size": [3, 224, 224],
        "license": "Creative Commons Attribution-ShareAlike 4.0 International (CC BY-SA 4.0)",
    }
    records = [
        SampleRecord(
            source=(1000 + i, int(colours[i])),
            labels={"tint": int(colours[i])},
            split=str(splits[i]),
            original_split="train",
            original_filepath=f"generated/{i:05d}",
            patient_id=subjects[i],
        )
        for i in range(n)
    ]
    return write_dataset(root, info, records, draw_colours)


def cli(*args: str) -> None:
    app(list(args), standalone_mode=False)


def make_runs(root: Path, work: Path) -> tuple[Path, list[Path]]:
    """A supervised run on the demo's bus and two few-shot baselines on each dataset."""
    train = work / "runs" / "train"
    if not is_run_folder(train):
        cli(
            "train",
            SAMPLE_ID,
            TASK,
            "--root",
            str(root),
            "--backbone",
            "efficientnet_lite0",
            "--image-size",
            "64",
            "--epochs",
            "8",
            "--out",
            str(train),
            "--quiet",
        )
    fewshot = []
    for target in (f"{SAMPLE_ID}:{TASK}", "demo_colours:tint"):
        episodes = work / f"{target.split(':')[0]}.episodes.json"
        if not episodes.is_file():
            cli(
                "episodes",
                "sample",
                "--root",
                str(root),
                "--task",
                target,
                "--shots",
                "3",
                "--query",
                "5",
                "--episodes",
                "10",
                "--seed",
                "0",
                "--out",
                str(episodes),
            )
        for method in ("protonet", "linear-probe"):
            out = work / "runs" / target.split(":")[0] / method
            if not is_run_folder(out):
                cli(
                    "fewshot",
                    "--root",
                    str(root),
                    "--episodes-file",
                    str(episodes),
                    "--method",
                    method,
                    "--backbone",
                    "efficientnet_lite0",
                    "--image-size",
                    "64",
                    "--steps",
                    "50",
                    "--out",
                    str(out),
                    "--quiet",
                )
            fewshot.append(out)
    return train, fewshot


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--work", type=Path, help="folder for data and runs [temporary]")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="medimeta-pictures-"))
    root = work / "MedIMeta"
    if not (root / SAMPLE_ID).is_dir():
        tree = make_busi_like_tree(work / "raw", per_class=30, seed=0)
        cli("build", SAMPLE_ID, "--source", str(tree), "--root", str(root), "--partial")
    make_colours(root)
    bus = MedIMeta(root, SAMPLE_ID, TASK, split="train")
    save_image(montage(bus, 6, seed=0, tile_size=64), HERE / "montage.png")
    save_figure(dataset_overview(root, seed=0, tile=1.4), HERE / "overview.png", dpi=DPI)
    save_figure(class_grid(bus, 5, seed=0, tile=1.0), HERE / "per_class.png", dpi=DPI)
    save_figure(label_distribution(bus), HERE / "labels.png", dpi=DPI)
    train, fewshot = make_runs(root, work)
    episodes = EpisodeSet.load(work / f"{SAMPLE_ID}.episodes.json", root)
    save_figure(episode_grid(episodes[0], tile=0.8), HERE / "episode.png", dpi=DPI)
    save_figure(training_curves(train), HERE / "curves.png", dpi=DPI)
    save_figure(roc_curves(predictions_file(train, "test")), HERE / "roc.png", dpi=DPI)
    save_figure(fewshot_intervals(fewshot), HERE / "fewshot.png", dpi=DPI)
    cli("report", "--root", str(root), "--runs", str(work / "runs"), "--out", str(work / "report"))
    for png in sorted(HERE.glob("*.png")):
        print(f"{png.name}: {png.stat().st_size / 1024:.0f} KB")
    print(f"data, runs and the full report: {work}")


if __name__ == "__main__":
    main()
