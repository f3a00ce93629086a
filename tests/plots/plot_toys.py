"""Run folders in the exact layout ``medimeta train`` and ``medimeta fewshot`` write, with
generated numbers (see src/medimeta/train/supervised.py, train/fewshot/runner.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from medimeta.evaluate.predictions import Predictions, write_predictions
from medimeta.runs.convert import fewshot_record, supervised_record
from medimeta.runs.record import write_run

CLASSES = ["normal", "benign", "malignant"]


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def _predictions(rng: np.random.Generator, n: int, split: str) -> Predictions:
    labels = rng.integers(0, 3, n)
    logits = rng.normal(0, 1, (n, 3))
    logits[np.arange(n), labels] += 1.5
    scores = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return Predictions(
        np.arange(n),
        labels,
        scores,
        "MULTICLASS_CLASSIFICATION",
        "toy_gray",
        "case category",
        split,
        CLASSES,
        [0, 1, 2],
    )


def make_supervised_run(folder: Path, *, seed: int = 0, epochs: int = 5) -> Path:
    """config.json, log.csv, the run record and predictions_{val,test}.csv of a 3-class run."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["epoch,lr,train_loss,val_loss,val_auroc,val_accuracy,best_epoch,seconds"]
    for e in range(1, epochs + 1):
        auroc = 0.6 + 0.05 * e + 0.01 * rng.random()
        rows.append(
            f"{e},0.001,{1.2 / e:.4f},{1.3 / e + 0.05:.4f},{auroc:.4f},{auroc - 0.1:.4f},{e},1.5"
        )
    (folder / "log.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    protocol = {
        "kind": "supervised",
        "data": {
            "dataset_id": "toy_gray",
            "task": "case category",
            "classes": dict(enumerate(CLASSES)),
        },
        "backbone": {"name": "resnet18"},
        "config": {"epochs": epochs, "batch_size": 8, "lr": 0.001, "monitor": "auroc"},
        "seed": seed,
    }
    _write_json(folder / "config.json", protocol)
    result = {
        **protocol,
        "selected_checkpoint": "best",
        "selected_epoch": epochs - 1,
        "best_epoch": epochs - 1,
        "best_val": 0.85,
        "epochs_run": epochs,
        "stopped_early": False,
        "val": {"loss": 0.4, "metrics": {"auroc": 0.85, "accuracy": 0.7}, "n": 30},
        "test": {"loss": 0.5, "metrics": {"auroc": 0.8, "accuracy": 0.65}, "n": 40},
        "timings": {"train_s": 7.5},
    }
    write_run(folder, supervised_record(result))
    write_predictions(folder / "predictions_val.csv", _predictions(rng, 30, "val"))
    write_predictions(folder / "predictions_test.csv", _predictions(rng, 40, "test"))
    return folder


def make_fewshot_run(
    folder: Path, *, method: str = "protonet", dataset_id: str = "toy_gray", mean: float = 0.7
) -> Path:
    """The run record of a few-shot run over 8 episodes."""
    rng = np.random.default_rng(len(method))
    values = np.clip(mean + rng.normal(0, 0.08, 8), 0, 1)
    names = {"protonet": "ProtoNet", "linear-probe": "Linear probe"}
    record = {
        "kind": "fewshot",
        "method": method,
        "paper_name": names.get(method, method),
        "target": {
            "dataset_id": dataset_id,
            "task": "case category",
            "target": "MULTICLASS_CLASSIFICATION",
            "dataset_name": "Toy Dataset",
        },
        "episodes": {
            "file": str(folder / "episodes.json"),
            "split": "all",
            "seed": 0,
            "settings": {"shots": 2, "queries": 2},
            "in_file": 8,
            "evaluated": 8,
        },
        "config": {"backbone": "efficientnet_lite0", "method": method},
        "confidence": 0.95,
        "summary": {
            "auroc": {"mean": float(values.mean()), "ci": 0.05, "n": 8},
            "accuracy": {"mean": float(values.mean()) - 0.2, "ci": 0.06, "n": 8},
        },
        "per_episode": [
            {
                "episode": i,
                "metrics": {"auroc": float(v), "accuracy": float(v) - 0.2},
                "seconds": 0.1,
            }
            for i, v in enumerate(values)
        ],
        "timings": {"total_s": 3.0, "episode_mean_s": 0.1},
    }
    write_run(folder, fewshot_record(record))
    return folder


def make_runs(base: Path) -> Path:
    """A folder of runs: one supervised and two few-shot methods on two targets."""
    make_supervised_run(base / "toy_gray" / "case_category" / "resnet18")
    make_fewshot_run(base / "fewshot" / "toy_gray" / "protonet")
    make_fewshot_run(
        base / "fewshot" / "toy_gray" / "linear-probe", method="linear-probe", mean=0.6
    )
    make_fewshot_run(base / "fewshot" / "toy_rgb" / "protonet", dataset_id="toy_rgb", mean=0.8)
    return base
