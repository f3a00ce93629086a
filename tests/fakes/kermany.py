"""Fake Kermany CellData: ``CellData/OCT/...`` and ``CellData/chest_xray/...`` (jpeg)."""

from __future__ import annotations

from pathlib import Path

from fakes import write_image

OCT = ("CNV", "DME", "DRUSEN", "NORMAL")


def make_celldata(root: Path) -> dict[str, dict]:
    """Write ``root/CellData``; return path below CellData -> facts.

    OCT: 300x240 grey JPEGs, patients with several images (3 per train class from 2
    patients, 1 per test class). Chest X-ray: 200x160 RGB JPEGs (upscaled by resize), the
    pneumonia folder mixes BACTERIA and VIRUS names. One patient id occurs in train and test.
    """
    facts: dict[str, dict] = {}
    base = root / "CellData"
    seed = 0
    for ci, cls in enumerate(OCT):
        for split, names in (
            ("train", [(10 + ci, 1), (10 + ci, 2), (20 + ci, 1)]),
            ("test", [(30 + ci, 1)]),
        ):
            for pid, n in names:
                rel = f"OCT/{split}/{cls}/{cls}-{pid}-{n}.jpeg"
                seed += 1
                write_image(base / rel, (300, 240), mode="L", seed=seed, quality=95)
                facts[rel] = {"split": split, "class": cls, "sub": cls, "pid": pid}
    xray = {
        "NORMAL": [
            ("train", "NORMAL", 100, 1),
            ("train", "NORMAL", 100, 2),
            ("train", "NORMAL", 101, 1),
            ("test", "NORMAL", 102, 1),
        ],
        "PNEUMONIA": [
            ("train", "BACTERIA", 200, 1),
            ("train", "VIRUS", 200, 2),
            ("train", "BACTERIA", 201, 1),
            ("train", "VIRUS", 202, 1),
            ("test", "VIRUS", 203, 1),
            ("test", "BACTERIA", 201, 9),
        ],
    }
    for cls, items in xray.items():
        for split, sub, pid, n in items:
            rel = f"chest_xray/{split}/{cls}/{sub}-{pid}-{n:04d}.jpeg"
            seed += 1
            write_image(base / rel, (200, 160), seed=seed, quality=95)
            facts[rel] = {"split": split, "class": cls, "sub": sub, "pid": pid}
    return facts
