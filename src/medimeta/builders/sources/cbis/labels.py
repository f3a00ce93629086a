"""Labels of CBIS-DDSM from its four case-description CSVs (mammo_calc and mammo_mass).

Rules:

* ``pathology``: ``MALIGNANT`` -> 1; ``BENIGN`` and ``BENIGN_WITHOUT_CALLBACK`` -> 0 (as in the
  MedIMeta release). Any other value is a :class:`LabelError`.
* Attribute tasks (``calc type``, ``calc distribution``, ``mass shape``, ``mass margins``) are
  multi-label. A CSV value lists one or more attributes joined by ``-`` (``ROUND_AND_REGULAR-
  LUCENT_CENTERED``); label ``j`` is 1 when one of the hyphen-separated tokens equals the label
  name **exactly**. A missing value (empty, ``NA``, ``N/A``) gives all zeros. A token that is not
  a label name is a :class:`LabelError`, never silently dropped.

The original pipeline tested whether the label name was a *substring* of the value, so every
``LUCENT_CENTERED`` calcification was also labelled ``LUCENT_CENTER``; :func:`substring_multi_hot`
reproduces that rule only so that the difference can be counted and reported.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from medimeta.errors import LabelError, SourceTreeError

MISSING_VALUES = frozenset({"", "NA", "N/A", "NAN", "NONE", "NULL"})
PATHOLOGY = {"MALIGNANT": 1, "BENIGN": 0, "BENIGN_WITHOUT_CALLBACK": 0}
PATH_COLUMNS = ("image file path", "cropped image file path", "ROI mask file path")


@dataclass(frozen=True)
class CbisKind:
    """One of the two CBIS-DDSM abnormality types and its MedIMeta dataset."""

    dataset_id: str
    prefix: str
    attribute_tasks: tuple[str, str]
    annotation_columns: tuple[str, ...]

    def csv_name(self, split: str) -> str:
        """File name of the description CSV of ``split`` (``train`` or ``test``)."""
        word = "train" if split == "train" else "test"
        return f"{self.prefix}_case_description_{word}_set.csv"

    @property
    def csv_names(self) -> tuple[str, str]:
        return (self.csv_name("train"), self.csv_name("test"))


_COMMON = ("left or right breast", "image view", "abnormality id", "abnormality type")
_TAIL = ("assessment", "subtlety")
CALC = CbisKind(
    dataset_id="mammo_calc",
    prefix="calc",
    attribute_tasks=("calc type", "calc distribution"),
    annotation_columns=("breast density", *_COMMON, *_TAIL),
)
MASS = CbisKind(
    dataset_id="mammo_mass",
    prefix="mass",
    attribute_tasks=("mass shape", "mass margins"),
    # The mass CSVs spell this column with an underscore, the calc CSVs with a space.
    annotation_columns=("breast_density", *_COMMON, *_TAIL),
)
KINDS = {CALC.dataset_id: CALC, MASS.dataset_id: MASS}


@dataclass(frozen=True)
class CbisRow:
    """One abnormality (one CSV row): its files, labels and annotation values."""

    source_split: str
    row_number: int
    patient_id: str
    full_path: str
    cropped_path: str
    mask_path: str
    labels: dict[str, int | list[int]]
    raw_values: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def full_folder(self) -> str:
        """Top-level case folder of the full mammogram (first path component)."""
        return self.full_path.split("/")[0]

    @property
    def roi_folder(self) -> str:
        """Top-level case folder holding this abnormality's ROI mask and cropped image."""
        return self.mask_path.split("/")[0]


def tokens(value: str | None) -> tuple[str, ...]:
    """Hyphen-separated attribute tokens of a CSV value; empty for a missing value."""
    if value is None:
        return ()
    text = str(value).strip()
    if text.upper() in MISSING_VALUES:
        return ()
    return tuple(t.strip() for t in text.split("-") if t.strip())


def multi_hot(value: str | None, names: Sequence[str], *, where: str = "") -> list[int]:
    """Multi-hot vector over ``names`` by exact token match (module rules)."""
    found = tokens(value)
    unknown = sorted(set(found) - set(names))
    if unknown:
        raise LabelError(
            f"{where}: value {value!r} has token(s) {unknown} that are not labels of the task; "
            f"known labels: {list(names)}; fix the CSV value or report a new label"
        )
    present = set(found)
    return [int(name in present) for name in names]


