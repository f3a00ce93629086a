"""The one validated reader of prediction files (``medimeta score``, ``evaluate``, ``plot roc``).

A prediction file is trusted only as far as it is checked (the layout is described in
:mod:`medimeta.evaluate.predictions`):

* line 1 is the magic line, line 2 a JSON object with a known ``target`` and, when given,
  ``class_names`` (strings) and ``class_keys`` (integers) of one length;
* line 3, the header, is exactly ``index``, ``episode`` (few-shot files), the label columns
  and the score columns of the task: ``score`` for a binary task, else ``score_0`` ..
  ``score_<C-1>`` with C the number of ``class_names`` (without names: the score columns
  present, which must run from ``score_0`` without gaps); multi-label files have one
  ``label_<c>`` per score column;
* every row has one field per column: sample index and episode integers >= 0, labels in
  their range (``0..C-1``; 0/1 for binary and multi-label), finite scores;
* a sample (an index, or an (episode, index) pair) appears once. A row repeated verbatim is
  an error naming both lines unless ``dedupe`` (``--dedupe``), which drops it and says so;
  the same sample with another label or other scores is an error either way.

Errors are :class:`~medimeta.errors.FormatError` lines naming the file, the line, the column,
the expected and the actual value; nothing is written.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medimeta.catalog.tasks import TaskTarget
from medimeta.errors import FormatError

MAGIC = "# medimeta-predictions 1"
_INT = re.compile(r"^[0-9]+$")
_FIX = "write the file with medimeta.evaluate.write_predictions, or repair it by hand"


class DuplicateRowsWarning(UserWarning):
    """``--dedupe`` dropped rows that repeat an earlier row verbatim."""


def _fail(path: Path, where: str, problem: str, **kw: Any) -> FormatError:
    return FormatError(path, f"{where}: {problem}", fix=kw.pop("fix", _FIX), **kw)


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise FormatError(path, "prediction file not found", fix="pass a predictions_*.csv file")
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(path, f"cannot be read as UTF-8 text ({exc})", fix=_FIX) from None


def _str_list(path: Path, meta: dict[str, Any], key: str) -> list[Any]:
    value = meta.get(key, [])
    kind = str if key == "class_names" else int
    if not isinstance(value, list) or not all(
        isinstance(v, kind) and not isinstance(v, bool) for v in value
    ):
        raise _fail(path, "line 2", f"{key} is not a list of {kind.__name__}s", key=key,
                    expected=f"[{kind.__name__}, ...]", actual=value)  # fmt: skip
    return value


def read_meta(path: Path, lines: list[str]) -> dict[str, Any]:
    """The checked JSON header (line 2) of a prediction file's ``lines``."""
    first = lines[0] if lines else ""
    second = lines[1] if len(lines) > 1 else ""
    if first != MAGIC or not second.startswith("# "):
        raise FormatError(
            path,
            "not a medimeta prediction file",
            expected=f"first line {MAGIC!r}, second line '# {{json}}'",
            actual=first[:60],
        )
    try:
        meta = json.loads(second[2:])
    except json.JSONDecodeError as exc:
        raise _fail(path, "line 2", f"header is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise _fail(path, "line 2", "header is not a JSON object", actual=type(meta).__name__)
    targets = [t.value for t in TaskTarget]
    if meta.get("target") not in targets:
        raise _fail(path, "line 2", "header names no known task target", key="target",
                    expected=targets, actual=meta.get("target"))  # fmt: skip
    names, keys = _str_list(path, meta, "class_names"), _str_list(path, meta, "class_keys")
    if names and keys and len(names) != len(keys):
        raise _fail(path, "line 2", "class_names and class_keys differ in length",
                    key="class_keys", expected=len(names), actual=len(keys))  # fmt: skip
    if not isinstance(meta.get("info", {}), dict):
        raise _fail(path, "line 2", "info is not an object", key="info", actual=meta["info"])
    for key in ("dataset_id", "task_name", "split"):
        if not isinstance(meta.get(key, ""), str):
            raise _fail(path, "line 2", f"{key} is not a string", key=key, actual=meta[key])
    return meta


def expected_header(meta: dict[str, Any], header: list[str]) -> list[str]:
    """The columns a file with this header block must have (``header``: the actual ones,
    used for the class count when the file names no classes)."""
    target = meta["target"]
    names = meta.get("class_names") or []
    if target == TaskTarget.BINARY_CLASSIFICATION:
        scores = ["score"]
    else:
        count = len(names) or sum(1 for c in header if re.fullmatch(r"score_[0-9]+", c))
        scores = [f"score_{c}" for c in range(max(count, 2))]  # two classes at least
    labels = ["label"]
    if target == TaskTarget.MULTILABEL_CLASSIFICATION:
        labels = [f"label_{c}" for c in range(len(scores))]
    return ["index", *(["episode"] if "episode" in header else []), *labels, *scores]


def _header(path: Path, meta: dict[str, Any], line: str) -> list[str]:
    header = [c.strip() for c in line.split(",")]
    expected = expected_header(meta, header)
    if header != expected:
        names = meta.get("class_names") or []
        why = f"the columns of a {meta['target']} file"
        why += f" with {len(names)} class_names" if names else ""
        raise _fail(path, "line 3", f"header is not {why}", expected=",".join(expected),
                    actual=",".join(header))  # fmt: skip
    return header


class _Rows:
    """Typed columns of the data rows, each checked where it is read."""

    def __init__(self, path: Path, meta: dict[str, Any], header: list[str]) -> None:
        self.path, self.header = path, header
        self.labels = [c for c in header if c == "label" or c.startswith("label_")]
        self.scores = [c for c in header if c == "score" or c.startswith("score_")]
        binary = meta["target"] == TaskTarget.BINARY_CLASSIFICATION
        multilabel = meta["target"] == TaskTarget.MULTILABEL_CLASSIFICATION
        self.top = 1 if binary or multilabel else max(len(self.scores) - 1, 0)

    def _int(self, number: int, column: str, text: str, top: int | None = None) -> int:
        value = text.strip()
        if not _INT.match(value) or (top is not None and int(value) > top):
            want = "an integer >= 0" if top is None else f"an integer in 0..{top}"
            raise _fail(self.path, f"line {number}", f"{column} is not {want}", key=column,
                        expected=want, actual=text)  # fmt: skip
        return int(value)

    def _score(self, number: int, column: str, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise _fail(self.path, f"line {number}", f"{column} is not a finite number",
                        key=column, expected="a finite number", actual=text)  # fmt: skip
        return value

    def parse(self, number: int, line: str) -> tuple[int, ...] | tuple[Any, ...]:
        fields = line.split(",")
        if len(fields) != len(self.header):
            raise _fail(self.path, f"line {number}", "wrong number of fields",
                        expected=len(self.header), actual=len(fields))  # fmt: skip
        values: list[Any] = []
        for column, text in zip(self.header, fields, strict=True):
            if column in ("index", "episode"):
                values.append(self._int(number, column, text))
            elif column in self.labels:
                values.append(self._int(number, column, text, self.top))
            else:
                values.append(self._score(number, column, text))
        return tuple(values)


def _sample(header: list[str], row: tuple[Any, ...]) -> tuple[int, ...]:
    return (row[0], row[1]) if "episode" in header else (row[0],)


def _unique(path: Path, header: list[str], parsed: list[tuple[int, tuple[Any, ...]]],
            dedupe: bool) -> list[tuple[Any, ...]]:  # fmt: skip
    seen: dict[tuple[int, ...], tuple[int, tuple[Any, ...]]] = {}
    kept, dropped = [], []
    for number, row in parsed:
        key = _sample(header, row)
        what = "sample index" if len(key) == 1 else "(episode, sample index)"
        shown = key[0] if len(key) == 1 else key
        if key in seen:
            first, earlier = seen[key]
            if earlier != row:
                raise _fail(path, f"line {number}", f"{what} {shown} again, with another label "
                            f"or other scores than line {first}; a sample has one prediction",
                            fix="keep the one row that is right")  # fmt: skip
            if not dedupe:
                raise _fail(path, f"line {number}", f"repeats line {first} ({what} {shown}); "
                            "counting it twice would double its weight",
                            fix="remove the repeated line, or pass --dedupe to drop "
                            "rows repeated verbatim")  # fmt: skip
            dropped.append(f"{number} (= {first})")
            continue
        seen[key] = (number, row)
        kept.append(row)
    if dropped:
        warnings.warn(
            f"{path}: --dedupe dropped {len(dropped)} repeated rows, lines "
            f"{', '.join(dropped[:10])}{' ...' if len(dropped) > 10 else ''}",
            DuplicateRowsWarning,
            stacklevel=4,
        )
    return kept


@dataclass(frozen=True)
class PredictionTable:
    """The checked content of a prediction file (what a ``Predictions`` is made of)."""

    path: Path
    meta: dict[str, Any]
    indices: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    episodes: np.ndarray | None


def read_prediction_file(path: str | os.PathLike[str], *, dedupe: bool = False) -> PredictionTable:
    """The checked table of a prediction file (module docstring)."""
    path = Path(path)
    lines = _lines(path)
    meta = read_meta(path, lines)
    if len(lines) < 3:
        raise _fail(path, "line 3", "no header line", expected="index,label,...,score...")
    header = _header(path, meta, lines[2])
    rows = _Rows(path, meta, header)
    parsed = [(n, rows.parse(n, t)) for n, t in enumerate(lines[3:], 4) if t.strip()]
    if not parsed:
        raise _fail(path, "line 4", "no prediction rows", expected="one row per sample")
    table = np.array(_unique(path, header, parsed, dedupe), dtype=object)
    col = {c: i for i, c in enumerate(header)}
    labels = table[:, [col[c] for c in rows.labels]].astype(np.int64)
    return PredictionTable(
        path,
        meta,
        table[:, 0].astype(np.int64),
        labels[:, 0] if rows.labels == ["label"] else labels,
        table[:, [col[c] for c in rows.scores]].astype(np.float64),
        table[:, 1].astype(np.int64) if "episode" in col else None,
    )
