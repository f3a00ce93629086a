"""Toy data for the episode tests: bigger than the shared toys, with rare classes and
subjects spread over several images and classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fixtures.release import DEFAULT_TASKS, ToySpec, ToyTask, make_release_dataset
from medimeta.format.reader import DatasetFolder

GRADE = ToyTask("grade", "MULTICLASS_CLASSIFICATION", {k: f"g{k}" for k in range(5)})
RARE_FINDINGS = ToyTask("rare findings", "MULTILABEL_CLASSIFICATION", {0: "X", 1: "Y", 2: "Z"})
RGB_SPLITS = {"train": 60, "val": 12, "test": 48}


def set_labels(folder: Path, task: str, values: np.ndarray) -> None:
    np.save(folder / "task_labels" / f"{task}.npy", values.astype(np.int64))


def set_subjects(folder: Path, subjects: list[str]) -> None:
    path = folder / "annotations.csv"
    frame = pd.read_csv(path)
    frame["patient_id"] = subjects
    frame.to_csv(path, index=False)


def make_rgb(root: Path, dataset_id: str = "ep_rgb", seed: int = 5) -> Path:
    """120 RGB samples (60/12/48); 'grade' class 4 and 'rare findings' label Z are rare in
    train; subject S<k> owns samples i with i*7 % 40 == k (3 images each, mixed classes)."""
    spec = ToySpec(
        dataset_id=dataset_id,
        channels=3,
        splits=dict(RGB_SPLITS),
        tasks=(*DEFAULT_TASKS, GRADE, RARE_FINDINGS),
        seed=seed,
        with_tiff=False,
        name="Episode RGB",
        domain="Toy RGB domain",
    )
    folder = make_release_dataset(root, spec)
    n = spec.num_samples
    train = DatasetFolder(folder).split_indices("train")
    grade = np.arange(n) % 4  # classes 0..3 balanced
    grade[train[:3]] = 4  # class 4: three train samples only
    set_labels(folder, "grade", grade)
    rng = np.random.default_rng(seed)
    rare = rng.integers(0, 2, (n, 3))
    rare[:, 2] = 0
    rare[train[:4], 2] = 1  # label Z: four train positives
    set_labels(folder, "rare findings", rare)
    set_subjects(folder, [f"S{(i * 7) % 40:02d}" for i in range(n)])
    return folder


def make_gray(root: Path, dataset_id: str = "ep_gray", seed: int = 6) -> Path:
    spec = ToySpec(
        dataset_id=dataset_id,
        channels=1,
        splits={"train": 30, "val": 10, "test": 20},
        seed=seed,
        with_tiff=False,
        name="Episode Gray",
        domain="Toy gray domain",
    )
    return make_release_dataset(root, spec)
