"""Merging run records into the paper's tables: ``medimeta results merge`` and the tables of a
benchmark folder (:mod:`medimeta.runs.tables` draws up the tables themselves).

The tables of a benchmark folder are always the merge of every finished cell in it, in a
stable order: a second ``medimeta benchmark`` into the same folder adds its rows, and merging
an unchanged folder again writes the same bytes.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from medimeta.bench.cells import CELLS_DIR
from medimeta.errors import FormatError
from medimeta.logs import Log, emit, plural
from medimeta.runs.integrity import DamagedResultWarning
from medimeta.runs.model import RunRecord
from medimeta.runs.record import (
    find_run_folders,
    is_run_folder,
    merged_file,
    read_run,
    run_problems,
)
from medimeta.runs.tables import SUFFIXES, merge_tables, write_merged
from medimeta.train.fewshot.registry import all_methods


def row_order() -> list[str]:
    """Training types in the order of the paper's tables: supervised, then the registry's."""
    return ["Supervised", *(m.paper_name for m in all_methods())]


def find_records(folders: Iterable[str | Path]) -> list[RunRecord]:
    """The finished few-shot and supervised run records at or below ``folders``; a record
    that was damaged or edited, or whose listed files changed, is left out with one warning
    line (rerunning the command that wrote it recomputes it)."""
    records = []
    for folder in find_run_folders(list(folders)):
        try:
            record = read_run(folder)
        except FormatError as exc:
            if not is_run_folder(folder):
                raise  # not a run at all: the error says what to pass
            _left_out(folder, str(exc))
            continue
        changed = run_problems(folder, record)
        if changed:
            _left_out(folder, f"files changed since it was written: {', '.join(changed[:5])}")
            continue
        records.append(record)
    return [r for r in records if r.kind in ("fewshot", "supervised") and r.status == "done"]


def _left_out(folder: Path, problem: str) -> None:
    warnings.warn(
        f"{folder}: run left out of the merged tables: {problem}; fix: rerun the command "
        "that wrote it (a benchmark recomputes its cells)",
        DamagedResultWarning,
        stacklevel=3,
    )


def merge_results(
    folders: Iterable[str | Path],
    out: str | Path | Iterable[str | Path] | None = None,
    *,
    metric: str = "auroc",
) -> dict[str, Any]:
    """Find the records below ``folders``, merge them and write the tables to each file of
    ``out`` (the format by suffix)."""
    folders = list(folders)
    records = find_records(folders)
    if not records:
        raise FormatError(
            ", ".join(str(f) for f in folders),
            "no finished run records",
            fix="pass benchmark, fewshot or train output folders",
        )
    merged = merge_tables(records, metric, row_order())
    targets = [] if out is None else [out] if isinstance(out, str | Path) else list(out)
    for path in targets:
        write_merged(merged, path, records)
    merged["records"] = len(records)
    return merged


def merge_folder(out: Path, log: Log | None = None) -> dict[str, Any] | None:
    """The tables and the intervals figure of every finished cell of the benchmark folder
    ``out`` (``OUT/results.{md,json,csv,tex,png}``); None when no cell has finished."""
    cells = out / CELLS_DIR
    records = find_records([cells]) if cells.is_dir() else []
    if not records:
        return None
    merged = merge_tables(records, "auroc", row_order())
    for suffix in SUFFIXES:
        write_merged(merged, merged_file(out, suffix), records)
    figure = save_figure(records, merged_file(out, ".png"))
    written = "/".join(SUFFIXES) + (" and the figure" if figure else "")
    emit(log)(f"merged {plural(len(records), 'record')} into {merged_file(out, '')}{written}")
    return merged


def save_figure(records: list[RunRecord], path: Path) -> Path | None:
    """The few-shot intervals figure of the records (None when none is few-shot)."""
    from medimeta.plots import fewshot_intervals
    from medimeta.plots import save_figure as save

    fewshot = [r for r in records if r.kind == "fewshot"]
    if not fewshot:
        return None
    return Path(save(fewshot_intervals(fewshot), path))
