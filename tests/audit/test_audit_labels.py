"""Suspect labels: confident learning (cleanlab) on cross-validated predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from audit_helpers import smooth_images, write_dataset

from fixtures.release import ToyTask
from medimeta.audit.context import DatasetFacts
from medimeta.audit.labels import suspect_labels, suspect_task
from medimeta.audit.run import AuditOptions, run_audit
from medimeta.format.reader import DatasetFolder

pytest.importorskip("cleanlab")

THREE = ToyTask("kind", "MULTICLASS_CLASSIFICATION", {0: "x", 1: "y", 2: "z"})


def _clusters(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (labels.max() + 1, 32)) * 4
    return (centres[labels] + rng.normal(0, 1, (labels.size, 32))).astype(np.float32)


def test_flipped_labels_are_found(root: Path) -> None:
    true = np.arange(90) % 3
    given = true.copy()
    flipped = [4, 17, 40, 63, 88]
    given[flipped] = (true[flipped] + 1) % 3
    path = write_dataset(root, "noisy", smooth_images(90, seed=40), labels=list(given), task=THREE)
    facts = DatasetFacts(DatasetFolder(path))
    got = suspect_task(facts, facts.tasks()[0], _clusters(true))
    assert set(flipped) <= set(got["indices"]) and got["issues"] <= len(flipped) + 2
    assert sum(got["issues_by_class"].values()) == got["issues"]
    first = got["examples"][0]
    assert first["given"] != first["predicted"] and first["p_given"] < 0.5
    assert got["checked"] == 90 and got["cv_accuracy"] > 0.85


def test_rare_classes_are_skipped_and_multilabel_runs(root: Path) -> None:
    labels = [0] * 30 + [1] * 27 + [2] * 3  # "z" has fewer samples than folds
    path = write_dataset(root, "rare", smooth_images(60, seed=41), labels=labels, task=THREE)
    facts = DatasetFacts(DatasetFolder(path))
    (got,) = suspect_labels(facts, _clusters(np.array(labels)))
    assert got["skipped_classes"] == ["z"] and got["checked"] == 57
    multi = ToyTask("findings", "MULTILABEL_CLASSIFICATION", {0: "p", 1: "q"})
    rows = np.array([[i % 2, (i // 2) % 2] for i in range(40)])
    path = write_dataset(
        root,
        "multi",
        smooth_images(40, seed=42),
        labels=[list(map(int, r)) for r in rows],
        task=multi,
    )
    facts = DatasetFacts(DatasetFolder(path))
    feats = np.concatenate([_clusters(rows[:, 0], 1), _clusters(rows[:, 1], 2)], axis=1)
    (res,) = suspect_labels(facts, feats)
    assert res["target"] == "multilabel" and res["checked"] == 40 and res["issues"] <= 3


def test_audit_with_labels_uses_the_embedding_cache(root: Path, tmp_path: Path) -> None:
    labels = [i % 2 for i in range(20)]
    write_dataset(root, "tiny", smooth_images(20, seed=43), labels=labels)
    opts = AuditOptions(feature_size=64, cache=tmp_path / "cache")
    logs: list[str] = []
    run = run_audit(root, ["tiny"], tmp_path / "out", opts, log=logs.append)
    (res,) = run.report["datasets"]["tiny"]["suspect_labels"]
    assert res["checked"] == 20 and res["task"] == "class"
    assert any("20 computed" in line for line in logs)
    run_audit(root, ["tiny"], tmp_path / "out2", opts, log=logs.append)
    assert any("20 from the cache" in line for line in logs)
    assert list((tmp_path / "cache" / "features").glob("efficientnet_lite0-*/chunk-*.h5"))
