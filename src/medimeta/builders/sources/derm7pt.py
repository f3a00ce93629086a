"""``skinl_photo`` and ``skinl_derm``: the derm7pt seven-point checklist database (release_v0).

Raw layout: ``release_v0.zip`` -> ``release_v0/meta/meta.csv`` (one row per case: ``case_num``,
``diagnosis``, the seven criteria, ``clinic`` and ``derm`` image paths relative to
``images/``, other metadata), ``release_v0/meta/{train,valid,test}_indexes.csv`` (column
``indexes``: 0-based row positions in meta.csv) and ``release_v0/images/<path>``.
``skinl_photo`` uses the ``clinic`` (clinical photograph) image of each case, ``skinl_derm`` the
``derm`` (dermoscopic) image; tasks and splits are identical.

Tasks (reference §3.5): ``Diagnosis`` (every diagnosis containing "melanoma" becomes
``melanoma``), ``Diagnosis grouped`` (nevus subtypes -> nevus; dermatofibroma, lentigo,
melanosis, vascular lesion, miscellaneous -> miscellaneous), the seven criteria with their raw
categories, and grouped versions of vascular structures (regular / irregular), pigmentation
(regular / irregular) and regression structures (present). Every value must be a catalog label
name. Images: RGB, zero-padded to square, ``thumbnail`` to 224. Split: the source's
train/valid/test. Annotations: ``original_image_size`` and every meta.csv column.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from medimeta.builders.engine.common import (
    ImageRecipe,
    label_key,
    process_image,
    read_table,
    require_columns,
    source_split_manifest,
)
from medimeta.builders.engine.registry import Builder, BuildPlan, register_builder
from medimeta.builders.engine.source import Part, Require, SourceReport, locate_parts
from medimeta.builders.engine.tree import SourceTree
from medimeta.catalog import TaskSpec
from medimeta.errors import SourceTreeError
from medimeta.format.record import SampleRecord

INDEX_FILES = {"train": "train_indexes.csv", "val": "valid_indexes.csv", "test": "test_indexes.csv"}
RECIPE = ImageRecipe(mode="RGB", square="pad", method="thumbnail")
NEVI = (
    "blue nevus",
    "clark nevus",
    "combined nevus",
    "congenital nevus",
    "dermal nevus",
    "recurrent nevus",
    "reed or spitz nevus",
)
OTHER = ("dermatofibroma", "lentigo", "melanosis", "vascular lesion", "miscellaneous")
REGULAR_VESSELS = ("arborizing", "comma", "hairpin", "within regression", "wreath")
IRREGULAR_VESSELS = ("dotted", "linear irregular")


def _diagnosis(value: str) -> str:
    return "melanoma" if "melanoma" in value else value


def _diagnosis_grouped(value: str) -> str:
    value = _diagnosis(value)
    if value in NEVI:
        return "nevus"
    return "miscellaneous" if value in OTHER else value


def _vessels_grouped(value: str) -> str:
    if value in REGULAR_VESSELS:
        return "regular"
    return "irregular" if value in IRREGULAR_VESSELS else value


def _regular_irregular(value: str) -> str:
    # "diffuse regular" / "localized irregular" -> "regular" / "irregular"
    return value.split()[-1] if value != "absent" else value


def _present(value: str) -> str:
    return "absent" if value == "absent" else "present"


def _same(value: str) -> str:
    return value


#: task name -> (meta.csv column, value mapping to the catalog label name)
TASK_RULES: Mapping[str, tuple[str, Any]] = {
    "Diagnosis": ("diagnosis", _diagnosis),
    "Diagnosis grouped": ("diagnosis", _diagnosis_grouped),
    "Pigment Network": ("pigment_network", _same),
    "Blue Whitish Veil": ("blue_whitish_veil", _same),
    "Vascular Structures": ("vascular_structures", _same),
    "Vascular Structures grouped": ("vascular_structures", _vessels_grouped),
    "Pigmentation": ("pigmentation", _same),
    "Pigmentation grouped": ("pigmentation", _regular_irregular),
    "Streaks": ("streaks", _same),
    "Dots and Globules": ("dots_and_globules", _same),
    "Regression Structures": ("regression_structures", _same),
    "Regression Structures grouped": ("regression_structures", _present),
}


def case_labels(
    meta: Any, tasks: Sequence[TaskSpec], where: str, report: SourceReport
) -> list[dict[str, int]] | None:
    """Labels of every meta.csv row (row order), or None when columns or values are invalid."""
    columns = sorted({TASK_RULES[t.name][0] for t in tasks})
    missing = [c for c in columns if c not in meta.columns]
    if missing:
        report.problems.append(f"{where}: missing column(s) {missing}")
        return None
    out: list[dict[str, int]] = []
    bad: dict[tuple[str, str], int] = {}
    for row in meta[columns].to_dict("records"):
        labels = {}
        for task in tasks:
            column, rule = TASK_RULES[task.name]
            name = rule(str(row[column]).strip())
            try:
                labels[task.name] = label_key(dict(task.labels), name, where)
            except SourceTreeError:
                bad[(task.name, str(row[column]))] = bad.get((task.name, str(row[column])), 0) + 1
        out.append(labels)
    if bad:
        listed = "; ".join(f"{t}: {v!r} x{n}" for (t, v), n in sorted(bad.items()))
        report.problems.append(f"{where}: values without a catalog label: {listed}")
        return None
    return out


def split_of_rows(
    index_frames: Mapping[str, Any], n_rows: int, where: str, report: SourceReport
) -> list[str | None]:
    """Source split of each meta.csv row from the index files (0-based row positions)."""
    out: list[str | None] = [None] * n_rows
    for split, frame in index_frames.items():
        if "indexes" not in frame.columns:
            report.problems.append(f"{where}/{INDEX_FILES[split]}: missing column 'indexes'")
            continue
        for value in frame["indexes"]:
            i = int(value)
            if not 0 <= i < n_rows or out[i] is not None:
                report.problems.append(
                    f"{where}/{INDEX_FILES[split]}: index {i} is outside meta.csv or listed twice"
                )
                continue
            out[i] = split
    return out


class _Derm7ptBuilder(Builder):
    """Shared logic; the subclass names the image column (``clinic`` or ``derm``)."""

    image_column: ClassVar[str]
    source_title = "derm7pt: seven-point checklist database (Kawahara et al., 2019)"
    source_help = "release_v0.zip, the folder holding it, or the extracted release_v0/"

    def parts(self) -> tuple[Part, ...]:
        files = ("meta/meta.csv", *(f"meta/{f}" for f in INDEX_FILES.values()))
        return (
            Part(
                name="derm7pt release_v0",
                anchors=files,
                requires=tuple(Require(f, f, essential=True) for f in files),
                expected=(*files, "images/**", "README.txt", "README*"),
                hint="release_v0/meta/meta.csv and the index files",
            ),
        )

    def plan(self, tree: SourceTree, *, partial: bool = False) -> BuildPlan:
        report = self.new_report(tree)
        loc = locate_parts(tree, self.parts(), report, partial=partial)["derm7pt release_v0"]
        prefix = loc.prefix or ""
        meta_file = tree.get(f"{prefix}meta/meta.csv")
        meta = None if meta_file is None else read_table(meta_file, report)
        indexes = {}
        for split, name in INDEX_FILES.items():
            source = tree.get(f"{prefix}meta/{name}")
            frame = None if source is None else read_table(source, report)
            if frame is not None:
                indexes[split] = frame
        records: list[SampleRecord] = []
        if (
            meta is not None
            and meta_file is not None
            and len(indexes) == len(INDEX_FILES)
            and require_columns(meta, [self.image_column], meta_file, report)
        ):
            records = self._records(tree, prefix, meta, indexes, report, partial)
        manifest = source_split_manifest(records, note="the source's train/valid/test index files")
        process = functools.partial(process_image, recipe=RECIPE)
        return BuildPlan(self.dataset_id, records, process, report, manifest, partial=partial)

    def _records(
        self,
        tree: SourceTree,
        prefix: str,
        meta: Any,
        indexes: Mapping[str, Any],
        report: SourceReport,
        partial: bool,
    ) -> list[SampleRecord]:
        """One record per case listed in an index file whose image exists."""
        where = f"{prefix}meta"
        labels = case_labels(meta, self.spec.tasks, f"{where}/meta.csv", report)
        splits = split_of_rows(indexes, len(meta), where, report)
        records = []
        for i, (row, split) in enumerate(zip(meta.to_dict("records"), splits, strict=True)):
            if split is None:
                report.warnings.append(f"{where}/meta.csv row {i}: in no index file; skipped")
                continue
            rel = f"images/{row[self.image_column]}"
            image = tree.get(prefix + rel)
            if image is None:
                report.miss(f"{prefix}{rel} (case {row.get('case_num', i)})", partial=partial)
            elif labels is not None:
                records.append(
                    SampleRecord(
                        source=image,
                        labels=labels[i],
                        split=split,
                        original_split=split,
                        original_filepath=rel,
                        annotations={str(k): v for k, v in row.items()},
                    )
                )
        return records


@register_builder
class SkinlPhotoBuilder(_Derm7ptBuilder):
    """derm7pt clinical photographs -> ``skinl_photo``."""

    dataset_id = "skinl_photo"
    image_column = "clinic"


@register_builder
class SkinlDermBuilder(_Derm7ptBuilder):
    """derm7pt dermoscopic images -> ``skinl_derm``."""

    dataset_id = "skinl_derm"
    image_column = "derm"
