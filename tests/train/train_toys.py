"""Small learnable datasets in the release layout: the image shows the labels.

Patterns are drawn at 32x32 and stored at 224x224 by pixel repetition (as MedMNIST
conversions are), so training at ``image_size=32`` sees the 32-pixel images exactly.

Class ``c`` of "case category" sets the brightness of the whole image; bit ``j`` of
"finding labels" brightens quadrant ``j``; "Malignancy" is ``c == 2`` and "DR level" the
ordinal key ``(0, 4, 10)[c]``. Annotations carry ``sex`` (the model's input does not show
it) and ``age`` (numeric) for subgroup reports.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fixtures.release import ToySpec, info_dict, write_release_folder

SIDE = 32


def make_learnable(
    root: Path,
    dataset_id: str = "learn",
    *,
    splits: dict[str, int] | None = None,
    channels: int = 1,
    seed: int = 0,
    domain: str = "Toy domain",
    noise: float = 20.0,
) -> Path:
    splits = splits or {"train": 48, "val": 12, "test": 24}
    spec = ToySpec(
        dataset_id=dataset_id,
        channels=channels,
        splits=splits,
        seed=seed,
        domain=domain,
        with_tiff=False,
    )
    rng = np.random.default_rng(seed)
    n = spec.num_samples
    cls = np.arange(n) % 3
    rng.shuffle(cls)
    bits = rng.integers(0, 2, (n, 4))
    img = 40.0 + 60.0 * cls[:, None, None] + rng.normal(0, noise, (n, SIDE, SIDE))
    h = SIDE // 2
    for j, (r, c) in enumerate(((0, 0), (0, h), (h, 0), (h, h))):
        img[:, r : r + h, c : c + h] += 40.0 * bits[:, j, None, None]
    img = np.clip(img, 0, 255).astype(np.uint8)
    img = np.repeat(np.repeat(img, 224 // SIDE, axis=1), 224 // SIDE, axis=2)  # stored at 224
    if channels == 3:
        img = np.repeat(img[..., None], 3, axis=-1)
    info = info_dict(spec)
    labels = {
        "case category": cls.tolist(),
        "Malignancy": (cls == 2).astype(int).tolist(),
        "finding labels": bits.tolist(),
        "DR level": [int((0, 4, 10)[c]) for c in cls],
    }
    split_of = np.array([s for s in ("train", "val", "test") for _ in range(splits.get(s, 0))])
    rng.shuffle(split_of)
    orig = np.array(["train"] * n)
    extra = {
        "original_filepath": [f"raw/{i}.png" for i in range(n)],
        "patient_id": [f"P{i // 2:03d}" for i in range(n)],
        "sex": rng.choice(["F", "M"], n).tolist(),
        "age": rng.integers(20, 90, n).tolist(),
    }
    return write_release_folder(
        Path(root) / dataset_id, info, img, labels, split_of, orig, extra, with_tiff=False
    )
