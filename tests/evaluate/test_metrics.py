"""Metric definitions vs scikit-learn, hand-computed cases, peer modes and confidence intervals."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from medimeta.errors import LabelError, ShapeError, UnknownNameError
from medimeta.evaluate import (
    UndefinedMetricWarning,
    accuracy,
    average_precision,
    average_ranks,
    balanced_accuracy,
    binary_auroc,
    bootstrap_ci,
    compute_metrics,
    exact_match_accuracy,
    f1_binary,
    f1_macro,
    label_accuracy,
    labels_to_indices,
    macro_auroc,
    mean_average_precision,
    mean_ci,
    medfm_average_precision,
    ordinal_mae,
    per_class_auroc,
    per_class_average_precision,
    quadratic_weighted_kappa,
    student_t_ppf,
)

TOL = 1e-6
SEEDS = range(8)


def _multiclass_case(seed: int, n: int = 80, c: int = 4, ties: bool = True):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    y[:c] = np.arange(c)  # every class present
    logits = rng.normal(size=(n, c)) + np.eye(c)[y]
    if ties:
        logits = np.round(logits, 1)  # coarse values create many ties
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probs


def _binary_case(seed: int, n: int = 60, ties: bool = True):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    s = np.clip(0.5 * y + rng.normal(0.25, 0.3, n), 0, 1)
    return y, (np.round(s, 1) if ties else s)


def _multilabel_case(seed: int, n: int = 70, c: int = 5):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, c)) < 0.3).astype(int)
    y[0], y[1] = 1, 0
    s = np.clip(0.4 * y + rng.random((n, c)) * 0.6, 0, 1)
    return y, np.round(s, 2)


# ---------------------------------------------------------------- hand-computed tiny cases


def test_hand_computed_binary_auroc_and_ties():
    # pairs (pos, neg): (0.35>0.1) (0.35<0.4) (0.8>0.1) (0.8>0.4) -> 3/4
    assert binary_auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    # one tied pair counts one half
    assert binary_auroc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    # pos 0.5 vs negs {0.5, 0.2}: 0.5 + 1 -> 0.75
    assert binary_auroc([1, 0, 0], [0.5, 0.5, 0.2]) == pytest.approx(0.75)


def test_average_ranks_share_ties():
    np.testing.assert_allclose(average_ranks([3.0, 1.0, 3.0, 2.0]), [3.5, 1.0, 3.5, 2.0])


def test_hand_computed_ap_accuracy_f1_mae_qwk():
    # ranking 1,0,1 -> precision at hits 1 and 2/3 -> AP = (1 + 2/3) / 2
    assert average_precision([1, 0, 1], [0.9, 0.8, 0.7]) == pytest.approx(5 / 6)
    # all three tied: one threshold, precision 2/3 at recall 1
    assert average_precision([1, 0, 1], [0.5, 0.5, 0.5]) == pytest.approx(2 / 3)
    assert accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == pytest.approx(0.75)
    # recalls: class0 1, class1 1, class2 1/2 -> 5/6
    assert balanced_accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == pytest.approx(5 / 6)
    # F1: class0 1, class1 2/3, class2 2/3
    assert f1_macro([0, 1, 2, 2], [0, 1, 1, 2]) == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert f1_binary([1, 1, 0, 0], [1, 0, 1, 0]) == pytest.approx(0.5)
    assert ordinal_mae([0, 2, 5], [1, 2, 3]) == pytest.approx(1.0)
    # O = [[1, 0], [1, 1]]; E = outer(rows [1, 2], cols [2, 1]) / 3 -> off-diagonal 1/3, 4/3;
    # weights (i-j)^2 are 1 off the diagonal: kappa = 1 - 1 / (5/3) = 0.4
    assert quadratic_weighted_kappa([0, 1, 1], [0, 0, 1]) == pytest.approx(0.4)


def test_multilabel_accuracies_hand_computed():
    y = np.array([[1, 0], [0, 1], [1, 1]])
    p = np.array([[1, 0], [1, 1], [1, 0]])
    assert label_accuracy(y, p) == pytest.approx(4 / 6)
    assert exact_match_accuracy(y, p) == pytest.approx(1 / 3)


# ---------------------------------------------------------------- agreement with sklearn


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [True, False])
def test_binary_metrics_match_sklearn(seed, ties):
    y, s = _binary_case(seed, ties=ties)
    pred = (s > 0.5).astype(int)
    assert binary_auroc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=TOL)
    assert average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=TOL)
    assert accuracy(y, pred) == pytest.approx(skm.accuracy_score(y, pred), abs=TOL)
    assert balanced_accuracy(y, pred) == pytest.approx(
        skm.balanced_accuracy_score(y, pred), abs=TOL
    )
    assert f1_binary(y, pred) == pytest.approx(skm.f1_score(y, pred), abs=TOL)


@pytest.mark.parametrize("seed", SEEDS)
def test_multiclass_metrics_match_sklearn(seed):
    y, probs = _multiclass_case(seed)
    pred = probs.argmax(axis=1)
    expected_auc = skm.roc_auc_score(y, probs, multi_class="ovr", average="macro")
    assert macro_auroc(y, probs) == pytest.approx(expected_auc, abs=TOL)
    per_class = [skm.roc_auc_score(y == c, probs[:, c]) for c in range(probs.shape[1])]
    np.testing.assert_allclose(per_class_auroc(y, probs), per_class, atol=TOL)
    assert balanced_accuracy(y, pred) == pytest.approx(
        skm.balanced_accuracy_score(y, pred), abs=TOL
    )
    assert f1_macro(y, pred) == pytest.approx(skm.f1_score(y, pred, average="macro"), abs=TOL)


@pytest.mark.parametrize("seed", SEEDS)
def test_multilabel_metrics_match_sklearn(seed):
    y, s = _multilabel_case(seed)
    pred = (s > 0.5).astype(int)
    np.testing.assert_allclose(
        per_class_auroc(y, s), skm.roc_auc_score(y, s, average=None), atol=TOL
    )
    np.testing.assert_allclose(
        per_class_average_precision(y, s), skm.average_precision_score(y, s, average=None), atol=TOL
    )
    assert mean_average_precision(y, s) == pytest.approx(
        skm.average_precision_score(y, s, average="macro"), abs=TOL
    )
    assert label_accuracy(y, pred) == pytest.approx(1 - skm.hamming_loss(y, pred), abs=TOL)
    assert exact_match_accuracy(y, pred) == pytest.approx(skm.accuracy_score(y, pred), abs=TOL)


@pytest.mark.parametrize("seed", SEEDS)
def test_ordinal_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 6, 90)
    pred = np.clip(y + rng.integers(-2, 3, 90), 0, 5)
    assert ordinal_mae(y, pred) == pytest.approx(skm.mean_absolute_error(y, pred), abs=TOL)
    assert quadratic_weighted_kappa(y, pred) == pytest.approx(
        skm.cohen_kappa_score(y, pred, weights="quadratic"), abs=TOL
    )
    assert quadratic_weighted_kappa(y, pred, num_classes=6) == pytest.approx(
        skm.cohen_kappa_score(y, pred, weights="quadratic", labels=list(range(6))), abs=TOL
    )


def test_qwk_full_scale_differs_from_present_labels_when_a_class_is_missing():
    # classes 0, 1 and 3 occur, 2 does not: distances 1->3 are 2 on the full scale
    y, p = [0, 1, 3, 3, 1], [0, 3, 3, 1, 1]
    full = quadratic_weighted_kappa(y, p, num_classes=4)
    assert full == pytest.approx(
        skm.cohen_kappa_score(y, p, weights="quadratic", labels=[0, 1, 2, 3]), abs=TOL
    )
    assert full != pytest.approx(quadratic_weighted_kappa(y, p), abs=1e-3)


# ---------------------------------------------------------------- undefined metrics


def test_single_class_binary_auroc_is_nan_with_warning():
    with pytest.warns(UndefinedMetricWarning, match="only label 0"):
        assert np.isnan(binary_auroc([0, 0, 0], [0.2, 0.5, 0.9]))
    with pytest.warns(UndefinedMetricWarning, match="no positive labels"):
        assert np.isnan(average_precision([0, 0], [0.1, 0.2]))
    with pytest.warns(UndefinedMetricWarning, match="F1 is undefined"):
        assert np.isnan(f1_binary([0, 0], [0, 0]))
    with pytest.warns(UndefinedMetricWarning, match="kappa is undefined"):
        assert np.isnan(quadratic_weighted_kappa([1, 1], [1, 1]))


def test_absent_class_is_nan_and_skipped_in_macro_average():
    y, probs = _multiclass_case(0, c=4)
    keep = y != 2  # class 2 absent: its one-vs-rest AUROC is undefined
    y, probs = y[keep], probs[keep]
    with pytest.warns(UndefinedMetricWarning, match="class 2"):
        per_class = per_class_auroc(y, probs)
    assert np.isnan(per_class[2]) and not np.any(np.isnan(np.delete(per_class, 2)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        macro = macro_auroc(y, probs)
    messages = [str(w.message) for w in caught if w.category is UndefinedMetricWarning]
    assert any("3 of 4 classes; skipped undefined classes [2]" in m for m in messages)
    assert macro == pytest.approx(np.mean(np.delete(per_class, 2)))


def test_all_classes_undefined_gives_nan():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = mean_average_precision(np.zeros((4, 2)), np.full((4, 2), 0.3))
    assert np.isnan(value)
    assert any("every class" in str(w.message) for w in caught)


# ---------------------------------------------------------------- input handling


def test_labels_to_indices_maps_noncontiguous_ordinal_keys():
    keys = [0, 1, 4, 6, 8, 10]
    np.testing.assert_array_equal(labels_to_indices([10, 0, 4, 8, 1, 6], keys), [5, 0, 2, 4, 1, 3])
    with pytest.raises(LabelError, match=r"\[5\]"):
        labels_to_indices([0, 5], keys)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ShapeError, match="NaN"):
        binary_auroc([0, 1], [0.1, np.nan])
    with pytest.raises(ShapeError, match="rows"):
        binary_auroc([0, 1, 1], [0.1, 0.2])
    with pytest.raises(LabelError, match="0/1"):
        binary_auroc([0, 2], [0.1, 0.2])
    with pytest.raises(LabelError, match=r"class indices 0\.\.2"):
        compute_metrics("MULTICLASS_CLASSIFICATION", [0, 3], np.full((2, 3), 1 / 3))
    with pytest.raises(UnknownNameError):
        compute_metrics("multiclass", [0, 1], np.full((2, 2), 0.5))
    with pytest.raises(UnknownNameError):
        compute_metrics("BINARY_CLASSIFICATION", [0, 1], [0.2, 0.8], mode="sklearn")


def test_package_does_not_import_sklearn_or_scipy():
    code = (
        "import sys, medimeta.evaluate, medimeta.models;"
        "bad = [m for m in ('sklearn', 'scipy') if m in sys.modules];"
        "sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# ---------------------------------------------------------------- compute_metrics modes


def test_compute_metrics_default_sets():
    y, s = _binary_case(1)
    out = compute_metrics("BINARY_CLASSIFICATION", y[:, None], s[:, None])
    assert set(out) == {
        "auroc",
        "accuracy",
        "balanced_accuracy",
        "f1",
        "average_precision",
        "ece",
        "brier",
    }
    assert out["auroc"] == pytest.approx(skm.roc_auc_score(y, s), abs=TOL)
    y, probs = _multiclass_case(2, c=5)
    out = compute_metrics("ORDINAL_REGRESSION", y, probs, per_class=True)
    pred = probs.argmax(axis=1)
    assert out["mae"] == pytest.approx(skm.mean_absolute_error(y, pred), abs=TOL)
    assert out["qwk"] == pytest.approx(
        skm.cohen_kappa_score(y, pred, weights="quadratic", labels=list(range(5))), abs=TOL
    )
    assert out["auroc_class_3"] == pytest.approx(skm.roc_auc_score(y == 3, probs[:, 3]), abs=TOL)
    y, s = _multilabel_case(3)
    out = compute_metrics("MULTILABEL_CLASSIFICATION", y, s)
    assert set(out) == {"auroc", "map", "label_accuracy", "exact_match", "ece", "brier"}
    assert out["map"] == pytest.approx(skm.average_precision_score(y, s), abs=TOL)


def _medmnist_reference(task: str, y_true, y_score, threshold=0.5):
    """MedMNIST 3.0.2 getAUC/getACC as documented (PEERS.md 1.6), written with sklearn."""
    y_true, y_score = np.asarray(y_true).squeeze(), np.asarray(y_score).squeeze()
    if task == "multi-label, binary-class":
        labels = range(y_true.shape[1])
        auc = np.mean([skm.roc_auc_score(y_true[:, i], y_score[:, i]) for i in labels])
        pred = y_score > threshold
        acc = np.mean([skm.accuracy_score(y_true[:, i], pred[:, i]) for i in labels])
    elif task == "binary-class":
        if y_score.ndim == 2:
            y_score = y_score[:, -1]
        auc = skm.roc_auc_score(y_true, y_score)
        acc = skm.accuracy_score(y_true, y_score > threshold)
    else:
        auc = np.mean(
            [skm.roc_auc_score(y_true == i, y_score[:, i]) for i in range(y_score.shape[1])]
        )
        acc = skm.accuracy_score(y_true, np.argmax(y_score, axis=-1))
    return {"auroc": auc, "accuracy": acc}


@pytest.mark.parametrize("seed", SEEDS)
def test_medmnist_mode_reproduces_evaluator(seed):
    yb, sb = _binary_case(seed)
    two_col = np.stack([1 - sb, sb], axis=1)
    for target, task, yy, ss in [
        ("BINARY_CLASSIFICATION", "binary-class", yb[:, None], two_col),
        ("MULTICLASS_CLASSIFICATION", "multi-class", *_multiclass_case(seed)),
        ("ORDINAL_REGRESSION", "ordinal-regression", *_multiclass_case(seed + 50)),
        ("MULTILABEL_CLASSIFICATION", "multi-label, binary-class", *_multilabel_case(seed)),
    ]:
        got = compute_metrics(target, yy, ss, mode="medmnist")
        want = _medmnist_reference(task, yy, ss)
        assert got == pytest.approx(want, abs=TOL), target


def _mmcls_average_precision(pred, target):
    """MMClassification 0.x ``average_precision`` as published (reference for mode 'medfm')."""
    eps = np.finfo(np.float32).eps
    sort_target = target[np.argsort(-pred)]
    pos = sort_target == 1
    tp = np.cumsum(pos)
    total_pos = tp[-1]
    pn = np.cumsum(sort_target != -1)
    tp[np.logical_not(pos)] = 0
    return np.sum(tp / np.maximum(pn, eps)) / np.maximum(total_pos, eps)


@pytest.mark.parametrize("seed", SEEDS)
def test_medfm_mode(seed):
    y, probs = _multiclass_case(seed, ties=False)
    got = compute_metrics("MULTICLASS_CLASSIFICATION", y, probs, mode="medfm")
    soft = np.exp(probs) / np.exp(probs).sum(axis=1, keepdims=True)  # MedFM's second softmax
    onehot = np.eye(probs.shape[1])[y]
    want_auc = 100 * np.mean([skm.roc_auc_score(onehot[:, c], soft[:, c]) for c in range(4)])
    assert got["auroc"] == pytest.approx(want_auc, abs=1e-4)
    assert got["accuracy"] == pytest.approx(100 * skm.accuracy_score(y, probs.argmax(1)), abs=1e-4)
    ym, sm = _multilabel_case(seed)
    sm = sm + np.random.default_rng(seed).random(sm.shape) * 1e-6  # no ties
    got = compute_metrics("MULTILABEL_CLASSIFICATION", ym, sm, mode="medfm")
    want_map = 100 * np.mean([_mmcls_average_precision(sm[:, c], ym[:, c]) for c in range(5)])
    assert got["map"] == pytest.approx(want_map, abs=1e-4)
    # without ties MMCls' AP is sklearn's AP
    assert got["map"] == pytest.approx(100 * skm.average_precision_score(ym, sm), abs=1e-4)
    assert got["auroc"] == pytest.approx(100 * skm.roc_auc_score(ym, sm), abs=1e-4)


def test_medfm_binary_equals_plain_auc_and_no_positive_ap_is_zero():
    y, s = _binary_case(4, ties=False)
    got = compute_metrics("BINARY_CLASSIFICATION", y, s, mode="medfm")
    assert got["auroc"] == pytest.approx(100 * skm.roc_auc_score(y, s), abs=1e-4)
    with pytest.warns(UndefinedMetricWarning):
        assert medfm_average_precision([0, 0, 0], [0.3, 0.2, 0.1]) == 0.0


# ---------------------------------------------------------------- confidence intervals


def test_t_quantile_known_value_and_scipy_agreement():
    assert student_t_ppf(0.975, 99) == pytest.approx(1.984217, abs=1e-6)
    for df in (1, 2, 3, 4, 9, 19, 29, 99, 999, 2.5):
        for p in (0.6, 0.9, 0.95, 0.975, 0.995, 0.9995, 0.05, 0.0005):
            assert student_t_ppf(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-9, abs=1e-12)
    with pytest.raises(ValueError):
        student_t_ppf(1.0, 5)


def test_mean_ci_matches_scipy_interval():
    values = np.random.default_rng(0).normal(0.7, 0.1, 100)
    mean, half = mean_ci(values)
    low, high = stats.t.interval(0.95, 99, loc=values.mean(), scale=stats.sem(values))
    assert mean == pytest.approx(values.mean())
    assert half == pytest.approx((high - low) / 2, rel=1e-9)
    with pytest.warns(UndefinedMetricWarning, match="1 NaN of 4"):
        mean2, _ = mean_ci([0.5, np.nan, 0.7, 0.6])
    assert mean2 == pytest.approx(0.6)
    with pytest.warns(UndefinedMetricWarning):
        assert np.isnan(mean_ci([0.5])[1])


def test_bootstrap_ci_is_seeded_and_brackets_estimate():
    y, s = _binary_case(5, n=120, ties=False)
    a = bootstrap_ci(binary_auroc, y, s, n=300, seed=7)
    b = bootstrap_ci(binary_auroc, y, s, n=300, seed=7)
    assert a == b
    assert a.low < a.estimate < a.high and a.n_valid == 300
    assert a.estimate == pytest.approx(skm.roc_auc_score(y, s))


def test_bootstrap_ci_drops_undefined_resamples():
    y = np.array([1] + [0] * 9)
    s = np.linspace(0, 1, 10)
    with pytest.warns(UndefinedMetricWarning, match="undefined in"):
        result = bootstrap_ci(binary_auroc, y, s, n=200, seed=0)
    assert 0 < result.n_valid < 200  # ~35% of resamples miss the single positive
