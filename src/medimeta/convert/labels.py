"""Turning label text (CSV cells, folder names) into MedIMeta tasks and label keys.

Rules, per task target:

* multi-class / binary / ordinal, one column:
  - with ``classes`` given: every value must be one of those names; key = position (0..C-1);
  - else, if every value is an integer: the integers are the keys (ordinal keys may skip
    values, e.g. 0, 1, 4); label names are the numbers as text (binary: 0 ``negative``,
    1 ``positive``, and only 0/1 are allowed);
  - else: names sorted (``img2`` before ``img10``) get keys 0..C-1; a binary task needs exactly
    two names (the second in sort order is key 1: pass ``classes`` to choose), an ordinal task
    with names needs ``classes`` (sorting names cannot know the order).
* multi-label: several 0/1 columns (one per label, named after the column, or ``classes``) or
  one column of label names joined by ``separator`` (empty = no positive label).

Numbers: a single-label column without ``classes`` in which any value is a number (``3``,
``1.5``, ``2e3``, ``inf``) is a numeric column: every value must then be an integer
(``3``, ``+3``, or an integral decimal such as ``3.0``, read as 3). ``1.5``, ``2e3`` or text such
as ``abc`` in a numeric column is an error naming the row (pass ``classes`` to read the values
as names instead).

Missing values are errors naming the row; nothing is guessed. Missing means an empty cell or
a cell pandas reads as missing (``nan``, ``NaN``, ``NA``, ``N/A``, ``<NA>``, ``NULL``, ``null``,
``#N/A``, ...), unless that text is one of the given ``classes``. ``None`` is not treated as
missing (it is a plausible class name).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from medimeta.catalog import TaskTarget
from medimeta.convert.common import natural_key
from medimeta.errors import LabelError

_INT = re.compile(r"[+-]?\d+(?:\.0*)?")
_NUMBER = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)", re.I)
_TRUE = {"1", "1.0", "true", "yes"}
_FALSE = {"0", "0.0", "false", "no"}
#: pandas' default missing-value strings (lower case), without "none".
MISSING = frozenset(
    {"", "nan", "-nan", "na", "n/a", "<na>", "null", "#n/a", "#n/a n/a", "#na", "-1.#ind"}
    | {"-1.#qnan", "1.#ind", "1.#qnan"}
)
_FIX_NAMES = "or pass classes=(...) (--classes a,b,c) to read the values as class names"


def is_missing(text: str) -> bool:
    """True for an empty cell or a missing-value marker (``nan``, ``NA``, ``NULL``, ...)."""
    return text.strip().lower() in MISSING


def is_number(text: str) -> bool:
    """True when ``text`` is written as a number (``3``, ``-1.5``, ``2e3``, ``inf``, ``nan``)."""
    return _NUMBER.fullmatch(text.strip()) is not None


def as_integer(text: str) -> int | None:
    """The integer ``text`` spells (``3``, ``+3``, ``3.0``), or None."""
    text = text.strip()
    return int(text.split(".")[0]) if _INT.fullmatch(text) else None


@dataclass(frozen=True)
class TaskColumns:
    """One task read from table columns."""

    name: str
    target: TaskTarget | str = TaskTarget.MULTICLASS_CLASSIFICATION
    columns: tuple[str, ...] = ()
    classes: tuple[str, ...] | None = None
    separator: str = "|"

    @property
    def task_target(self) -> TaskTarget:
        return TaskTarget.parse(self.target)

    @property
    def column_names(self) -> tuple[str, ...]:
        """The columns read; by default the one named like the task."""
        return tuple(self.columns) or (self.name,)


@dataclass
class InterpretedTask:
    """A task definition for info.yaml and one label per row."""

    name: str
    target: TaskTarget
    labels: dict[int, str]
    values: list[Any]

    def info_entry(self) -> dict[str, Any]:
        return {"task_name": self.name, "task_target": self.target.value, "labels": self.labels}


@dataclass(frozen=True)
class Rows:
    """How errors name a row: the source (file or folder) and each row's image path."""

    origin: str = ""
    names: Sequence[str] | None = None

    def task(self, task: TaskColumns) -> str:
        return f"{self.origin}: task {task.name!r}" if self.origin else f"task {task.name!r}"

    def row(self, task: TaskColumns, row: int) -> str:
        name = f" ({self.names[row]})" if self.names is not None else ""
        return f"{self.task(task)}, row {row + 1}{name}"