def substring_multi_hot(value: str | None, names: Sequence[str]) -> list[int]:
    """The original pipeline's rule (label name is a substring of the value); for reports only."""
    if value is None or str(value).strip().upper() in MISSING_VALUES:
        return [0] * len(names)
    return [int(name in str(value)) for name in names]


def pathology_label(value: str, *, where: str = "") -> int:
    """``MALIGNANT`` -> 1, ``BENIGN`` / ``BENIGN_WITHOUT_CALLBACK`` -> 0."""
    key = str(value).strip().upper()
    if key not in PATHOLOGY:
        raise LabelError(
            f"{where}: pathology {value!r} is not one of {sorted(PATHOLOGY)}; fix the CSV value"
        )
    return PATHOLOGY[key]


def _clean_path(value: str) -> str:
    # Some path cells contain a trailing newline inside the quotes; Windows separators occur in
    # hand-edited copies.
    return "".join(str(value).split()).replace("\\", "/").strip("/")


def read_rows(
    csv_path: Path, kind: CbisKind, source_split: str, label_names: dict[str, Sequence[str]]
) -> list[CbisRow]:
    """Parse one description CSV file on disk (see :func:`parse_rows`)."""
    try:
        text = Path(csv_path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceTreeError(f"{csv_path}: cannot read the CBIS-DDSM CSV ({exc})") from exc
    return parse_rows(text, str(csv_path), kind, source_split, label_names)


def parse_rows(
    text: str,
    name: str,
    kind: CbisKind,
    source_split: str,
    label_names: dict[str, Sequence[str]],
) -> list[CbisRow]:
    """Parse the text of one description CSV into :class:`CbisRow` records (module rules).

    ``name`` is used in messages. ``label_names`` maps each attribute task to its label names
    in key order (from the catalog). Raises SourceTreeError (columns) or LabelError (values).
    """
    try:
        reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
        fieldnames = [f.strip() for f in (reader.fieldnames or [])]
        raw_rows = [{k.strip(): (v or "") for k, v in r.items() if k} for r in reader]
    except csv.Error as exc:
        raise SourceTreeError(f"{name}: cannot parse the CBIS-DDSM CSV ({exc})") from exc
    needed = ["patient_id", "pathology", *kind.attribute_tasks, *PATH_COLUMNS]
    needed += list(kind.annotation_columns)
    missing = [c for c in needed if c not in fieldnames]
    if missing:
        raise SourceTreeError(
            f"{name}: missing column(s) {missing}; found {fieldnames}; use the official "
            f"{kind.csv_name(source_split)} from TCIA"
        )
    rows = []
    for number, raw in enumerate(raw_rows, start=2):  # line 1 is the header
        where = f"{name} line {number}"
        labels: dict[str, int | list[int]] = {
            "pathology": pathology_label(raw["pathology"], where=where)
        }
        for task in kind.attribute_tasks:
            labels[task] = multi_hot(raw[task], label_names[task], where=f"{where}, {task}")
        rows.append(
            CbisRow(
                source_split=source_split,
                row_number=number,
                patient_id=raw["patient_id"].strip(),
                full_path=_clean_path(raw["image file path"]),
                cropped_path=_clean_path(raw["cropped image file path"]),
                mask_path=_clean_path(raw["ROI mask file path"]),
                labels=labels,
                raw_values={t: raw[t].strip() for t in ("pathology", *kind.attribute_tasks)},
                annotations={c: raw[c].strip() for c in kind.annotation_columns},
            )
        )
    return rows


def label_counts(rows: Sequence[CbisRow], task: str, names: Sequence[str]) -> dict[str, int]:
    """Number of rows with each label of a multi-label task (or each pathology class)."""
    if task == "pathology":
        malignant = sum(int(r.labels["pathology"] == 1) for r in rows)
        return {"benign": len(rows) - malignant, "malignant": malignant}
    counts = dict.fromkeys(names, 0)
    for row in rows:
        vector = cast(list[int], row.labels[task])  # attribute tasks are multi-hot lists
        for name, bit in zip(names, vector, strict=True):
            counts[name] += bit
    return counts


def substring_disagreements(
    rows: Sequence[CbisRow], task: str, names: Sequence[str]
) -> dict[str, int]:
    """Per label, how many rows the original substring rule labels differently."""
    diff = dict.fromkeys(names, 0)
    for row in rows:
        exact = cast(list[int], row.labels[task])
        legacy = substring_multi_hot(row.raw_values[task], names)
        for name, a, b in zip(names, exact, legacy, strict=True):
            diff[name] += int(a != b)
    return {k: v for k, v in diff.items() if v}
