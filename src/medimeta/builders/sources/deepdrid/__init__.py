"""DeepDRiD (ISBI 2020) -> ``dr_regular`` (regular fundus) and ``dr_uwf`` (ultra-widefield).

Source: the GitHub repository (``DeepDRiD-master.zip`` or a clone), which holds
``regular_fundus_images/`` and ``ultra-widefield_images/``, each with a training, a validation
and an evaluation folder (``Images/<patient>/<image_id>.jpg`` plus label tables: CSVs for
training/validation, ``Challenge<k>_labels.xlsx`` for the evaluation sets; read with openpyxl).

* ``dr_regular`` tasks: DR level (ordinal 0-4), Overall quality (binary), Artifact, Clarity,
  Field definition (ordinal, stored as DeepDRiD's raw scores 0/1/4/6/8/10 and 1/4/6/8/10).
  **DR level is the eye-level grade** of the image's eye (rules in
  :mod:`medimeta.builders.sources.deepdrid.tables`); the release used the patient-level grade
  (the worse eye) for both eyes' images. The patient-level grade is kept as an annotation.
* ``dr_uwf`` task: DR level of the image.
* Images graded 5 (ungradable) are dropped (4 training and 2 evaluation UWF images in the
  public data); the count is noted in info.yaml.
* Images: central square crop, Pillow thumbnail to 224 px (bicubic), RGB.
* Splits: the source's training / validation / evaluation sets as train / val / test.
  Samples are ordered by split, then patient id and image id.
* Not copied: the per-split Readme files of the release folder.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from medimeta.builders.engine.common import ImageRecipe, image_files, process_image, split_manifest
from medimeta.builders.engine.registry import Builder, BuildPlan, register_builder
from medimeta.builders.engine.source import Part, Require, locate_parts
from medimeta.builders.engine.tree import SourceFile, SourceTree
from medimeta.builders.sources.deepdrid.tables import (
    Row,
    eye_grade,
    eye_letter,
    grade,
    join_on_image_id,
    read_csv_rows,
    read_xlsx_rows,
    require,
)
from medimeta.errors import LabelError, SourceTreeError
from medimeta.format.record import SampleRecord
from medimeta.logs import plural

RECIPE = ImageRecipe(mode="RGB", square="crop", method="thumbnail")
UNGRADABLE = 5
SPLITS = ("train", "val", "test")


def process_deepdrid(record: SampleRecord) -> Any:
    """Writer ``process``: centre crop, thumbnail to 224 px."""
    return process_image(record, RECIPE)


@dataclass(frozen=True)
class _Sample:
    split: str
    patient: str
    image_id: str
    row: Row
    where: str


class DeepDridBuilder(Builder):
    """Shared logic of the two DeepDRiD builders."""

    folders: ClassVar[dict[str, str]]
    label_tasks: ClassVar[dict[str, str]]  # task name -> normalised column (train/val tables)
    source_title = "DeepDRiD (Liu et al., 2022), GitHub repository deepdrdoc/DeepDRiD"
    source_help = "DeepDRiD-master.zip, the folder holding it, or the extracted repository"

    def parts(self) -> tuple[Part, ...]:
        train, val, test = (self.folders[s] for s in SPLITS)
        return (
            Part(
                name=f"{self.dataset_id} folders",
                anchors=(train, val, test),
                requires=(
                    Require(f"{train}/*.csv", f"{train} label CSV", essential=True),
                    Require(f"{val}/*.csv", f"{val} label CSV"),
                    Require(f"{test}/*_labels.xlsx", f"{test} label xlsx"),
                    Require(f"{train}/Images/*/*.jpg", f"{train} images", essential=True),
                    Require(f"{val}/Images/*/*.jpg", f"{val} images"),
                    Require(f"{test}/Images/*/*.jpg", f"{test} images"),
                ),
                hint=f"folders {train}/, {val}/ and {test}/",
            ),
        )

    def _tables(self, tree: SourceTree, folder: str, split: str) -> list[Row]:
        if split == "test":
            files = tree.glob("*_labels.xlsx", folder)
            tables = [(f.path, read_xlsx_rows(f.read_bytes(), f.path)) for f in files]
        else:
            files = tree.glob("*.csv", folder)
            tables = [(f.path, read_csv_rows(f.read_bytes(), f.path)) for f in files]
            # The labels table first (it has the grades); the image-source table adds "source".
            tables.sort(key=lambda t: (not t[1] or self._grade_column(t[1][0]) is None, t[0]))
        if not tables:
            return []
        rows = join_on_image_id(tables)
        require(rows, ["image_id"], tables[0][0])
        return rows

    def _grade_column(self, row: Row) -> str | None:
        for column in ("left_eye_dr_level", "dr_level", "dr_levels", "uwf_dr_levels"):
            if column in row:
                return column
        return None

    @abc.abstractmethod
    def labels_of(self, sample: _Sample) -> tuple[dict[str, int], dict[str, Any]]:
        """Task labels and label annotations of one table row (subclass rules)."""

    def plan(self, tree: SourceTree, *, partial: bool = False) -> BuildPlan:
        report = self.new_report(tree)
        located = locate_parts(tree, self.parts(), report, partial=partial)
        loc = located[f"{self.dataset_id} folders"]
        if not loc.found:
            report.raise_for_errors()
        prefix = loc.prefix or ""
        records: list[SampleRecord] = []
        dropped = dict.fromkeys(SPLITS, 0)
        for split in SPLITS:
            folder = f"{prefix}{self.folders[split]}/"
            try:
                rows = self._tables(tree, folder, split)
            except (SourceTreeError, LabelError) as exc:
                report.problems.append(str(exc))
                continue
            images = _image_index(tree, folder)
            for sample in _samples(rows, split, folder):
                try:
                    labels, extra = self.labels_of(sample)
                except LabelError as exc:
                    report.problems.append(str(exc))
                    continue
                if labels["DR level"] == UNGRADABLE:
                    dropped[split] += 1
                    continue
                image = _find_image(images, sample)
                if image is None:
                    where = f"{folder}Images/{sample.patient}/{sample.image_id}.jpg"
                    report.miss(f"{where} (listed in the {split} labels)", partial=partial)
                    continue
                records.append(self._record(sample, image, labels, extra))
        report.raise_for_errors()
        records.sort(key=lambda r: (SPLITS.index(r.split), _num(r.patient_id), r.original_filepath))
        manifest = split_manifest(
            [r.annotations["image_id"] for r in records],
            [r.split for r in records],
            method="source splits (training -> train, validation -> val, evaluation -> test)",
            group_column="image_id",
            ratios=None,
            seed=None,
        )
        return BuildPlan(
            dataset_id=self.dataset_id,
            records=records,
            process=process_deepdrid,
            report=report,
            split_manifest=manifest,
            notes=self._notes(records, dropped),
            partial=partial,
        )

    def _record(
        self, sample: _Sample, image: SourceFile, labels: dict[str, int], extra: dict[str, Any]
    ) -> SampleRecord:
        return SampleRecord(
            source=image,
            labels=labels,
            split=sample.split,
            original_split=sample.split,
            original_filepath=image.path,
            patient_id=sample.patient,
            annotations={"image_id": sample.image_id, **extra},
        )

    def _notes(self, records: Sequence[SampleRecord], dropped: dict[str, int]) -> list[str]:
        notes = [
            "splits: DeepDRiD's training / validation / evaluation sets as train / val / test",
            "images: central square crop, thumbnail to 224 px (bicubic)",
        ]
        if any(dropped.values()):
            notes.append(
                "ungradable images (DR grade 5) dropped: "
                + ", ".join(f"{n} {s}" for s, n in dropped.items() if n)
            )
        by_patient: dict[str, set[str]] = {}
        for r in records:
            by_patient.setdefault(str(r.patient_id), set()).add(r.split)
        shared = sorted(p for p, s in by_patient.items() if len(s) > 1)
        if shared:
            notes.append(
                f"{plural(len(shared), 'patient id')} in more than one source split: "
                + ", ".join(shared[:10])
            )
        return notes


def _num(value: Any) -> tuple[int, str]:
    text = str(value)
    return (int(text), "") if text.isdigit() else (10**9, text)


def _samples(rows: list[Row], split: str, folder: str) -> list[_Sample]:
    out = []
    for i, row in enumerate(rows, start=2):
        image_id = row.get("image_id", "")
        patient = row.get("patient_id") or image_id.split("_", 1)[0]
        where = f"{folder}: row {i} (image_id {image_id!r})"
        out.append(_Sample(split, patient, image_id, row, where))
    return out


def _image_index(tree: SourceTree, folder: str) -> dict[tuple[str, str], SourceFile]:
    index: dict[tuple[str, str], SourceFile] = {}
    for patient_dir in tree.listdir(f"{folder}Images/"):
        for f in image_files(tree, f"{folder}Images/{patient_dir}/"):
            index.setdefault((patient_dir, f.stem.lower()), f)
    return index


def _find_image(index: dict[tuple[str, str], SourceFile], sample: _Sample) -> SourceFile | None:
    stem = sample.image_id.lower()
    found = index.get((sample.patient, stem))
    if found is None and "_" in stem:
        # A few files lack the patient prefix (Images/121/l3.jpg for image_id 121_l3).
        found = index.get((sample.patient, stem.split("_", 1)[1]))
    return found


@register_builder
class DrRegularBuilder(DeepDridBuilder):
    """DeepDRiD regular fundus images -> ``dr_regular`` (eye-level DR grade)."""

    dataset_id = "dr_regular"
    folders = {
        "train": "regular-fundus-training",
        "val": "regular-fundus-validation",
        "test": "Online-Challenge1&2-Evaluation",
    }
    QUALITY = {
        "Overall quality": "overall_quality",
        "Artifact": "artifact",
        "Clarity": "clarity",
        "Field definition": "field_definition",
    }

    def labels_of(self, sample: _Sample) -> tuple[dict[str, int], dict[str, Any]]:
        row, where = sample.row, sample.where
        missing = [c for c in self.QUALITY.values() if c not in row]
        if missing:
            raise LabelError(f"{where}: missing column(s) {missing}")
        labels = {task: grade(row[col], f"{where}, {col}") for task, col in self.QUALITY.items()}
        extra: dict[str, Any] = {"source": row.get("source", "")}
        if sample.split == "test":
            column = next((c for c in ("dr_levels", "dr_level") if c in row), None)
            if column is None:
                raise LabelError(f"{where}: no DR_Levels column in the evaluation labels")
            labels["DR level"] = grade(row[column], f"{where}, {column}")
            extra.update(eye=_letter(sample.image_id), grade_source="evaluation DR_Levels")
            return labels, extra
        eye = eye_grade(row, where)
        labels["DR level"] = eye.grade
        extra.update(
            eye=eye.eye,
            left_eye_dr_level=row.get("left_eye_dr_level", ""),
            right_eye_dr_level=row.get("right_eye_dr_level", ""),
            patient_dr_level=row.get("patient_dr_level", ""),
            grade_source=f"{eye.eye}_eye_dr_level",
        )
        return labels, extra

    def _notes(self, records: Sequence[SampleRecord], dropped: dict[str, int]) -> list[str]:
        differ = sum(
            1
            for r in records
            if r.annotations.get("patient_dr_level", "") not in ("", str(r.labels["DR level"]))
        )
        notes = [
            "DR level is the eye-level grade of the image's eye (left_eye_DR_Level or "
            "right_eye_DR_Level, whichever the row fills); the release used the patient-level "
            f"grade (the worse eye). {plural(differ, 'image')} with another DR level than in the "
            "release; patient_dr_level keeps the original value",
            "evaluation-set DR level: DR_Levels of Challenge1_labels.xlsx (one grade per image)",
        ]
        disagree = sum(
            1
            for r in records
            if r.split != "test"
            and _letter(r.annotations["image_id"]) not in ("", r.annotations["eye"])
        )
        if disagree:
            notes.append(
                f"{plural(disagree, 'image')} whose image_id eye letter disagrees with the filled "
                "eye column; the column was used (annotation 'eye')"
            )
        return notes + super()._notes(records, dropped)


def _letter(image_id: str) -> str:
    return eye_letter(image_id) or ""


@register_builder
class DrUwfBuilder(DeepDridBuilder):
    """DeepDRiD ultra-widefield images -> ``dr_uwf``."""

    dataset_id = "dr_uwf"
    folders = {
        "train": "ultra-widefield-training",
        "val": "ultra-widefield-validation",
        "test": "Online-Challenge3-Evaluation",
    }

    def labels_of(self, sample: _Sample) -> tuple[dict[str, int], dict[str, Any]]:
        row, where = sample.row, sample.where
        column = next((c for c in ("dr_level", "uwf_dr_levels", "dr_levels") if c in row), None)
        if column is None:
            raise LabelError(f"{where}: no DR level column (DR_level / UWF_DR_Levels)")
        extra = {"position": row.get("position", ""), "eye": _letter(sample.image_id)}
        return {"DR level": grade(row[column], f"{where}, {column}")}, extra
