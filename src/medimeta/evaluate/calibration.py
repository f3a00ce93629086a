"""Metrics that stay honest under class imbalance and miscalibration: per-class precision,
recall and F1, the expected calibration error and the Brier score.

Definitions (docs/metrics.md):

* **Per-class precision / recall / F1** of class c: ``TP/(TP+FP)``, ``TP/(TP+FN)`` and
  ``2TP/(2TP+FP+FN)`` at the task's prediction rule (arg-max; binary and multi-label: score
  > threshold); undefined (NaN, with a warning) where the denominator is 0, so an episode in
  which a class was never predicted does not count as precision 0
  (``sklearn.metrics.precision_recall_fscore_support(zero_division=nan)``).
* **ECE** (expected calibration error, top-label, 15 equal-width bins): each prediction's
  confidence is the probability of the predicted class (binary: ``max(p, 1 - p)``; multi-label:
  every (sample, label) pair as a binary prediction); the confidences fall into bins
  ``[0, 1/15), [1/15, 2/15), ..., [14/15, 1]``; ``ECE = Σ_b (n_b / N) |acc_b − conf_b|`` with
  ``acc_b`` the fraction of correct predictions and ``conf_b`` the mean confidence in bin b
  (Guo et al., ICML 2017; Naeini et al., AAAI 2015). 0 is perfectly calibrated.
* **Brier score**: the mean squared difference between the predicted probabilities and the
  one-hot truth, summed over the classes (multi-class: ``mean_i Σ_c (p_ic − y_ic)²``, range
  [0, 2]; binary: ``mean_i (p_i − y_i)²``, range [0, 1], ``sklearn.metrics.brier_score_loss``;
  multi-label: the binary score averaged over all (sample, label) pairs).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medimeta.evaluate.metrics import _warn

ECE_BINS = 15


def expected_calibration_error(
    confidence: ArrayLike, correct: ArrayLike, bins: int = ECE_BINS
) -> float:
    """ECE of predictions with ``confidence`` in [0, 1] and 0/1 ``correct`` (module docstring)."""
    conf = np.asarray(confidence, dtype=np.float64).reshape(-1)
    hit = np.asarray(correct, dtype=np.float64).reshape(-1)
    if conf.size == 0:
        return float("nan")
    which = np.minimum((conf * bins).astype(np.int64), bins - 1)  # 1.0 falls into the last bin
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(hit[mask].mean() - conf[mask].mean())
    return float(total)


def reliability(
    confidence: ArrayLike, correct: ArrayLike, bins: int = ECE_BINS
) -> dict[str, list[float]]:
    """Per bin: mean confidence, accuracy and count (the reliability diagram's bars)."""
    conf = np.asarray(confidence, dtype=np.float64).reshape(-1)
    hit = np.asarray(correct, dtype=np.float64).reshape(-1)
    which = np.minimum((conf * bins).astype(np.int64), bins - 1)
    out: dict[str, list[float]] = {"confidence": [], "accuracy": [], "count": []}
    for b in range(bins):
        mask = which == b
        out["count"].append(float(mask.sum()))
        out["confidence"].append(float(conf[mask].mean()) if mask.any() else float("nan"))
        out["accuracy"].append(float(hit[mask].mean()) if mask.any() else float("nan"))
    return out


def top_label(
    y: NDArray, scores: NDArray[np.float64], binary: bool, threshold: float = 0.5
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """(confidence, correct) of every prediction: binary (N,) scores of class 1, multi-class
    (N, C) rows, or multi-label (N, L) as N·L binary predictions (``binary=True``)."""
    if binary:
        p, truth = scores.reshape(-1), np.asarray(y).reshape(-1).astype(bool)
        pred = p > threshold
        return np.where(pred, p, 1.0 - p), pred == truth
    pred = np.argmax(scores, axis=1)
    return scores[np.arange(len(pred)), pred], pred == np.asarray(y).reshape(-1)


def brier_score(y: NDArray, scores: NDArray[np.float64], binary: bool) -> float:
    """Brier score (module docstring); ``binary`` for binary and multi-label scores."""
    if binary:
        return float(np.mean((scores - np.asarray(y, np.float64).reshape(scores.shape)) ** 2))
    onehot = np.eye(scores.shape[1])[np.asarray(y).reshape(-1)]
    return float(np.mean(np.sum((scores - onehot) ** 2, axis=1)))


def per_class_prf(
    y_true: NDArray, y_pred: NDArray, num_classes: int, multilabel: bool = False
) -> dict[str, NDArray[np.float64]]:
    """Per-class precision, recall and F1 (NaN where undefined, module docstring)."""
    if multilabel:
        truth, pred = np.asarray(y_true, bool), np.asarray(y_pred, bool)
    else:
        classes = np.arange(num_classes)
        truth = np.asarray(y_true).reshape(-1)[:, None] == classes
        pred = np.asarray(y_pred).reshape(-1)[:, None] == classes
    tp = (truth & pred).sum(0).astype(np.float64)
    fp = (~truth & pred).sum(0).astype(np.float64)
    fn = (truth & ~pred).sum(0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
        recall = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
    if np.isnan(precision).any() or np.isnan(recall).any():
        _warn("per-class precision or recall undefined for a class never predicted or absent")
    return {"precision": precision, "recall": recall, "f1": f1}


def calibration_metrics(
    target_binary: bool, y: NDArray, scores: NDArray[np.float64], threshold: float = 0.5
) -> dict[str, float]:
    """``ece`` and ``brier`` of one set of predictions."""
    confidence, correct = top_label(y, scores, target_binary, threshold)
    return {
        "ece": expected_calibration_error(confidence, correct),
        "brier": brier_score(y, scores, target_binary),
    }
