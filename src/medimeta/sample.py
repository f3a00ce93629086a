"""A small synthetic dataset in the MedIMeta format, generated on demand (the demo's default).

Grey 224x224 images of one of three shapes (disc, ring, square) at a random place and size on a
noisy background, with a binary "large lesion" task and pseudo-subjects (two images each), built
through the real writer and split subject-aware. No download and no real patient data needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medimeta.format.record import SampleRecord
from medimeta.format.writer import write_dataset
from medimeta.splitting import assign_splits

SAMPLE_ID = "demo_shapes"
SHAPES = {0: "disc", 1: "ring", 2: "square"}
SIZE = 224


def sample_info() -> dict[str, object]:
    """info.yaml content of the sample dataset (release keys)."""
    return {
        "id": SAMPLE_ID,
        "name": "Synthetic Shapes (demo)",
        "summary": "Generated grey images of discs, rings and squares for demos and smoke tests.",
        "domain": "Synthetic",
        "tasks": [
            {"task_name": "shape", "task_target": "MULTICLASS_CLASSIFICATION", "labels": SHAPES},
            {
                "task_name": "large lesion",
                "task_target": "BINARY_CLASSIFICATION",
                "labels": {0: "small", 1: "large"},
            },
        ],
        "input_size": [1, SIZE, SIZE],
        "license": "Creative Commons Attribution-ShareAlike 4.0 International (CC BY-SA 4.0)",
    }


def draw_sample(record: SampleRecord) -> np.ndarray:
    """The image of one record (pure function of its seed: identical in any worker)."""
    seed, shape, radius = record.source
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    cy, cx = rng.uniform(radius + 4, SIZE - radius - 4, size=2)
    dist = np.hypot(yy - cy, xx - cx)
    if shape == 0:
        mask = dist <= radius
    elif shape == 1:
        mask = (dist <= radius) & (dist >= 0.6 * radius)
    else:
        mask = (np.abs(yy - cy) <= radius * 0.85) & (np.abs(xx - cx) <= radius * 0.85)
    image = rng.normal(60, 18, (SIZE, SIZE)).astype(np.float32)
    image[mask] += rng.uniform(90, 140)
    return np.clip(image, 0, 255).astype(np.uint8)


def make_sample_dataset(root: str | Path, n: int = 150, seed: int = 0, workers: int = 1) -> Path:
    """Write the sample dataset under ``root`` (reused if it is already there) and return it."""
    root = Path(root)
    target = root / SAMPLE_ID
    if target.is_dir():
        return target
    rng = np.random.default_rng(seed)
    shapes = rng.integers(0, 3, n)
    radii = rng.uniform(12, 60, n)
    subjects = [f"S{i // 2:04d}" for i in range(n)]
    splits = assign_splits(subjects, ratios=(0.6, 0.2, 0.2), seed=seed)
    records = [
        SampleRecord(
            source=(seed * 1_000_003 + i, int(shapes[i]), float(radii[i])),
            labels={"shape": int(shapes[i]), "large lesion": int(radii[i] > 36)},
            split=str(splits[i]),
            original_split="train",
            original_filepath=f"generated/{i:05d}",
            patient_id=subjects[i],
            annotations={"radius_px": round(float(radii[i]), 2)},
        )
        for i in range(n)
    ]
    return write_dataset(root, sample_info(), records, draw_sample, workers=workers)
