"""A tiny DeepDRiD repository (``DeepDRiD-master/``) with CSV and xlsx label tables.

Same folder names, table columns and quirks as the GitHub repository:

* regular fundus CSV columns ``patient_id, image_id, image_path, Overall quality,
  left_eye_DR_Level, right_eye_DR_Level, patient_DR_Level, Clarity, Field definition,
  Artifact`` (one eye column filled per row) plus ``regular-fundus-source-*.csv`` (``Source``);
* patient 6 has a row whose image_id letter (``6_r3``) disagrees with the filled (left) column;
* evaluation labels in ``Challenge1_labels.xlsx`` (``image_id, DR_Levels``),
  ``Challenge2_labels.xlsx`` (quality columns) and ``Challenge3_labels.xlsx``
  (``image_id, UWF_DR_Levels``), numbers stored as floats;
* ultra-widefield CSV columns ``patient_id, image_id, image_path, DR_level, position``; grade 5
  (ungradable) in one training and one evaluation row; one file without its patient prefix
  (``Images/12/l3.jpg`` for image_id ``12_l3``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from fakes import write_image

REG = "regular_fundus_images"
UWF = "ultra-widefield_images"
REG_COLUMNS = [
    "patient_id", "image_id", "image_path", "Overall quality", "left_eye_DR_Level",
    "right_eye_DR_Level", "patient_DR_Level", "Clarity", "Field definition", "Artifact",
]  # fmt: skip


@dataclass
class FakeDeepDrid:
    root: Path
    # image_id -> expected labels (regular: all five tasks; uwf: DR level), only kept images
    regular: dict[str, dict[str, int]] = field(default_factory=dict)
    regular_split: dict[str, str] = field(default_factory=dict)
    uwf: dict[str, int] = field(default_factory=dict)
    uwf_split: dict[str, str] = field(default_factory=dict)
    patient_level: dict[str, int] = field(default_factory=dict)


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _write_xlsx(path: Path, columns: list[str], rows: list[list[object]]) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(columns)
    for row in rows:
        sheet.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)


# patient -> (left grade, right grade, split)
REG_PATIENTS = {
    1: (0, 2, "train"), 2: (1, 1, "train"), 3: (4, 3, "train"), 4: (0, 0, "train"),
    5: (2, 0, "train"), 6: (3, 1, "val"), 7: (0, 0, "val"),
}  # fmt: skip
REG_TEST = {347: (2.0, 0.0), 353: (1.0, 4.0)}  # evaluation: DR_Levels per l / r image
QUALITY_CYCLE = [(1, 0, 10, 8), (0, 4, 6, 6), (1, 1, 8, 10), (0, 10, 1, 4)]


def make_deepdrid_tree(root: Path, seed: int = 0) -> FakeDeepDrid:
    """Write ``root/DeepDRiD-master`` and return the expected labels."""
    base = root / "DeepDRiD-master"
    fake = FakeDeepDrid(base)
    (base / "README.md").parent.mkdir(parents=True, exist_ok=True)
    (base / "README.md").write_text("# DeepDRiD\n", encoding="utf-8")
    k = 0
    tables: dict[str, list[dict[str, object]]] = {"train": [], "val": []}
    sources: dict[str, list[dict[str, object]]] = {"train": [], "val": []}
    for patient, (left, right, split) in REG_PATIENTS.items():
        folder = base / REG / f"regular-fundus-{'training' if split == 'train' else 'validation'}"
        for eye, grade in (("l", left), ("r", right)):
            for n in (1, 2):
                image_id = f"{patient}_{eye}{n}"
                column = "left_eye_DR_Level" if eye == "l" else "right_eye_DR_Level"
                if patient == 6 and image_id == "6_r2":
                    # A row named like a right-eye image that carries a left-eye grade.
                    image_id, column = "6_r3", "left_eye_DR_Level"
                    grade = left
                quality = QUALITY_CYCLE[k % len(QUALITY_CYCLE)]
                k += 1
                write_image(folder / "Images" / str(patient) / f"{image_id}.jpg", (300, 260),
                            seed=seed + k, quality=95)  # fmt: skip
                row: dict[str, object] = {
                    "patient_id": patient,
                    "image_id": image_id,
                    "image_path": f"\\{folder.name}\\{patient}\\{image_id}.jpg",
                    "Overall quality": quality[0],
                    column: grade,
                    "patient_DR_Level": max(left, right),
                    "Artifact": quality[1],
                    "Clarity": quality[2],
                    "Field definition": quality[3],
                }
                tables[split].append(row)
                source = {"patient_id": patient, "image_id": image_id, "Source": "Nicheng"}
                sources[split].append({**source, "image_path": row["image_path"]})
                fake.regular[image_id] = {
                    "DR level": grade, "Overall quality": quality[0], "Artifact": quality[1],
                    "Clarity": quality[2], "Field definition": quality[3],
                }  # fmt: skip
                fake.regular_split[image_id] = split
                fake.patient_level[image_id] = max(left, right)
    for split, word in (("train", "training"), ("val", "validation")):
        folder = base / REG / f"regular-fundus-{word}"
        _write_csv(folder / f"regular-fundus-{word}.csv", REG_COLUMNS, tables[split])
        _write_csv(folder / f"regular-fundus-source-{word}.csv",
                   ["patient_id", "image_id", "image_path", "Source"], sources[split])  # fmt: skip
        (folder / "Readme.docx").write_bytes(b"PK fake docx")
    test = base / REG / "Online-Challenge1&2-Evaluation"
    dr_rows, q_rows = [], []
    for patient, (left, right) in REG_TEST.items():
        for eye, grade in (("l", left), ("r", right)):
            for n in (1, 2):
                image_id = f"{patient}_{eye}{n}"
                k += 1
                quality = QUALITY_CYCLE[k % len(QUALITY_CYCLE)]
                write_image(test / "Images" / str(patient) / f"{image_id}.jpg", (280, 300),
                            seed=seed + k, quality=95)  # fmt: skip
                dr_rows.append([image_id, grade])
                q_rows.append([image_id, *(float(q) for q in quality)])
                fake.regular[image_id] = {
                    "DR level": int(grade), "Overall quality": quality[0],
                    "Artifact": quality[1], "Clarity": quality[2],
                    "Field definition": quality[3],
                }  # fmt: skip
                fake.regular_split[image_id] = "test"
    _write_xlsx(test / "Challenge1_labels.xlsx", ["image_id", "DR_Levels"], dr_rows)
    _write_xlsx(test / "Challenge2_labels.xlsx",
                ["image_id", "Overall quality", "Artifact", "Clarity", "Field definition"],
                q_rows)  # fmt: skip
    _write_csv(test / "Challenge1_upload.csv", ["image_id", "DR_Level"],
               [{"image_id": r[0]} for r in dr_rows])  # fmt: skip
    (test / "Readme.docx").write_bytes(b"PK fake docx")
    _make_uwf(base, fake, seed + k)
    return fake


# (patient, image_id, grade, position, split); file name override for the unprefixed image
UWF_ROWS = [
    (1, "1_r1", 0, "right_eye", "train"), (1, "1_l2", 0, "left_eye", "train"),
    (2, "2_r1", 3, "right_eye", "train"), (2, "2_l12", 5, "left_eye", "train"),
    (3, "3_l1", 1, "left_eye", "train"), (3, "3_r2", 2, "right_eye", "train"),
    (12, "12_l3", 4, "left_eye", "val"), (12, "12_r2", 2, "right_eye", "val"),
    (40, "40_l1", 1, None, "test"), (40, "40_r1", 5, None, "test"), (41, "41_l1", 2, None, "test"),
]  # fmt: skip


def _make_uwf(base: Path, fake: FakeDeepDrid, seed: int) -> None:
    folders = {"train": "ultra-widefield-training", "val": "ultra-widefield-validation",
               "test": "Online-Challenge3-Evaluation"}  # fmt: skip
    rows: dict[str, list[dict[str, object]]] = {"train": [], "val": []}
    test_rows: list[list[object]] = []
    for i, (patient, image_id, grade, position, split) in enumerate(UWF_ROWS):
        folder = base / UWF / folders[split]
        name = "l3.jpg" if image_id == "12_l3" else f"{image_id}.jpg"
        write_image(folder / "Images" / str(patient) / name, (320, 250), seed=seed + i,
                    quality=95)  # fmt: skip
        if split == "test":
            test_rows.append([image_id, float(grade)])
        else:
            rows[split].append({"patient_id": patient, "image_id": image_id, "DR_level": grade,
                                "image_path": f"{folders[split]}\\{patient}\\{image_id}.jpg",
                                "position": position})  # fmt: skip
        if grade != 5:
            fake.uwf[image_id] = grade
            fake.uwf_split[image_id] = split
    for split in ("train", "val"):
        folder = base / UWF / folders[split]
        columns = ["patient_id", "image_id", "image_path", "DR_level", "position"]
        _write_csv(folder / f"{folders[split]}.csv", columns, rows[split])
        (folder / "Readme.txt").write_text("labels: 0-4, 5 ungradable\n", encoding="utf-8")
    test = base / UWF / folders["test"]
    _write_xlsx(test / "Challenge3_labels.xlsx", ["image_id", "UWF_DR_Levels"], test_rows)
    (test / "Readme.docx").write_bytes(b"PK fake docx")
