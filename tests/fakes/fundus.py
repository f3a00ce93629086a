"""Fake RFMiD: ``A. RFMiD_All_Classes_Dataset/1. Original Images/...`` and ground truths."""

from __future__ import annotations

from pathlib import Path

from fakes import write_image

TOP = "A. RFMiD_All_Classes_Dataset"
SETS = {
    "train": ("a. Training Set", "a. RFMiD_Training_Labels.csv"),
    "val": ("b. Validation Set", "b. RFMiD_Validation_Labels.csv"),
    "test": ("c. Testing Set", "c. RFMiD_Testing_Labels.csv"),
}


def make_rfmid(root: Path, diseases: list[str], *, per_split: int = 3) -> dict[str, dict]:
    """Write ``root/<TOP>``; return image path below TOP -> facts (labels per image).

    Images are 330x240 PNGs (central crop, thumbnail). CSVs start with a UTF-8 BOM, as the
    published files do. Image k of a split has disease column ``k`` (mod 45) set; image 1 of
    each split is normal (Disease_Risk 0, no disease).
    """
    facts: dict[str, dict] = {}
    base = root / TOP
    for split, (folder, csv) in SETS.items():
        rows = [",".join(["ID", "Disease_Risk", *diseases])]
        for k in range(1, per_split + 1):
            vec = [0] * len(diseases)
            if k > 1:
                vec[(k * 7 + len(rows)) % len(diseases)] = 1
            rows.append(",".join(map(str, [k, int(any(vec)), *vec])))
            write_image(base / "1. Original Images" / folder / f"{k}.png", (330, 240), seed=k)
            facts[f"1. Original Images/{folder}/{k}.png"] = {
                "split": split,
                "risk": int(any(vec)),
                "diseases": vec,
            }
        path = base / "2. Groundtruths" / csv
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(rows) + "\n", encoding="utf-8-sig")
    return facts
