"""The grid figures: a metric against shots with bands, the task x backbone heatmap and the
reliability diagram; names with mathtext syntax are drawn as plain text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medimeta.errors import FormatError
from medimeta.evaluate.predictions import Predictions, write_predictions
from medimeta.plots import reliability_diagram, save_figure, shots_curves, task_heatmap
from medimeta.runs.model import RunRecord, TargetRef


def _record(target: str, method: str, backbone: str, shots: int, auroc: float) -> RunRecord:
    ds, _, task = target.partition(":")
    values = np.clip(auroc + np.linspace(-0.05, 0.05, 10), 0, 1)
    return RunRecord(
        kind="fewshot",
        target=TargetRef(ds, task, "MULTICLASS_CLASSIFICATION"),
        method=method,
        paper_name=method,
        backbone=backbone,
        shots=shots,
        summary={"auroc": {"mean": float(values.mean()), "ci": 0.03, "n": 10}},
        per_episode=[{"episode": i, "metrics": {"auroc": float(v)}} for i, v in enumerate(values)],
    )


def _grid() -> list[RunRecord]:
    out = []
    for target in ("bus:case category", "pbc:cell class", r"weird:$\foo{$"):
        for backbone, base in (("vit", 0.7), (r"$x_{", 0.6)):
            for shots in (1, 5, 10):
                out.append(_record(target, "linear-probe", backbone, shots, base + shots / 100))
    return out


def test_shots_curves_one_panel_per_target_with_bands(tmp_path: Path) -> None:
    fig = shots_curves(_grid())
    panels = [ax for ax in fig.axes if ax.has_data()]
    assert len(panels) == 3
    assert len(panels[0].lines) == 2 and len(panels[0].collections) == 2  # lines and bands
    assert [float(x) for x in panels[0].lines[0].get_xdata()] == [1.0, 5.0, 10.0]
    assert panels[0].get_ylabel() == "AUROC (%)"
    save_figure(fig, tmp_path / "s.png")  # mathtext in names would raise here
    with pytest.raises(FormatError, match="no few-shot"):
        shots_curves([])


def test_heatmap_holds_the_means(tmp_path: Path) -> None:
    records = _grid()
    fig = task_heatmap(records, shots=5)
    ax = fig.axes[0]
    texts = sorted(t.get_text() for t in ax.texts)
    assert len(texts) == 6 and "75.0" in texts  # 0.7 + 5/100 at 5 shots
    save_figure(fig, tmp_path / "h.png")


def test_reliability_diagram_of_a_prediction_file(tmp_path: Path) -> None:
    gen = np.random.default_rng(0)
    probs = gen.dirichlet(np.ones(3), 60)
    labels = probs.argmax(1)
    labels[:15] = (labels[:15] + 1) % 3  # a quarter wrong
    preds = Predictions(
        np.arange(60), labels, probs, "MULTICLASS_CLASSIFICATION", "toy", "t", "test",
        ["a", "b", "c"], [0, 1, 2],
    )  # fmt: skip
    path = write_predictions(tmp_path / "predictions_test.csv", preds)
    fig = reliability_diagram(path)
    top, bottom = fig.axes[:2]
    assert sum(p.get_height() for p in bottom.patches) == 60
    assert "ECE" in top.get_title(loc="left")
    save_figure(fig, tmp_path / "r.png")