def interpret(
    task: TaskColumns,
    cells: dict[str, Sequence[str]],
    row_names: Sequence[str] | None = None,
    *,
    origin: str = "",
) -> InterpretedTask:
    """Read ``task`` from ``cells`` (column -> one text value per row); ``origin`` (the file or
    folder) and ``row_names`` (each row's image path) name the place of every error."""
    rows = Rows(origin, row_names)
    columns = task.column_names
    missing = [c for c in columns if c not in cells]
    if missing:
        raise LabelError(
            f"{rows.task(task)}: column(s) {missing} not found; available: {sorted(cells)}"
        )
    target = task.task_target
    if target is TaskTarget.MULTILABEL_CLASSIFICATION:
        return _multilabel(task, cells, rows)
    if len(columns) != 1:
        raise LabelError(
            f"{rows.task(task)}: a {target.short} task reads one column, got {list(columns)}"
        )
    values = [str(v).strip() for v in cells[columns[0]]]
    allowed = set(task.classes or ())
    for i, v in enumerate(values):
        if is_missing(v) and v not in allowed:
            raise LabelError(
                f"{rows.row(task, i)}: label is {'empty' if not v else f'missing ({v!r})'} in "
                f"column {columns[0]!r}; expected a class label; fix: fill in the cell or drop "
                "the row"
            )
    if task.classes is not None:
        return _named(task, target, values, rows)
    numbers = [as_integer(v) for v in values]
    if all(n is not None for n in numbers):
        return _integers(task, target, [int(n) for n in numbers if n is not None], rows)
    if any(is_number(v) for v in values):
        i = next(j for j, n in enumerate(numbers) if n is None)
        example = next(v for v in values if is_number(v))
        what = (
            "is not an integer"
            if is_number(values[i])
            else f"is not a number, but column {columns[0]!r} holds numbers (e.g. {example!r})"
        )
        raise LabelError(
            f"{rows.row(task, i)}: label {values[i]!r} {what}; expected an integer class key; "
            f"fix: correct the cell, {_FIX_NAMES}"
        )
    names = sorted(set(values), key=natural_key)
    if target is TaskTarget.ORDINAL_REGRESSION:
        raise LabelError(
            f"{rows.task(task)}: ordinal labels given as names {names[:6]} need their order; "
            "pass classes=(lowest, ..., highest) (--classes a,b,c)"
        )
    if target is TaskTarget.BINARY_CLASSIFICATION and len(names) != 2:
        raise LabelError(
            f"{rows.task(task)}: a binary task needs exactly two label names, got {names}; "
            "pass classes=(negative, positive)"
        )
    index = {n: k for k, n in enumerate(names)}
    return _single(task, target, dict(enumerate(names)), [index[v] for v in values])


def _named(task: TaskColumns, target: TaskTarget, values: list[str], rows: Rows) -> InterpretedTask:
    names = list(task.classes or ())
    if target is TaskTarget.BINARY_CLASSIFICATION and len(names) != 2:
        raise LabelError(f"{rows.task(task)}: a binary task needs exactly two classes, got {names}")
    index = {n: k for k, n in enumerate(names)}
    for i, v in enumerate(values):
        if v not in index:
            raise LabelError(
                f"{rows.row(task, i)}: label {v!r} is not among classes {names}; fix: correct "
                "the cell or add the class to --classes"
            )
    return _single(task, target, dict(enumerate(names)), [index[v] for v in values])


def _integers(
    task: TaskColumns, target: TaskTarget, values: list[int], rows: Rows
) -> InterpretedTask:
    keys = sorted(set(values))
    if target is not TaskTarget.BINARY_CLASSIFICATION:
        return _single(task, target, {k: str(k) for k in keys}, values)
    for i, v in enumerate(values):
        if v not in (0, 1):
            raise LabelError(
                f"{rows.row(task, i)}: binary label {v} is not 0 or 1 (the column holds "
                f"{keys[:6]}); fix: correct the cell, or use target multiclass"
            )
    return _single(task, target, {0: "negative", 1: "positive"}, values)


def _single(
    task: TaskColumns, target: TaskTarget, labels: dict[int, str], values: list[int]
) -> InterpretedTask:
    return InterpretedTask(task.name, target, labels, values)


def _flag(text: str, where: str) -> int:
    value = str(text).strip().lower()
    if value in _TRUE:
        return 1
    if value in _FALSE:
        return 0
    what = "missing" if is_missing(value) else "not 0/1 (or true/false)"
    raise LabelError(
        f"{where}: multi-label cell {text!r} is {what}; expected 0 or 1; fix: correct the cell"
    )


def _multilabel(task: TaskColumns, cells: dict[str, Sequence[str]], rows: Rows) -> InterpretedTask:
    target = TaskTarget.MULTILABEL_CLASSIFICATION
    columns = task.column_names
    if len(columns) > 1:
        names = list(task.classes) if task.classes is not None else list(columns)
        if len(names) != len(columns):
            raise LabelError(
                f"{rows.task(task)}: {len(columns)} columns but {len(names)} class names"
            )
        n = len(cells[columns[0]])
        values = [
            [_flag(cells[c][i], f"{rows.row(task, i)}, column {c!r}") for c in columns]
            for i in range(n)
        ]
        return InterpretedTask(task.name, target, dict(enumerate(names)), values)
    sep = task.separator
    if not sep:
        raise LabelError(f"{rows.task(task)}: the label separator is empty; pass one, e.g. '|'")
    parts = [[p.strip() for p in str(v).split(sep) if p.strip()] for v in cells[columns[0]]]
    allowed = set(task.classes or ())
    for i, row in enumerate(parts):
        bad = [p for p in row if is_missing(p) and p not in allowed]
        if bad:
            raise LabelError(
                f"{rows.row(task, i)}, column {columns[0]!r}: label name {bad[0]!r} marks a "
                "missing value; fix: leave the cell empty for 'no positive label' or fill it in"
            )
    seen = sorted({p for r in parts for p in r}, key=natural_key)
    names = list(task.classes) if task.classes is not None else seen
    unknown = sorted(set(seen) - set(names))
    if unknown:
        raise LabelError(f"{rows.task(task)}: label names {unknown[:5]} not among classes {names}")
    if not names:
        raise LabelError(f"{rows.task(task)}: no label names found; pass classes=(...)")
    position = {n: k for k, n in enumerate(names)}
    values = []
    for r in parts:
        hot = [0] * len(names)
        for p in r:
            hot[position[p]] = 1
        values.append(hot)
    return InterpretedTask(task.name, target, dict(enumerate(names)), values)
