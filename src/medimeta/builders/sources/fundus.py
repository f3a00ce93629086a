"""``fundus``: Retinal Fundus Multi-Disease Image Dataset (RFMiD, Pachade et al. 2021).

Raw layout: ``A. RFMiD_All_Classes_Dataset.zip`` -> ``A. RFMiD_All_Classes_Dataset/``
``1. Original Images/{a. Training Set, b. Validation Set, c. Testing Set}/<ID>.png`` and
``2. Groundtruths/{a. RFMiD_Training_Labels.csv, b. RFMiD_Validation_Labels.csv,
c. RFMiD_Testing_Labels.csv}`` (columns ``ID``, ``Disease_Risk`` and the 45 disease columns,
named as the catalog labels; the files may start with a UTF-8 BOM).

Tasks: ``disease presence`` = ``Disease_Risk``; ``disease labels`` = the 45 disease columns in
catalog order (multi-hot). Images: RGB, central square crop, ``thumbnail`` to 224. Split: the
source's training/validation/testing sets. Annotations: ``original_image_size``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from medimeta.builders.engine.common import (
    ImageRecipe,
    process_image,
    read_table,
    source_split_manifest,
)
from medimeta.builders.engine.registry import Builder, BuildPlan, register_builder
from medimeta.builders.engine.source import Part, Require, SourceReport, locate_parts
from medimeta.builders.engine.tree import SourceTree
from medimeta.format.record import SampleRecord

IMAGES = "1. Original Images"
TRUTH = "2. Groundtruths"
#: source split -> (image folder, label CSV) inside the dataset folder.
SETS = {
    "train": ("a. Training Set", "a. RFMiD_Training_Labels.csv"),
    "val": ("b. Validation Set", "b. RFMiD_Validation_Labels.csv"),
    "test": ("c. Testing Set", "c. RFMiD_Testing_Labels.csv"),
}
RECIPE = ImageRecipe(mode="RGB", square="crop", method="thumbnail")


@dataclass(frozen=True)
class RfmidRow:
    """Labels of one RFMiD image."""

    image_id: str
    disease_risk: int
    diseases: tuple[int, ...]


def parse_rfmid_labels(
    frame: Any, diseases: Sequence[str], where: str, report: SourceReport
) -> list[RfmidRow]:
    """Rows of one RFMiD label CSV (a DataFrame of strings); problems go to ``report``.

    ``diseases`` are the catalog's label names in key order; each must be a column.
    """
    needed = ["ID", "Disease_Risk", *diseases]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        report.problems.append(f"{where}: missing column(s) {missing}")
        return []
    extra = [c for c in frame.columns if c not in needed]
    if extra:
        report.warnings.append(f"{where}: columns {extra} are not used")
    rows = []
    bad: list[str] = []
    for line, rec in enumerate(frame[needed].itertuples(index=False), start=2):
        values = [str(v).strip() for v in rec]
        if not values[0] or any(v not in ("0", "1") for v in values[1:]):
            bad.append(f"line {line}: {values[:3]}...")
            continue
        ints = tuple(int(v) for v in values[1:])
        rows.append(RfmidRow(values[0], ints[0], ints[1:]))
    if bad:
        report.problems.append(
            f"{where}: {len(bad)} rows without an ID or with labels other than 0/1, e.g. {bad[:3]}"
        )
    odd = [r.image_id for r in rows if r.disease_risk != int(any(r.diseases))]
    if odd:
        report.warnings.append(
            f"{where}: {len(odd)} rows have Disease_Risk different from 'any disease column', "
            f"e.g. IDs {odd[:5]}; both kept as published"
        )
    ids = [r.image_id for r in rows]
    if len(set(ids)) != len(ids):
        report.problems.append(f"{where}: image IDs repeat")
    return rows


@register_builder
class FundusBuilder(Builder):
    """RFMiD all-classes dataset -> ``fundus``."""

    dataset_id = "fundus"
    source_title = "RFMiD: Retinal Fundus Multi-Disease Image Dataset (Pachade et al., 2021)"
    source_help = (
        "'A. RFMiD_All_Classes_Dataset.zip', the folder holding it, or the extracted "
        "'A. RFMiD_All_Classes_Dataset/'"
    )

    def parts(self) -> tuple[Part, ...]:
        return (
            Part(
                name="RFMiD images and ground truths",
                anchors=tuple(f"{IMAGES}/{d}" for d, _ in SETS.values())
                + tuple(f"{TRUTH}/{c}" for _, c in SETS.values()),
                requires=tuple(
                    Require(f"{TRUTH}/{c}", f"labels {c}", essential=True) for _, c in SETS.values()
                )
                + tuple(Require(f"{IMAGES}/{d}/*.png", f"images {d}") for d, _ in SETS.values()),
                expected=(f"{IMAGES}/*/*.png", *(f"{TRUTH}/{c}" for _, c in SETS.values())),
                hint=f"'{IMAGES}/' and '{TRUTH}/' (A. RFMiD_All_Classes_Dataset/)",
            ),
        )

    def plan(self, tree: SourceTree, *, partial: bool = False) -> BuildPlan:
        report = self.new_report(tree)
        loc = locate_parts(tree, self.parts(), report, partial=partial)
        prefix = next(iter(loc.values())).prefix or ""
        diseases = self.spec.task("disease labels").class_names
        records = []
        for split, (folder, csv_name) in SETS.items():
            csv_file = tree.get(f"{prefix}{TRUTH}/{csv_name}")
            if csv_file is None:
                continue
            frame = read_table(csv_file, report)
            rows = (
                [] if frame is None else parse_rfmid_labels(frame, diseases, csv_file.path, report)
            )
            listed = set()
            for row in rows:
                rel = f"{IMAGES}/{folder}/{row.image_id}.png"
                listed.add(rel)
                image = tree.get(prefix + rel)
                if image is None:
                    report.miss(f"{prefix}{rel} (listed in {csv_name})", partial=partial)
                    continue
                records.append(
                    SampleRecord(
                        source=image,
                        labels={
                            "disease presence": row.disease_risk,
                            "disease labels": row.diseases,
                        },
                        split=split,
                        original_split=split,
                        original_filepath=rel,
                    )
                )
            for f in tree.glob(f"{IMAGES}/{folder}/*.png", prefix):
                if f.relative_to(prefix) not in listed:
                    report.unexpected.append(f"{f.path} (no row in {csv_name})")
        manifest = source_split_manifest(records, note="the source's own splits")
        process = functools.partial(process_image, recipe=RECIPE)
        return BuildPlan(self.dataset_id, records, process, report, manifest, partial=partial)
