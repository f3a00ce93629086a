"""``oct`` and ``pneumonia``: Kermany et al. 2018, Mendeley Data v3 ("CellData").

Raw layout: ``ZhangLabData.zip`` -> ``CellData/OCT/{train,test}/{CNV,DME,DRUSEN,NORMAL}/
<CLASS>-<patient>-<n>.jpeg`` and ``CellData/chest_xray/{train,test}/{NORMAL,PNEUMONIA}/
<SUBCLASS>-<patient>-<n>.jpeg`` (SUBCLASS = NORMAL, BACTERIA or VIRUS). The ``OCT/`` and
``chest_xray/`` folders are located on their own, so the zip, ``CellData/`` or the folder holding
it all work.

Tasks: oct ``disease class`` from the folder, ``urgent referral`` = YES for CNV and DME;
pneumonia ``pneumonia presence`` from the folder, ``disease class`` from the file-name prefix.
The patient id is the integer between the dashes. Images: grey, zero-padded to square; oct
``thumbnail`` to 224 (sources >= 496 px), pneumonia bicubic ``resize`` (small images are
upscaled). Split: source train -> 85/15 train/val **by patient** (seed 42), source test ->
test. Annotations: class, subclass, patient_id, original_image_size, original_image_ratio.
"""

from __future__ import annotations

import abc
import functools
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import ClassVar

from PIL import Image

from medimeta.builders.engine.common import (
    RESPLIT_RATIOS,
    ImageRecipe,
    image_files,
    label_key,
    open_image,
    resplit_train,
    split_manifest,
)
from medimeta.builders.engine.registry import Builder, BuildPlan, register_builder
from medimeta.builders.engine.source import IMAGE_PATTERNS, Part, Require, locate_parts
from medimeta.builders.engine.tree import SourceTree
from medimeta.format.record import SampleRecord
from medimeta.logs import plural

_NAME = re.compile(r"^(?P<sub>[A-Za-z]+)-(?P<pid>\d+)-(?P<n>\d+)\.jpe?g$")
SOURCE_SPLITS = ("train", "test")


def process_kermany(record: SampleRecord, recipe: ImageRecipe) -> tuple[Image.Image, dict]:
    """Writer ``process``: grey, pad, resize; records the original size and aspect ratio."""
    raw = open_image(record.source)
    image, notes = recipe.apply(raw)
    notes["original_image_ratio"] = raw.size[0] / raw.size[1]
    return image, notes


