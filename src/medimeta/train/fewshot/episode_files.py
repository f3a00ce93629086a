"""The per-episode result files of a few-shot run: written sealed, trusted only when checked.

A file (:func:`medimeta.runs.record.episode_file`) holds the run hash, the episode's
numbers, its query predictions and the metrics, and ``sha256`` over all of it
(:mod:`medimeta.runs.integrity`). :func:`read_result` uses a file only when it is readable
JSON of this run, matches its digest, is about this episode (its query indices and labels),
holds finite scores of the right shape and metrics equal to those recomputed from its
predictions. Anything else (a truncated file, an edited AUROC, a file of other settings or
of an earlier version) is a problem: the resumed run computes the episode again and says so
in one :class:`~medimeta.runs.integrity.DamagedResultWarning` line.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from medimeta.catalog.tasks import TaskTarget
from medimeta.episodes import Episode
from medimeta.errors import FormatError
from medimeta.evaluate.compute import episode_metrics
from medimeta.runs.files import jsonable, read_json_object, write_json
from medimeta.runs.integrity import DamagedResultWarning, seal, seal_problem


def write_result(path: Path, content: dict[str, Any]) -> Path:
    """Write one episode's result file, sealed with its sha256."""
    return write_json(path, seal(jsonable(content)))


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:  # NaN is written as null
        return (a is None or not math.isfinite(a)) and (b is None or not math.isfinite(b))
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)


def _scores(data: dict[str, Any], ep: Episode) -> np.ndarray | str:
    p = data.get("predictions")
    if not isinstance(p, dict):
        return "it holds no predictions"
    try:
        indices = np.asarray(p["indices"], dtype=np.int64)
        labels = np.asarray(p["labels"], dtype=np.int64)
        scores = np.asarray(p["scores"], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        return f"its predictions are not numbers ({exc})"
    if not (np.array_equal(indices, ep.query_indices) and np.array_equal(labels, ep.query_labels)):
        return "its query indices or labels are not those of the episode"
    width = 1 if ep.task_target is TaskTarget.BINARY_CLASSIFICATION else ep.n_way
    rows = scores if scores.ndim == 2 else scores.reshape(-1, 1)
    if rows.shape != (indices.size, width) or not np.isfinite(rows).all():
        return f"its scores are not {indices.size} x {width} finite numbers"
    return scores


def result_problem(data: dict[str, Any], run_hash: str, ep: Episode) -> str | None:
    """Why ``data`` is not a usable result of episode ``ep`` of run ``run_hash`` (None: it is)."""
    if data.get("run") != run_hash:
        return "it belongs to a run with other settings"
    problem = seal_problem(data)
    if problem is not None:
        return problem
    if data.get("episode") != ep.index:
        return f"it is the result of episode {data.get('episode')!r}"
    scores = _scores(data, ep)
    if isinstance(scores, str):
        return scores
    stored = data.get("metrics")
    fresh = episode_metrics(ep.task_target.value, ep.query_labels, scores, ep.class_keys)
    if not isinstance(stored, dict) or set(stored) != set(fresh):
        return "its metrics are not the task's metric set"
    wrong = [k for k in sorted(fresh) if not _same(stored[k], fresh[k])]
    if wrong:
        k = wrong[0]
        return f"its {k} {stored[k]!r} is not the {fresh[k]!r} of its own predictions"
    return None


def read_result(
    path: Path, run_hash: str, ep: Episode, *, notice: bool = True
) -> dict[str, Any] | None:
    """The checked result of ``ep`` in ``path``; None when absent or not usable (with a
    warning naming the file and the reason when ``notice``)."""
    if not path.is_file():
        return None
    problem: str | None
    try:
        data = read_json_object(path)
    except FormatError as exc:
        problem = str(exc).split(" | ")[0].split(": ", 1)[-1]
    else:
        if data.get("run") != run_hash:
            return None  # a result of other settings: not damaged, just not this run's
        problem = result_problem(data, run_hash, ep)
        if problem is None:
            return data
    if notice:
        warnings.warn(
            f"{path}: episode result not used, it is computed again: {problem}",
            DamagedResultWarning,
            stacklevel=2,
        )
    return None


def checked_result(path: Path, run_hash: str, ep: Episode) -> dict[str, Any]:
    """The checked result of ``ep`` (FormatError when it is not usable: rerun to recompute)."""
    data = read_result(path, run_hash, ep, notice=False)
    if data is None:
        try:
            problem = result_problem(read_json_object(path), run_hash, ep)
        except FormatError as exc:
            problem = str(exc)
        raise FormatError(
            path,
            f"episode result not usable: {problem}",
            fix="run the same command again: damaged episode results are computed again",
        )
    return data
