"""Result figures: training curves, ROC curves per class, few-shot means with intervals.

Datasets and methods are drawn by their display names, proportions in percent
(:mod:`medimeta.plots.names`), in the colours of :mod:`medimeta.plots._figure`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medimeta.catalog import TaskTarget
from medimeta.errors import FormatError
from medimeta.plots._figure import (
    FONT,
    GREY,
    LIGHT_GREY,
    PALETTE,
    new_figure,
    series_colour,
    series_style,
    wrap,
)
from medimeta.plots.names import (
    PERCENT,
    method_label,
    metric_axis,
    metric_name,
    predictions_label,
    target_label,
    target_labels,
)
from medimeta.plots.rundirs import load_records, read_log, read_run
from medimeta.runs.model import RunRecord

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from medimeta.evaluate.predictions import Predictions


def _tidy(ax: Axes) -> None:
    ax.tick_params(labelsize=FONT)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(alpha=0.3, linewidth=0.5, color=LIGHT_GREY)


def _series(rows: list[dict[str, float | None]], key: str) -> tuple[list[float], list[float]]:
    pairs = [(r["epoch"], r.get(key)) for r in rows if r.get(key) is not None]
    return [float(e) for e, _ in pairs if e is not None], [
        float(v) for _, v in pairs if v is not None
    ]


def run_title(record: RunRecord) -> str:
    """``method on dataset name: task (backbone, k-shot, seed s)`` of a run."""
    shots = f", {record.shots}-shot" if record.shots is not None else ""
    seed = f", seed {record.seed}" if record.seed is not None else ""
    what = record.paper_name or record.method or record.kind
    return f"{what} on {target_label(record)} ({record.backbone or '–'}{shots}{seed})"


def training_curves(run_dir: str | Path) -> Figure:
    """Loss (train and validation) and validation metrics (proportions in %) per epoch of a
    ``medimeta train`` run folder, the monitored metric in bold and the selected epoch
    marked."""
    rows = read_log(run_dir)
    run = read_run(run_dir)
    monitor = run.record.settings.get("monitor", "auroc")
    selected = run.record.details.get("selected_epoch") or rows[-1].get("best_epoch")
    fig = new_figure(9.0, 3.0, constrained=True)
    loss_ax, metric_ax = fig.subplots(1, 2)
    marker = "o" if len(rows) < 30 else None
    for key, label, colour in (
        ("train_loss", "train", PALETTE[0]),
        ("val_loss", "validation", PALETTE[1]),
    ):
        x, y = _series(rows, key)
        if x:
            loss_ax.plot(x, y, marker=marker, markersize=3, color=colour, label=label)
    metrics = [k for k in rows[0] if k.startswith("val_") and k[4:] in PERCENT]
    for i, key in enumerate(metrics):
        x, y = _series(rows, key)
        if x:
            bold = key == f"val_{monitor}"
            metric_ax.plot(
                x,
                [100 * v for v in y],
                marker=marker,
                markersize=3,
                linewidth=2.2 if bold else 1.0,
                color=series_colour(i),
                linestyle=series_style(i),
                label=metric_name(key[4:]) + (" (monitored)" if bold else ""),
            )
    loss_ax.set_ylabel("loss (mean per image)", fontsize=FONT)
    metric_ax.set_ylabel("validation metric (%)", fontsize=FONT)
    for ax, name in ((loss_ax, "loss"), (metric_ax, "validation metrics")):
        if selected is not None:
            ax.axvline(float(selected), color=GREY, linestyle="--", linewidth=0.8)
        ax.set_xlabel("epoch", fontsize=FONT)
        ax.set_title(name, fontsize=9, loc="left")
        _tidy(ax)
    if loss_ax.get_legend_handles_labels()[0]:
        loss_ax.legend(fontsize=FONT - 1, frameon=False, loc="best")
    if metric_ax.get_legend_handles_labels()[0]:  # beside the plot: metrics crowd near 1
        metric_ax.legend(
            fontsize=FONT - 1, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5)
        )
    if not metrics:
        metric_ax.text(0.5, 0.5, "no validation split", ha="center", va="center", fontsize=FONT)
    note = f", selected epoch {int(selected)} (dashed)" if selected is not None else ""
    fig.suptitle(wrap(run_title(run.record) + note, 7.6, 10), fontsize=10)
    return fig


def roc_points(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """False and true positive rates over all thresholds and the area under the curve
    (NaN when only one class is present)."""
    y = np.asarray(labels).reshape(-1).astype(bool)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return np.array([0.0, 1.0]), np.array([0.0, 1.0]), math.nan
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]  # last row of each distinct score
    tps = np.cumsum(y)[last]
    fps = last + 1 - tps
    tpr = np.r_[0.0, tps / pos]
    fpr = np.r_[0.0, fps / neg]
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    return fpr, tpr, auc


def _one_vs_rest(preds: Predictions) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(class name, 0/1 truth, score) per curve to draw."""
    names = list(preds.class_names)
    if preds.target == TaskTarget.BINARY_CLASSIFICATION.value:
        positive = names[1] if len(names) == 2 else "positive"
        return [(positive, preds.labels.reshape(-1), preds.scores[:, 0])]
    out = []
    for c in range(preds.scores.shape[1]):
        name = names[c] if c < len(names) else f"class {c}"
        truth = (
            preds.labels[:, c]
            if preds.target == TaskTarget.MULTILABEL_CLASSIFICATION.value
            else (preds.labels == c).astype(np.int64)
        )
        out.append((name, truth, preds.scores[:, c]))
    return out


