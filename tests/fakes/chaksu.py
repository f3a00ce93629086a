"""A tiny Chákṣu download: ``Train.zip`` and ``Test.zip`` in the figshare layout.

Inside each archive ``<Split>/``:

* ``1.0_Original_Fundus_Images/{Bosch,Forus,Remidio}/`` with Bosch ``Image<k>.JPG``, Forus
  ``P<patient>_<k>.png`` (patient ids in the name) and Remidio ``P<patient>_R<k>.JPG``;
* ``4.0_OD_CO_Fusion_Images/<device>/STAPLE/<name>.png``: grey fusion masks, background 0,
  optic disc 128, optic cup 255 (a smaller circle inside the disc); in Test the Remidio folder
  is spelled ``Remedio``; plus an ``Expert 1/<device>/`` folder that must be ignored;
* ``6.0_Glaucoma_Decision/Glaucoma_Decision_Comparison_<device>_majority.csv`` with
  ``Images`` cells like ``Image1.jpg-Image1-1.jpg``; the decision column is ``Majority
  Decision`` except for Forus (``Glaucoma Decision``); some cells carry the source's typo
  ``GLAUCOMA  SUSUPECT``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from fakes import write_image, zip_folder

SIZES = {"Bosch": (320, 240), "Forus": (300, 230), "Remidio": (260, 330)}  # (w, h)
EXT = {"Bosch": ".JPG", "Forus": ".png", "Remidio": ".JPG"}


@dataclass
class FakeChaksu:
    root: Path
    # (split, device, file name) -> label
    labels: dict[tuple[str, str, str], int] = field(default_factory=dict)
    # file name -> (disc centre (x, y), disc radius, cup radius) in the original image
    circles: dict[str, tuple[tuple[int, int], int, int]] = field(default_factory=dict)


def fusion_mask(size: tuple[int, int], centre: tuple[int, int], disc: int, cup: int) -> np.ndarray:
    """A STAPLE-like fusion image: 0 outside, 128 in the disc, 255 in the cup."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    dist2 = (x - centre[0]) ** 2 + (y - centre[1]) ** 2
    out = np.zeros((h, w), dtype=np.uint8)
    out[dist2 <= disc**2] = 128
    out[dist2 <= cup**2] = 255
    return out


def _names(split: str, device: str) -> list[str]:
    if device == "Bosch":
        first = 1 if split == "train" else 50
        return [f"Image{k}" for k in range(first, first + 3)]
    if device == "Forus":
        patients = (1, 1, 2, 3, 4, 5) if split == "train" else (40, 41)
        return [f"P{p}_{k}" for k, p in enumerate(patients, start=1)]
    patients = (3, 6, 7) if split == "train" else (42,)
    return [f"P{p}_R{k}" for k, p in enumerate(patients, start=1)]


def make_chaksu_tree(root: Path, *, zipped: bool = True) -> FakeChaksu:
    """Write ``root/Train.zip`` and ``root/Test.zip`` (or the folders when not zipped)."""
    work = root / "unzipped" if zipped else root
    fake = FakeChaksu(root)
    k = 0
    for split, folder in (("train", "Train"), ("test", "Test")):
        base = work / folder
        for device in ("Bosch", "Forus", "Remidio"):
            rows = []
            fusion_device = "Remedio" if (device == "Remidio" and split == "test") else device
            for name in _names(split, device):
                k += 1
                size = SIZES[device]
                file_name = f"{name}{EXT[device]}"
                image = base / "1.0_Original_Fundus_Images" / device / file_name
                write_image(image, size, seed=k, quality=95)
                centre = (size[0] // 2 + (k % 5) - 2, size[1] // 2 - (k % 3))
                disc, cup = 60 + k % 7, 24 + k % 5
                mask = fusion_mask(size, centre, disc, cup)
                staple = base / "4.0_OD_CO_Fusion_Images" / fusion_device / "STAPLE" / f"{name}.png"
                staple.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(mask, "L").save(staple)
                expert = base / "4.0_OD_CO_Fusion_Images" / "Expert 1" / device / f"{name}.png"
                expert.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(mask, "L").save(expert)
                label = k % 2
                decision = (
                    "NORMAL"
                    if label == 0
                    else ("GLAUCOMA  SUSUPECT" if k % 4 == 1 else "GLAUCOMA SUSPECT")
                )
                experts = ["NORMAL" if (label + e) % 3 else "GLAUCOMA SUSPECT" for e in range(5)]
                cell = f"{name}.jpg-{name}-1.jpg"
                rows.append([cell, *experts, decision])
                fake.labels[(split, device, file_name)] = label
                fake.circles[file_name] = (centre, disc, cup)
            column = "Glaucoma Decision" if device == "Forus" else "Majority Decision"
            header = ["Images", *(f"Expert.{e}" for e in range(1, 6)), column]
            table = (
                base
                / "6.0_Glaucoma_Decision"
                / f"Glaucoma_Decision_Comparison_{device}_majority.csv"
            )
            table.parent.mkdir(parents=True, exist_ok=True)
            with open(table, "w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(header)
                writer.writerows(rows)
        if zipped:
            zip_folder(base, root / f"{folder}.zip")
    if zipped:
        import shutil

        shutil.rmtree(work)
    (root / "Readme_Chaksu IMAGE Database.pdf").write_bytes(b"%PDF-1.4 fake")
    return fake
