"""A tiny LiTS + organ-box tree in the layout of the publishers' downloads.

::

    LITS/annotations for lits/annotations_of_training_set/segmentation-<n>.txt
    LITS/annotations for lits/annotations_of_testing_set/test-segmentation-<n>.txt
    LITS/LITS Challenge/Training Batch 1/{volume,segmentation}-<n>.nii   (n <= 27)
    LITS/LITS Challenge/Training Batch 2/{volume,segmentation}-<n>.nii   (n >= 28)
    LITS/LITS-Challenge-Test-Data/test-volume-<n>.nii

Volumes are int16 Hounsfield units with anisotropic spacing (in-plane 0.7-0.9 mm, 2-5 mm
between axial slices). Box files hold ``label idx x1 x2 y1 y2 z1 z2`` with inclusive corners.
``test-volume-59`` is stored with its 2nd and 3rd axes swapped (as in the real data); its box
file refers to the corrected axes. One training volume has spacing (1, 1, 1) (no spacing in
the header) and must be dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ORGANS = ("liver", "kidney-l", "spleen", "heart", "femur-r", "lung-l")


@dataclass
class FakeVolume:
    split: str
    number: int
    shape: tuple[int, int, int]  # corrected axis order
    spacing: tuple[float, float, float]
    boxes: list[tuple[str, tuple[int, int, int, int, int, int]]]
    data: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))

    @property
    def stem(self) -> str:
        return f"{'test-' if self.split == 'test' else ''}volume-{self.number}"


@dataclass
class FakeLits:
    root: Path
    volumes: list[FakeVolume]

    def volume(self, stem: str) -> FakeVolume:
        return next(v for v in self.volumes if v.stem == stem)


def _volume_data(shape: tuple[int, int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    # A ramp from -400 to 500 HU across the volume plus noise, so windowing and slicing show.
    ramp = -400 + 900 * (x / shape[0] + y / shape[1] + z / shape[2]) / 3
    return (ramp + rng.integers(-20, 20, size=shape)).astype(np.int16)


def default_volumes() -> list[FakeVolume]:
    """Eight training volumes (one without spacing) and two test volumes (one is #59)."""
    vols = []
    train_numbers = (0, 1, 2, 3, 28, 29, 30)
    for i, n in enumerate(train_numbers):
        shape = (40 + 2 * i, 36, 20 + i)
        spacing = (0.7 + 0.02 * i, 0.7 + 0.02 * i, 2.5 + 0.25 * i)
        boxes = [
            ("liver", (5, 24, 6, 20, 3, 12)),
            (ORGANS[1 + i % 5], (20 + i, 30 + i, 10, 30, 8, 17 + i)),
        ]
        vols.append(FakeVolume("train", n, shape, spacing, boxes))
    vols.append(
        FakeVolume("train", 31, (30, 30, 12), (1.0, 1.0, 1.0), [("liver", (2, 9, 2, 9, 2, 9))])
    )
    vols.append(
        FakeVolume("test", 0, (44, 40, 18), (0.8, 0.8, 5.0), [("bladder", (10, 30, 5, 15, 0, 6))])
    )
    vols.append(
        FakeVolume(
            "test", 59, (48, 38, 16), (0.9, 0.9, 3.0),
            [("kidney-r", (30, 44, 4, 16, 2, 13)), ("femur-l", (0, 9, 20, 37, 10, 15))],
        )
    )  # fmt: skip
    return vols


def _write_nifti(path: Path, data: np.ndarray, spacing: tuple[float, float, float]) -> None:
    import nibabel as nib

    affine = np.diag([*spacing, 1.0])
    img = nib.Nifti1Image(data, affine)
    img.header.set_zooms(spacing)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))


def make_lits_tree(root: Path, volumes: list[FakeVolume] | None = None) -> FakeLits:
    """Write the fake tree under ``root/LITS``."""
    vols = volumes if volumes is not None else default_volumes()
    base = root / "LITS"
    boxes_root = base / "annotations for lits"
    for i, vol in enumerate(vols):
        vol.data = _volume_data(vol.shape, seed=i)
        stored, zooms = vol.data, vol.spacing
        if vol.stem == "test-volume-59":
            stored = np.swapaxes(vol.data, 1, 2)
            zooms = (vol.spacing[0], vol.spacing[2], vol.spacing[1])
        if vol.split == "train":
            batch = 1 if vol.number <= 27 else 2
            folder = base / "LITS Challenge" / f"Training Batch {batch}"
            _write_nifti(folder / f"{vol.stem}.nii", stored, zooms)
            seg = (vol.data > 100).astype(np.uint8)
            _write_nifti(folder / f"segmentation-{vol.number}.nii", seg, zooms)
            box_path = boxes_root / "annotations_of_training_set" / f"segmentation-{vol.number}.txt"
        else:
            _write_nifti(base / "LITS-Challenge-Test-Data" / f"{vol.stem}.nii", stored, zooms)
            box_path = (
                boxes_root / "annotations_of_testing_set" / f"test-segmentation-{vol.number}.txt"
            )
        box_path.parent.mkdir(parents=True, exist_ok=True)
        lines = [
            f"{organ} {k + 1} " + " ".join(map(str, box))
            for k, (organ, box) in enumerate(vol.boxes)
        ]
        box_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return FakeLits(base, vols)
