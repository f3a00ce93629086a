"""Chákṣu IMAGE database (figshare) -> ``glaucoma``.

Source: ``Train.zip`` and ``Test.zip`` (or their extracted ``Train/`` and ``Test/`` folders):

* images ``<Split>/1.0_Original_Fundus_Images/{Bosch,Forus,Remidio}/*.{JPG,jpg,png}``;
* labels ``<Split>/6.0_Glaucoma_Decision/Glaucoma_Decision_Comparison_<device>_majority.csv``
  (``Images``, ``Expert.1`` .. ``Expert.5`` and ``Majority Decision`` or ``Glaucoma Decision``);
* fused optic disc / cup masks ``<Split>/4.0_OD_CO_Fusion_Images/<device>/STAPLE/*`` (the Test
  archive spells the device folder ``Remedio``).

Task ``Glaucoma suspect``: the majority decision, ``NORMAL`` -> 0, ``GLAUCOMA SUSPECT`` -> 1;
the source's typo ``GLAUCOMA  SUSUPECT`` (double space) is the same verdict. Labels are joined
to images by split, device and image name (lower-case stem; a label cell such as
``Image101.jpg-Image101-1.jpg`` is cut at the first ``-``), never by name alone.

Images: zero-padded to square, Pillow thumbnail to 224 px (bicubic), RGB. Masks: the STAPLE
fusion image is grey (background 0, optic disc mid grey, optic cup brighter; the cup lies inside
the disc), so **disc = value > 85** (the larger region) and **cup = value > 170** (the smaller
one); both are zero-padded like the image and resized with nearest neighbour to
``masks/disc/NNNNNN.tiff`` and ``masks/cup/NNNNNN.tiff``. The release wrote these two the other
way round (its ``cup`` was the > 85 region).

Split: source Train -> 85/15 train/val **by patient** where a patient id is in the file name
(``P<number>``; one id is one patient across devices), otherwise by image; Test -> test. Not
copied: the Readme PDF and the per-statistic CSVs (Majority/Mean/Median).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image

from medimeta.builders.engine.common import (
    RESPLIT_RATIOS,
    ImageRecipe,
    image_files,
    open_image,
    read_table,
    require_columns,
    resplit_train,
    split_manifest,
)
from medimeta.builders.engine.registry import Builder, BuildPlan, register_builder
from medimeta.builders.engine.source import Part, Require, SourceReport, locate_parts
from medimeta.builders.engine.tree import SourceFile, SourceTree
from medimeta.errors import LabelError, PreprocessError
from medimeta.format.record import SampleRecord
from medimeta.preprocess import pad_to_square, resize_square, to_mode

DEVICES = ("Bosch", "Forus", "Remidio")
SPLIT_FOLDERS = {"train": "Train", "test": "Test"}
IMAGES = "1.0_Original_Fundus_Images"
FUSION = "4.0_OD_CO_Fusion_Images"
DECISIONS = "6.0_Glaucoma_Decision"
TASK = "Glaucoma suspect"
VERDICTS = {"NORMAL": 0, "GLAUCOMA SUSPECT": 1, "GLAUCOMA SUSUPECT": 1}
DISC_THRESHOLD = 85  # > 85: optic disc (includes the cup)
CUP_THRESHOLD = 170  # > 170: optic cup
RECIPE = ImageRecipe(mode="RGB", square="pad", method="thumbnail")
_PATIENT = re.compile(r"P(\d+)")


def verdict(value: str, where: str) -> int:
    """0 (normal) or 1 (glaucoma suspect) from a decision cell (module rules)."""
    key = " ".join(str(value).upper().split())
    if key not in VERDICTS:
        raise LabelError(f"{where}: decision {value!r} is not one of {sorted(VERDICTS)}")
    return VERDICTS[key]


def fused_masks(fused: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(disc, cup)`` boolean masks from a STAPLE fusion image (module thresholds)."""
    grey = fused if fused.ndim == 2 else fused[..., 0]
    return grey > DISC_THRESHOLD, grey > CUP_THRESHOLD


def label_name_key(cell: str) -> str:
    """Image key of a label cell: lower-case stem of the part before the first ``-``."""
    head = str(cell).strip().lower().split("-", 1)[0]
    return head.rsplit(".", 1)[0] if "." in head else head


