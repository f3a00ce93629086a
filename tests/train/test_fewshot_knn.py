"""The kNN few-shot method: the weighted cosine vote by hand, every task target, settings."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from medimeta.evaluate.metrics import UndefinedMetricWarning
from medimeta.train.fewshot import EpisodePlan, FewShotConfig, RunSettings, run_fewshot
from medimeta.train.fewshot.methods.knn import knn_scores
from medimeta.train.fewshot.options import SourceOptions


def test_weighted_vote_by_hand() -> None:
    support = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 2])
    query = torch.tensor([[1.0, 0.1]], dtype=torch.float64)
    got = knn_scores(support, labels, query, "MULTICLASS_CLASSIFICATION", 3, k=3, temperature=0.5)
    q = query[0] / query[0].norm()
    sims = (support / support.norm(dim=1, keepdim=True)) @ q
    top = sims.topk(3).indices.tolist()  # samples 0, 1, 2 (the last is opposite)
    w = {j: math.exp(float(sims[j]) / 0.5) for j in top}
    total = sum(w.values())
    expected = [(w[0] + w[1]) / total, w[2] / total, 0.0]
    np.testing.assert_allclose(got.numpy()[0], expected, rtol=1e-12)
    assert got.dtype == torch.float64


def test_binary_multilabel_and_k_larger_than_the_support() -> None:
    support = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1]])
    query = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    binary = knn_scores(
        support, torch.tensor([[1], [0], [1]]), query, "BINARY_CLASSIFICATION", 2, k=50
    )
    assert binary.shape == (2, 1) and binary[0, 0] > 0.5 > binary[1, 0]
    multi = knn_scores(
        support, torch.tensor([[1, 0], [0, 1], [1, 1]]), query, "MULTILABEL_CLASSIFICATION", 2, k=2
    )
    assert multi.shape == (2, 2) and torch.all((multi >= 0) & (multi <= 1))
    assert multi[0, 0] == pytest.approx(1.0)  # both neighbours of query 0 carry label 0
    with pytest.raises(ValueError, match="knn_k"):
        FewShotConfig(method="knn", knn_k=0)


def test_knn_runs_on_every_target_and_records_its_settings(
    fewshot_root: Path, tmp_path: Path
) -> None:
    cfg = FewShotConfig(method="knn", backbone="tiny_cnn", pretrained=False, image_size=16, knn_k=3)
    assert cfg.relevant()["knn_k"] == 3 and "sources" not in cfg.relevant()
    for task in ("case category", "Malignancy", "finding labels", "DR level"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            warnings.simplefilter("ignore", UserWarning)
            rec = run_fewshot(
                fewshot_root,
                f"target:{task}",
                cfg,
                episodes=EpisodePlan(shots=2, queries=3, episodes=2),
                run=RunSettings(out_dir=tmp_path / task),
            )
        assert rec is not None and rec.paper_name == "ImageNet (kNN)"
        assert rec.settings["knn_temperature"] == 0.07
        assert np.isfinite(rec.summary["auroc"]["mean"])


def test_sources_enter_the_settings_only_when_set() -> None:
    plain = FewShotConfig(method="mm-pt")
    assert "sources" not in plain.relevant() and "exclude_sources" not in plain.relevant()
    chosen = plain.with_overrides(sources=["a:b"], exclude_sources=("c",))
    assert chosen.relevant()["sources"] == ["a:b"] and chosen.relevant()["exclude_sources"] == ["c"]
    assert chosen.options_as(SourceOptions).sources == ("a:b",)
