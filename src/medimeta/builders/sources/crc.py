"""``crc``: NCT-CRC-HE-100K and CRC-VAL-HE-7K (Kather et al. 2018, Zenodo 1214456).

Raw layout: ``NCT-CRC-HE-100K.zip`` -> ``NCT-CRC-HE-100K/<CLASS>/*.tif`` and
``CRC-VAL-HE-7K.zip`` -> ``CRC-VAL-HE-7K/<CLASS>/*.tif`` with CLASS = ADI, BACK, DEB, LYM, MUC,
MUS, NORM, STR, TUM (224x224 px RGB tiles). Each set is located on its own, by its folder name.

Task ``tissue class``: the abbreviation in parentheses of each catalog label, e.g.
``adipose (ADI)``. Images: decoded and re-encoded (the original did this to drop malformed
TIFF headers), RGB, no resizing (a tile that is not 224x224 is an error). Split: the 100K set
(source split ``train``) 85/15 train/val by tile, seed 42; the 7K set is ``test`` with source
split ``val`` (as in the release).

Known limitation (kept, documented): tile names do not identify the slide reliably, so the
train/val split is by tile and tiles of one slide can fall into both train and val. The test
set (7K) comes from other patients, so test results are not affected.
"""

from __future__ import annotations

import functools
import re
from dataclasses import replace

from medimeta.builders.engine.common import (
    RESPLIT_RATIOS,
    ImageRecipe,
    image_files,
    process_image,
    resplit_train,
    split_manifest,
)
from medimeta.builders.engine.registry import Builder, BuildPlan, register_builder
from medimeta.builders.engine.source import IMAGE_PATTERNS, Part, Require, locate_parts
from medimeta.builders.engine.tree import SourceTree
from medimeta.format.record import SampleRecord

#: Set folder -> source split name (the 7K set is the source's validation set).
SETS = {"NCT-CRC-HE-100K": "train", "CRC-VAL-HE-7K": "val"}
RECIPE = ImageRecipe(mode="RGB", square="none", method="resize")
NOTES = [
    "crc: NCT-CRC-HE-100K is split 85/15 train/val by tile (seed 42): tile names do not "
    "identify slides, so tiles of one slide can be in train and val (as in the release). "
    "CRC-VAL-HE-7K is the test split (original_split 'val').",
]


def class_codes(labels: dict[int, str]) -> dict[str, int]:
    """Folder name (abbreviation in parentheses) -> label key."""
    out = {}
    for key, name in labels.items():
        found = re.search(r"\(([A-Z]+)\)", name)
        if found:
            out[found.group(1)] = key
    return out


@register_builder
class CrcBuilder(Builder):
    """NCT-CRC-HE-100K + CRC-VAL-HE-7K class folders -> ``crc``."""

    dataset_id = "crc"
    source_title = "NCT-CRC-HE-100K and CRC-VAL-HE-7K (Kather et al., 2018; Zenodo 1214456)"
    source_help = (
        "NCT-CRC-HE-100K.zip and CRC-VAL-HE-7K.zip (or their extracted folders), or the "
        "folder holding them"
    )

    def codes(self) -> dict[str, int]:
        return class_codes(dict(self.spec.task("tissue class").labels))

    def parts(self) -> tuple[Part, ...]:
        parts = []
        for folder in SETS:
            parts.append(
                Part(
                    name=folder,
                    anchors=tuple(f"{folder}/{c}" for c in self.codes()),
                    requires=tuple(
                        Require(f"{folder}/{c}/*.tif", f"{folder} {c} tiles (*.tif)")
                        for c in self.codes()
                    ),
                    expected=tuple(f"{folder}/*/{p}" for p in IMAGE_PATTERNS),
                    scope=(folder,),
                    hint=f"{folder}/ (from {folder}.zip)",
                )
            )
        return tuple(parts)

    def plan(self, tree: SourceTree, *, partial: bool = False) -> BuildPlan:
        report = self.new_report(tree)
        located = locate_parts(tree, self.parts(), report, partial=partial)
        records = []
        for folder, source_split in SETS.items():
            loc = located[folder]
            if not loc.found:
                continue
            base = f"{loc.prefix}{folder}/"
            for code, key in self.codes().items():
                for f in sorted(image_files(tree, f"{base}{code}/"), key=lambda x: x.path):
                    records.append(
                        SampleRecord(
                            source=f,
                            labels={"tissue class": key},
                            split="train",
                            original_split=source_split,
                            original_filepath=f.relative_to(loc.prefix or ""),
                        )
                    )
        keys = [r.original_filepath for r in records]
        sources = [r.original_split for r in records]
        splits = resplit_train(keys, sources, mapping={"val": "test"})
        records = [replace(r, split=str(s)) for r, s in zip(records, splits, strict=True)]
        manifest = split_manifest(
            keys,
            list(splits),
            method="resplit_train",
            group_column="original_filepath",
            ratios=RESPLIT_RATIOS,
            note="NCT-CRC-HE-100K -> 85/15 train/val by tile; CRC-VAL-HE-7K -> test",
        )
        process = functools.partial(process_image, recipe=RECIPE)
        return BuildPlan(
            self.dataset_id, records, process, report, manifest, notes=list(NOTES), partial=partial
        )
