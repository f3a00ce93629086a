"""``compute_metrics``: the metric set of a task target, in our definition or a peer's.

Modes (full definitions in ``docs/metrics.md``):

* ``"default"``: the toolkit's metric set per target (AUROC, accuracy, balanced accuracy,
  F1, AP/mAP, label-wise and exact-match accuracy, ordinal MAE and quadratic kappa).
* ``"medmnist"``: ``medmnist.Evaluator`` 3.0.2 (AUC and ACC only).
* ``"medfm"``: MedFMC's ``AUC_multiclass``/``AUC_multilabel``, MMClassification's ``mAP`` and
  top-1 accuracy, reported in percent like MedFM.

In every mode an undefined per-class AUROC is NaN and skipped in the mean (MedMNIST would
raise, MedFM would repeat the previous class's value); see :mod:`medimeta.evaluate.metrics`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

import medimeta.evaluate.metrics as m
from medimeta.catalog.tasks import TaskTarget
from medimeta.errors import ShapeError, check_choice
from medimeta.evaluate.calibration import calibration_metrics, per_class_prf

MODES: tuple[str, ...] = ("default", "medmnist", "medfm")


def _prepare(
    target: TaskTarget, y_true: ArrayLike, scores: ArrayLike
) -> tuple[NDArray, NDArray[np.float64]]:
    """Validate shapes; binary scores become the positive-class column (N,)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y_true)
    if target is TaskTarget.BINARY_CLASSIFICATION:
        if s.ndim == 2 and s.shape[1] == 2:
            s = s[:, -1]  # two columns: the last one is P(positive), as in MedMNIST
        s = m._scores("scores", s, 1)
        y = m._binary("y_true", m._vector("y_true", y)).astype(np.int64)
    elif target is TaskTarget.MULTILABEL_CLASSIFICATION:
        s = m._scores("scores", s, 2)
        y = m._binary("y_true", y).astype(np.int64)
        if y.shape != s.shape:
            raise ShapeError(f"multi-label y_true {y.shape} and scores {s.shape} must match")
    else:
        s = m._scores("scores", s, 2)
        if s.shape[1] < 2:
            raise ShapeError(f"{target} scores need one column per class (C >= 2); got {s.shape}")
        y = m.check_indices(m._vector("y_true", y), s.shape[1])
    m._same_length(y, s)
    if y.shape[0] == 0:
        raise ShapeError("cannot compute metrics on zero samples")
    return y, s


def compute_metrics(
    target: object,
    y_true: ArrayLike,
    scores: ArrayLike,
    *,
    mode: str = "default",
    threshold: float = 0.5,
    per_class: bool = False,
) -> dict[str, float]:
    """Metrics of one task target from labels and predicted probabilities.

    ``scores`` are probabilities: softmax rows (N, C) for multi-class and ordinal, sigmoid
    outputs for binary ((N,), (N, 1), or (N, 2) whose last column is used) and multi-label
    (N, C). ``y_true``: class indices (multi-class; ordinal after :func:`labels_to_indices`),
    0/1 (binary, (N,) or (N, 1)) or multi-hot (N, C). Binary and multi-label predictions are
    positive when ``score > threshold``; the others use the arg-max class. Mode "default" adds
    ``ece`` and ``brier`` (:mod:`medimeta.evaluate.calibration`); ``per_class`` adds
    ``auroc_class_<c>`` (and ``ap_class_<c>`` for multi-label) and ``precision_class_<c>``,
    ``recall_class_<c>``, ``f1_class_<c>``.
    """
    name = TaskTarget.from_value(target)
    check_choice("metrics mode", mode, MODES)
    y, s = _prepare(name, y_true, scores)
    if mode == "medmnist":
        return _medmnist(name, y, s, threshold)
    if mode == "medfm":
        return _medfm(name, y, s)
    return _default(name, y, s, threshold, per_class)


def _default(
    target: TaskTarget, y: NDArray, s: NDArray[np.float64], threshold: float, per_class: bool
) -> dict[str, float]:
    out: dict[str, float] = {}
    binary_like = target in (TaskTarget.BINARY_CLASSIFICATION, TaskTarget.MULTILABEL_CLASSIFICATION)
    out.update(calibration_metrics(binary_like, y, s, threshold))
    if target is TaskTarget.BINARY_CLASSIFICATION:
        pred = (s > threshold).astype(np.int64)
        out["auroc"] = m.binary_auroc(y, s)
        out["accuracy"] = m.accuracy(y, pred)
        out["balanced_accuracy"] = m.balanced_accuracy(y, pred)
        out["f1"] = m.f1_binary(y, pred)
        out["average_precision"] = m.average_precision(y, s)
        if per_class:
            out.update(_per_class(per_class_prf(y, pred, 2)))
        return out
    if target is TaskTarget.MULTILABEL_CLASSIFICATION:
        pred = (s > threshold).astype(np.int64)
        aurocs = m.per_class_auroc(y, s)
        aps = m.per_class_average_precision(y, s)
        out["auroc"] = m.nan_macro(aurocs, "macro AUROC")
        out["map"] = m.nan_macro(aps, "mAP")
        out["label_accuracy"] = m.label_accuracy(y, pred)
        out["exact_match"] = m.exact_match_accuracy(y, pred)
        if per_class:
            out.update({f"ap_class_{c}": float(v) for c, v in enumerate(aps)})
            out.update(_per_class(per_class_prf(y, pred, s.shape[1], multilabel=True)))
    else:
        pred = np.argmax(s, axis=1)
        aurocs = m.per_class_auroc(y, s)
        out["auroc"] = m.nan_macro(aurocs, "macro AUROC")
        out["accuracy"] = m.accuracy(y, pred)
        out["balanced_accuracy"] = m.balanced_accuracy(y, pred)
        out["f1_macro"] = m.f1_macro(y, pred)
        if target is TaskTarget.ORDINAL_REGRESSION:
            out["mae"] = m.ordinal_mae(y, pred)
            out["qwk"] = m.quadratic_weighted_kappa(y, pred, num_classes=s.shape[1])
        if per_class:
            out.update(_per_class(per_class_prf(y, pred, s.shape[1])))
    if per_class:
        out.update({f"auroc_class_{c}": float(v) for c, v in enumerate(aurocs)})
    return out


