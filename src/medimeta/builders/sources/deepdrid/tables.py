"""DeepDRiD label tables: the training/validation CSVs and the evaluation-set xlsx files.

Column names are normalised (lower case, spaces and hyphens -> underscores), so
``Overall quality`` becomes ``overall_quality`` and ``left_eye_DR_Level`` ``left_eye_dr_level``.
Rows are joined on ``image_id`` when a split folder has several tables (the labels CSV and the
image-source CSV of the regular fundus set; the two challenge xlsx files of its evaluation set).

Eye-level DR grade of a regular-fundus image (the deviation from the release, which used the
patient-level grade, i.e. the worse eye, for every image):

* the grade is the one of ``left_eye_dr_level`` / ``right_eye_dr_level`` that is filled in the
  image's row (the graders fill exactly one);
* the image's eye is that column's eye; the ``l``/``r`` letter of ``image_id``
  (``<patient>_l1``, ``<patient>_r2``) is used only when both or neither column is filled, and
  a disagreement between letter and column (it happens, e.g. ``56_r3`` carries a left-eye grade)
  is counted and reported;
* the evaluation set gives one grade per image (``DR_Levels``), used as is.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from medimeta.errors import LabelError, SourceTreeError

Row = dict[str, str]
_EYE_RE = re.compile(r"(?:^|_)([lr])\d*$", re.IGNORECASE)


def normalise(name: Any) -> str:
    """``"Overall quality"`` -> ``"overall_quality"``."""
    return re.sub(r"[\s\-]+", "_", str(name).strip()).lower()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_csv_rows(data: bytes, name: str) -> list[Row]:
    """Rows of a CSV file with normalised column names and stripped string values."""
    try:
        text = data.decode("utf-8-sig")
        reader = csv.reader(io.StringIO(text, newline=""))
        rows = [r for r in reader if any(c.strip() for c in r)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SourceTreeError(f"{name}: cannot read the CSV ({exc})") from exc
    return _to_dicts(rows, name)


def read_xlsx_rows(data: bytes, name: str) -> list[Row]:
    """Rows of the first sheet of an xlsx file (first non-empty row is the header)."""
    try:
        from openpyxl import load_workbook
    except ImportError as exc:  # pragma: no cover - the sources extra (and dev) install it
        from medimeta.errors import MissingDependencyError

        raise MissingDependencyError.for_extra(
            "sources", f"reading DeepDRiD's xlsx labels needs openpyxl ({exc})"
        ) from exc
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            sheet = book.worksheets[0]
            rows = [
                [_cell(v) for v in r]
                for r in sheet.iter_rows(values_only=True)
                if any(v not in (None, "") for v in r)
            ]
        finally:
            book.close()
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise SourceTreeError(f"{name}: cannot read the xlsx file ({exc})") from exc
    return _to_dicts(rows, name)


def _to_dicts(rows: list[list[str]], name: str) -> list[Row]:
    if not rows:
        raise SourceTreeError(f"{name}: the table is empty (no header row)")
    header = [normalise(h) for h in rows[0]]
    out = []
    for values in rows[1:]:
        padded = [*values, *([""] * (len(header) - len(values)))]
        out.append({h: _cell(v) for h, v in zip(header, padded, strict=False) if h})
    return out


def join_on_image_id(tables: Sequence[tuple[str, list[Row]]]) -> list[Row]:
    """Join tables on ``image_id`` (order of the first table; later tables add columns)."""
    if not tables:
        return []
    for name, rows in tables:
        if rows and "image_id" not in rows[0]:
            raise SourceTreeError(f"{name}: no image_id column; found {sorted(rows[0])}")
    first_name, first = tables[0]
    merged = {r["image_id"]: dict(r) for r in first}
    for name, rows in tables[1:]:
        for r in rows:
            target = merged.get(r["image_id"])
            if target is None:
                raise SourceTreeError(
                    f"{name}: image_id {r['image_id']!r} is not in {first_name}; the tables of "
                    "one split must describe the same images"
                )
            for key, value in r.items():
                target.setdefault(key, value)
    return list(merged.values())


def grade(value: str, where: str) -> int:
    """An integer grade/score from a table cell (``2`` or ``2.0``); LabelError otherwise."""
    try:
        number = float(value)
    except ValueError:
        raise LabelError(f"{where}: expected an integer grade, got {value!r}") from None
    if not number.is_integer():
        raise LabelError(f"{where}: expected an integer grade, got {value!r}")
    return int(number)


def eye_letter(image_id: str) -> str | None:
    """``"left"``/``"right"`` from an image id such as ``12_l1`` (None if there is no letter)."""
    found = _EYE_RE.search(image_id)
    if found is None:
        return None
    return "left" if found.group(1).lower() == "l" else "right"


@dataclass(frozen=True)
class EyeGrade:
    """The eye-level grade of one regular-fundus image and how it was decided."""

    grade: int
    eye: str
    letter: str | None

    @property
    def letter_disagrees(self) -> bool:
        return self.letter is not None and self.letter != self.eye


def eye_grade(row: Row, where: str) -> EyeGrade:
    """The eye-level DR grade of a training/validation row (module rules)."""
    left, right = row.get("left_eye_dr_level", ""), row.get("right_eye_dr_level", "")
    letter = eye_letter(row.get("image_id", ""))
    if left and not right:
        return EyeGrade(grade(left, where), "left", letter)
    if right and not left:
        return EyeGrade(grade(right, where), "right", letter)
    if letter is None:
        raise LabelError(
            f"{where}: cannot tell the image's eye: left/right grades {left!r}/{right!r} and "
            f"image_id {row.get('image_id')!r} without an l/r letter"
        )
    chosen = left if letter == "left" else right
    if not chosen:
        raise LabelError(f"{where}: no DR grade for the {letter} eye")
    return EyeGrade(grade(chosen, where), letter, letter)


def require(rows: Iterable[Row], columns: Sequence[str], name: str) -> None:
    """SourceTreeError when the first row lacks any of ``columns``."""
    first = next(iter(rows), None)
    if first is None:
        raise SourceTreeError(f"{name}: the table has no rows")
    missing = [c for c in columns if c not in first]
    if missing:
        raise SourceTreeError(f"{name}: missing column(s) {missing}; found {sorted(first)}")
