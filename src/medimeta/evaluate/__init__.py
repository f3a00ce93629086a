"""Evaluation: metric definitions (numpy), the per-target metric set, confidence intervals."""

from __future__ import annotations

from medimeta.catalog.tasks import labels_to_indices
from medimeta.evaluate.ci import (
    BootstrapCI,
    bootstrap_ci,
    mean_ci,
    student_t_ppf,
)
from medimeta.evaluate.compute import MODES, compute_metrics, medfm_average_precision
from medimeta.evaluate.metrics import (
    UndefinedMetricWarning,
    accuracy,
    average_precision,
    average_ranks,
    balanced_accuracy,
    binary_auroc,
    exact_match_accuracy,
    f1_binary,
    f1_macro,
    label_accuracy,
    macro_auroc,
    mean_average_precision,
    ordinal_mae,
    per_class_auroc,
    per_class_average_precision,
    quadratic_weighted_kappa,
)

__all__ = [
    "MODES",
    "BootstrapCI",
    "UndefinedMetricWarning",
    "accuracy",
    "average_precision",
    "average_ranks",
    "balanced_accuracy",
    "binary_auroc",
    "bootstrap_ci",
    "compute_metrics",
    "exact_match_accuracy",
    "f1_binary",
    "f1_macro",
    "label_accuracy",
    "labels_to_indices",
    "macro_auroc",
    "mean_average_precision",
    "mean_ci",
    "medfm_average_precision",
    "ordinal_mae",
    "per_class_auroc",
    "per_class_average_precision",
    "quadratic_weighted_kappa",
    "student_t_ppf",
]