def roc_curves(predictions: str | Path | Predictions, *, title: str | None = None) -> Figure:
    """ROC curve per class (one-vs-rest; binary: the positive class; multi-label: per label)
    of a prediction file (``predictions_<split>.csv``) or a ``Predictions`` object, with the
    AUROC of each in the legend; classes without positives or negatives are listed as
    undefined."""
    from medimeta.evaluate.predictions import read_predictions

    preds = (
        predictions if not isinstance(predictions, str | Path) else read_predictions(predictions)
    )
    if preds.episodes is not None:
        raise FormatError(
            str(predictions) if isinstance(predictions, str | Path) else "predictions",
            "few-shot predictions mix the classes of many episodes; ROC curves need one task",
        )
    curves = _one_vs_rest(preds)
    fig = new_figure(5.6 if len(curves) > 6 else 4.6, 4.2, constrained=True)
    ax = fig.add_subplot()
    ax.plot([0, 100], [0, 100], color=LIGHT_GREY, linestyle=":", linewidth=0.8)
    for i, (name, truth, score) in enumerate(curves):
        fpr, tpr, auc = roc_points(truth, score)
        area = "undefined" if math.isnan(auc) else f"{100 * auc:.1f} %"
        label = f"{wrap(name, 1.8, FONT - 1)} ({area})"
        dash = ":" if math.isnan(auc) else series_style(i)
        ax.plot(100 * fpr, 100 * tpr, dash, color=series_colour(i), linewidth=1.3, label=label)
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 101)
    ax.set_aspect("equal")
    ax.set_xlabel("false positive rate, 1 - specificity (%)", fontsize=FONT)
    ax.set_ylabel("true positive rate, sensitivity (%)", fontsize=FONT)
    _tidy(ax)
    ax.legend(
        title="class (AUROC)",
        fontsize=FONT - 1,
        title_fontsize=FONT - 1,
        loc="lower right" if len(curves) <= 6 else "center left",
        bbox_to_anchor=None if len(curves) <= 6 else (1.02, 0.5),
        frameon=False,
    )
    where = preds.split or "predictions"
    head = (
        title
        or f"{predictions_label(preds.dataset_id, preds.task_name)}, {where} (n={len(preds):,})"
    )
    ax.set_title(wrap(head, 4.2, 9), fontsize=9, loc="left")
    return fig


def _target_of(record: RunRecord) -> str:
    return record.target_id


