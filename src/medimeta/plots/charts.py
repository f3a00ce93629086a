"""Bar charts of a dataset: samples per class of each task and per split, with counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from medimeta.catalog import SPLIT_NAMES, TaskTarget
from medimeta.plots._figure import (
    FONT,
    LIGHT_GREY,
    PALETTE,
    SPLIT_COLOURS,
    label_bars,
    new_figure,
    wrap,
)
from medimeta.plots.source import select
from medimeta.plots.stats import class_counts, split_counts

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _panel_height(n_classes: int, n_splits: int) -> float:
    return 0.45 + n_classes * (0.12 + 0.13 * n_splits)


def label_distribution(
    dataset: Any,
    tasks: Sequence[str] | None = None,
    *,
    original: bool = False,
    width: float = 7.0,
) -> Figure:
    """Samples per class of each task (multi-label: positives per label), one horizontal bar
    chart per task with a bar per split and the count at its end. ``dataset``: a dataset
    folder, ``DatasetFolder`` or a dataset object (its folder; all splits are counted);
    ``original`` counts the original splits."""
    folder = select(dataset).folder
    specs = [folder.task(t) for t in tasks] if tasks is not None else list(folder.spec.tasks)
    counts = [class_counts(folder, t, original=original) for t in specs]
    heights = [_panel_height(c.task.num_classes, max(len(c.splits), 1)) for c in counts]
    fig = new_figure(width, sum(heights) + 0.75, constrained=True)
    axes = fig.subplots(len(counts), 1, squeeze=False, height_ratios=heights)[:, 0]
    kind = "original splits" if original else "splits"
    fig.suptitle(f"{folder.spec.name} ({folder.id}): samples per class and {kind}", fontsize=10)
    for ax, cc in zip(axes, counts, strict=True):
        n = cc.task.num_classes
        y = np.arange(n)
        bar_h = 0.8 / max(len(cc.splits), 1)
        for i, split in enumerate(cc.splits):
            bars = ax.barh(
                y + (i - (len(cc.splits) - 1) / 2) * bar_h,
                cc.counts[i],
                height=bar_h,
                color=SPLIT_COLOURS.get(split, LIGHT_GREY),
                label=f"{split} ({cc.totals[i]:,})",
            )
            label_bars(ax, [bars])
        ax.set_yticks(y, [wrap(name, 2.0) for name in cc.names], fontsize=FONT)
        ax.invert_yaxis()
        what = (
            "positives per label"
            if cc.task.target is TaskTarget.MULTILABEL_CLASSIFICATION
            else "samples per class"
        )
        ax.set_title(f"{cc.task.name} ({cc.task.target.short}): {what}", fontsize=9, loc="left")
        multilabel = cc.task.target is TaskTarget.MULTILABEL_CLASSIFICATION
        ax.set_xlabel("images with the label" if multilabel else "images", fontsize=FONT)
        ax.tick_params(axis="x", labelsize=FONT)
        ax.margins(x=0.15)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:  # the splits are the same in every panel: one legend for the figure
        fig.legend(
            handles,
            labels,
            loc="outside lower center",
            ncols=len(handles),
            fontsize=FONT,
            frameon=False,
        )
    return fig


def split_distribution(dataset: Any, *, width: float = 5.0) -> Figure:
    """Samples per split and per original split, as grouped bars with counts."""
    folder = select(dataset).folder
    fig = new_figure(width, 2.4, constrained=True)
    ax = fig.add_subplot()
    x = np.arange(len(SPLIT_NAMES))
    for i, (kind, original) in enumerate((("splits", False), ("original splits", True))):
        counts = split_counts(folder, original=original)
        bars = ax.bar(
            x + (i - 0.5) * 0.38,
            [counts.get(s, 0) for s in SPLIT_NAMES],
            width=0.38,
            color=(PALETTE[0], LIGHT_GREY)[i],
            label=kind,
        )
        label_bars(ax, [bars])
    ax.set_xticks(x, SPLIT_NAMES, fontsize=FONT)
    ax.tick_params(axis="y", labelsize=FONT)
    ax.set_ylabel("images", fontsize=FONT)
    ax.margins(y=0.18)
    ax.legend(fontsize=FONT - 1, frameon=False)
    title = f"{folder.spec.name} ({folder.id}): {folder.num_samples:,} images per split"
    ax.set_title(wrap(title, width - 0.4, 9), fontsize=9, loc="left")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig
