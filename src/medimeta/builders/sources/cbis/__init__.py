"""CBIS-DDSM (TCIA) -> ``mammo_calc`` and ``mammo_mass``.

Source: the TCIA download folder (``CBIS-DDSM/<case folder>/<study>/<series>/*.dcm``, with
UIDs or descriptive folder names) plus the four case-description CSVs
(``calc_case_description_{train,test}_set.csv``, ``mass_case_description_{train,test}_set.csv``).
Only the two CSVs of the dataset being built are required.

* Labels: :mod:`medimeta.builders.sources.cbis.labels` (pathology binary; attribute tasks
  multi-label by exact hyphen-token match, which fixes the release's ``LUCENT_CENTER`` /
  ``LUCENT_CENTERED`` substring clash).
* Files: :mod:`medimeta.builders.sources.cbis.files` (full image, ROI mask and cropped ROI
  identified by DICOM content, not file size).
* Pixels: the full mammogram is cropped around the ROI mask's box, grown to at least 224 px and
  squared (:func:`medimeta.preprocess.roi_crop`, zero padded at the borders), scaled to 8 bit by
  the stored bit depth (:func:`medimeta.builders.engine.dicom.scale_pixels`,
  ``v * 255 / 65535`` for CBIS's 16-bit files) and resized to 224 px (bicubic). CBIS's own
  cropped images are not used for pixels (their contrast differs); ``original_filepath`` is the
  cropped-ROI path from the CSV, as in the release.
* Splits: source train -> 85/15 train/val by ``patient_id``; source test -> test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

from medimeta.builders.engine.common import RESPLIT_RATIOS, resplit_train, split_manifest
from medimeta.builders.engine.dicom import scale_pixels
from medimeta.builders.engine.registry import Builder, BuildPlan, register_builder
from medimeta.builders.engine.source import Part, Require, SourceReport, locate_parts
from medimeta.builders.engine.tree import SourceFile, SourceTree
from medimeta.builders.sources.cbis.files import (
    CbisSource,
    load_dicom,
    mask_on_full,
    pick_full,
    pick_roi,
)
from medimeta.builders.sources.cbis.labels import (
    CALC,
    MASS,
    CbisKind,
    CbisRow,
    parse_rows,
    substring_disagreements,
)
from medimeta.errors import LabelError, SourceTreeError
from medimeta.format.record import SampleRecord
from medimeta.logs import plural
from medimeta.preprocess import resize_square, roi_crop

DICOM_ROOT = "CBIS-DDSM"


def process_cbis(record: SampleRecord) -> tuple[Any, dict[str, Any]]:
    """Writer ``process``: the 224x224 grey ROI crop of one abnormality and its annotations."""
    src: CbisSource = record.source
    full = pick_full([load_dicom(f) for f in src.full_files], src.row)
    rois = [load_dicom(f) for f in src.roi_files if f.path != full.file.path]
    mask, cropped, rule = pick_roi(rois, full.shape, src.roi_series_uid, src.row)
    box, rescaled = mask_on_full(mask.load(), full.shape, src.row)
    pixels = full.load()
    crop = roi_crop(pixels, box, min_size=224)
    grey = scale_pixels(crop.array, full.header, "bits_stored")
    result = resize_square(grey, allow_upscale=True, method="resize")
    annotations = {
        "full_image_file": full.file.path,
        "roi_mask_file": mask.file.path,
        "cropped_image_file": cropped.file.path if cropped is not None else "",
        "roi_identified_by": rule,
        "roi_mask_rescaled": rescaled,
        "roi_box": tuple(tuple(pair) for pair in box),
        "crop_box": crop.box,
        "crop_padded": crop.padded,
        "original_image_size": (full.shape[1], full.shape[0]),
    }
    return result.image, annotations


class CbisBuilder(Builder):
    """Shared logic of the two CBIS-DDSM builders (one per abnormality type)."""

    kind: ClassVar[CbisKind]
    source_title = "CBIS-DDSM (Lee et al., 2017; TCIA)"
    source_help = (
        "the TCIA download folder holding CBIS-DDSM/ and the case-description CSVs "
        "(several paths may be given)"
    )

    def parts(self) -> tuple[Part, ...]:
        names = self.kind.csv_names
        return (
            Part(
                name=f"{self.kind.prefix} case-description CSVs",
                anchors=names,
                requires=tuple(Require(n, n, essential=True) for n in names),
                hint=" and ".join(names),
            ),
            Part(
                name="CBIS-DDSM DICOM tree",
                anchors=(DICOM_ROOT,),
                requires=(Require(f"{DICOM_ROOT}/**/*.dcm", "DICOM files", essential=True),),
                scope=(DICOM_ROOT,),
                hint=f"a folder named {DICOM_ROOT} with the TCIA download",
            ),
        )

    def _label_names(self) -> dict[str, Sequence[str]]:
        return {t: self.spec.task(t).class_names for t in self.kind.attribute_tasks}

    def _rows(self, tree: SourceTree, prefix: str, report: SourceReport) -> list[CbisRow]:
        rows: list[CbisRow] = []
        for split in ("train", "test"):
            source = tree.get(prefix + self.kind.csv_name(split))
            if source is None:
                continue
            try:
                text = source.read_bytes().decode("utf-8-sig")
                rows += parse_rows(text, source.path, self.kind, split, self._label_names())
            except (SourceTreeError, LabelError, UnicodeDecodeError) as exc:
                report.problems.append(str(exc))
        return rows

    def plan(self, tree: SourceTree, *, partial: bool = False) -> BuildPlan:
        report = self.new_report(tree)
        located = locate_parts(tree, self.parts(), report, partial=partial)
        csv_loc, dicom_loc = (located[p.name] for p in self.parts())
        if not (csv_loc.found and dicom_loc.found):
            report.raise_for_errors()
        rows = self._rows(tree, csv_loc.prefix or "", report)
        report.raise_for_errors()
        cases = index_case_folders(tree, f"{dicom_loc.prefix or ''}{DICOM_ROOT}/")
        records = []
        for row in rows:
            where = f"{self.kind.csv_name(row.source_split)} line {row.row_number}"
            full, roi = cases.get(row.full_folder), cases.get(row.roi_folder)
            if full is None or roi is None:
                absent = [f for f, v in ((row.full_folder, full), (row.roi_folder, roi)) if not v]
                text = f"{where}: case folder(s) {absent} not in {DICOM_ROOT}/"
                report.miss(text, partial=partial)
                continue
            records.append(self._record(row, full, roi, where))
        report.raise_for_errors()
        if not records:
            raise SourceTreeError(f"{tree.describe()}: no CBIS-DDSM row has its DICOM files")
        groups = [r.patient_id for r in records]
        splits = resplit_train(groups, [r.original_split for r in records])
        records = [_with_split(r, s) for r, s in zip(records, splits, strict=True)]
        manifest = split_manifest(
            groups,
            [str(s) for s in splits],
            method="source train -> 85/15 train/val by patient; source test -> test",
            group_column="patient_id",
            ratios=RESPLIT_RATIOS,
        )
        return BuildPlan(
            dataset_id=self.dataset_id,
            records=records,
            process=process_cbis,
            report=report,
            split_manifest=manifest,
            notes=self._notes(rows),
            partial=partial,
        )

    def _record(
        self, row: CbisRow, full: list[SourceFile], roi: list[SourceFile], where: str
    ) -> SampleRecord:
        parts = row.mask_path.split("/")
        series_uid = parts[2] if len(parts) >= 4 else ""
        annotations = dict(row.annotations)
        annotations.update(
            {
                "image_file_path": row.full_path,
                "roi_mask_file_path": row.mask_path,
                **{f"{task}_raw": row.raw_values[task] for task in self.kind.attribute_tasks},
                "pathology_raw": row.raw_values["pathology"],
            }
        )
        return SampleRecord(
            source=CbisSource(tuple(full), tuple(roi), series_uid, where),
            labels=row.labels,
            split="train",
            original_split=row.source_split,
            original_filepath=row.cropped_path,
            patient_id=row.patient_id,
            annotations=annotations,
        )

    def _notes(self, rows: list[CbisRow]) -> list[str]:
        notes = [
            "attribute labels use exact hyphen-token matching (the release used substring "
            "matching)",
            "full mammogram, ROI mask and cropped ROI are identified by DICOM content "
            "(description, image shape, pixel values), not by file size",
            "pixels: full mammogram cropped around the ROI mask box (>= 224 px, square, zero "
            "padded), scaled by the stored bit depth, resized to 224 px (bicubic)",
            "splits: source train -> 85/15 train/val by patient_id; source test -> test",
        ]
        for task in self.kind.attribute_tasks:
            names = self.spec.task(task).class_names
            for label, n in substring_disagreements(rows, task, names).items():
                notes.append(
                    f"{task}: {plural(n, 'row')} differing from the release's substring rule for "
                    f"label {label} (e.g. LUCENT_CENTERED is no longer also LUCENT_CENTER)"
                )
        return notes


def index_case_folders(tree: SourceTree, prefix: str) -> dict[str, list[SourceFile]]:
    """DICOM files below ``prefix`` grouped by their top-level case folder (sorted paths)."""
    out: dict[str, list[SourceFile]] = {}
    for f in tree.glob("**/*.dcm", prefix):
        rel = f.relative_to(prefix)
        if "/" in rel:
            out.setdefault(rel.split("/", 1)[0], []).append(f)
    return out


def _with_split(record: SampleRecord, split: str) -> SampleRecord:
    return replace(record, split=str(split))


@register_builder
class MammoCalcBuilder(CbisBuilder):
    """CBIS-DDSM calcifications -> ``mammo_calc``."""

    dataset_id = "mammo_calc"
    kind = CALC


@register_builder
class MammoMassBuilder(CbisBuilder):
    """CBIS-DDSM masses -> ``mammo_mass``."""

    dataset_id = "mammo_mass"
    kind = MASS
