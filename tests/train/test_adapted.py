"""Foundation-model adaptation per episode (lora, vpt, finetune) and simpleshot on a tiny random
ViT made in the test: training takes them from chance to AUROC >= 0.9 on a small separable
dataset; on real BUSI episodes each runs and its results carry balanced accuracy, ECE and
what it trained."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from medimeta.evaluate.metrics import UndefinedMetricWarning
from medimeta.runs.record import read_run
from medimeta.train.fewshot import FewShotConfig, run_fewshot
from medimeta.train.settings import EpisodePlan, RunSettings
from models.hf_helpers import save_tiny
from train.train_toys import make_learnable

ADAPTED = ("lora", "vpt", "finetune")


@pytest.fixture(scope="module")
def vit(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("tiny-vit")
    save_tiny("vit", folder)
    return f"hf:{folder}"


@pytest.fixture(scope="module")
def separable(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three classes by brightness (plus noise and random squares), 60 RGB images."""
    root = tmp_path_factory.mktemp("separable")
    make_learnable(root, "learn", splits={"train": 60}, channels=3, noise=10.0)
    return root


def _run(root: Path, target: str, out: Path, method: str, backbone: str, **options: object):
    cfg = FewShotConfig(method=method, backbone=backbone, pretrained=True).with_overrides(**options)
    plan = EpisodePlan(shots=5, queries=5, episodes=3, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return run_fewshot(root, target, cfg, episodes=plan, run=RunSettings(out))


@pytest.mark.parametrize("method", ADAPTED)
def test_training_takes_the_adapted_model_from_chance_to_separating(
    method: str, vit: str, separable: Path, tmp_path: Path
) -> None:
    target = "learn:case category"
    untrained = _run(separable, target, tmp_path / "0", method, vit, finetune_steps=0)
    assert untrained.summary["auroc"]["mean"] == pytest.approx(0.5)  # zero head: chance
    lr = {"finetune": 1e-3}.get(method)  # the FM protocol's 1e-4 is for real pretrained models
    trained = _run(separable, target, tmp_path / "1", method, vit, finetune_lr=lr)
    assert trained.summary["auroc"]["mean"] >= 0.9, trained.summary["auroc"]
    share = read_run(tmp_path / "1").details["method_details"]["trained_share"]
    assert share == 1.0 if method == "finetune" else 0.0 < share < 1.0


@pytest.mark.realdata
@pytest.mark.parametrize("method", [*ADAPTED, "simpleshot"])
def test_each_runs_on_busi_with_honest_metrics(
    method: str, vit: str, busi_root: Path, tmp_path: Path
) -> None:
    steps = {} if method == "simpleshot" else {"finetune_steps": 5}
    record = _run(busi_root, "bus:case category", tmp_path / method, method, vit, **steps)
    for metric in ("auroc", "balanced_accuracy", "ece", "brier", "f1_macro"):
        assert metric in record.summary and record.summary[metric]["n"] == 3, metric
    assert any(k.startswith("recall_class_") for k in record.summary)
    again = read_run(tmp_path / method)
    assert again.protocol["config"]["method"] == method
    if method != "simpleshot":
        assert again.details["method_details"]["backbone_parameters"] > 0
