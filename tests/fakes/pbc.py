"""Fake PBC: ``PBC_dataset_normal_DIB/<class>/*.jpg`` (incl. ``ig``) plus macOS junk."""

from __future__ import annotations

from pathlib import Path

from fakes import write_image

FOLDERS = (
    "basophil",
    "eosinophil",
    "erythroblast",
    "ig",
    "lymphocyte",
    "monocyte",
    "neutrophil",
    "platelet",
)
PREFIX = {
    "basophil": "BA",
    "eosinophil": "EO",
    "erythroblast": "ERB",
    "ig": "IG",
    "lymphocyte": "LY",
    "monocyte": "MO",
    "neutrophil": "SNE",
    "platelet": "PLATELET",
}


def make_pbc(root: Path, *, per_class: int = 2, wrapper: str = "PBC_dataset_normal_DIB") -> dict:
    """Write the tree; return relative path -> folder name.

    Images are 240x246 JPEGs (central crop to 240, then a thumbnail to 224). A ``.DS_Store``
    file, as in the published zip, must be ignored.
    """
    base = root / wrapper
    facts = {}
    for fi, folder in enumerate(FOLDERS):
        for k in range(per_class):
            name = f"{PREFIX[folder]}_{100 + 7 * k + fi}.jpg"
            write_image(base / folder / name, (240, 246), seed=fi * 10 + k, quality=95)
            facts[f"{folder}/{name}"] = folder
    (base / "basophil" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    return facts
