"""Fake ISIC 2018 Task 3: the six publisher zips, the lesion groupings and HAM10000 metadata."""

from __future__ import annotations

from pathlib import Path

from fakes import write_image, zip_folder

CODES = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")
SETS = {
    "train": ("Training", 2, 24306),
    "val": ("Validation", 1, 34321),
    "test": ("Test", 1, 34524),
}


def make_isic(root: Path, *, zipped: bool = True, metadata: bool = True) -> dict[str, dict]:
    """Write the download folder ``root``; return ``<Set>_Input/ISIC_x.jpg`` -> facts.

    Images are 300x225 JPEGs (the real ones are 600x450), one per class and split (two for
    training). Ground-truth CSVs hold ``1.0``/``0.0`` as published.
    """
    facts: dict[str, dict] = {}
    work = root / "extracted" if zipped else root
    for split, (name, per_class, first) in SETS.items():
        inp = work / f"ISIC2018_Task3_{name}_Input"
        gt = work / f"ISIC2018_Task3_{name}_GroundTruth"
        rows = ["image," + ",".join(CODES)]
        number = first
        for ci in range(len(CODES)):
            for _ in range(per_class):
                image_id = f"ISIC_{number:07d}"
                number += 1
                write_image(inp / f"{image_id}.jpg", (300, 225), seed=number, quality=95)
                onehot = ["1.0" if j == ci else "0.0" for j in range(len(CODES))]
                rows.append(",".join([image_id, *onehot]))
                facts[f"ISIC2018_Task3_{name}_Input/{image_id}.jpg"] = {
                    "split": split,
                    "label": ci,
                    "id": image_id,
                }
        (inp / "ATTRIBUTION.txt").write_text("fake attribution\n")
        (inp / "LICENSE.txt").write_text("CC BY-NC 4.0\n")
        gt.mkdir(parents=True, exist_ok=True)
        (gt / f"ISIC2018_Task3_{name}_GroundTruth.csv").write_text("\n".join(rows) + "\n")
        (gt / "LICENSE.txt").write_text("CC BY-NC 4.0\n")
        if zipped:
            for folder in (inp, gt):
                zip_folder(folder, root / f"{folder.name}.zip")
    train = [f for f in facts.values() if f["split"] == "train"]
    groups = ["image,lesion_id,diagnosis_confirm_type"]
    groups += [f"{f['id']},HAM_{i // 2:07d},histopathology" for i, f in enumerate(train)]
    (root / "ISIC2018_Task3_Training_LesionGroupings.csv").write_text("\n".join(groups) + "\n")
    if metadata:
        rows = ["lesion_id,image_id,dx,dx_type,age,sex,localization"]
        for i, f in enumerate(train):
            dx = CODES[f["label"]].lower()
            rows.append(f"HAM_{i // 2:07d},{f['id']},{dx},histo,{40 + i}.0,female,back")
        (root / "HAM10000_metadata.csv").write_text("\n".join(rows) + "\n")
    return facts
