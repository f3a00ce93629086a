"""``derm``: ISIC 2018 Task 3 (HAM10000 training set + ISIC 2018 validation and test sets).

Raw files (each located on its own, zipped or extracted):
``ISIC2018_Task3_{Training,Validation,Test}_Input.zip`` -> ``ISIC2018_Task3_<Set>_Input/
ISIC_<id>.jpg`` (+ ``ATTRIBUTION.txt``, ``LICENSE.txt``) and
``ISIC2018_Task3_<Set>_GroundTruth.zip`` -> ``ISIC2018_Task3_<Set>_GroundTruth/
ISIC2018_Task3_<Set>_GroundTruth.csv`` (columns ``image``, MEL, NV, BCC, AKIEC, BKL, DF, VASC,
one-hot as ``0.0``/``1.0``). Optional: ``ISIC2018_Task3_Training_LesionGroupings.csv``
(``image, lesion_id, diagnosis_confirm_type``) and the HAM10000 metadata file
``HAM10000_metadata.csv`` / ``.tab`` (``lesion_id, image_id, dx, dx_type, age, sex,
localization``...): their columns become annotation columns of the training images.

Task ``disease category``: the position of the one-hot column (MEL 0 ... VASC 6, the catalog's
order). Images: RGB, central square crop (600x450 -> 450x450, as the release; it cuts the
lesion's left and right borders) and ``thumbnail`` to 224. Split: the challenge's own
train/val/test. Annotations: ``original_image_size`` and the metadata columns when given.
"""

from __future__ import annotations

import functools
from typing import Any

from medimeta.builders.engine.common import (
    ImageRecipe,
    process_image,
    read_table,
    require_columns,
    source_split_manifest,
)
from medimeta.builders.engine.registry import Builder, BuildPlan, register_builder
from medimeta.builders.engine.source import LocatedPart, Part, Require, SourceReport, locate_parts
from medimeta.builders.engine.tree import SourceFile, SourceTree
from medimeta.format.record import SampleRecord

CODES = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")
SETS = {"train": "Training", "val": "Validation", "test": "Test"}
GROUPINGS = "ISIC2018_Task3_Training_LesionGroupings.csv"
METADATA = ("HAM10000_metadata.csv", "HAM10000_metadata.tab", "HAM10000_metadata")
RECIPE = ImageRecipe(mode="RGB", square="crop", method="thumbnail")
NOTES = [
    "derm: images are centre-cropped to a square before resizing, as in the release "
    "(the original docstring only mentions resizing); lesion borders at the left and right "
    "edges of the 600x450 images are cut.",
]


def one_hot_labels(frame: Any, source: SourceFile, report: SourceReport) -> list[tuple[str, int]]:
    """(image id, class index) per ground-truth row; rows not exactly one-hot are problems."""
    if not require_columns(frame, ("image", *CODES), source, report):
        return []
    out = []
    bad = []
    for line, row in enumerate(frame[["image", *CODES]].itertuples(index=False), start=2):
        try:
            values = [float(v) for v in row[1:]]
        except ValueError:
            bad.append(line)
            continue
        if sorted(values) != [0.0] * (len(CODES) - 1) + [1.0] or not row[0]:
            bad.append(line)
            continue
        out.append((str(row[0]), values.index(1.0)))
    if bad:
        report.problems.append(
            f"{source.path}: {len(bad)} rows are not one-hot over {list(CODES)} (lines {bad[:5]})"
        )
    return out


def _input_part(name: str) -> Part:
    folder = f"ISIC2018_Task3_{name}_Input"
    return Part(
        name=folder,
        anchors=(folder,),
        requires=(Require(f"{folder}/ISIC_*.jpg", f"{name} images (ISIC_<id>.jpg)"),),
        expected=(f"{folder}/ISIC_*.jpg", f"{folder}/ATTRIBUTION.txt", f"{folder}/LICENSE.txt"),
        scope=(folder,),
        hint=f"{folder}/ (from {folder}.zip)",
    )


def _truth_part(name: str) -> Part:
    csv = f"ISIC2018_Task3_{name}_GroundTruth.csv"
    return Part(
        name=csv,
        anchors=(csv,),
        requires=(Require(csv, f"{name} ground truth"),),
        expected=(csv, "ATTRIBUTION.txt", "LICENSE.txt"),
        scope=(csv,),
        hint=f"{csv} (in ISIC2018_Task3_{name}_GroundTruth.zip)",
    )