def patient_of(stem: str) -> str | None:
    """``P<n>`` from an image name, or None."""
    found = _PATIENT.search(stem)
    return f"P{int(found.group(1))}" if found else None


@dataclass(frozen=True)
class ChaksuSource:
    """The image and its STAPLE fusion mask (None when the build is partial and it is missing)."""

    image: SourceFile
    mask: SourceFile | None


def process_chaksu(record: SampleRecord) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """Writer ``process``: image (pad + thumbnail) and disc/cup masks (pad + nearest resize)."""
    src: ChaksuSource = record.source
    raw = open_image(src.image)
    image, annotations = RECIPE.apply(raw)
    if src.mask is None:
        return image, annotations, {}
    fused = np.asarray(to_mode(open_image(src.mask), "L"))
    if (fused.shape[1], fused.shape[0]) != raw.size:
        raise PreprocessError(
            f"{src.mask.location()}: mask is {fused.shape[1]}x{fused.shape[0]} px but the image "
            f"{src.image.path} is {raw.size[0]}x{raw.size[1]} px"
        )
    disc, cup = fused_masks(fused)
    annotations.update(
        disc_area_px=int(disc.sum()),
        cup_area_px=int(cup.sum()),
        cup_outside_disc_px=int((cup & ~disc).sum()),
    )
    aux = {}
    for name, mask in (("disc", disc), ("cup", cup)):
        square = resize_square(pad_to_square(mask), allow_upscale=True, is_mask=True).image
        aux[f"masks/{name}"] = Image.fromarray(square)
    return image, annotations, aux