class _KermanyBuilder(Builder):
    """Shared logic; subclasses name the folder, the classes and the label rules."""

    folder: ClassVar[str]
    classes: ClassVar[tuple[str, ...]]
    recipe: ClassVar[ImageRecipe]
    source_title = "Kermany et al., Labeled OCT and chest X-ray images (Mendeley Data v3)"
    source_help = "ZhangLabData.zip, the folder holding it, or the extracted CellData/"

    def parts(self) -> tuple[Part, ...]:
        requires = tuple(
            Require(f"{self.folder}/{s}/{c}/*.jpeg", f"{self.folder} {s} {c} images (*.jpeg)")
            for s in SOURCE_SPLITS
            for c in self.classes
        )
        return (
            Part(
                name=f"CellData/{self.folder}",
                anchors=tuple(f"{self.folder}/{s}" for s in SOURCE_SPLITS),
                requires=requires,
                expected=tuple(f"{self.folder}/*/*/{p}" for p in IMAGE_PATTERNS),
                scope=(self.folder,),
                hint=f"CellData/{self.folder}/train and /test",
            ),
        )

    @abc.abstractmethod
    def labels_for(self, folder: str, subclass: str, where: str) -> Mapping[str, int] | None:
        """Task labels of one image, or None when the file name contradicts the folder."""

    def plan(self, tree: SourceTree, *, partial: bool = False) -> BuildPlan:
        report = self.new_report(tree)
        loc = locate_parts(tree, self.parts(), report, partial=partial)[f"CellData/{self.folder}"]
        prefix = loc.prefix or ""
        records = []
        for split in SOURCE_SPLITS:
            for cls in self.classes:
                folder = f"{prefix}{self.folder}/{split}/{cls}/"
                for f in sorted(image_files(tree, folder), key=lambda x: x.path):
                    m = _NAME.match(f.name)
                    labels = None if m is None else self.labels_for(cls, m["sub"].upper(), f.path)
                    if m is None or labels is None:
                        report.problems.append(
                            f"{f.path}: expected a name <{'|'.join(self.subclasses(cls))}>-"
                            "<patient id>-<n>.jpeg; the patient id is needed for the split"
                        )
                        continue
                    records.append(
                        SampleRecord(
                            source=f,
                            labels=labels,
                            split="train",
                            original_split=split,
                            original_filepath=f.relative_to(prefix),
                            patient_id=int(m["pid"]),
                            annotations={"class": cls, "subclass": m["sub"].upper()},
                        )
                    )
        groups = [r.patient_id for r in records]
        sources = [r.original_split for r in records]
        shared = {g for g, s in zip(groups, sources, strict=True) if s == "train"} & {
            g for g, s in zip(groups, sources, strict=True) if s == "test"
        }
        notes = [
            f"{self.dataset_id}: source train is split 85/15 train/val by patient id (seed 42, "
            "SHA-256 order); source test is the test split."
        ]
        if shared:
            notes.append(
                f"{self.dataset_id}: {plural(len(shared), 'patient id')} shared by the source "
                "train and test sets; kept as published."
            )
            report.warnings.append(notes[-1])
        splits = resplit_train(groups, sources, require_disjoint=False)
        records = [replace(r, split=str(s)) for r, s in zip(records, splits, strict=True)]
        manifest = split_manifest(
            [(s if s == "test" else "train", g) for g, s in zip(groups, sources, strict=True)],
            list(splits),
            method="resplit_train",
            group_column="(source split, patient_id)",
            ratios=RESPLIT_RATIOS,
            note="source train -> 85/15 by patient; source test -> test",
        )
        process = functools.partial(process_kermany, recipe=self.recipe)
        return BuildPlan(
            self.dataset_id, records, process, report, manifest, notes=notes, partial=partial
        )

    def subclasses(self, cls: str) -> tuple[str, ...]:
        return (cls,)


@register_builder
class OctBuilder(_KermanyBuilder):
    """CellData/OCT -> ``oct``."""

    dataset_id = "oct"
    folder = "OCT"
    classes = ("CNV", "DME", "DRUSEN", "NORMAL")
    recipe = ImageRecipe(mode="L", square="pad", method="thumbnail")

    def labels_for(self, folder: str, subclass: str, where: str) -> Mapping[str, int] | None:
        if subclass != folder:
            return None
        key = label_key(dict(self.spec.task("disease class").labels), folder, where)
        return {"disease class": key, "urgent referral": int(folder in ("CNV", "DME"))}


@register_builder
class PneumoniaBuilder(_KermanyBuilder):
    """CellData/chest_xray -> ``pneumonia``."""

    dataset_id = "pneumonia"
    folder = "chest_xray"
    classes = ("NORMAL", "PNEUMONIA")
    recipe = ImageRecipe(mode="L", square="pad", method="resize", allow_upscale=True)

    def subclasses(self, cls: str) -> tuple[str, ...]:
        return ("NORMAL",) if cls == "NORMAL" else ("BACTERIA", "VIRUS")

    def labels_for(self, folder: str, subclass: str, where: str) -> Mapping[str, int] | None:
        if subclass not in self.subclasses(folder):
            return None
        presence = label_key(dict(self.spec.task("pneumonia presence").labels), folder, where)
        disease = label_key(dict(self.spec.task("disease class").labels), subclass, where)
        return {"pneumonia presence": presence, "disease class": disease}
