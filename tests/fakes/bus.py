"""Fake BUSI: ``Dataset_BUSI_with_GT/{benign,malignant,normal}/"<class> (k).png"`` + masks."""

from __future__ import annotations

from pathlib import Path

from fakes import write_image, write_mask

CLASSES = ("benign", "malignant", "normal")


def make_busi(
    root: Path,
    *,
    per_class: int = 3,
    masks: bool = True,
    wrapper: str = "Dataset_BUSI_with_GT",
) -> dict[str, dict[str, object]]:
    """Write the tree under ``root/wrapper``; return facts per relative image path.

    Odd cases: sizes differ (landscape, portrait, one smaller than 224 so it is upscaled),
    ``benign (1)`` is RGBA, ``malignant (1)`` has a second mask ``_mask_1`` (a second lesion),
    names contain spaces and parentheses.
    """
    base = root / wrapper if wrapper else root
    facts: dict[str, dict[str, object]] = {}
    sizes = [(300, 200), (150, 200), (260, 260), (240, 320)]
    for ci, cls in enumerate(CLASSES):
        for k in range(1, per_class + 1):
            size = sizes[(k + ci) % len(sizes)]
            mode = "RGBA" if (cls, k) == ("benign", 1) else ("L" if k % 2 else "RGB")
            name = f"{cls} ({k})"
            write_image(base / cls / f"{name}.png", size, mode=mode, seed=10 * ci + k)
            mask_names = []
            if masks:
                write_mask(base / cls / f"{name}_mask.png", size, (10, 10, 60, 50))
                mask_names.append(f"{cls}/{name}_mask.png")
                if (cls, k) == ("malignant", 1):
                    write_mask(base / cls / f"{name}_mask_1.png", size, (100, 120, 140, 160))
                    mask_names.append(f"{cls}/{name}_mask_1.png")
            facts[f"{cls}/{name}.png"] = {"class": cls, "size": size, "masks": mask_names}
    return facts
