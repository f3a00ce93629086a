"""Fake AML-Cytomorphology_LMU: ``AML-Cytomorphology/<CLASS>/*.tiff`` + ``annotations.dat``."""

from __future__ import annotations

from pathlib import Path

from fakes import write_image

CODES = (
    "BAS",
    "EBO",
    "EOS",
    "KSC",
    "LYA",
    "LYT",
    "MMZ",
    "MOB",
    "MON",
    "MYB",
    "MYO",
    "NGB",
    "NGS",
    "PMB",
    "PMO",
)


def make_aml(root: Path, *, per_class: int = 1) -> dict[str, tuple[str, str, str]]:
    """Write the zip's top level into ``root``; return image path -> annotation columns.

    Images are RGBA TIFFs (as published) of 240x240 px; ``NGS`` has one 240x230 image (padded
    before the thumbnail). annotations.dat uses ``nan`` for missing re-annotations and one
    image was re-annotated.
    """
    lines = []
    facts = {}
    for ci, code in enumerate(CODES):
        for k in range(1, per_class + 1):
            rel = f"{code}/{code}_{k:04d}.tiff"
            size = (240, 230) if code == "NGS" else (240, 240)
            write_image(root / "AML-Cytomorphology" / rel, size, mode="RGBA", seed=ci + k)
            values = ("MYB", "MYO", "nan") if code == "MYB" else (code, "nan", "nan")
            lines.append(" ".join((rel, *values)))
            facts[rel] = tuple("" if v == "nan" else v for v in values)
    (root / "annotations.dat").write_text("\n".join(lines) + "\n")
    return facts
