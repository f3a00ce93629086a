"""LiTS CT + organ boxes (Xu et al.) -> ``organs_axial``, ``organs_coronal``, ``organs_sagittal``.

Source: ``annotations for lits/annotations_of_{training,testing}_set/*.txt`` (one box file per
volume, see :mod:`medimeta.builders.sources.lits.volumes`) and the LiTS volumes
``volume-<n>.nii`` (the two training batches) and ``test-volume-<n>.nii`` (test data), wherever
they sit in the given tree (``.nii.gz`` is accepted too). Segmentations are not needed.

One sample per organ box and plane:

1. the slice through the box centre (``(x1 + x2) // 2`` of the inclusive box) along the plane's
   axis (sagittal 0, coronal 1, axial 2; nibabel voxel order, as in the release);
2. abdominal CT window W400/L50 to 8 bit (:func:`medimeta.preprocess.ct_window`);
3. a physically square crop around the organ's in-plane box using the header's voxel spacing
   (:func:`medimeta.preprocess.crop_physically_square`; the physically shorter side grows around
   the centre, zero padding outside the volume);
4. bicubic resize to 224 x 224 (organ crops are usually upscaled; ``upscaled`` says so).

Volumes whose spacing is (1.0, 1.0, 1.0) carry no spacing information and are dropped (noted in
info.yaml). Splits: source train volumes -> 85/15 train/val **by volume**, test volumes -> test.
The assignment depends only on the list of volumes, so the three planes get the same split.

Not reproduced from the release: ``masks/`` (the release's masks were the LiTS liver/tumour
segmentation of the full slice, not organ masks and not aligned with the crop) and the
``images_bboxes/`` overview pictures.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from medimeta.builders.engine.common import (
    RESPLIT_RATIOS,
    label_key,
    resplit_train,
    split_manifest,
)
from medimeta.builders.engine.registry import Builder, BuildPlan, register_builder
from medimeta.builders.engine.source import Part, Require, SourceReport, locate_parts
from medimeta.builders.engine.tree import SourceFile, SourceTree
from medimeta.builders.sources.lits.volumes import (
    PLANE_AXES,
    Volume,
    box_file_number,
    central_index,
    in_plane,
    parse_box_file_text,
    read_volume_header,
    volume_key,
    volume_stem,
)
from medimeta.errors import SourceTreeError
from medimeta.format.record import SampleRecord
from medimeta.logs import plural
from medimeta.preprocess import crop_physically_square, ct_window, resize_square

TRAIN_BOXES = "annotations_of_training_set"
TEST_BOXES = "annotations_of_testing_set"
TASK = "organ label"


@dataclass(frozen=True)
class LitsSource:
    """One organ of one volume in one plane (picklable record ``source``)."""

    volume: SourceFile
    box: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
    axis: int


_OPEN: dict[str, Any] = {}


def open_volume(source: SourceFile) -> Volume:
    """The volume of ``source``; the last one opened in this process is reused."""
    key = f"{os.getpid()}:{source.location()}"
    if key not in _OPEN:
        _OPEN.clear()  # records are ordered by volume: one open volume per process is enough
        _OPEN[key] = Volume.from_source(source)
    volume: Volume = _OPEN[key]
    return volume


def process_lits(record: SampleRecord) -> tuple[Any, dict[str, Any]]:
    """Writer ``process``: windowed, physically square, 224 px organ slice (module steps)."""
    src: LitsSource = record.source
    volume = open_volume(src.volume)
    index = central_index(src.box, src.axis)
    plane = volume.slice(src.axis, index)
    box2d, spacing2d = in_plane(src.box, volume.spacing, src.axis)
    crop = crop_physically_square(ct_window(plane), box2d, spacing2d)
    result = resize_square(crop.array, allow_upscale=True, method="resize")
    annotations = {
        "slice_index": index,
        "crop_box": crop.box,
        "crop_padded": crop.padded,
        "crop_size_mm": tuple(
            round((b - a) * s, 3) for (a, b), s in zip(crop.box, spacing2d, strict=True)
        ),
        "upscaled": result.upscaled,
    }
    return result.image, annotations


@dataclass
class _VolumeEntry:
    split: str
    number: int
    source: SourceFile
    boxes_file: SourceFile


class OrganSlicesBuilder(Builder):
    """Shared logic of the three plane builders."""

    plane: ClassVar[str]
    source_title = "LiTS (Bilic et al.) + organ boxes (Xu et al.)"
    source_help = (
        "the folder holding 'annotations for lits/', 'LITS Challenge/' and "
        "'LITS-Challenge-Test-Data/' (or those folders / their archives)"
    )

    def parts(self) -> tuple[Part, ...]:
        return (
            Part(
                name="organ box annotations",
                anchors=(TRAIN_BOXES, TEST_BOXES),
                requires=(
                    Require(f"{TRAIN_BOXES}/*.txt", "training-set box files", essential=True),
                    Require(f"{TEST_BOXES}/*.txt", "test-set box files"),
                ),
                expected=(f"{TRAIN_BOXES}/*.txt", f"{TEST_BOXES}/*.txt"),
                hint="'annotations for lits/annotations_of_training_set/' and '..._testing_set/'",
            ),
        )

    def _entries(self, tree: SourceTree, prefix: str, report: SourceReport, partial: bool):
        volumes: dict[tuple[str, int], SourceFile] = {}
        for f in tree:
            key = volume_key(f.name)
            if key is not None and (key not in volumes or f.path < volumes[key].path):
                volumes[key] = f
        entries = []
        for split, folder in (("train", TRAIN_BOXES), ("test", TEST_BOXES)):
            files = tree.glob("*.txt", f"{prefix}{folder}/")
            for boxes_file in sorted(files, key=lambda f: (box_file_number_of(f, report), f.path)):
                number = box_file_number_of(boxes_file, report)
                volume = volumes.get((split, number))
                if volume is None:
                    report.miss(
                        f"{volume_stem(split, number)}.nii (organ boxes in {boxes_file.path})",
                        partial=partial,
                    )
                    continue
                entries.append(_VolumeEntry(split, number, volume, boxes_file))
        return entries

    def plan(self, tree: SourceTree, *, partial: bool = False) -> BuildPlan:
        report = self.new_report(tree)
        located = locate_parts(tree, self.parts(), report, partial=partial)
        loc = located["organ box annotations"]
        if not loc.found:
            report.raise_for_errors()
        entries = self._entries(tree, loc.prefix or "", report, partial)
        report.raise_for_errors()
        labels = dict(self.spec.task(TASK).labels)
        axis = PLANE_AXES[self.plane]
        records: list[SampleRecord] = []
        dropped: list[str] = []
        for entry in entries:
            name = volume_stem(entry.split, entry.number)
            try:
                header = read_volume_header(entry.source)
                boxes = parse_box_file_text(
                    entry.boxes_file.read_bytes().decode("utf-8"), entry.boxes_file.path
                )
            except (SourceTreeError, UnicodeDecodeError) as exc:
                report.problems.append(str(exc))
                continue
            if not header.has_spacing():
                dropped.append(name)
                continue
            for box in boxes:
                outside = [a for a in range(3) if box.box[a][1] > header.shape[a]]
                if outside:
                    report.problems.append(
                        f"{entry.boxes_file.path} line {box.line}: box {box.inclusive} exceeds "
                        f"the volume shape {header.shape} of {entry.source.path}"
                    )
                    continue
                records.append(
                    SampleRecord(
                        source=LitsSource(entry.source, box.box, axis),
                        labels={TASK: label_key(labels, box.label_name, entry.boxes_file.path)},
                        split="train",
                        original_split=entry.split,
                        original_filepath=entry.source.path,
                        patient_id=name,
                        annotations={
                            "organ_name": box.label_name,
                            "original_bbox": box.inclusive,
                            "original_image_size": header.shape,
                            "original_voxel_dims": tuple(round(s, 6) for s in header.spacing),
                            "boxes_file": entry.boxes_file.path,
                        },
                    )
                )
        report.raise_for_errors()
        groups = [r.patient_id for r in records]
        splits = resplit_train(groups, [r.original_split for r in records])
        records = [replace(r, split=str(s)) for r, s in zip(records, splits, strict=True)]
        manifest = split_manifest(
            groups,
            [str(s) for s in splits],
            method="source train volumes -> 85/15 train/val by volume; test volumes -> test "
            "(identical for organs_axial, organs_coronal and organs_sagittal)",
            group_column="patient_id",
            ratios=RESPLIT_RATIOS,
        )
        return BuildPlan(
            dataset_id=self.dataset_id,
            records=records,
            process=process_lits,
            report=report,
            split_manifest=manifest,
            notes=_notes(dropped),
            partial=partial,
        )


def box_file_number_of(f: SourceFile, report: SourceReport) -> int:
    """The volume number of a box file; problems go to ``report`` (number -1)."""
    try:
        return box_file_number(f.name)
    except SourceTreeError as exc:
        report.problems.append(str(exc))
        return -1


def _notes(dropped: list[str]) -> list[str]:
    notes = [
        "one sample per organ box: slice through the box centre, CT window W400/L50, "
        "physically square crop from the header voxel spacing, bicubic resize to 224 px",
        "splits: source train volumes -> 85/15 train/val by volume (shared by the three "
        "planes); test volumes -> test",
        "masks/ and images_bboxes/ of the release are not written: the release's masks were "
        "the LiTS liver/tumour segmentation of the whole slice, not aligned with the organ crop",
    ]
    if dropped:
        notes.append(
            f"{plural(len(dropped), 'volume')} dropped: the header has no voxel spacing "
            f"(1.0, 1.0, 1.0): {', '.join(dropped)}"
        )
    return notes


@register_builder
class OrgansAxialBuilder(OrganSlicesBuilder):
    """Axial organ slices (along array axis 2)."""

    dataset_id = "organs_axial"
    plane = "axial"


@register_builder
class OrgansCoronalBuilder(OrganSlicesBuilder):
    """Coronal organ slices (along array axis 1)."""

    dataset_id = "organs_coronal"
    plane = "coronal"


@register_builder
class OrgansSagittalBuilder(OrganSlicesBuilder):
    """Sagittal organ slices (along array axis 0)."""

    dataset_id = "organs_sagittal"
    plane = "sagittal"
