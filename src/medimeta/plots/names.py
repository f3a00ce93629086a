"""What figures call things: display names of datasets, targets, methods and metrics, and the
units on the axes.

A dataset is shown by its name (the name recorded with the run, else the catalog's, else the
id): ``Breast Ultrasound: case category`` instead of ``bus:case category``; when two ids of one
figure would read alike, the id is added (``Toy Dataset (toy_gray): case category``). A few-shot
method is shown by its paper name (``ProtoNet``, ``ImageNet (linear probe)``). Metrics that are
proportions are drawn in percent and say so on the axis: ``AUROC (%)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

METRIC_NAMES = {
    "auroc": "AUROC",
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "f1_macro": "macro F1",
    "ece": "ECE",
    "brier": "Brier score",
}
PERCENT = {"auroc", "accuracy", "balanced_accuracy", "f1_macro"}


def metric_name(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric.replace("_", " "))


def metric_axis(metric: str) -> tuple[str, float]:
    """``(axis label with its unit, factor to multiply the values by)``."""
    name = metric_name(metric)
    return (f"{name} (%)", 100.0) if metric in PERCENT else (name, 1.0)


def dataset_name(dataset_id: str, recorded: str | None = None) -> str:
    """The name of a dataset: ``recorded`` (info.yaml's, kept in run records), else the
    catalog's, else the id."""
    if recorded:
        return recorded
    from medimeta.catalog.loader import get_catalog

    try:
        return str(get_catalog().get(dataset_id).name)
    except KeyError:
        return dataset_id


def _target_parts(record: Any) -> tuple[str, str, str]:
    """(target id, dataset id, display name of the dataset) of a run record."""
    target = getattr(record, "target", None)
    if target is None:
        return "–", "–", "–"
    return target.id, target.dataset_id, dataset_name(target.dataset_id, target.dataset_name)


def target_labels(records: Iterable[Any]) -> dict[str, str]:
    """Target id -> ``dataset name: task`` for the records' targets, unambiguous among them."""
    parts = {}
    for r in records:
        tid, ds, name = _target_parts(r)
        parts[tid] = (ds, name, tid.partition(":")[2])
    names: dict[str, set[str]] = {}
    for ds, name, _ in parts.values():
        names.setdefault(name, set()).add(ds)
    out = {}
    for tid, (ds, name, task) in parts.items():
        shown = name if len(names[name]) == 1 else f"{name} ({ds})"
        out[tid] = f"{shown}: {task}" if task else shown
    return out


def target_label(record: Any) -> str:
    """``dataset name: task`` of one run record."""
    return target_labels([record])[_target_parts(record)[0]]


def predictions_label(dataset_id: str, task: str) -> str:
    """``dataset name: task`` of a prediction file's task."""
    return f"{dataset_name(dataset_id)}: {task}"


def method_label(record: Any) -> str:
    """The paper name of a run's method (else its id, else the kind of run)."""
    return str(record.row_name)
