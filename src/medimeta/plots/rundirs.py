"""Run folders (``medimeta train``, ``fewshot`` and the cells of ``benchmark``) as the report and
the plots see them: the run record (:mod:`medimeta.runs.record`), the epoch log of a
supervised run and the prediction files.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from medimeta.errors import FormatError
from medimeta.runs.record import (
    TRAINING_LOG,
    RunRecord,
    find_run_folders,
    predictions_file,
)
from medimeta.runs.record import (
    read_run as read_record,
)


@dataclass(frozen=True)
class RunFolder:
    """One run folder and its record."""

    path: Path
    record: RunRecord

    @property
    def kind(self) -> str:
        return self.record.kind

    @property
    def title(self) -> str:
        return self.record.title

    def predictions(self) -> list[tuple[str, Path]]:
        """``(split, path)`` of the prediction files present, val before test."""
        names = ("val", "test") if self.kind == "supervised" else ("query",)
        return [
            (s, predictions_file(self.path, s))
            for s in names
            if predictions_file(self.path, s).is_file()
        ]


def read_run(path: str | Path) -> RunFolder:
    """The run in folder ``path`` (or the folder of a record file)."""
    path = Path(path)
    return RunFolder(path.parent if path.is_file() else path, read_record(path))


def find_runs(paths: Iterable[str | Path]) -> list[Path]:
    """Run folders at or below each of ``paths``, sorted per path, each once."""
    return find_run_folders(list(paths))


def _number(text: str) -> float | None:
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_log(folder: str | Path) -> list[dict[str, float | None]]:
    """Rows of a run's ``log.csv`` as numbers (empty cells and NaN as None)."""
    path = Path(folder) / TRAINING_LOG
    if not path.is_file():
        raise FormatError(path, "training log is missing", fix="pass a `medimeta train` folder")
    with open(path, encoding="utf-8", newline="") as fh:
        rows = [{k: _number(v or "") for k, v in row.items()} for row in csv.DictReader(fh)]
    if not rows or "epoch" not in rows[0] or "train_loss" not in rows[0]:
        raise FormatError(path, "not a training log", expected="columns epoch, train_loss, ...")
    return rows


def load_records(items: Sequence[str | Path | RunRecord]) -> list[RunRecord]:
    """Few-shot run records from records, record files or run folders."""
    out = []
    for item in items:
        record = item if isinstance(item, RunRecord) else read_record(item)
        if record.kind != "fewshot":
            raise FormatError(
                record.source or str(item),
                "not a few-shot run",
                key="kind",
                expected="fewshot",
                actual=record.kind,
            )
        out.append(record)
    return out
