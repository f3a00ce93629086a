"""Classification metrics in plain numpy: arrays in, floats out.

Every definition is written out in ``docs/metrics.md`` and checked against scikit-learn in
``tests/unit/test_metrics.py``. Conventions:

* ``y_true`` holds class indices ``0..C-1`` (multi-class, ordinal), 0/1 (binary) or a
  multi-hot ``(N, C)`` matrix (multi-label). Ordinal keys that are not contiguous must be
  mapped first with :func:`medimeta.catalog.labels_to_indices` (also in :mod:`medimeta.evaluate`).
* A metric that is undefined for a class (AUROC or AP when that class has one label value
  only) is ``NaN`` and emits :class:`UndefinedMetricWarning` naming the class. Macro
  averages skip ``NaN`` classes and warn which ones were skipped; they are ``NaN`` only when
  every class is undefined. Nothing is ever carried over from another class.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike, NDArray

from medimeta.errors import LabelError, ShapeError


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined for the given labels (e.g. AUROC with one class only)."""


def _warn(message: str) -> None:
    warnings.warn(message, UndefinedMetricWarning, stacklevel=3)


def _vector(name: str, values: ArrayLike) -> NDArray:
    """1-D view of ``values``; an ``(N, 1)`` column is accepted and flattened."""
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ShapeError(f"{name} must have shape (N,) or (N, 1); got {arr.shape}")
    return arr


