"""Figures of a grid of few-shot results: a metric against the number of shots, a task x
backbone heatmap, and the reliability diagram of a run's query predictions.

* :func:`shots_curves`: one panel per target; per (method, backbone) the mean over episodes at
  each shot level with its 95 % Student-t interval as a band (the authors' Fig. 3 layout).
* :func:`task_heatmap`: targets x backbones (or x methods) of one shot level, the mean in each
  cell, coloured on the colour-blind-safe sequential map of :mod:`medimeta.plots._figure`.
* :func:`reliability_diagram`: accuracy against confidence in the 15 equal-width bins of the
  ECE (:mod:`medimeta.evaluate.calibration`), with the bins' counts and the ECE.

Targets are drawn by their display names and proportions in percent
(:mod:`medimeta.plots.names`). Every label is drawn as plain text (no mathtext), whatever the
names hold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medimeta.errors import FormatError
from medimeta.plots._figure import (
    FONT,
    GREY,
    LIGHT_GREY,
    PALETTE,
    SEQUENTIAL,
    new_figure,
    series_colour,
    series_style,
    wrap,
)
from medimeta.plots.names import (
    method_label,
    metric_axis,
    metric_name,
    predictions_label,
    target_labels,
)
from medimeta.plots.rundirs import load_records
from medimeta.runs.model import RunRecord

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _plain(fig: Figure) -> Figure:
    """Names are data: no text of the figure is parsed as mathtext (a ``$`` in a class or
    dataset name is drawn as it is)."""
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        text.set_parse_math(False)
    return fig


def shots_curves(results: Sequence[str | Path | RunRecord], *, metric: str = "auroc") -> Figure:
    """``metric`` against shots per target (panels) and method/backbone (lines, 95 % bands)."""
    records = load_records(results)
    if not records:
        raise FormatError("results", "no few-shot run records to plot")
    targets = sorted({r.target_id for r in records})
    shown = target_labels(records)
    lines = sorted({(method_label(r), str(r.backbone)) for r in records})
    cols = min(3, len(targets))
    rows = math.ceil(len(targets) / cols)
    fig = new_figure(3.2 * cols + 0.4, 2.6 * rows + 0.6, constrained=True)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).reshape(-1)
    ylabel, scale = metric_axis(metric)
    for ax, target in zip(axes, targets, strict=False):
        for k, (row, backbone) in enumerate(lines):
            points = sorted(
                (r.shots or 0, *r.metric(metric))
                for r in records
                if r.target_id == target and (method_label(r), str(r.backbone)) == (row, backbone)
            )
            points = [p for p in points if math.isfinite(p[1])]
            if not points:
                continue
            x = np.array([p[0] for p in points], float)
            mean = scale * np.array([p[1] for p in points])
            half = scale * np.array([p[2] for p in points])
            colour = series_colour(k)
            ax.plot(x, mean, marker="o", markersize=3, color=colour, linestyle=series_style(k),
                    label=f"{row} ({backbone})")  # fmt: skip
            ax.fill_between(x, mean - half, mean + half, color=colour, alpha=0.18, linewidth=0)
        ax.set_xscale("log")
        ax.set_xticks(sorted({float(r.shots or 1) for r in records}))
        ax.get_xaxis().set_major_formatter("{x:.0f}")
        ax.set_xlabel("shots per class (log scale)", fontsize=FONT)
        ax.set_ylabel(ylabel, fontsize=FONT)
        ax.set_title(wrap(shown[target], 3.0, 9), fontsize=9, loc="left")
        ax.tick_params(labelsize=FONT - 1)
        ax.grid(alpha=0.3, linewidth=0.5, color=LIGHT_GREY)
    for ax in axes[len(targets) :]:
        ax.set_axis_off()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=FONT - 1,
                        frameon=False)  # fmt: skip
    return _plain(fig)


def task_heatmap(
    results: Sequence[str | Path | RunRecord],
    *,
    metric: str = "auroc",
    shots: int | None = None,
    columns: str = "backbone",
) -> Figure:
    """Targets x backbones (``columns="method"``: x methods) of one shot level (default: the
    largest), each cell the mean of ``metric`` over its episodes."""
    records = load_records(results)
    if not records:
        raise FormatError("results", "no few-shot run records to plot")
    shots = shots if shots is not None else max(int(r.shots or 0) for r in records)
    chosen = [r for r in records if (r.shots or 0) == shots]
    key = (lambda r: str(r.backbone)) if columns == "backbone" else method_label
    targets = sorted({r.target_id for r in chosen})
    shown = target_labels(chosen)
    cols = sorted({key(r) for r in chosen})
    ylabel, scale = metric_axis(metric)
    grid = np.full((len(targets), len(cols)), np.nan)
    for r in chosen:
        grid[targets.index(r.target_id), cols.index(key(r))] = scale * r.metric(metric)[0]
    fig = new_figure(1.8 + 1.3 * len(cols), 1.3 + 0.45 * len(targets), constrained=True)
    ax = fig.add_subplot()
    image = ax.imshow(grid, cmap=SEQUENTIAL, aspect="auto")
    for (i, j), value in np.ndenumerate(grid):
        if math.isfinite(value):
            text = f"{value:.1f}" if scale == 100 else f"{value:.3f}"
            colour = "white" if value < np.nanmean(grid) else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize=FONT - 1, color=colour)
    ax.set_xticks(range(len(cols)), [wrap(c, 1.1, FONT - 1) for c in cols], fontsize=FONT - 1)
    ax.set_yticks(range(len(targets)), [shown[t] for t in targets], fontsize=FONT - 1)
    ax.set_xlabel("backbone" if columns == "backbone" else "method", fontsize=FONT)
    ax.set_title(f"{metric_name(metric)} at {shots} shots per class", fontsize=9, loc="left")
    bar = fig.colorbar(image, ax=ax, shrink=0.8)
    bar.set_label(ylabel, fontsize=FONT)
    return _plain(fig)


def reliability_diagram(predictions: str | Path, *, title: str | None = None) -> Figure:
    """Accuracy against confidence of a prediction file (all its rows pooled; a few-shot run's
    query predictions), in the ECE's 15 bins."""
    from medimeta.catalog.tasks import TaskTarget
    from medimeta.evaluate.calibration import expected_calibration_error, reliability, top_label
    from medimeta.evaluate.predictions import read_predictions

    preds = read_predictions(predictions)
    target = TaskTarget.from_value(preds.target)
    binary = target in (TaskTarget.BINARY_CLASSIFICATION, TaskTarget.MULTILABEL_CLASSIFICATION)
    confidence, correct = top_label(preds.labels, preds.metric_scores(), binary)
    bars = reliability(confidence, correct)
    ece = expected_calibration_error(confidence, correct)
    fig = new_figure(4.2, 4.0, constrained=True)
    top, bottom = fig.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    edges = np.linspace(0, 100, len(bars["count"]) + 1)
    width = edges[1] - edges[0]
    acc = 100 * np.nan_to_num(np.array(bars["accuracy"]))
    top.bar(edges[:-1], acc, width=width, align="edge", color=PALETTE[0], edgecolor="white",
            label="accuracy in the bin")  # fmt: skip
    top.plot([0, 100], [0, 100], linestyle="--", color=GREY, linewidth=0.8, label="calibrated")
    top.set_ylabel("accuracy (%)", fontsize=FONT)
    top.set_ylim(0, 100)
    top.legend(fontsize=FONT - 1, frameon=False, loc="upper left")
    name = predictions_label(preds.dataset_id, preds.task_name)
    head = title or f"{name} ({len(confidence):,} predictions)"
    top.set_title(wrap(f"{head}; ECE {ece:.3f}", 3.8, 9), fontsize=9, loc="left")
    bottom.bar(edges[:-1], bars["count"], width=width, align="edge", color=PALETTE[1])
    bottom.set_xlabel("confidence: probability of the predicted class (%)", fontsize=FONT)
    bottom.set_ylabel("predictions (count)", fontsize=FONT)
    bottom.set_xlim(0, 100)
    for ax in (top, bottom):
        ax.tick_params(labelsize=FONT - 1)
    return _plain(fig)