@register_builder
class GlaucomaBuilder(Builder):
    """Chákṣu Train/Test archives -> ``glaucoma``."""

    dataset_id = "glaucoma"
    source_title = "Chákṣu IMAGE: a glaucoma-specific fundus image database (Kumar et al., 2023)"
    source_help = "Train.zip and Test.zip, the folder holding them, or the extracted Train/ Test/"

    def parts(self) -> tuple[Part, ...]:
        return tuple(
            Part(
                name=f"Chákṣu {folder}",
                anchors=(f"{folder}/{IMAGES}", f"{folder}/{DECISIONS}", f"{folder}/{FUSION}"),
                requires=(
                    Require(f"{folder}/{IMAGES}/*/*", f"{folder} images", essential=True),
                    Require(
                        f"{folder}/{DECISIONS}/Glaucoma_Decision_Comparison_*_majority.csv",
                        f"{folder} decision CSVs",
                        essential=True,
                    ),
                    Require(f"{folder}/{FUSION}/*/STAPLE/*", f"{folder} STAPLE fusion masks"),
                ),
                scope=(folder,),
                hint=f"{folder}.zip or a folder {folder}/ with {IMAGES}/",
            )
            for folder in SPLIT_FOLDERS.values()
        )

    def plan(self, tree: SourceTree, *, partial: bool = False) -> BuildPlan:
        report = self.new_report(tree)
        located = locate_parts(tree, self.parts(), report, partial=partial)
        records: list[SampleRecord] = []
        for split, folder in SPLIT_FOLDERS.items():
            loc = located[f"Chákṣu {folder}"]
            if not loc.found:
                continue
            base = f"{loc.prefix or ''}{folder}/"
            for device in DEVICES:
                records += self._device_records(tree, base, split, device, report, partial)
        report.raise_for_errors()
        groups = [r.patient_id or f"image:{r.original_filepath}" for r in records]
        splits = [str(s) for s in resplit_train(groups, [r.original_split for r in records])]
        records = [replace(r, split=s) for r, s in zip(records, splits, strict=True)]
        manifest = split_manifest(
            groups,
            splits,
            method="source Train -> 85/15 train/val by patient (P<n> in the file name) or by "
            "image when no patient id is present; source Test -> test",
            group_column="patient_id or image",
            ratios=RESPLIT_RATIOS,
        )
        return BuildPlan(
            dataset_id=self.dataset_id,
            records=records,
            process=process_chaksu,
            report=report,
            split_manifest=manifest,
            notes=_notes(records),
            partial=partial,
            aux_columns={
                "masks/cup": "mask_cup_staple_path",
                "masks/disc": "mask_disc_staple_path",
            },
        )

    def _device_records(
        self,
        tree: SourceTree,
        base: str,
        split: str,
        device: str,
        report: SourceReport,
        partial: bool,
    ) -> list[SampleRecord]:
        images = {f.stem.lower(): f for f in image_files(tree, f"{base}{IMAGES}/{device}/")}
        if not images:
            report.miss(f"{base}{IMAGES}/{device}/ (no images)", partial=partial)
            return []
        labels = self._labels(tree, base, device, report)
        if labels is None:
            return []
        masks = _mask_index(tree, base, device)
        out = []
        for stem, image in sorted(images.items(), key=lambda kv: kv[1].path):
            row = labels.get(stem)
            if row is None:
                report.problems.append(f"{image.path}: no row in the {device} decision CSV")
                continue
            mask = masks.get(stem) or masks.get(f"{stem}glsusp")
            if mask is None:
                report.miss(f"STAPLE fusion mask for {image.path}", partial=partial)
            out.append(
                SampleRecord(
                    source=ChaksuSource(image, mask),
                    labels={TASK: row["label"]},
                    split="train",
                    original_split=split,
                    original_filepath=image.path,
                    patient_id=patient_of(image.stem),
                    annotations={
                        "device": device,
                        "image_name": image.name,
                        "annot_majority": row["majority"],
                        **{f"annot_expert_{k}": row.get(f"expert_{k}", "") for k in range(1, 6)},
                        "mask_staple_original_path": mask.path if mask else "",
                    },
                )
            )
        return out

    def _labels(
        self, tree: SourceTree, base: str, device: str, report: SourceReport
    ) -> dict[str, dict[str, Any]] | None:
        name = f"{base}{DECISIONS}/Glaucoma_Decision_Comparison_{device}_majority.csv"
        source = tree.get(name) or next(
            (f for f in tree.glob(f"*_{device}_majority.csv", f"{base}{DECISIONS}/")), None
        )
        if source is None:
            report.missing.append(name)
            return None
        frame = read_table(source, report)
        if frame is None or not require_columns(frame, ["Images"], source, report):
            return None
        frame.columns = [str(c).strip() for c in frame.columns]
        decision = next((c for c in ("Majority Decision", "Glaucoma Decision") if c in frame), None)
        if decision is None:
            report.problems.append(
                f"{source.path}: no 'Majority Decision' or 'Glaucoma Decision' column; found "
                f"{list(frame.columns)}"
            )
            return None
        out: dict[str, dict[str, Any]] = {}
        for i, row in enumerate(frame.to_dict("records"), start=2):
            where = f"{source.path} line {i}"
            try:
                entry = {"label": verdict(row[decision], where), "majority": row[decision]}
            except LabelError as exc:
                report.problems.append(str(exc))
                continue
            for k in range(1, 6):
                entry[f"expert_{k}"] = str(row.get(f"Expert.{k}", "")).strip()
            cell = str(row["Images"]).strip().lower()
            out.setdefault(label_name_key(cell), entry)
            # A name that itself contains "-" is matched by its full stem too.
            out.setdefault(cell.rsplit(".", 1)[0] if "." in cell else cell, entry)
        return out


def _mask_index(tree: SourceTree, base: str, device: str) -> dict[str, SourceFile]:
    out: dict[str, SourceFile] = {}
    wanted = {device.lower(), "remedio" if device == "Remidio" else device.lower()}
    for name in tree.listdir(f"{base}{FUSION}/"):
        if name.lower() in wanted:
            for f in image_files(tree, f"{base}{FUSION}/{name}/STAPLE/"):
                out.setdefault(f.stem.lower(), f)
    return out


def _notes(records: Sequence[SampleRecord]) -> list[str]:
    with_id = sum(r.patient_id is not None for r in records)
    return [
        f"masks: disc = STAPLE fusion > {DISC_THRESHOLD} (larger region), cup = fusion > "
        f"{CUP_THRESHOLD} (inside the disc); the release had the names the other way round",
        f"split: by patient where the file name holds P<n> ({with_id} of {len(records)} "
        "images), otherwise by image (the release split every image independently)",
        "labels are matched to images by split, device and name (not by name alone)",
        "images: zero-padded to square, thumbnail to 224 px (bicubic)",
    ]
