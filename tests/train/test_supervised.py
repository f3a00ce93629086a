"""Supervised training on a learnable toy task: learning, files, seeds, early stopping, resume."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from medimeta.errors import FormatError
from medimeta.evaluate.metrics import UndefinedMetricWarning
from medimeta.evaluate.predictions import read_predictions, score_predictions
from medimeta.format.reader import DatasetFolder
from medimeta.runs.record import RUN_FILE, read_run
from medimeta.train import TrainConfig, load_checkpoint, preset, train_supervised
from medimeta.train.settings import RunSettings

FAST = TrainConfig(epochs=4, batch_size=8, lr=1e-2, pretrained=False, patience=None, image_size=32)


def _train(
    root: Path, out: Path, task: str = "case category", *, resume: bool = False, **kw: object
):
    config = kw.pop("config", FAST)
    run = RunSettings(out_dir=out, resume=resume)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return train_supervised(
            root, "learn", task, backbone="tiny_cnn", config=config, run=run, **kw
        )  # type: ignore[arg-type]


def test_learns_the_toy_task_and_writes_every_file(learn_root: Path, tmp_path: Path) -> None:
    result = _train(learn_root, tmp_path, config=replace(FAST, epochs=10))
    assert result.test_metrics["auroc"] > 0.9
    for name in (
        "config.json",
        "log.csv",
        "last.safetensors",
        "best.safetensors",
        "predictions_val.csv",
        "predictions_test.csv",
        RUN_FILE,
    ):
        assert (tmp_path / name).is_file(), name
    record = read_run(tmp_path)
    assert record == result.record
    assert record.protocol["data"]["split_sizes"] == {"train": 48, "val": 12, "test": 24}
    assert record.settings["batch_size"] == 8 and record.seed == 0
    assert record.backbone == "tiny_cnn" and record.kind == "supervised"
    assert record.protocol["environment"]["toolkit"] == "medimeta-toolkit"
    assert record.summary["auroc"]["mean"] == result.test_metrics["auroc"]
    log = pd.read_csv(tmp_path / "log.csv")
    assert list(log["epoch"]) == list(range(1, 11))
    assert log["train_loss"].iloc[-1] < log["train_loss"].iloc[0]
    # the prediction file re-scores to the recorded test metrics
    preds = read_predictions(tmp_path / "predictions_test.csv")
    folder = DatasetFolder(learn_root / "learn")
    assert np.array_equal(preds.indices, folder.split_indices("test"))
    assert score_predictions(preds)["metrics"] == pytest.approx(record.details["test"]["metrics"])
    assert preds.info["checkpoint"] == "best"


@pytest.mark.parametrize(
    ("task", "ordinal"),
    [("Malignancy", "nominal"), ("finding labels", "nominal"), ("DR level", "corn")],
)
def test_every_task_target_trains(
    learn_root: Path, tmp_path: Path, task: str, ordinal: str
) -> None:
    result = _train(learn_root, tmp_path, task, config=replace(FAST, epochs=2, ordinal=ordinal))
    preds = read_predictions(tmp_path / "predictions_test.csv")
    assert preds.task_name == task and len(preds) == 24
    if task == "DR level":
        assert preds.class_keys == [0, 1, 4, 6, 8, 10]
        assert set(result.test_metrics) >= {"mae", "qwk"}
        np.testing.assert_allclose(preds.scores.sum(axis=1), 1.0, atol=1e-6)


def test_same_seed_same_run_other_seed_differs_global_rng_untouched(
    learn_root: Path, tmp_path: Path
) -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = _train(learn_root, tmp_path / "a", config=replace(FAST, epochs=2), seed=1)
    b = _train(learn_root, tmp_path / "b", config=replace(FAST, epochs=2), seed=1)
    c = _train(learn_root, tmp_path / "c", config=replace(FAST, epochs=2), seed=2)
    assert torch.equal(torch.get_rng_state(), state)
    losses = [[row["train_loss"] for row in r.history] for r in (a, b, c)]
    assert losses[0] == losses[1] and losses[0] != losses[2]


def test_early_stopping_stops_after_patience_and_keeps_best(
    learn_root: Path, tmp_path: Path
) -> None:
    # lr 0 never improves on the first validation: stop after 1 + patience epochs
    config = replace(FAST, epochs=20, lr=1e-12, patience=2)
    result = _train(learn_root, tmp_path, config=config)
    assert len(result.history) == 3
    assert result.record.details["stopped_early"] and result.record.details["best_epoch"] == 1
    assert result.record.details["selected_checkpoint"] == "best"


def test_resume_continues_exactly_and_may_extend_the_epochs(
    learn_root: Path, tmp_path: Path
) -> None:
    full = _train(learn_root, tmp_path / "full", config=replace(FAST, epochs=4))
    short = _train(learn_root, tmp_path / "short", config=replace(FAST, epochs=2))
    assert load_checkpoint(tmp_path / "short" / "last.safetensors")["state"]["epoch"] == 2
    resumed = _train(learn_root, tmp_path / "short", config=replace(FAST, epochs=4), resume=True)
    assert len(short.history) == 2
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in full.history]
    assert resumed.test_metrics == full.test_metrics


def test_resume_with_other_settings_is_refused(learn_root: Path, tmp_path: Path) -> None:
    _train(learn_root, tmp_path, config=replace(FAST, epochs=1))
    with pytest.raises(FormatError, match="other settings"):
        _train(learn_root, tmp_path, config=replace(FAST, epochs=1, lr=0.5), resume=True)


def test_no_validation_split_trains_all_epochs_and_uses_last(
    toy_root: Path, tmp_path: Path
) -> None:
    config = replace(FAST, epochs=2, patience=3)
    with pytest.warns(UserWarning, match="no validation"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        result = train_supervised(
            toy_root,
            "toy_gray",
            "case category",
            backbone="tiny_cnn",
            config=config,
            run=RunSettings(out_dir=tmp_path, resume=False),
        )
    assert result.record.details["selected_checkpoint"] == "last" and len(result.history) == 2
    assert not (tmp_path / "predictions_val.csv").exists()


def test_presets_follow_the_protocols() -> None:
    mm = preset("medmnist")
    assert (mm.batch_size, mm.lr, mm.epochs, mm.milestones, mm.gamma) == (
        128,
        1e-3,
        100,
        (50, 75),
        0.1,
    )
    assert mm.pretrained is False and mm.metrics_mode == "medmnist" and not mm.augment.active
    paper = preset("paper")
    assert paper.pretrained is True and paper.patience == 10 and paper.augment.active
    from medimeta.train.config import lr_at

    assert [lr_at(mm, e) for e in (0, 49, 50, 74, 75, 99)] == pytest.approx(
        [1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5]
    )


def test_predict_scores_large_logits_without_ties(learn_root: Path) -> None:
    # float32 sigmoid(19..21) rounds to exactly 1.0 for every sample, so AUROC would see one
    # big tie; predict() converts logits to float64 before the sigmoid.
    from torch import nn

    from medimeta.data.pixels import Normalizer
    from medimeta.data.splits import load_split
    from medimeta.train.evaluation import predict
    from medimeta.train.model import build_classifier

    class Saturating(nn.Module):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return 20.0 + torch.tanh(z)

    folder = DatasetFolder(learn_root / "learn")
    task = folder.task("Malignancy")
    model = build_classifier("tiny_cnn", task, in_chans=1)
    model.head = nn.Sequential(model.head, Saturating())
    data = load_split(folder, task, "test", image_size=None)
    scores = predict(model, data, Normalizer((0.5,), (0.5,))).predictions.scores
    assert torch.sigmoid(torch.tensor([19.5, 20.5])).unique().numel() == 1  # the float32 tie
    assert np.unique(scores).size > len(data.indices) // 2
    assert np.all(scores < 1.0)
