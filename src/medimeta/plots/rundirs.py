"""Run folders written by ``medimeta train`` and ``medimeta fewshot``: finding and reading them.

A supervised run folder holds ``result.json`` (``kind: supervised``), ``log.csv`` (one row per
epoch: ``epoch``, ``lr``, ``train_loss``, ``val_loss``, ``val_<metric>``, ``best_epoch``,
``seconds``) and ``predictions_<split>.csv``; a few-shot run folder holds ``results.json``
(``kind: fewshot``, ``summary`` of mean ± CI per metric, ``per_episode`` metrics) and
``predictions_query.csv``. See :mod:`medimeta.train.supervised` and
:mod:`medimeta.train.fewshot.runner`.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medimeta.errors import FormatError

SUPERVISED_FILE = "result.json"
FEWSHOT_FILE = "results.json"
LOG_FILE = "log.csv"


@dataclass(frozen=True)
class RunFolder:
    """One run folder and its result record (``kind`` is ``supervised`` or ``fewshot``)."""

    path: Path
    kind: str
    record: dict[str, Any]

    @property
    def title(self) -> str:
        r = self.record
        if self.kind == "fewshot":
            t = r.get("target", {})
            return f"{r.get('method', '?')} on {t.get('dataset_id', '?')}:{t.get('task', '?')}"
        data = r.get("data", {})
        backbone = r.get("backbone", {}).get("name", "?")
        target = f"{data.get('dataset_id', '?')}:{data.get('task', '?')}"
        return f"{target} ({backbone}, seed {r.get('seed', '?')})"

    def predictions(self) -> list[tuple[str, Path]]:
        """``(split, path)`` of the prediction files present, val before test."""
        names = ("val", "test") if self.kind == "supervised" else ("query",)
        return [
            (s, self.path / f"predictions_{s}.csv")
            for s in names
            if (self.path / f"predictions_{s}.csv").is_file()
        ]


def _read_record(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(path, f"cannot read the run record ({exc})") from None
    if not isinstance(data, dict):
        raise FormatError(path, "a run record must be a JSON object", actual=type(data).__name__)
    return data


def read_run(path: str | Path) -> RunFolder:
    """The run in folder ``path`` (or the folder of a ``result.json``/``results.json``)."""
    path = Path(path)
    folder = path.parent if path.is_file() else path
    for name, kind in ((SUPERVISED_FILE, "supervised"), (FEWSHOT_FILE, "fewshot")):
        file = folder / name
        if file.is_file():
            record = _read_record(file)
            return RunFolder(folder, str(record.get("kind", kind)), record)
    raise FormatError(
        folder,
        "not a run folder",
        expected=f"{SUPERVISED_FILE} (medimeta train) or {FEWSHOT_FILE} (medimeta fewshot)",
        actual="neither",
        fix="pass a folder written by `medimeta train` or `medimeta fewshot`",
    )


def find_runs(paths: Iterable[str | Path]) -> list[Path]:
    """Run folders at or below each of ``paths``, sorted per path, each once."""
    found: list[Path] = []
    for base in map(Path, paths):
        if not base.exists():
            raise FormatError(base, "run folder does not exist")
        if base.is_file() or (base / SUPERVISED_FILE).is_file() or (base / FEWSHOT_FILE).is_file():
            candidates = [base.parent if base.is_file() else base]
        else:
            files = sorted(base.rglob(SUPERVISED_FILE)) + sorted(base.rglob(FEWSHOT_FILE))
            candidates = sorted({f.parent for f in files})
        found += [c for c in candidates if c not in found]
    return found


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
    path = Path(folder) / LOG_FILE
    if not path.is_file():
        raise FormatError(path, "training log is missing", fix="pass a `medimeta train` folder")
    with open(path, encoding="utf-8", newline="") as fh:
        rows = [{k: _number(v or "") for k, v in row.items()} for row in csv.DictReader(fh)]
    if not rows or "epoch" not in rows[0] or "train_loss" not in rows[0]:
        raise FormatError(path, "not a training log", expected="columns epoch, train_loss, ...")
    return rows


def load_records(items: Sequence[str | Path | dict[str, Any]]) -> list[dict[str, Any]]:
    """Few-shot result records from dicts, ``results.json`` files or their run folders."""
    out = []
    for item in items:
        if isinstance(item, dict):
            out.append(item)
            continue
        run = read_run(item)
        if run.kind != "fewshot":
            raise FormatError(
                run.path, "not a few-shot run", key="kind", expected="fewshot", actual=run.kind
            )
        out.append(run.record)
    return out
