"""Generated images and dataset folders for the audit tests (imported as ``audit_helpers``)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from fixtures.release import ToySpec, ToyTask, info_dict, write_release_folder

TASK = ToyTask("class", "MULTICLASS_CLASSIFICATION", {0: "cat a", 1: "cat b"})


def smooth_images(n: int, seed: int, shape: tuple[int, int] = (224, 224)) -> np.ndarray:
    """``n`` grey images of smooth random structure (10 x 10 random cells, bicubic), values
    in 30..225 (no constant or black border), plus a little pixel noise."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, *shape), dtype=np.uint8)
    for i in range(n):
        cells = rng.integers(30, 226, (10, 10), dtype=np.uint8)
        img = np.asarray(Image.fromarray(cells).resize(shape[::-1], Image.Resampling.BICUBIC))
        noise = rng.normal(0, 3, shape)
        out[i] = np.clip(img.astype(np.float64) + noise, 30, 225).astype(np.uint8)
    return out


def area_down_up(img: np.ndarray, side: int = 28) -> np.ndarray:
    """Area-downsample to ``side`` px (MedMNIST-like), then bicubic back to 224 (as
    ``medimeta convert medmnist`` does)."""
    small = Image.fromarray(img).resize((side, side), Image.Resampling.BOX)
    return np.asarray(small.resize((224, 224), Image.Resampling.BICUBIC))


def jpeg(img: np.ndarray, quality: int = 75) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())))


def pad_square(content: np.ndarray) -> np.ndarray:
    """A non-square grey ``content`` padded with black to a square, resized to 224."""
    h, w = content.shape
    side = max(h, w)
    canvas = np.zeros((side, side), dtype=np.uint8)
    top, left = round((side - h) / 2), round((side - w) / 2)
    canvas[top : top + h, left : left + w] = content
    return np.asarray(Image.fromarray(canvas).resize((224, 224), Image.Resampling.BICUBIC))


def stretch(content: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(content).resize((224, 224), Image.Resampling.BICUBIC))


def center_crop(content: np.ndarray) -> np.ndarray:
    h, w = content.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return stretch(content[top : top + side, left : left + side])


def write_dataset(
    root: Path,
    dataset_id: str,
    images: np.ndarray,
    *,
    labels: list[int] | None = None,
    splits: list[str] | None = None,
    patients: list[str] | None = None,
    task: ToyTask = TASK,
) -> Path:
    """A release-layout folder of ``images`` (N, 224, 224[, 3]) with one task."""
    n = len(images)
    split_of = np.array(splits or ["train" if i % 4 else "test" for i in range(n)])
    counts = {s: int((split_of == s).sum()) for s in ("train", "val", "test")}
    spec = ToySpec(
        dataset_id=dataset_id,
        channels=3 if images.ndim == 4 else 1,
        splits=counts,
        tasks=(task,),
        with_tiff=False,
    )
    info = info_dict(spec)
    values = labels if labels is not None else [i % len(task.labels) for i in range(n)]
    extra = {
        "original_filepath": [f"raw/{dataset_id}_{i}.png" for i in range(n)],
        "patient_id": patients or [f"{dataset_id}-P{i:04d}" for i in range(n)],
    }
    orig = np.array(["train"] * n)
    return write_release_folder(
        root / dataset_id, info, images, {task.name: values}, split_of, orig, extra, False
    )
