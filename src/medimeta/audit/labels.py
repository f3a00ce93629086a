"""Suspect labels: samples whose label disagrees with their neighbours in feature space.

Confident learning (Northcutt et al., JAIR 2021) as implemented by cleanlab: per task, a
``folds``-fold cross-validated logistic regression (standardised features, ``C`` = 0.01) on
frozen ImageNet EfficientNet-Lite0 features gives out-of-sample class probabilities;
``cleanlab.filter.find_label_issues`` (``prune_by_noise_rate``) flags the samples whose given
label is unlikely under them, ranked by self-confidence (the probability of the given label).

Each example lists its ``NEIGHBOURS`` nearest samples (cosine similarity of the features) with
their given labels: the evidence a reviewer looks at (the audit page shows their thumbnails).

Features come from the embedding cache of ``medimeta embed`` / the benchmark
(:func:`medimeta.features.embed.embed_dataset`, split ``all``, the same cache folder), so they are
computed once per dataset and backbone. Classes with fewer samples than folds are left out
(listed under ``skipped_classes``). Multi-label tasks use cleanlab's ``multi_label`` mode with
one cross-validated binary regression per label; binary and ordinal tasks are treated as
classes. Needs the ``audit`` extra (cleanlab, scikit-learn).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medimeta.audit.context import DatasetFacts
from medimeta.catalog import TaskSpec, TaskTarget
from medimeta.errors import MissingDependencyError
from medimeta.logs import Log

FOLDS = 5
C = 0.01  # strong L2: calibrated out-of-fold probabilities (log-loss 0.50 on bus vs 0.74 at C=0.5)
EXAMPLES = 50
NEIGHBOURS = 4  # nearest samples (cosine similarity of the features) listed per example
BACKBONE = "efficientnet_lite0"


def _need_cleanlab() -> None:
    try:
        import cleanlab  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError.for_extra(
            "audit",
            f"suspect labels need cleanlab and scikit-learn ({exc}); or pass --no-labels",
        ) from None


def dataset_features(
    root: str | Path,
    dataset_id: str,
    *,
    cache: str | Path | None = None,
    image_size: int | None = None,
    log: Log | None = None,
) -> np.ndarray:
    """``(N, 1280)`` float32 EfficientNet-Lite0 features of every sample, in index order."""
    from medimeta.features.embed import EmbedSpec, embed_dataset

    spec = EmbedSpec(backbone=BACKBONE, split="all", image_size=image_size)
    table, _ = embed_dataset(root, dataset_id, spec, cache=cache, log=log)
    return np.asarray(table.take(np.arange(table.indices.size)).numpy(), dtype=np.float32)


def _classifier(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=500, random_state=seed))


def cv_probs(features: np.ndarray, y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Out-of-fold class probabilities ``(N, C)`` of integer labels ``y`` (0..C-1)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter of the inner solver
        probs = cross_val_predict(_classifier(seed), features, y, cv=cv, method="predict_proba")
    return np.asarray(probs, dtype=np.float64)


def _class_task(
    features: np.ndarray, values: np.ndarray, task: TaskSpec, folds: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], list[str]]:
    """(rows checked, given class positions, probabilities, class names, skipped) of a
    single-label task."""
    names = [task.labels[k] for k in task.keys]
    pos = np.array([task.key_to_index(int(v)) for v in values], dtype=np.int64)
    sizes = np.bincount(pos, minlength=len(names))
    kept = np.flatnonzero(sizes >= folds)
    skipped = [names[k] for k in np.flatnonzero((sizes > 0) & (sizes < folds))]
    rows = np.flatnonzero(np.isin(pos, kept))
    remap = np.full(len(names), -1, np.int64)
    remap[kept] = np.arange(kept.size)
    y = remap[pos[rows]]
    if kept.size < 2:
        return rows[:0], y[:0], np.empty((0, kept.size)), [names[k] for k in kept], skipped
    return rows, y, cv_probs(features[rows], y, folds, seed), [names[k] for k in kept], skipped


def _multilabel_probs(features: np.ndarray, values: np.ndarray, folds: int, seed: int):
    """Out-of-fold probability of each label (a constant prevalence for a rare label)."""
    probs = np.empty(values.shape, dtype=np.float64)
    for j in range(values.shape[1]):
        col = values[:, j].astype(np.int64)
        positives = int(col.sum())
        if min(positives, col.size - positives) < folds:
            probs[:, j] = positives / max(col.size, 1)
        else:
            probs[:, j] = cv_probs(features, col, folds, seed)[:, 1]
    return probs


def nearest(
    features: np.ndarray, rows: np.ndarray, k: int = NEIGHBOURS
) -> tuple[np.ndarray, np.ndarray]:
    """Two ``(len(rows), k)`` arrays of the ``k`` nearest other samples of each of ``rows``
    (cosine similarity of ``features``, most similar first): indices and similarities."""
    if not rows.size or features.shape[0] < 2:
        return np.empty((rows.size, 0), np.int64), np.empty((rows.size, 0), np.float64)
    norm = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    sims = norm[rows] @ norm.T
    sims[np.arange(rows.size), rows] = -np.inf  # not its own neighbour
    k = min(k, features.shape[0] - 1)
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    part = np.take_along_axis(sims, top, axis=1)
    order = np.argsort(-part, axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(part, order, axis=1)


def _examples(
    found: np.ndarray,
    features: np.ndarray,
    facts: DatasetFacts,
    given_text: np.ndarray,
    predicted: list[str],
    confidence: list[float],
) -> list[dict[str, Any]]:
    """The first ``EXAMPLES`` issues with their nearest neighbours."""
    split = facts.split_of
    shown = found[:EXAMPLES]
    near, sims = nearest(features, shown)
    return [
        {
            "index": int(i),
            "split": str(split[i]),
            "given": str(given_text[i]),
            "predicted": predicted[k],
            "p_given": round(confidence[k], 4),
            "neighbours": [
                {
                    "index": int(j),
                    "split": str(split[j]),
                    "given": str(given_text[j]),
                    "similarity": round(float(s), 4),
                }
                for j, s in zip(near[k], sims[k], strict=True)
            ],
        }
        for k, i in enumerate(shown)
    ]


def _issues(labels: Any, probs: np.ndarray, multi_label: bool) -> np.ndarray:
    from cleanlab.filter import find_label_issues

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = find_label_issues(
            labels=labels,
            pred_probs=probs,
            return_indices_ranked_by="self_confidence",
            multi_label=multi_label,
            n_jobs=1,
        )
    return np.asarray(found, dtype=np.int64)


def suspect_task(
    facts: DatasetFacts, task: TaskSpec, features: np.ndarray, *, folds: int = FOLDS, seed: int = 0
) -> dict[str, Any]:
    """The label issues of one task (module docstring)."""
    t0 = time.perf_counter()
    values = facts.folder.labels(task.name)
    given_text = facts.label_names(task)
    if task.target == TaskTarget.MULTILABEL_CLASSIFICATION:
        probs = _multilabel_probs(features, values, folds, seed)
        rows = np.arange(values.shape[0])
        labels = [list(np.flatnonzero(r)) for r in values]
        names = [task.labels[k] for k in task.keys]
        found = _issues(labels, probs, True) if rows.size else rows[:0]
        predicted = [
            "|".join(names[j] for j in np.flatnonzero(p >= 0.5)) or "(none)" for p in probs[found]
        ]
        confidence = [
            float(np.prod(np.where(values[i] > 0, probs[i], 1 - probs[i]))) for i in found
        ]
        accuracy = float(((probs >= 0.5) == (values > 0)).mean()) if rows.size else None
        skipped: list[str] = []
    else:
        rows, y, probs, names, skipped = _class_task(features, values, task, folds, seed)
        local = _issues(y, probs, False) if rows.size else rows[:0]
        found = rows[local]
        predicted = [names[k] for k in probs[local].argmax(axis=1)]
        confidence = [float(probs[i, y[i]]) for i in local]
        accuracy = float((probs.argmax(axis=1) == y).mean()) if rows.size else None
    by_class: dict[str, int] = {}
    for name in given_text[found]:
        for part in str(name).split("|"):
            by_class[part] = by_class.get(part, 0) + 1
    checked_by_class: dict[str, int] = {}
    for name in given_text[rows]:
        for part in str(name).split("|"):
            checked_by_class[part] = checked_by_class.get(part, 0) + 1
    return {
        "task": task.name,
        "target": task.target.short,
        "checked": int(rows.size),
        "skipped_classes": skipped,
        "cv_accuracy": accuracy,
        "issues": int(found.size),
        "issues_by_class": dict(sorted(by_class.items())),
        "checked_by_class": dict(sorted(checked_by_class.items())),
        "examples": _examples(found, features, facts, given_text, predicted, confidence),
        "indices": [int(i) for i in found],
        "seconds": time.perf_counter() - t0,
    }


def suspect_labels(
    facts: DatasetFacts,
    features: np.ndarray,
    *,
    tasks: Sequence[str] = (),
    folds: int = FOLDS,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """:func:`suspect_task` for each task (``tasks``, default all) of the dataset."""
    _need_cleanlab()
    chosen = [t for t in facts.tasks() if not tasks or t.name in tasks]
    return [suspect_task(facts, t, features, folds=folds, seed=seed) for t in chosen]
