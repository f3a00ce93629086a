"""Subgroup report: per-group metrics equal metrics on the subset; worst group and gap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medimeta.errors import UnknownNameError
from medimeta.evaluate.compute import compute_metrics
from medimeta.evaluate.predictions import Predictions
from medimeta.evaluate.subgroups import group_values, report_markdown, subgroup_report


def _case() -> tuple[Predictions, pd.DataFrame]:
    """Binary task: perfect scores for site A, inverted (failing) scores for site B."""
    rng = np.random.default_rng(0)
    n = 120
    y = np.arange(n) % 2
    site = np.where(np.arange(n) < 80, "A", "B")
    s = np.where(y == 1, 0.7, 0.3) + rng.normal(0, 0.05, n)
    s[site == "B"] = 1.0 - s[site == "B"]
    idx = rng.permutation(200)[:n]
    frame = pd.DataFrame(
        {
            "filepath": [f"images/{i:06d}.tiff" for i in range(200)],
            "site": ["?"] * 200,
            "age": np.nan,
            "sex": "F",
        }
    )
    frame.loc[idx, "site"] = site
    frame.loc[idx, "age"] = rng.integers(20, 90, n)
    frame.loc[idx[:10], "sex"] = "M"
    frame.loc[idx[:3], "age"] = np.nan
    preds = Predictions(idx, y, s, "BINARY_CLASSIFICATION", "toy", "Malignancy", "test")
    return preds, frame


def test_groups_match_metrics_on_subsets_and_flag_the_failing_site() -> None:
    preds, frame = _case()
    report = subgroup_report(preds, frame, ["site"], n_boot=200, seed=1)
    grouping = report["groupings"][0]
    by_name = {g["group"]: g for g in grouping["groups"]}
    assert {k: v["n"] for k, v in by_name.items()} == {"A": 80, "B": 40}
    for name in ("A", "B"):
        mask = frame.set_index("filepath").iloc[preds.indices]["site"].to_numpy() == name
        expected = compute_metrics(preds.target, preds.labels[mask], preds.scores[mask, 0])
        assert by_name[name]["metrics"] == pytest.approx(expected)
    assert by_name["A"]["metrics"]["auroc"] == 1.0 and by_name["B"]["metrics"]["auroc"] == 0.0
    assert grouping["worst_group"] == "B" and grouping["best_worst_gap"] == pytest.approx(1.0)
    overall = report["overall"]["metrics"]["auroc"]
    assert grouping["worst_gap"] == pytest.approx(overall)
    low, high = by_name["A"]["ci"]
    assert low <= 1.0 <= high + 1e-12
    md = report_markdown(report)
    assert "## By site" in md and "Worst group: B" in md


def test_numeric_bins_missing_values_and_intersections() -> None:
    preds, frame = _case()
    report = subgroup_report(
        preds, frame, ["age", "site+sex"], bins={"age": [0, 50, 120]}, n_boot=0, min_count=5
    )
    age, inter = report["groupings"]
    names = {g["group"]: g["n"] for g in age["groups"]}
    assert names["<missing>"] == 3 and sum(names.values()) == 120
    assert set(names) == {"[0.0, 50.0)", "[50.0, 120.0)", "<missing>"}
    assert {g["group"] for g in inter["groups"]} <= {"A & F", "A & M", "B & F", "B & M"}
    assert inter["by"] == "site + sex"
    assert all(np.isnan(g["ci"][0]) for g in age["groups"])  # n_boot=0: no intervals


def test_quantile_bins_and_unknown_column() -> None:
    values = pd.Series(np.arange(100, dtype=float))
    groups = group_values(values, quantiles=4, max_categories=5)
    assert groups.value_counts().to_list() == [25, 25, 25, 25]
    preds, frame = _case()
    with pytest.raises(UnknownNameError):
        subgroup_report(preds, frame, ["scanner"], n_boot=0)
