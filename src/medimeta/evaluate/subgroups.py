"""Subgroup (hidden stratification) report: metrics per value of annotation columns.

A model with a good average can still fail on a subgroup (Oakden-Rayner et al. 2020,
"Hidden stratification causes clinically meaningful failures in machine learning for
medical imaging"). For each grouping (one column, or several joined with ``+`` for their
intersections) the report gives per group: sample count, class counts, the metric set of
the task, a percentile-bootstrap interval of the primary metric, and the gap between the
overall value and the worst group's value (groups below ``min_count`` samples or with an
undefined metric are listed but not ranked).

Numeric columns with more than ``max_categories`` distinct values are cut into bins:
the edges given in ``bins`` (left-closed intervals ``[a, b)``), else quantile bins.
Missing values form their own group ``"<missing>"``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from medimeta.catalog.tasks import TaskTarget
from medimeta.errors import LabelError, UnknownNameError
from medimeta.escape import markdown_escape
from medimeta.evaluate.ci import bootstrap_ci
from medimeta.evaluate.compute import compute_metrics
from medimeta.evaluate.metrics import UndefinedMetricWarning
from medimeta.evaluate.predictions import Predictions

MISSING = "<missing>"


def annotations_by_index(frame: pd.DataFrame, indices: np.ndarray) -> pd.DataFrame:
    """Rows of ``annotations.csv`` for global sample ``indices`` (matched by ``filepath``)."""
    from medimeta.format.layout import index_from_line

    if "filepath" in frame.columns:
        try:
            order = np.array([index_from_line(str(p)) for p in frame["filepath"]], dtype=np.int64)
        except ValueError:
            order = np.arange(len(frame), dtype=np.int64)
    else:
        order = np.arange(len(frame), dtype=np.int64)
    lookup = pd.Series(np.arange(len(frame)), index=order)
    missing = np.setdiff1d(indices, order)
    if missing.size:
        raise LabelError(
            f"annotations have no row for sample indices {missing[:10].tolist()}; "
            "fix: pass the annotations of the dataset the predictions were made on"
        )
    return frame.iloc[lookup.loc[indices].to_numpy()].reset_index(drop=True)


def group_values(
    values: pd.Series,
    *,
    edges: Sequence[float] | None = None,
    quantiles: int = 4,
    max_categories: int = 20,
) -> pd.Series:
    """Group labels (strings) of one column: categories, or bins for many numeric values."""
    numeric = pd.to_numeric(values, errors="coerce")
    is_numeric = numeric.notna().sum() == values.notna().sum() and values.notna().any()
    if is_numeric and (edges is not None or numeric.nunique() > max_categories):
        if edges is None:
            cuts = np.unique(np.nanquantile(numeric, np.linspace(0, 1, quantiles + 1)))
            cuts[-1] = np.nextafter(cuts[-1], np.inf)  # include the maximum in the last bin
        else:
            cuts = np.asarray(sorted(edges), dtype=float)
        binned = pd.cut(numeric, cuts, right=False)
        labels = binned.astype(str).where(binned.notna(), MISSING)
        outside = numeric.notna() & binned.isna()
        return labels.where(~outside, "<outside bins>")
    out = values.astype(str).where(values.notna(), MISSING)
    return out


def _class_counts(preds: Predictions) -> dict[str, int]:
    if preds.target == TaskTarget.MULTILABEL_CLASSIFICATION:
        return {f"label_{c}": int(v) for c, v in enumerate(preds.labels.sum(axis=0))}
    values, counts = np.unique(preds.labels, return_counts=True)
    return {str(int(v)): int(c) for v, c in zip(values, counts, strict=True)}


def _metric_fn(preds: Predictions, metric: str, mode: str) -> Any:
    def fn(y: np.ndarray, s: np.ndarray) -> float:
        return float(compute_metrics(preds.target, y, s, mode=mode).get(metric, np.nan))

    return fn


def _evaluate_group(
    part: Predictions, metric: str, mode: str, n_boot: int, seed: int, confidence: float
) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        metrics = compute_metrics(part.target, part.labels, part.metric_scores(), mode=mode)
        entry: dict[str, Any] = {"n": len(part), "class_counts": _class_counts(part)}
        entry["metrics"] = metrics
        if n_boot > 0 and np.isfinite(metrics.get(metric, np.nan)):
            ci = bootstrap_ci(
                _metric_fn(part, metric, mode),
                part.labels,
                part.metric_scores(),
                n=n_boot,
                seed=seed,
                confidence=confidence,
            )
            entry["ci"] = [ci.low, ci.high]
            entry["ci_resamples"] = ci.n_valid
        else:
            entry["ci"] = [float("nan"), float("nan")]
    return entry


def subgroup_report(
    preds: Predictions,
    annotations: pd.DataFrame,
    by: Sequence[str],
    *,
    bins: Mapping[str, Sequence[float]] | None = None,
    quantiles: int = 4,
    metric: str = "auroc",
    mode: str = "default",
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    min_count: int = 10,
) -> dict[str, Any]:
    """Metrics per subgroup of ``preds`` for each grouping in ``by`` (see module docstring).

    ``annotations`` is the dataset's annotations.csv frame (one row per sample).
    """
    bins = dict(bins or {})
    rows = annotations_by_index(annotations, preds.indices)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        overall = _evaluate_group(preds, metric, mode, n_boot, seed, confidence)
    report: dict[str, Any] = {
        "dataset_id": preds.dataset_id,
        "task_name": preds.task_name,
        "split": preds.split,
        "target": preds.target,
        "metric": metric,
        "mode": mode,
        "confidence": confidence,
        "n_boot": n_boot,
        "seed": seed,
        "min_count": min_count,
        "overall": overall,
        "groupings": [],
    }
    for spec in by:
        columns = [c.strip() for c in spec.split("+") if c.strip()]
        for col in columns:
            if col not in rows.columns:
                raise UnknownNameError("annotation column", col, list(rows.columns))
        keys = [group_values(rows[c], edges=bins.get(c), quantiles=quantiles) for c in columns]
        label = keys[0] if len(keys) == 1 else keys[0].str.cat(keys[1:], sep=" & ")
        groups = []
        for value in sorted(label.unique()):
            mask = (label == value).to_numpy()
            entry = _evaluate_group(preds.subset(mask), metric, mode, n_boot, seed, confidence)
            groups.append({"group": value, **entry})
        report["groupings"].append(_rank(" + ".join(columns), groups, overall, metric, min_count))
    return report


def _rank(
    name: str, groups: list[dict[str, Any]], overall: dict[str, Any], metric: str, min_count: int
) -> dict[str, Any]:
    ranked = [
        g for g in groups if g["n"] >= min_count and np.isfinite(g["metrics"].get(metric, np.nan))
    ]
    out: dict[str, Any] = {
        "by": name,
        "groups": groups,
        "worst_group": None,
        "best_group": None,
        "worst_gap": None,
        "best_worst_gap": None,
    }
    if ranked:
        worst = min(ranked, key=lambda g: g["metrics"][metric])
        best = max(ranked, key=lambda g: g["metrics"][metric])
        overall_value = overall["metrics"].get(metric, np.nan)
        out.update(
            worst_group=worst["group"],
            best_group=best["group"],
            worst_gap=float(overall_value - worst["metrics"][metric]),
            best_worst_gap=float(best["metrics"][metric] - worst["metrics"][metric]),
        )
    out["ranked_groups"] = len(ranked)
    return out


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def report_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: one table per grouping, worst group and gaps below it."""
    e = markdown_escape
    metric, conf = e(report["metric"]), round(100 * report["confidence"])
    o = report["overall"]
    lines = [
        f"# Subgroup report: {e(report['dataset_id'])} / {e(report['task_name'])} "
        f"({e(report['split'])})",
        "",
        f"Metric: **{metric}** ({e(report['mode'])} definitions); {conf} % percentile bootstrap "
        f"intervals over {report['n_boot']} resamples (seed {report['seed']}); groups under "
        f"{report['min_count']} samples are not ranked.",
        "",
        f"Overall: n = {o['n']}, {metric} = {_fmt(o['metrics'].get(report['metric']))} "
        f"[{_fmt(o['ci'][0])}, {_fmt(o['ci'][1])}]",
    ]
    for grouping in report["groupings"]:
        lines += [
            "",
            f"## By {e(grouping['by'])}",
            "",
            f"| group | n | class counts | {metric} | {conf} % CI | accuracy |",
            "|---|---:|---|---:|---|---:|",
        ]
        for g in grouping["groups"]:
            counts = e(", ".join(f"{k}: {v}" for k, v in g["class_counts"].items()))
            acc = g["metrics"].get("accuracy", g["metrics"].get("label_accuracy"))
            lines.append(
                f"| {e(g['group'])} | {g['n']} | {counts} | "
                f"{_fmt(g['metrics'].get(report['metric']))} | "
                f"[{_fmt(g['ci'][0])}, {_fmt(g['ci'][1])}] | {_fmt(acc)} |"
            )
        lines += [
            "",
            f"Worst group: {e(grouping['worst_group'] or '–')}; gap to overall: "
            f"{_fmt(grouping['worst_gap'])}; best − worst: {_fmt(grouping['best_worst_gap'])}.",
        ]
    return "\n".join(lines) + "\n"
