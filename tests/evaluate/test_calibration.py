"""Per-class precision/recall/F1 and the Brier score against scikit-learn; the ECE against a
hand-worked example; the new metrics in every few-shot episode, named by class key."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics as skm

from medimeta.evaluate import compute_metrics
from medimeta.evaluate.calibration import (
    brier_score,
    expected_calibration_error,
    per_class_prf,
    reliability,
    top_label,
)
from medimeta.evaluate.compute import episode_metrics

TOL = 1e-10


def test_ece_by_hand() -> None:
    # five predictions; bins of width 1/15: 0.95 and 0.99 share the last bin, 0.62 and 0.65
    # share bin 9 ([0.6, 0.667)), 0.3 is alone in bin 4
    confidence = [0.95, 0.99, 0.62, 0.65, 0.3]
    correct = [1, 0, 1, 1, 0]
    last = abs(0.5 - 0.97)  # accuracy 1/2, mean confidence 0.97
    middle = abs(1.0 - 0.635)
    low = abs(0.0 - 0.3)
    expected = (2 / 5) * last + (2 / 5) * middle + (1 / 5) * low
    assert expected_calibration_error(confidence, correct) == pytest.approx(expected, abs=TOL)
    assert expected_calibration_error([1.0], [1]) == 0.0  # 1.0 falls into the last bin
    bars = reliability(confidence, correct)
    assert bars["count"][14] == 2 and bars["accuracy"][14] == 0.5
    assert sum(bars["count"]) == 5


def test_top_label_confidence_binary_and_multiclass() -> None:
    conf, hit = top_label(np.array([1, 0, 1]), np.array([0.9, 0.2, 0.4]), binary=True)
    np.testing.assert_allclose(conf, [0.9, 0.8, 0.6])
    assert hit.tolist() == [True, True, False]
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    conf, hit = top_label(np.array([0, 1]), probs, binary=False)
    np.testing.assert_allclose(conf, [0.7, 0.6])
    assert hit.tolist() == [True, False]


@pytest.mark.parametrize("seed", range(5))
def test_brier_against_sklearn(seed: int) -> None:
    gen = np.random.default_rng(seed)
    y = gen.integers(0, 2, 40)
    p = gen.random(40)
    assert brier_score(y, p, binary=True) == pytest.approx(skm.brier_score_loss(y, p), abs=TOL)
    y = gen.integers(0, 4, 50)
    probs = gen.dirichlet(np.ones(4), 50)
    onehot = np.eye(4)[y]
    want = np.mean(np.sum((probs - onehot) ** 2, axis=1))
    assert brier_score(y, probs, binary=False) == pytest.approx(want, abs=TOL)
    # scikit-learn's multi-class Brier (1.7+) is the same sum over classes
    assert brier_score(y, probs, binary=False) == pytest.approx(
        skm.brier_score_loss(y, probs, labels=range(4)), abs=TOL
    )


@pytest.mark.parametrize("seed", range(5))
def test_per_class_prf_against_sklearn(seed: int) -> None:
    gen = np.random.default_rng(seed)
    y, pred = gen.integers(0, 4, 60), gen.integers(0, 4, 60)
    got = per_class_prf(y, pred, 4)
    p, r, f, _ = skm.precision_recall_fscore_support(y, pred, labels=range(4), zero_division=np.nan)
    np.testing.assert_allclose(got["precision"], p, atol=TOL)
    np.testing.assert_allclose(got["recall"], r, atol=TOL)
    np.testing.assert_allclose(got["f1"], f, atol=TOL)
    y, pred = gen.integers(0, 2, (30, 3)), gen.integers(0, 2, (30, 3))
    got = per_class_prf(y, pred, 3, multilabel=True)
    p, r, f, _ = skm.precision_recall_fscore_support(y, pred, zero_division=np.nan)
    np.testing.assert_allclose(got["f1"], f, atol=TOL)


def test_a_class_never_predicted_has_no_precision() -> None:
    with pytest.warns(UserWarning, match="undefined"):
        got = per_class_prf(np.array([0, 1, 2]), np.array([0, 0, 2]), 3)
    assert np.isnan(got["precision"][1]) and got["recall"][1] == 0.0


def test_every_default_metric_set_has_calibration_and_per_class_by_key() -> None:
    gen = np.random.default_rng(0)
    y = np.array([0, 1, 2] * 5)
    probs = gen.dirichlet(np.ones(3), 15)
    out = compute_metrics("MULTICLASS_CLASSIFICATION", y, probs)
    assert {"ece", "brier", "balanced_accuracy", "f1_macro"} <= set(out)
    ep = episode_metrics("MULTICLASS_CLASSIFICATION", y, probs, class_keys=(4, 7, 9))
    assert {"recall_class_4", "precision_class_7", "f1_class_9", "auroc_class_9"} <= set(ep)
    pred = probs.argmax(1)
    assert ep["recall_class_7"] == pytest.approx(skm.recall_score(y == 1, pred == 1), abs=TOL)
    binary = episode_metrics("BINARY_CLASSIFICATION", y % 2, probs[:, :1], class_keys=(0, 1))
    assert {"recall_class_0", "recall_class_1", "ece", "brier"} <= set(binary)