def _scores(name: str, values: ArrayLike, ndim: int) -> NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64)
    if ndim == 1:
        arr = _vector(name, arr)
    elif arr.ndim != 2:
        raise ShapeError(f"{name} must have shape (N, C); got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ShapeError(f"{name} contains NaN or infinite values; check the model outputs")
    return arr


def _binary(name: str, values: ArrayLike) -> NDArray[np.bool_]:
    arr = np.asarray(values)
    bad = ~np.isin(arr, (0, 1))
    if np.any(bad):
        raise LabelError(
            f"{name} must contain only 0/1; found {sorted(np.unique(arr[bad]).tolist())[:10]}"
        )
    return arr.astype(bool)


def _same_length(y: NDArray, s: NDArray) -> None:
    if y.shape[0] != s.shape[0]:
        raise ShapeError(f"labels have {y.shape[0]} rows but scores have {s.shape[0]}")


def average_ranks(values: ArrayLike) -> NDArray[np.float64]:
    """1-based ranks of ``values``; tied values share the mean of their ranks."""
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(v, kind="mergesort")
    sorted_v = v[order]
    starts_group = np.r_[True, sorted_v[1:] != sorted_v[:-1]]
    group = np.cumsum(starts_group) - 1
    counts = np.bincount(group)
    ends = np.cumsum(counts).astype(np.float64)
    mean_rank = ends - (counts - 1) / 2.0
    ranks = np.empty(v.size, dtype=np.float64)
    ranks[order] = mean_rank[group]
    return ranks


def _auroc_or_nan(positive: NDArray[np.bool_], scores: NDArray[np.float64], what: str) -> float:
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        value = 1 if n_pos else 0
        _warn(f"AUROC is undefined for {what}: y_true holds only label {value}; returning NaN")
        return float("nan")
    # Mann-Whitney U with average ranks equals the trapezoidal ROC area with ties (sklearn).
    rank_sum = float(average_ranks(scores)[positive].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def binary_auroc(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve of 0/1 labels vs scores (ties count one half)."""
    s = _scores("scores", scores, 1)
    y = _binary("y_true", _vector("y_true", y_true))
    _same_length(y, s)
    return _auroc_or_nan(y, s, "the positive class")


def _indicator(y_true: ArrayLike, num_classes: int) -> NDArray[np.bool_]:
    """(N, C) indicator from class indices (N,) or a multi-hot (N, C) matrix."""
    arr = np.asarray(y_true)
    if arr.ndim == 2 and arr.shape[1] == num_classes and num_classes > 1:
        return _binary("y_true", arr)
    idx = _vector("y_true", arr)
    check_indices(idx, num_classes)
    return idx[:, None] == np.arange(num_classes)[None, :]


def check_indices(y: NDArray, num_classes: int) -> NDArray[np.int64]:
    """Validate class indices in ``0..num_classes-1`` and return them as int64."""
    if y.size and (not np.all(np.equal(np.mod(y, 1), 0)) or y.min() < 0 or y.max() >= num_classes):
        bad = sorted({v for v in np.unique(y).tolist() if not 0 <= v < num_classes or v % 1})
        raise LabelError(
            f"labels must be class indices 0..{num_classes - 1}; found {bad[:10]}; "
            "fix: map raw keys with medimeta.evaluate.labels_to_indices"
        )
    return y.astype(np.int64)


def per_class_auroc(y_true: ArrayLike, scores: ArrayLike) -> NDArray[np.float64]:
    """One AUROC per column: one-vs-rest for class indices (N,), per label for multi-hot (N, C)."""
    s = _scores("scores", scores, 2)
    ind = _indicator(y_true, s.shape[1])
    _same_length(ind, s)
    return np.array([_auroc_or_nan(ind[:, c], s[:, c], f"class {c}") for c in range(s.shape[1])])


def nan_macro(values: NDArray[np.float64], what: str) -> float:
    """Unweighted mean over classes that are not NaN; warns which classes were skipped."""
    skipped = np.flatnonzero(np.isnan(values))
    if skipped.size == values.size:
        _warn(f"{what} is undefined for every class; returning NaN")
        return float("nan")
    if skipped.size:
        _warn(
            f"{what}: averaged over {values.size - skipped.size} of {values.size} classes; "
            f"skipped undefined classes {skipped.tolist()}"
        )
    return float(np.mean(values[~np.isnan(values)]))


def macro_auroc(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Unweighted mean of :func:`per_class_auroc` over defined classes (sklearn 'ovr'/'macro')."""
    return nan_macro(per_class_auroc(y_true, scores), "macro AUROC")


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of samples whose prediction equals the label (rows must match for 2-D input)."""
    y, p = np.asarray(y_true), np.asarray(y_pred)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if y.shape != p.shape or y.ndim not in (1, 2):
        raise ShapeError(f"y_true {y.shape} and y_pred {p.shape} must have the same shape")
    if y.size == 0:
        raise ShapeError("accuracy of an empty set is undefined; pass at least one sample")
    hits = y == p if y.ndim == 1 else np.all(y == p, axis=1)
    return float(np.mean(hits))


def _pair(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[NDArray, NDArray]:
    y, p = _vector("y_true", y_true), _vector("y_pred", y_pred)
    _same_length(y, p)
    if y.size == 0:
        raise ShapeError("metrics of an empty set are undefined; pass at least one sample")
    return y, p


def balanced_accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean recall over the classes present in ``y_true`` (sklearn's definition)."""
    y, p = _pair(y_true, y_pred)
    classes = np.unique(y)
    recalls = [np.mean(p[y == c] == c) for c in classes]
    return float(np.mean(recalls))


def f1_macro(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Unweighted mean of per-class F1 = 2TP/(2TP+FP+FN) over classes in y_true or y_pred."""
    y, p = _pair(y_true, y_pred)
    scores = []
    for c in np.union1d(y, p):
        tp = np.sum((y == c) & (p == c))
        wrong = np.sum((y == c) != (p == c))
        scores.append(2.0 * tp / (2.0 * tp + wrong))
    return float(np.mean(scores))


def f1_binary(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """F1 of the positive class 1; NaN (with a warning) when there are no positives at all."""
    y, p = _pair(y_true, y_pred)
    y, p = _binary("y_true", y), _binary("y_pred", p)
    tp = np.sum(y & p)
    wrong = np.sum(y != p)
    if tp + wrong == 0:
        _warn("F1 is undefined: no positive labels and no positive predictions; returning NaN")
        return float("nan")
    return float(2.0 * tp / (2.0 * tp + wrong))


def _ap_or_nan(positive: NDArray[np.bool_], scores: NDArray[np.float64], what: str) -> float:
    n_pos = int(positive.sum())
    if n_pos == 0:
        _warn(f"average precision is undefined for {what}: no positive labels; returning NaN")
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    sorted_s, sorted_y = scores[order], positive[order]
    # One operating point per distinct score: tied samples enter together (as in sklearn).
    last_of_group = np.r_[np.flatnonzero(sorted_s[1:] != sorted_s[:-1]), sorted_s.size - 1]
    tps = np.cumsum(sorted_y)[last_of_group].astype(np.float64)
    precision = tps / (last_of_group + 1.0)
    recall_gain = np.diff(np.r_[0.0, tps]) / n_pos
    return float(np.sum(recall_gain * precision))


def average_precision(y_true: ArrayLike, scores: ArrayLike) -> float:
    """AP = sum_n (R_n - R_{n-1}) P_n over distinct score thresholds (sklearn, no interpolation)."""
    s = _scores("scores", scores, 1)
    y = _binary("y_true", _vector("y_true", y_true))
    _same_length(y, s)
    return _ap_or_nan(y, s, "the positive class")


def per_class_average_precision(y_true: ArrayLike, scores: ArrayLike) -> NDArray[np.float64]:
    """One AP per column of a multi-hot ``(N, C)`` matrix (or one-vs-rest for indices)."""
    s = _scores("scores", scores, 2)
    ind = _indicator(y_true, s.shape[1])
    _same_length(ind, s)
    return np.array([_ap_or_nan(ind[:, c], s[:, c], f"class {c}") for c in range(s.shape[1])])


def mean_average_precision(y_true: ArrayLike, scores: ArrayLike) -> float:
    """mAP: unweighted mean of per-class AP over classes with at least one positive."""
    return nan_macro(per_class_average_precision(y_true, scores), "mAP")


def label_accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Multi-label accuracy per label entry, averaged over all N*C entries (1 - Hamming loss)."""
    y, p = _binary("y_true", y_true), _binary("y_pred", y_pred)
    if y.shape != p.shape or y.ndim != 2 or y.size == 0:
        raise ShapeError(f"y_true {y.shape} and y_pred {p.shape} must be equal non-empty (N, C)")
    return float(np.mean(y == p))


def exact_match_accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of samples whose whole label vector is predicted exactly (subset accuracy)."""
    y, p = _binary("y_true", y_true), _binary("y_pred", y_pred)
    if y.shape != p.shape or y.ndim != 2 or y.size == 0:
        raise ShapeError(f"y_true {y.shape} and y_pred {p.shape} must be equal non-empty (N, C)")
    return float(np.mean(np.all(y == p, axis=1)))


def ordinal_mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error in class-index units (map raw ordinal keys to indices first)."""
    y, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(y.astype(np.float64) - p.astype(np.float64))))


def quadratic_weighted_kappa(
    y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None
) -> float:
    """Cohen's kappa with weights (i - j)^2 on class indices.

    With ``num_classes`` the classes are ``0..num_classes-1`` (the task's full ordinal scale);
    without it they are the sorted labels present in either array (sklearn's default). NaN
    with a warning when the expected disagreement is zero (e.g. one class only).
    """
    y, p = _pair(y_true, y_pred)
    if num_classes is None:
        classes = np.union1d(y, p)
        yi, pi = np.searchsorted(classes, y), np.searchsorted(classes, p)
        k = classes.size
    else:
        yi, pi = check_indices(y, num_classes), check_indices(p, num_classes)
        k = num_classes
    observed = np.zeros((k, k), dtype=np.float64)
    np.add.at(observed, (yi, pi), 1.0)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    grid = np.arange(k, dtype=np.float64)
    weights = (grid[:, None] - grid[None, :]) ** 2
    denominator = float(np.sum(weights * expected))
    if denominator == 0.0:
        _warn("quadratic weighted kappa is undefined: no expected disagreement; returning NaN")
        return float("nan")
    return 1.0 - float(np.sum(weights * observed)) / denominator
