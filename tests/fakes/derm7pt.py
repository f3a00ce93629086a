"""Fake derm7pt release_v0: ``meta/meta.csv``, the index files and ``images/<folder>/...``."""

from __future__ import annotations

import csv
from pathlib import Path

from fakes import write_image

COLUMNS = [
    "case_num",
    "diagnosis",
    "seven_point_score",
    "pigment_network",
    "streaks",
    "pigmentation",
    "regression_structures",
    "dots_and_globules",
    "blue_whitish_veil",
    "vascular_structures",
    "level_of_diagnostic_difficulty",
    "elevation",
    "location",
    "sex",
    "management",
    "clinic",
    "derm",
    "case_id",
    "notes",
]
# (diagnosis, pigment_network, streaks, pigmentation, regression, dots, veil, vessels)
CASES = [
    (
        "basal cell carcinoma",
        "absent",
        "absent",
        "absent",
        "absent",
        "absent",
        "absent",
        "arborizing",
    ),
    (
        "melanoma (in situ)",
        "atypical",
        "irregular",
        "diffuse irregular",
        "blue areas",
        "irregular",
        "present",
        "dotted",
    ),
    (
        "clark nevus",
        "typical",
        "regular",
        "localized regular",
        "absent",
        "regular",
        "absent",
        "absent",
    ),
    (
        "reed or spitz nevus",
        "typical",
        "regular",
        "diffuse regular",
        "white areas",
        "regular",
        "absent",
        "hairpin",
    ),
    (
        "melanoma metastasis",
        "absent",
        "absent",
        "localized irregular",
        "combinations",
        "absent",
        "present",
        "linear irregular",
    ),
    ("seborrheic keratosis", "absent", "absent", "absent", "absent", "absent", "absent", "comma"),
    ("lentigo", "typical", "absent", "absent", "absent", "absent", "absent", "absent"),
    ("dermatofibroma", "absent", "absent", "absent", "absent", "regular", "absent", "wreath"),
    (
        "vascular lesion",
        "absent",
        "absent",
        "absent",
        "absent",
        "absent",
        "absent",
        "within regression",
    ),
]
INDEXES = {"train": [0, 2, 4, 6], "valid": [1, 5], "test": [3, 7, 8]}


def make_release(root: Path, *, top: str = "release_v0") -> list[dict[str, str]]:
    """Write ``root/<top>``; return the meta rows (strings) in file order.

    Clinical images are upper-case ``.JPG`` 260x180, dermoscopic ``.jpg`` 240x200 (both
    padded, then thumbnails); one folder name has a space (``Fhl b``).
    """
    base = root / top
    rows = []
    for i, case in enumerate(CASES):
        diag, net, streaks, pig, reg, dots, veil, vessels = case
        folder = "Fhl b" if i == 3 else "NEL"
        row = dict.fromkeys(COLUMNS, "")
        row.update(
            case_num=str(i + 1),
            diagnosis=diag,
            seven_point_score=str(i % 4),
            pigment_network=net,
            streaks=streaks,
            pigmentation=pig,
            regression_structures=reg,
            dots_and_globules=dots,
            blue_whitish_veil=veil,
            vascular_structures=vessels,
            level_of_diagnostic_difficulty="low",
            elevation="flat",
            location="back",
            sex="female",
            management="excision",
            clinic=f"{folder}/NEL{2 * i:03d}.JPG",
            derm=f"{folder}/Nel{2 * i + 1:03d}.jpg",
        )
        rows.append(row)
        write_image(base / "images" / row["clinic"], (260, 180), seed=2 * i, quality=95)
        write_image(base / "images" / row["derm"], (240, 200), seed=2 * i + 1, quality=95)
    (base / "meta").mkdir(parents=True, exist_ok=True)
    with open(base / "meta" / "meta.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    for name, idx in INDEXES.items():
        (base / "meta" / f"{name}_indexes.csv").write_text("indexes\n" + "\n".join(map(str, idx)))
    (base / "README.txt").write_text("derm7pt release v0 (fake)\n")
    return rows
