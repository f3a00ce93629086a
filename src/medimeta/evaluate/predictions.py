"""Prediction files: per-sample scores that can be re-scored and joined with annotations.

A prediction file is a CSV (no pickle) whose first two lines are comments::

    # medimeta-predictions 1
    # {"target": "BINARY_CLASSIFICATION", "dataset_id": "bus", "task_name": ..., ...}

followed by a header and one row per sample: ``index`` (global sample index, the row of
images.hdf5 and annotations.csv), ``episode`` (few-shot files only), the label (``label``,
or ``label_<c>`` per label of a multi-label task) and the scores (``score`` for binary
tasks: P(positive); else ``score_<c>`` per class, softmax or sigmoid outputs). Labels are
class indices 0..C-1 (ordinal keys in rank order, listed in ``class_keys``).
``pandas.read_csv(path, comment="#")`` reads the table.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medimeta.catalog.tasks import TaskTarget
from medimeta.errors import ShapeError
from medimeta.evaluate.ci import mean_ci
from medimeta.evaluate.compute import compute_metrics, episode_metrics
from medimeta.evaluate.prediction_reader import MAGIC, read_prediction_file
from medimeta.safeio import write_text


@dataclass
class Predictions:
    """Scores of one task on a set of samples (optionally grouped into few-shot episodes)."""

    indices: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    target: str
    dataset_id: str = ""
    task_name: str = ""
    split: str = ""
    class_names: list[str] = field(default_factory=list)
    class_keys: list[int] = field(default_factory=list)
    episodes: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.target = TaskTarget.from_value(self.target).value
        self.indices = np.asarray(self.indices, dtype=np.int64).reshape(-1)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        scores = np.asarray(self.scores, dtype=np.float64)
        if scores.ndim == 1:
            scores = scores[:, None]
        if (
            self.target == TaskTarget.BINARY_CLASSIFICATION
            and scores.ndim == 2
            and scores.shape[1] == 2
        ):
            scores = scores[:, 1:]
        self.scores = scores
        if self.target != TaskTarget.MULTILABEL_CLASSIFICATION:
            self.labels = self.labels.reshape(-1)
        n = self.indices.size
        if self.labels.shape[0] != n or self.scores.shape[0] != n:
            raise ShapeError(
                f"predictions need one row per sample: {n} indices, "
                f"{self.labels.shape[0]} labels, {self.scores.shape[0]} score rows"
            )
        if self.episodes is not None:
            self.episodes = np.asarray(self.episodes, dtype=np.int64).reshape(-1)
            if self.episodes.size != n:
                raise ShapeError(f"{self.episodes.size} episode numbers for {n} rows")

    def __len__(self) -> int:
        return int(self.indices.size)

    @property
    def score_columns(self) -> list[str]:
        if self.target == TaskTarget.BINARY_CLASSIFICATION:
            return ["score"]
        return [f"score_{c}" for c in range(self.scores.shape[1])]

    @property
    def label_columns(self) -> list[str]:
        if self.target == TaskTarget.MULTILABEL_CLASSIFICATION:
            return [f"label_{c}" for c in range(self.labels.shape[1])]
        return ["label"]

    def meta(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "dataset_id": self.dataset_id,
            "task_name": self.task_name,
            "split": self.split,
            "class_names": list(self.class_names),
            "class_keys": [int(k) for k in self.class_keys],
            "info": self.info,
        }

    def subset(self, mask: np.ndarray) -> Predictions:
        """The rows selected by a boolean mask or an index array."""
        return Predictions(
            self.indices[mask],
            self.labels[mask],
            self.scores[mask],
            self.target,
            self.dataset_id,
            self.task_name,
            self.split,
            self.class_names,
            self.class_keys,
            None if self.episodes is None else self.episodes[mask],
            self.info,
        )

    def metric_scores(self) -> np.ndarray:
        """Scores in the shape ``compute_metrics`` expects (binary: (N,))."""
        return self.scores[:, 0] if self.target == TaskTarget.BINARY_CLASSIFICATION else self.scores


def concat_predictions(parts: Sequence[Predictions]) -> Predictions:
    """Rows of several prediction sets of the same task, in the given order."""
    if not parts:
        raise ShapeError("no predictions to concatenate")
    first = parts[0]
    episodes = None
    if all(p.episodes is not None for p in parts):
        episodes = np.concatenate([p.episodes for p in parts if p.episodes is not None])
    return Predictions(
        np.concatenate([p.indices for p in parts]),
        np.concatenate([p.labels for p in parts]),
        np.concatenate([p.scores for p in parts]),
        first.target,
        first.dataset_id,
        first.task_name,
        first.split,
        first.class_names,
        first.class_keys,
        episodes,
        first.info,
    )


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_predictions(path: str | os.PathLike[str], preds: Predictions) -> Path:
    """Write ``preds`` as a prediction CSV (atomically)."""
    path = Path(path)
    cols = ["index"] + (["episode"] if preds.episodes is not None else [])
    cols += preds.label_columns + preds.score_columns
    labels = preds.labels if preds.labels.ndim == 2 else preds.labels[:, None]
    buf = io.StringIO()
    buf.write(MAGIC + "\n")
    buf.write("# " + json.dumps(preds.meta(), default=_json_default, allow_nan=True) + "\n")
    buf.write(",".join(cols) + "\n")
    for i in range(len(preds)):
        row = [str(int(preds.indices[i]))]
        if preds.episodes is not None:
            row.append(str(int(preds.episodes[i])))
        row += [str(int(v)) for v in labels[i]]
        row += [repr(float(v)) for v in preds.scores[i]]
        buf.write(",".join(row) + "\n")
    return write_text(path, buf.getvalue())


def read_predictions(path: str | os.PathLike[str], *, dedupe: bool = False) -> Predictions:
    """Read a prediction CSV written by :func:`write_predictions`, every line checked
    (:mod:`medimeta.evaluate.prediction_reader`); ``dedupe`` drops rows repeated verbatim
    (with a warning naming them) instead of refusing the file."""
    t = read_prediction_file(path, dedupe=dedupe)
    meta = t.meta
    return Predictions(
        t.indices,
        t.labels,
        t.scores,
        meta["target"],
        meta.get("dataset_id", ""),
        meta.get("task_name", ""),
        meta.get("split", ""),
        list(meta.get("class_names", [])),
        list(meta.get("class_keys", [])),
        t.episodes,
        dict(meta.get("info", {})),
    )


def score_predictions(
    preds: Predictions, *, mode: str = "default", confidence: float = 0.95
) -> dict[str, Any]:
    """Metrics of a prediction set.

    Without episodes: ``{"n": N, "metrics": {...}}``. With episodes: metrics per episode and
    for each metric the mean over episodes with its Student-t ``confidence`` half-width
    (``{"n_episodes", "episodes": [...], "summary": {metric: {"mean", "ci", "n"}}}``).
    """
    if preds.episodes is None:
        metrics = compute_metrics(preds.target, preds.labels, preds.metric_scores(), mode=mode)
        return {"n": len(preds), "mode": mode, "metrics": metrics}
    per_episode: list[dict[str, Any]] = []
    for ep in np.unique(preds.episodes):
        part = preds.subset(preds.episodes == ep)
        if mode == "default":  # as the run scored it: per-class metrics by class key
            metrics = episode_metrics(
                part.target, part.labels, part.metric_scores(), part.class_keys
            )
        else:
            metrics = compute_metrics(part.target, part.labels, part.metric_scores(), mode=mode)
        per_episode.append({"episode": int(ep), "n": len(part), "metrics": metrics})
    return {
        "n_episodes": len(per_episode),
        "mode": mode,
        "episodes": per_episode,
        "summary": summarize_episodes([e["metrics"] for e in per_episode], confidence),
    }


def summarize_episodes(
    rows: Sequence[dict[str, float]], confidence: float = 0.95
) -> dict[str, dict[str, float]]:
    """Per metric: mean over episodes, Student-t half-width and the count of defined values."""
    import warnings

    from medimeta.evaluate.metrics import UndefinedMetricWarning

    names = sorted({k for row in rows for k in row})
    out: dict[str, dict[str, float]] = {}
    for name in names:
        values = np.array([row.get(name, np.nan) for row in rows], dtype=np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            mean, half = mean_ci(values, confidence)
        out[name] = {"mean": mean, "ci": half, "n": int(np.sum(~np.isnan(values)))}
    return out
