"""``aml``: AML-Cytomorphology_LMU (Matek et al. 2019, TCIA).

Raw layout: ``AML-Cytomorphology_LMU.zip`` -> ``AML-Cytomorphology/<CLASS>/*.tiff`` (CLASS =
BAS, EBO, EOS, KSC, LYA, LYT, MMZ, MOB, MON, MYB, MYO, NGB, NGS, PMB, PMO; ~400x400 px) and
``annotations.dat`` (no header, whitespace-separated: image path relative to the class-folder
level such as ``BAS/BAS_0001.tiff``, annotation, first and second re-annotation, ``nan`` when
absent). The class folders and ``annotations.dat`` are located independently (TCIA packages
them at the top of the zip or in a wrapper or ``metadata/`` folder).

Task ``morphological class``: from the folder (first word of each catalog label, e.g.
``BAS Basophil``). Images: RGB (alpha dropped), ``thumbnail`` to 224 (bicubic; a non-square
image is zero-padded first). Split: random 70/10/20 by image, seed 42 (no patient ids).
Annotations: ``annotation``, ``first_reannotation``, ``second_reannotation``,
``original_image_size``. A folder label that differs from ``annotation`` is reported.
"""

from __future__ import annotations

import functools
import io
import re

from medimeta.builders.engine.common import (
    ImageRecipe,
    image_files,
    process_image,
    split_by_image,
)
from medimeta.builders.engine.registry import Builder, BuildPlan, register_builder
from medimeta.builders.engine.source import (
    IMAGE_PATTERNS,
    Part,
    Require,
    SourceReport,
    locate_parts,
)
from medimeta.builders.engine.tree import SourceFile, SourceTree
from medimeta.format.record import SampleRecord
from medimeta.logs import plural

RECIPE = ImageRecipe(mode="RGB", square="pad", method="thumbnail")
ANNOTATION_COLUMNS = ("annotation", "first_reannotation", "second_reannotation")
NOTES = [
    "aml: split is random by image (70/10/20, seed 42, SHA-256 order); the source has no "
    "patient ids.",
]


def class_codes(labels: dict[int, str]) -> dict[str, int]:
    """Folder code (first word of the catalog label) -> label key."""
    return {name.split()[0]: key for key, name in labels.items()}


def parse_annotations(source: SourceFile, report: SourceReport) -> dict[str, tuple[str, ...]]:
    """``annotations.dat`` -> ``CLASS/NAME.tiff`` -> (annotation, re-annotation 1, 2)."""
    out: dict[str, tuple[str, ...]] = {}
    text = io.TextIOWrapper(source.open(), encoding="utf-8-sig", errors="replace")
    with text:
        for number, line in enumerate(text, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) > 4 or not re.search(r"\.tiff?$", fields[0], re.IGNORECASE):
                report.problems.append(
                    f"{source.path}, line {number}: expected 'CLASS/NAME.tiff annotation "
                    f"reannotation1 reannotation2'; got {line.strip()[:80]!r}"
                )
                continue
            values = [v if v.lower() != "nan" else "" for v in fields[1:]]
            # Keyed by CLASS/NAME: tolerates a leading folder such as AML-Cytomorphology/.
            key = "/".join(fields[0].replace("\\", "/").split("/")[-2:])
            out[key] = tuple([*values, "", "", ""][:3])
    return out


@register_builder
class AmlBuilder(Builder):
    """AML-Cytomorphology class folders + annotations.dat -> ``aml``."""

    dataset_id = "aml"
    source_title = "AML-Cytomorphology_LMU (Matek et al., 2019; TCIA)"
    source_help = (
        "AML-Cytomorphology_LMU.zip, the folder holding it, or the extracted tree with "
        "AML-Cytomorphology/<CLASS>/ and annotations.dat"
    )

    def parts(self) -> tuple[Part, ...]:
        codes = tuple(class_codes(dict(self.spec.task("morphological class").labels)))
        return (
            Part(
                name="AML class folders",
                anchors=codes,
                requires=tuple(Require(f"{c}/*.tif*", f"{c} images (*.tiff)") for c in codes),
                expected=tuple(f"{c}/{p}" for c in codes for p in IMAGE_PATTERNS),
                hint="folders BAS/, EBO/, ... (AML-Cytomorphology/)",
            ),
            Part(
                name="annotations.dat",
                anchors=("annotations.dat",),
                requires=(Require("annotations.dat", "expert annotations", essential=True),),
                expected=("annotations.dat", "abbreviations.txt"),
                scope=("annotations.dat", "abbreviations.txt"),
            ),
        )

    def plan(self, tree: SourceTree, *, partial: bool = False) -> BuildPlan:
        report = self.new_report(tree)
        located = locate_parts(tree, self.parts(), report, partial=partial)
        prefix = located["AML class folders"].prefix or ""
        ann_loc = located["annotations.dat"]
        annotations: dict[str, tuple[str, ...]] = {}
        ann_file = tree.get(f"{ann_loc.prefix}annotations.dat") if ann_loc.found else None
        if ann_file is not None:
            annotations = parse_annotations(ann_file, report)
        codes = class_codes(dict(self.spec.task("morphological class").labels))
        records = []
        unannotated = 0
        disagree = []
        for code, key in codes.items():
            for f in sorted(image_files(tree, f"{prefix}{code}/"), key=lambda x: x.path):
                rel = f.relative_to(prefix)
                values = annotations.pop("/".join(rel.split("/")[-2:]), None)
                if values is None:
                    unannotated += 1
                    values = ("", "", "")
                elif values[0] and values[0] != code:
                    disagree.append(f"{rel}: annotation {values[0]!r}")
                records.append(
                    SampleRecord(
                        source=f,
                        labels={"morphological class": key},
                        split="train",
                        original_split="train",
                        original_filepath=f"AML-Cytomorphology/{rel}",
                        annotations=dict(zip(ANNOTATION_COLUMNS, values, strict=True)),
                    )
                )
        if ann_file is not None and unannotated:
            report.warnings.append(f"{unannotated} images have no line in annotations.dat")
        for rel in sorted(annotations):
            report.miss(f"{prefix}{rel} (listed in annotations.dat)", partial=partial)
        if disagree:
            report.warnings.append(
                f"{plural(len(disagree), 'image')} in another class folder than their annotation "
                f"(folder used as label), e.g. {disagree[:3]}"
            )
        records, manifest = split_by_image(records, note="per image: no patient ids in the source")
        process = functools.partial(process_image, recipe=RECIPE)
        return BuildPlan(
            self.dataset_id, records, process, report, manifest, notes=list(NOTES), partial=partial
        )