def _per_class(values: dict[str, NDArray[np.float64]]) -> dict[str, float]:
    return {f"{k}_class_{c}": float(v) for k, col in values.items() for c, v in enumerate(col)}


def _medmnist(
    target: TaskTarget, y: NDArray, s: NDArray[np.float64], threshold: float
) -> dict[str, float]:
    """``medmnist.Evaluator`` 3.0.2: ``getAUC`` and ``getACC`` (see PEERS notes, docs)."""
    if target is TaskTarget.BINARY_CLASSIFICATION:
        auc = m.binary_auroc(y, s)
        acc = m.accuracy(y, (s > threshold).astype(np.int64))
    elif target is TaskTarget.MULTILABEL_CLASSIFICATION:
        auc = m.nan_macro(m.per_class_auroc(y, s), "MedMNIST AUC")
        pred = (s > threshold).astype(np.int64)
        acc = float(np.mean([m.accuracy(y[:, c], pred[:, c]) for c in range(y.shape[1])]))
    else:  # multi-class and ordinal are evaluated identically by MedMNIST
        auc = m.nan_macro(m.per_class_auroc(y, s), "MedMNIST AUC")
        acc = m.accuracy(y, np.argmax(s, axis=1))
    return {"auroc": auc, "accuracy": acc}


def _softmax_rows(x: NDArray[np.float64]) -> NDArray[np.float64]:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def medfm_average_precision(y_true: ArrayLike, scores: ArrayLike) -> float:
    """MMClassification's ``average_precision``: mean precision at each positive's rank.

    Samples are ordered by ``np.argsort(-scores)`` (numpy's default, unstable sort: tied
    scores are ranked in that implementation-defined order, unlike :func:`average_precision`).
    No positives gives 0.0, as in MMClassification (with an UndefinedMetricWarning).
    """
    s = m._scores("scores", scores, 1)
    y = m._binary("y_true", m._vector("y_true", y_true))
    m._same_length(y, s)
    sorted_y = y[np.argsort(-s)]
    hits = np.cumsum(sorted_y)
    n_pos = int(hits[-1]) if hits.size else 0
    if n_pos == 0:
        m._warn("MedFM average precision of a class without positives is 0 (as in MMCls)")
        return 0.0
    precision_at_hits = hits[sorted_y] / (np.flatnonzero(sorted_y) + 1.0)
    return float(np.sum(precision_at_hits) / n_pos)


def _medfm(target: TaskTarget, y: NDArray, s: NDArray[np.float64]) -> dict[str, float]:
    """MedFMC metrics in percent: AUC (+ accuracy or mAP), see docs/metrics.md."""
    if target is TaskTarget.MULTILABEL_CLASSIFICATION:
        auc = m.nan_macro(m.per_class_auroc(y, s), "MedFM AUC_multilabel")
        aps = [medfm_average_precision(y[:, c], s[:, c]) for c in range(s.shape[1])]
        return {"auroc": 100.0 * auc, "map": 100.0 * float(np.mean(aps))}
    if target is TaskTarget.BINARY_CLASSIFICATION:
        s = np.stack([1.0 - s, s], axis=1)  # MedFM's binary tasks use a 2-way softmax head
    # AUC_multiclass applies exp/sum again to the scores it is given (MedFMC eval_metrics.py).
    auc = m.nan_macro(m.per_class_auroc(y, _softmax_rows(s)), "MedFM AUC_multiclass")
    acc = m.accuracy(y, np.argmax(s, axis=1))
    return {"accuracy": 100.0 * acc, "auroc": 100.0 * auc}


_CLASS = re.compile(r"^(.*)_class_(\d+)$")


def episode_metrics(
    target: object, labels: ArrayLike, scores: ArrayLike, class_keys: Sequence[object] = ()
) -> dict[str, float]:
    """The metric set of one few-shot episode's query predictions, per-class metrics included
    and named by the episode's class keys (``recall_class_<key>``), so that a per-class
    metric means the same class in every episode (episodes may hold different classes)."""
    s = np.asarray(scores, dtype=np.float64)
    if TaskTarget.from_value(target) is TaskTarget.BINARY_CLASSIFICATION and s.ndim == 2:
        s = s[:, 0] if s.shape[1] == 1 else s
    metrics = compute_metrics(target, labels, s, per_class=True)
    keys = [str(k) for k in class_keys]
    out = {}
    for name, value in metrics.items():
        found = _CLASS.match(name)
        if keys and found and int(found.group(2)) < len(keys):
            name = f"{found.group(1)}_class_{keys[int(found.group(2))]}"
        out[name] = value
    return out