def _method_of(record: RunRecord) -> str:
    shots = f", {record.shots}-shot" if record.shots is not None else ""
    return f"{method_label(record)} ({record.backbone}{shots})"


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def fewshot_intervals(
    results: Sequence[str | Path | RunRecord], *, metric: str = "auroc", scale: float = 100.0
) -> Figure:
    """Few-shot results as a figure of the MedIMeta paper's Table 4: per target (rows) the mean
    of ``metric`` over the episodes of each method and backbone with its 95 % interval.
    ``results``: few-shot run records, their files or run folders (``medimeta fewshot``, the
    cells of ``medimeta benchmark``)."""
    records = load_records(results)
    if not records:
        raise FormatError("results", "no few-shot result records to plot")
    targets = _unique([_target_of(r) for r in records])
    methods = _unique([_method_of(r) for r in records])
    band = 0.8 / len(methods)
    row_h = max(0.5, 0.25 * len(methods) + 0.15)
    fig = new_figure(
        7.0, 1.3 + len(targets) * row_h + 0.2 * math.ceil(len(methods) / 2), constrained=True
    )
    ax = fig.add_subplot()
    labelled: set[int] = set()
    numbers: list[tuple[float, str, str]] = []  # (y, text, colour) of the right-hand column
    for rec in records:
        k = methods.index(_method_of(rec))
        mean, ci, n = rec.metric(metric)
        y = targets.index(_target_of(rec)) + (k - (len(methods) - 1) / 2) * band
        colour = series_colour(k)
        ax.errorbar(
            scale * mean,
            y,
            xerr=scale * ci,
            fmt="o",
            markersize=4,
            capsize=3,
            color=colour,
            label=None if k in labelled else methods[k],
        )
        labelled.add(k)
        if math.isfinite(mean):
            numbers.append((y, f"{scale * mean:.1f} ± {scale * ci:.1f} (n={n})", colour))
    if metric == "auroc":
        ax.axvline(50 if scale == 100 else 0.5, color=LIGHT_GREY, linestyle=":", linewidth=0.8)
    shown = target_labels(records)
    ax.set_yticks(range(len(targets)), [wrap(shown[t], 1.8) for t in targets], fontsize=FONT)
    ax.set_ylim(len(targets) - 0.5, -0.5)
    unit = " (%)" if scale == 100 else ""
    name = metric_name(metric)
    ax.set_xlabel(f"{name}{unit}: mean over episodes ± 95 % Student-t interval", fontsize=FONT)
    ax.margins(x=0.08)
    if metric == "auroc" and scale == 100:
        low, high = ax.get_xlim()
        ax.set_xlim(max(low, 0.0), min(high, 101.0))
    _tidy(ax)
    fig.legend(
        loc="outside lower center",
        ncols=min(2, len(methods)),
        fontsize=FONT - 1,
        frameon=False,
    )
    ax.set_title(f"Few-shot {name} per target and method", fontsize=9, loc="left")
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    _number_column(ax, numbers)
    longest = max((len(t) for _, t, _ in numbers), default=0)
    room = (longest * (FONT - 1) * 0.5 / 72 + 0.15) / fig.get_figwidth()
    engine = fig.get_layout_engine()
    if isinstance(engine, ConstrainedLayoutEngine):  # it does not count the column: make room
        engine.set(rect=(0, 0, 1 - room, 1))
    return fig


def _number_column(ax: Axes, numbers: list[tuple[float, str, str]]) -> None:
    """The values as tick labels of a right-hand axis, like a column of the paper's table
    (tick labels, unlike free text, get room from the layout)."""
    right = ax.secondary_yaxis("right")
    right.set_yticks([y for y, _, _ in numbers], [t for _, t, _ in numbers], fontsize=FONT - 1)
    for label, (_, _, colour) in zip(right.get_yticklabels(), numbers, strict=True):
        label.set_color(colour)
    right.tick_params(length=0, pad=8)
    for spine in right.spines.values():
        spine.set_visible(False)


def fewshot_episodes(result: str | Path | RunRecord, *, metric: str = "auroc") -> Figure:
    """Distribution of ``metric`` (proportions in %) over the episodes of one few-shot run,
    with the mean and its 95 % interval."""
    from matplotlib.ticker import MaxNLocator

    record = load_records([result])[0]
    axis, scale = metric_axis(metric)
    values = [scale * v for v in record.episode_values(metric)]
    mean, ci, n = record.metric(metric)
    mean, ci = scale * mean, scale * ci
    digits = 1 if scale == 100 else 3
    fig = new_figure(5.6, 3.0, constrained=True)
    ax = fig.add_subplot()
    if math.isfinite(mean):
        ax.axvspan(
            mean - ci, mean + ci, color=PALETTE[1], alpha=0.25, zorder=0, label="95 % interval"
        )
    if values:
        bins = min(20, max(5, len(values) // 2))
        ax.hist(values, bins=bins, color=PALETTE[0], zorder=2, label="episodes", rwidth=0.9)
    if math.isfinite(mean):
        ax.axvline(
            mean,
            color=PALETTE[1],
            linewidth=1.8,
            zorder=3,
            label=f"mean {mean:.{digits}f} ± {ci:.{digits}f} (n={n})",
        )
    if ax.get_legend_handles_labels()[0]:
        fig.legend(loc="outside lower center", ncols=3, fontsize=FONT - 1, frameon=False)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"{axis}, one value per episode", fontsize=FONT)
    ax.set_ylabel("episodes (count)", fontsize=FONT)
    _tidy(ax)
    ax.set_title(
        wrap(f"{method_label(record)} on {target_label(record)}", 5.2, 9),
        fontsize=9,
        loc="left",
    )
    return fig
