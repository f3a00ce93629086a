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

Missing values are errors naming the row; nothing is guessed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from medimeta.catalog import TaskTarget
from medimeta.convert.common import natural_key
from medimeta.errors import LabelError

_INT = re.compile(r"[+-]?\d+")
_TRUE = {"1", "1.0", "true", "yes"}
_FALSE = {"0", "0.0", "false", "no"}


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


def _where(task: TaskColumns, row: int, rows: Sequence[str] | None) -> str:
    name = f" ({rows[row]})" if rows is not None else ""
    return f"task {task.name!r}, row {row + 1}{name}"


def interpret(
    task: TaskColumns, cells: dict[str, Sequence[str]], row_names: Sequence[str] | None = None
) -> InterpretedTask:
    """Read ``task`` from ``cells`` (column -> one text value per row)."""
    columns = task.column_names
    missing = [c for c in columns if c not in cells]
    if missing:
        raise LabelError(
            f"task {task.name!r}: column(s) {missing} not found; available: {sorted(cells)}"
        )
    target = task.task_target
    if target is TaskTarget.MULTILABEL_CLASSIFICATION:
        return _multilabel(task, cells, row_names)
    if len(columns) != 1:
        raise LabelError(f"task {task.name!r}: a {target.short} task reads one column: {columns}")
    values = [str(v).strip() for v in cells[columns[0]]]
    for i, v in enumerate(values):
        if not v:
            raise LabelError(f"{_where(task, i, row_names)}: label is empty")
    if task.classes is not None:
        names = list(task.classes)
        if target is TaskTarget.BINARY_CLASSIFICATION and len(names) != 2:
            raise LabelError(
                f"task {task.name!r}: a binary task needs exactly two classes, got {names}"
            )
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise LabelError(
                f"task {task.name!r}: values {unknown[:5]} are not among classes {names}"
            )
        index = {n: k for k, n in enumerate(names)}
        labels = dict(enumerate(names))
        return _single(task, target, labels, [index[v] for v in values])
    if all(_INT.fullmatch(v) for v in values):
        keys = sorted({int(v) for v in values})
        if target is TaskTarget.BINARY_CLASSIFICATION:
            if not set(keys) <= {0, 1}:
                raise LabelError(f"task {task.name!r}: binary labels must be 0 or 1, got {keys}")
            labels = {0: "negative", 1: "positive"}
        else:
            labels = {k: str(k) for k in keys}
        return _single(task, target, labels, [int(v) for v in values])
    names = sorted(set(values), key=natural_key)
    if target is TaskTarget.ORDINAL_REGRESSION:
        raise LabelError(
            f"task {task.name!r}: ordinal labels given as names {names[:6]} need their order; "
            "pass classes=(lowest, ..., highest) (--classes a,b,c)"
        )
    if target is TaskTarget.BINARY_CLASSIFICATION and len(names) != 2:
        raise LabelError(
            f"task {task.name!r}: a binary task needs exactly two label names, got {names}; "
            "pass classes=(negative, positive)"
        )
    index = {n: k for k, n in enumerate(names)}
    return _single(task, target, dict(enumerate(names)), [index[v] for v in values])


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
    raise LabelError(f"{where}: multi-label cell {text!r} is not 0/1 (or true/false)")


def _multilabel(
    task: TaskColumns, cells: dict[str, Sequence[str]], row_names: Sequence[str] | None
) -> InterpretedTask:
    target = TaskTarget.MULTILABEL_CLASSIFICATION
    columns = task.column_names
    if len(columns) > 1:
        names = list(task.classes) if task.classes is not None else list(columns)
        if len(names) != len(columns):
            raise LabelError(
                f"task {task.name!r}: {len(columns)} columns but {len(names)} class names"
            )
        n = len(cells[columns[0]])
        values = [
            [_flag(cells[c][i], f"{_where(task, i, row_names)}, column {c!r}") for c in columns]
            for i in range(n)
        ]
        return InterpretedTask(task.name, target, dict(enumerate(names)), values)
    sep = task.separator
    rows = [[p.strip() for p in str(v).split(sep) if p.strip()] for v in cells[columns[0]]]
    seen = sorted({p for r in rows for p in r}, key=natural_key)
    names = list(task.classes) if task.classes is not None else seen
    unknown = sorted(set(seen) - set(names))
    if unknown:
        raise LabelError(f"task {task.name!r}: label names {unknown[:5]} not among classes {names}")
    if not names:
        raise LabelError(f"task {task.name!r}: no label names found; pass classes=(...)")
    position = {n: k for k, n in enumerate(names)}
    values = []
    for r in rows:
        hot = [0] * len(names)
        for p in r:
            hot[position[p]] = 1
        values.append(hot)
    return InterpretedTask(task.name, target, dict(enumerate(names)), values)
