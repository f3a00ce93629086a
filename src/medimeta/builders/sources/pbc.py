"""``pbc``: Peripheral Blood Cells (PBC, Acevedo et al. 2020).

Raw layout: ``PBC_dataset_normal_DIB.zip`` -> ``PBC_dataset_normal_DIB/{basophil, eosinophil,
erythroblast, ig, lymphocyte, monocyte, neutrophil, platelet}/*.jpg`` (~360x363 px). The class
folders identify the tree; the folder holding them may have any name.

Task ``cell class``: from the folder; ``ig`` is the catalog's ``immature granulocyte``.
Images: RGB, central square crop, ``thumbnail`` to 224 (bicubic). Split: random 70/10/20 by
image, seed 42 (no patient ids).

Deviation from the original pipeline: it renamed the input folder ``ig`` in place (and left it
renamed after a failure); here the input is only read.
"""

from __future__ import annotations

import functools

from medimeta.builders.engine.common import (
    ImageRecipe,
    image_files,
    label_key,
    process_image,
    split_by_image,
)
from medimeta.builders.engine.registry import Builder, BuildPlan, register_builder
from medimeta.builders.engine.source import IMAGE_PATTERNS, Part, Require, locate_parts
from medimeta.builders.engine.tree import SourceTree
from medimeta.format.record import SampleRecord

#: Source folder -> catalog label name.
FOLDERS = {
    "basophil": "basophil",
    "eosinophil": "eosinophil",
    "erythroblast": "erythroblast",
    "ig": "immature granulocyte",
    "lymphocyte": "lymphocyte",
    "monocyte": "monocyte",
    "neutrophil": "neutrophil",
    "platelet": "platelet",
}
RECIPE = ImageRecipe(mode="RGB", square="crop", method="thumbnail")
NOTES = [
    "pbc: the input is read only; the original pipeline renamed the folder 'ig' in place.",
    "pbc: split is random by image (70/10/20, seed 42, SHA-256 order); PBC has no patient ids.",
]


@register_builder
class PbcBuilder(Builder):
    """PBC class folders -> ``pbc``."""

    dataset_id = "pbc"
    source_title = "PBC: peripheral blood cell images (Acevedo et al., 2020; Mendeley Data)"
    source_help = "PBC_dataset_normal_DIB.zip, the folder holding it, or the extracted folder"

    def parts(self) -> tuple[Part, ...]:
        return (
            Part(
                name="PBC class folders",
                anchors=tuple(FOLDERS),
                requires=tuple(Require(f"{f}/*.jpg", f"{f} images (*.jpg)") for f in FOLDERS),
                expected=tuple(f"{f}/{p}" for f in FOLDERS for p in IMAGE_PATTERNS),
                hint="folders basophil/, eosinophil/, ..., ig/, ... (PBC_dataset_normal_DIB/)",
            ),
        )

    def plan(self, tree: SourceTree, *, partial: bool = False) -> BuildPlan:
        report = self.new_report(tree)
        located = locate_parts(tree, self.parts(), report, partial=partial)
        prefix = located["PBC class folders"].prefix or ""
        labels = self.spec.task("cell class").labels
        records = []
        for folder, name in FOLDERS.items():
            key = label_key(labels, name, f"{prefix}{folder}")
            for f in sorted(image_files(tree, f"{prefix}{folder}/"), key=lambda x: x.path):
                records.append(
                    SampleRecord(
                        source=f,
                        labels={"cell class": key},
                        split="train",
                        original_split="train",
                        original_filepath=f.relative_to(prefix),
                    )
                )
        records, manifest = split_by_image(records, note="per image: PBC has no patient ids")
        process = functools.partial(process_image, recipe=RECIPE)
        return BuildPlan(
            self.dataset_id, records, process, report, manifest, notes=list(NOTES), partial=partial
        )
