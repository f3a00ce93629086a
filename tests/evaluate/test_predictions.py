"""Prediction files round-trip, re-score, and carry episodes; checkpoints hold no pickle."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from medimeta.errors import FormatError, ShapeError
from medimeta.evaluate.ci import mean_ci
from medimeta.evaluate.compute import compute_metrics
from medimeta.evaluate.predictions import (
    Predictions,
    read_predictions,
    score_predictions,
    write_predictions,
)
from medimeta.train.checkpoint import load_checkpoint, save_checkpoint

RNG = np.random.default_rng(0)


def _preds(target: str, n: int = 40, c: int = 3) -> Predictions:
    if target == "BINARY_CLASSIFICATION":
        c = 2  # class_names of a binary task: its two classes
        labels, scores = RNG.integers(0, 2, n), RNG.random(n)
    elif target == "MULTILABEL_CLASSIFICATION":
        labels, scores = RNG.integers(0, 2, (n, c)), RNG.random((n, c))
    else:
        labels = np.arange(n) % c
        raw = RNG.random((n, c))
        scores = raw / raw.sum(1, keepdims=True)
    return Predictions(
        np.arange(n) * 3,
        labels,
        scores,
        target,
        "ds",
        "task",
        "test",
        [f"c{i}" for i in range(c)],
        list(range(c)),
        info={"seed": 1},
    )


@pytest.mark.parametrize(
    "target",
    [
        "BINARY_CLASSIFICATION",
        "MULTICLASS_CLASSIFICATION",
        "MULTILABEL_CLASSIFICATION",
        "ORDINAL_REGRESSION",
    ],
)
def test_round_trip_is_exact_and_rescores(tmp_path: Path, target: str) -> None:
    p = _preds(target)
    path = write_predictions(tmp_path / "p.csv", p)
    q = read_predictions(path)
    assert np.array_equal(q.indices, p.indices) and np.array_equal(q.labels, p.labels)
    assert np.array_equal(q.scores, p.scores)  # repr() of floats round-trips exactly
    assert (q.target, q.dataset_id, q.split, q.info) == (p.target, "ds", "test", {"seed": 1})
    expected = compute_metrics(target, p.labels, p.metric_scores())
    assert score_predictions(q)["metrics"] == expected
    mm = score_predictions(q, mode="medmnist")["metrics"]
    assert set(mm) == {"auroc", "accuracy"}


def test_episode_files_give_per_episode_metrics_and_ci(tmp_path: Path) -> None:
    p = _preds("MULTICLASS_CLASSIFICATION", n=60)
    p.episodes = np.repeat(np.arange(4), 15)
    q = read_predictions(write_predictions(tmp_path / "e.csv", p))
    out = score_predictions(q)
    assert out["n_episodes"] == 4
    per = [
        compute_metrics(p.target, p.labels[p.episodes == e], p.scores[p.episodes == e])["auroc"]
        for e in range(4)
    ]
    assert [e["metrics"]["auroc"] for e in out["episodes"]] == pytest.approx(per)
    mean, half = mean_ci(per)
    assert out["summary"]["auroc"]["mean"] == pytest.approx(mean)
    assert out["summary"]["auroc"]["ci"] == pytest.approx(half)


def test_bad_files_and_shapes_are_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("index,score\n1,0.5\n")
    with pytest.raises(FormatError, match="not a medimeta prediction file"):
        read_predictions(bad)
    with pytest.raises(ShapeError, match="one row per sample"):
        Predictions(np.arange(3), np.zeros(2), np.zeros((3, 1)), "BINARY_CLASSIFICATION")


def test_checkpoint_is_safetensors_and_restores_model_and_optimizer(tmp_path: Path) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(5, 4)).sum().backward()
    opt.step()
    path = save_checkpoint(tmp_path / "c.safetensors", model, opt, {"epoch": 3, "x": float("nan")})
    assert not zipfile.is_zipfile(path)  # not a torch.save (pickle) archive
    model2 = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    opt2 = torch.optim.Adam(model2.parameters(), lr=0.5)
    record = load_checkpoint(path, model2, opt2)
    assert record == {"epoch": 3, "x": "NaN"}
    for a, b in zip(model.state_dict().values(), model2.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert opt2.param_groups[0]["lr"] == 0.01
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert all(torch.equal(s1[k]["exp_avg"], s2[k]["exp_avg"]) for k in s1)
    with pytest.raises(FormatError):
        load_checkpoint(tmp_path / "missing.safetensors")
