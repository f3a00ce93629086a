"""Charts of datasets and runs, the task table, and matplotlib's import and backend state."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from plot_toys import make_fewshot_run, make_runs, make_supervised_run

from medimeta.catalog import get_catalog
from medimeta.catalog.render import latex_escape, task_table_latex, task_table_markdown
from medimeta.errors import FormatError
from medimeta.format.reader import DatasetFolder
from medimeta.plots import (
    fewshot_episodes,
    fewshot_intervals,
    label_distribution,
    roc_curves,
    split_distribution,
    training_curves,
)
from medimeta.plots.results import roc_points
from medimeta.plots.stats import class_counts
from medimeta.runs.record import find_run_folders, read_run


def _bar_counts(ax) -> list[int]:  # type: ignore[no-untyped-def]
    return [round(p.get_width()) for p in ax.patches]


def test_label_distribution_one_panel_per_task_with_counts(toy_root: Path) -> None:
    folder = DatasetFolder(toy_root / "toy_rgb")
    fig = label_distribution(folder)
    assert len(fig.axes) == 4
    cc = class_counts(folder, folder.task("case category"))
    assert cc.splits == ("train", "val", "test") and sum(cc.totals) == 18
    assert sorted(_bar_counts(fig.axes[0])) == sorted(cc.counts.reshape(-1).tolist())
    labels = [t.get_text() for t in fig.axes[0].texts]  # bar_label counts
    assert len(labels) == cc.counts.size
    ml = class_counts(folder, folder.task("finding labels"))
    raw = folder.labels("finding labels")
    assert ml.counts.sum() == raw.sum()
    one = label_distribution(folder, ["Malignancy"], original=True)
    assert len(one.axes) == 1


def test_split_distribution_counts(toy_root: Path) -> None:
    fig = split_distribution(DatasetFolder(toy_root / "toy_rgb"))
    heights = [int(p.get_height()) for p in fig.axes[0].patches]
    assert heights == [10, 3, 5, 13, 0, 5]


def test_roc_points_match_sklearn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.random(200) + 0.3 * y, 2)  # ties on purpose
    fpr, tpr, auc = roc_points(y, s)
    assert auc == pytest.approx(metrics.roc_auc_score(y, s))
    ref_fpr, ref_tpr, _ = metrics.roc_curve(y, s, drop_intermediate=False)
    assert np.allclose(fpr, ref_fpr) and np.allclose(tpr, ref_tpr)
    assert np.isnan(roc_points(np.ones(5), np.arange(5.0))[2])


def test_training_curves_and_roc_of_a_run(tmp_path: Path) -> None:
    run = make_supervised_run(tmp_path / "run", epochs=4)
    fig = training_curves(run)
    loss_ax, metric_ax = fig.axes
    assert [len(line.get_xdata()) for line in loss_ax.lines[:2]] == [4, 4]
    assert {t.get_text() for t in metric_ax.get_legend().get_texts()} == {
        "AUROC (monitored)",
        "accuracy",
    }
    assert max(metric_ax.lines[0].get_ydata()) > 60  # percent, as the axis says
    assert metric_ax.get_ylabel() == "validation metric (%)"
    assert fig.get_suptitle().startswith("Supervised on toy_gray: case category (resnet18")
    roc = roc_curves(run / "predictions_test.csv")
    legend = [t.get_text() for t in roc.axes[0].get_legend().get_texts()]
    assert len(legend) == 3 and legend[0].startswith("normal (")
    with pytest.raises(FormatError, match="training log"):
        training_curves(tmp_path)


def test_fewshot_intervals_per_method_and_target(tmp_path: Path) -> None:
    base = make_runs(tmp_path / "runs")
    runs = [p for p in find_run_folders([base]) if read_run(p).kind == "fewshot"]
    fig = fewshot_intervals(runs)
    ax = fig.axes[0]
    assert [" ".join(t.get_text().split()) for t in ax.get_yticklabels()] == [
        "Toy Dataset (toy_gray): case category",  # display names; the ids where names clash
        "Toy Dataset (toy_rgb): case category",
    ]
    legend = {t.get_text() for t in fig.legends[0].get_texts()}
    assert legend == {
        "ProtoNet (efficientnet_lite0, 2-shot)",
        "Linear probe (efficientnet_lite0, 2-shot)",
    }
    assert len(ax.containers) == 3  # one error bar per run
    hist = fewshot_episodes(make_fewshot_run(tmp_path / "one"))
    assert sum(p.get_height() for p in hist.axes[0].patches if p.get_height() > 0) >= 8
    with pytest.raises(FormatError, match="not a few-shot run"):
        fewshot_intervals([base / "toy_gray" / "case_category" / "resnet18"])


def test_task_tables_from_the_catalog() -> None:
    cat = get_catalog()
    md = task_table_markdown()
    assert md.count("\n") == 2 + cat.num_tasks
    tex = task_table_latex()
    assert "\\begin{tabular}" in tex and tex.count(" \\\\\n") == 1 + cat.num_tasks
    assert "dr\\_regular" in tex and "dr_regular" not in tex.replace("dr\\_regular", "")
    assert latex_escape("a & b_c 50% #1 {x} ~ ^ \\") == (
        "a \\& b\\_c 50\\% \\#1 \\{x\\} \\textasciitilde{} \\textasciicircum{} \\textbackslash{}"
    )


def test_matplotlib_is_lazy_and_pyplot_untouched(toy_root: Path) -> None:
    code = (
        "import sys, medimeta, medimeta.data, medimeta.plots, medimeta.cli.app\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported at import time'\n"
        "import matplotlib\n"
        "matplotlib.use('svg')\n"
        "from medimeta.plots import dataset_overview, figure_png\n"
        f"figure_png(dataset_overview({str(toy_root)!r}))\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "assert matplotlib.get_backend() == 'svg'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
