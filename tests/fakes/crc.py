"""Fake NCT-CRC-HE-100K and CRC-VAL-HE-7K: ``<set>/<CLASS>/<CLASS>-<tile>.tif`` (224x224)."""

from __future__ import annotations

from pathlib import Path

from fakes import write_image

CODES = ("ADI", "BACK", "DEB", "LYM", "MUC", "MUS", "NORM", "STR", "TUM")


def make_crc(root: Path, *, train_per_class: int = 2, test_per_class: int = 1) -> dict[str, str]:
    """Write both set folders into ``root``; return relative path -> class code."""
    facts = {}
    for folder, n in (("NCT-CRC-HE-100K", train_per_class), ("CRC-VAL-HE-7K", test_per_class)):
        for ci, code in enumerate(CODES):
            for k in range(n):
                name = f"{code}-{'TCGA-' if 'VAL' in folder else ''}A{ci}B{k}XYZ.tif"
                write_image(root / folder / code / name, (224, 224), seed=ci * 5 + k)
                facts[f"{folder}/{code}/{name}"] = code
    return facts