def metadata_table(
    tree: SourceTree, located: dict[str, LocatedPart], report: SourceReport
) -> dict[str, dict[str, str]]:
    """image id -> extra annotation columns from the optional groupings and metadata files."""
    out: dict[str, dict[str, str]] = {}
    for part, key, names in (
        (GROUPINGS, "image", ("image", "lesion_id", "diagnosis_confirm_type")),
        ("HAM10000 metadata", "image_id", ("image_id", "lesion_id")),
    ):
        loc = located[part]
        if not loc.found:
            continue
        source = tree.get(f"{loc.prefix}{loc.anchors_found[0]}")
        frame = None if source is None else read_table(source, report, sep=None, engine="python")
        if frame is None or source is None or not require_columns(frame, names, source, report):
            continue
        columns = [c for c in frame.columns if c != key]
        for row in frame.itertuples(index=False):
            values = dict(zip(frame.columns, row, strict=True))
            out.setdefault(str(values[key]), {}).update({c: str(values[c]) for c in columns})
    return out


@register_builder
class DermBuilder(Builder):
    """ISIC 2018 Task 3 zips (+ optional HAM10000 metadata) -> ``derm``."""

    dataset_id = "derm"
    source_title = "ISIC 2018 Task 3 / HAM10000 (Tschandl et al., 2018; Codella et al., 2019)"
    source_help = (
        "the folder holding ISIC2018_Task3_{Training,Validation,Test}_{Input,GroundTruth}.zip "
        "(zipped or extracted), optionally with HAM10000_metadata.csv"
    )

    def parts(self) -> tuple[Part, ...]:
        parts = [p for name in SETS.values() for p in (_input_part(name), _truth_part(name))]
        parts.append(
            Part(GROUPINGS, (GROUPINGS,), expected=(GROUPINGS,), scope=(GROUPINGS,), optional=True)
        )
        parts.append(
            Part("HAM10000 metadata", METADATA, expected=METADATA, scope=METADATA, optional=True)
        )
        return tuple(parts)

    def plan(self, tree: SourceTree, *, partial: bool = False) -> BuildPlan:
        report = self.new_report(tree)
        located = locate_parts(tree, self.parts(), report, partial=partial)
        extra = metadata_table(tree, located, report)
        records = []
        for split, name in SETS.items():
            truth = located[f"ISIC2018_Task3_{name}_GroundTruth.csv"]
            images = located[f"ISIC2018_Task3_{name}_Input"]
            csv = tree.get(f"{truth.prefix}{truth.part.anchors[0]}") if truth.found else None
            if images.found and csv is None and partial:
                # Images without labels cannot be built, partial or not.
                report.problems.append(
                    f"{truth.part.name}: not found; needed to label the {name} images"
                )
            frame = None if csv is None else read_table(csv, report)
            rows = [] if frame is None or csv is None else one_hot_labels(frame, csv, report)
            folder = f"ISIC2018_Task3_{name}_Input/"
            listed = set()
            for image_id, label in rows:
                rel = f"{folder}{image_id}.jpg"
                listed.add(rel)
                image = tree.get(f"{images.prefix}{rel}") if images.found else None
                if image is None:
                    report.miss(f"{rel} (listed in the {name} ground truth)", partial=partial)
                    continue
                records.append(
                    SampleRecord(
                        source=image,
                        labels={"disease category": label},
                        split=split,
                        original_split=split,
                        original_filepath=rel,
                        annotations=extra.get(image_id, {}),
                    )
                )
            if images.found:
                for f in tree.glob(f"{folder}ISIC_*.jpg", images.prefix or ""):
                    if f.relative_to(images.prefix or "") not in listed:
                        report.unexpected.append(f"{f.path} (no ground-truth row)")
        columns = sorted({c for r in records for c in r.annotations})
        records = [
            SampleRecord(
                r.source,
                r.labels,
                r.split,
                r.original_split,
                r.original_filepath,
                annotations={c: r.annotations.get(c, "") for c in columns},
            )
            for r in records
        ]
        manifest = source_split_manifest(records, note="the challenge's own train/val/test")
        process = functools.partial(process_image, recipe=RECIPE)
        return BuildPlan(
            self.dataset_id, records, process, report, manifest, notes=list(NOTES), partial=partial
        )
