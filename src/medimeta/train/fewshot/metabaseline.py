"""Meta-Baseline (Chen et al., "Meta-Baseline: Exploring Simple Meta-Learning for Few-Shot
Learning", ICCV 2021), the few-shot baseline of MedFM.

1. Classifier pre-training: mm-pt's stage as is (:func:`~medimeta.train.fewshot.pretrain.
   pretrain_multitask`), saved as ``meta_baseline_classifier.safetensors`` with a hash of
   the settings it depends on (not the meta settings nor the episodes), so that a run killed
   in the meta stage, or one with other meta settings, does not pre-train again.
2. Meta stage: source episodes (mm-MAML's, ``meta_shots`` / ``meta_queries``), heads
   dropped; support and query go through the backbone in training mode in one batch (as the
   reference code), the class centroids are the mean support features and the logits
   ``tau * cos(query, centroid)`` with ``tau`` a learnable scalar from ``mb_tau``; query
   cross-entropy; SGD over backbone and ``tau`` (``mb_lr``, ``mb_momentum``,
   ``mb_weight_decay``: the paper's 1e-3, 0.9, 5e-4).
3. Evaluation: eval-mode features, centroids from the support, scores ``softmax(tau * cos)``
   (binary: the class-1 column; multi-label: per label a positive and a negative centroid,
   ``sigmoid(tau * (cos_pos - cos_neg))``, as :func:`~medimeta.train.fewshot.methods.
   prototype_scores` does with distances). Nothing is trained on the target.

The learned ``tau`` is part of the stage record saved with the backbone.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from medimeta.catalog import TaskSpec
from medimeta.catalog.tasks import TaskTarget
from medimeta.episodes import Episode
from medimeta.models.backbone import Backbone
from medimeta.train.checkpoint import load_checkpoint, save_checkpoint
from medimeta.train.fewshot.config import META_BASELINE_META_FIELDS, FewShotConfig
from medimeta.train.fewshot.frozen import FeatureTable
from medimeta.train.fewshot.methods import features, one_thread
from medimeta.train.fewshot.pretrain import pretrain_multitask, source_episodes
from medimeta.train.fewshot.tensors import EpisodeReader, EpisodeTensors
from medimeta.train.model import seeded
from medimeta.train.progress import Progress

Log = Callable[[str], None]
Scored = tuple[np.ndarray, dict[str, Any]]
CLASSIFIER_FILE = "meta_baseline_classifier.safetensors"
#: Settings of the meta stage only: the classifier pre-training does not depend on them.
META_FIELDS = META_BASELINE_META_FIELDS


def _cosine(query: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    return F.normalize(query, dim=1) @ F.normalize(centroids, dim=1).T


def centroid_logits(
    support: torch.Tensor,
    labels: torch.Tensor,
    query: torch.Tensor,
    target: str,
    n_way: int,
    tau: torch.Tensor | float,
) -> torch.Tensor:
    """``tau`` x cosine of the query features to the class centroids (mean support features).

    Multi-class and ordinal: (Q, n_way); binary: (Q, 2) over classes 0 and 1; multi-label:
    (Q, n_way) of ``tau * (cos_pos - cos_neg)`` with a positive and a negative centroid per
    label.
    """
    if target == TaskTarget.MULTILABEL_CLASSIFICATION:
        pos = (labels == 1).to(support.dtype)  # (S, L)
        neg = 1.0 - pos
        pos_c = (pos.T @ support) / pos.sum(0).unsqueeze(1)
        neg_c = (neg.T @ support) / neg.sum(0).unsqueeze(1)
        q = F.normalize(query, dim=1)
        diff = q @ F.normalize(pos_c, dim=1).T - q @ F.normalize(neg_c, dim=1).T
        return tau * diff
    y = labels.reshape(-1).long()
    ways = 2 if target == TaskTarget.BINARY_CLASSIFICATION else n_way
    centroids = torch.stack([support[y == c].mean(0) for c in range(ways)])
    return tau * _cosine(query, centroids)


def centroid_scores(
    support: torch.Tensor,
    labels: torch.Tensor,
    query: torch.Tensor,
    target: str,
    n_way: int,
    tau: float,
) -> torch.Tensor:
    """Query probabilities: softmax of the centroid logits (binary: P(class 1) as one column),
    multi-label: their sigmoid."""
    logits = centroid_logits(support, labels, query, target, n_way, tau)
    if target == TaskTarget.MULTILABEL_CLASSIFICATION:
        return torch.sigmoid(logits)
    probs = torch.softmax(logits, dim=1)
    return probs[:, 1:] if target == TaskTarget.BINARY_CLASSIFICATION else probs


def query_loss(backbone: Backbone, ep: EpisodeTensors, tau: torch.Tensor) -> torch.Tensor:
    """The meta-stage loss of one episode (the backbone in its current mode)."""
    n = ep.support_x.shape[0]
    feats = backbone(torch.cat([ep.support_x, ep.query_x]))
    logits = centroid_logits(feats[:n], ep.support_y, feats[n:], ep.target, ep.n_way, tau)
    if ep.target == TaskTarget.MULTILABEL_CLASSIFICATION:
        return F.binary_cross_entropy_with_logits(logits, ep.query_y.to(logits.dtype))
    return F.cross_entropy(logits, ep.query_y.reshape(-1).long())


def meta_finetune(
    backbone: Backbone,
    episodes: Callable[[int], Episode] | Any,
    reader: EpisodeReader,
    cfg: FewShotConfig,
    *,
    log: Log | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """The meta stage: ``cfg.meta_steps`` SGD steps of ``cfg.meta_batch_size`` episodes each
    on ``backbone`` (in place) and ``tau``; returns the record (query loss and tau curves)."""
    get = episodes if callable(episodes) else episodes.__getitem__
    tau = nn.Parameter(torch.tensor(float(cfg.mb_tau), device=reader.device))
    optimizer = torch.optim.SGD(
        [*backbone.parameters(), tau],
        lr=cfg.mb_lr,
        momentum=cfg.mb_momentum,
        weight_decay=cfg.mb_weight_decay,  # on tau too, as the reference code
    )
    curve: list[float] = []
    taus: list[float] = []
    backbone.train()
    for step in range(cfg.meta_steps):
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for j in range(cfg.meta_batch_size):
            ep = reader.load(get(step * cfg.meta_batch_size + j))
            loss = query_loss(backbone, ep, tau) / cfg.meta_batch_size
            loss.backward()
            total += float(loss.detach())
        optimizer.step()
        curve.append(total)
        taus.append(float(tau.detach()))
        if progress is not None:
            progress.advance(total, "query loss")
        if log is not None and (step + 1) % max(1, cfg.meta_steps // 10) == 0:
            log(f"meta-baseline meta step {step + 1}/{cfg.meta_steps}: query loss {total:.4f}")
    return {
        "meta_steps": cfg.meta_steps,
        "query_loss_curve": curve,
        "tau_curve": taus,
        "tau_init": float(cfg.mb_tau),
        "tau": float(tau.detach()),
    }


def pretrain_key(cfg: FewShotConfig, source_ids: list[str]) -> str:
    """sha256 of what the classifier pre-training depends on: the settings without the meta
    stage's, and the source tasks (``ID:TASK``)."""
    key = {k: v for k, v in cfg.relevant().items() if k not in META_FIELDS}
    key["source_task_ids"] = list(source_ids)
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def run_stage(
    root: str | Path,
    sources: list[TaskSpec],
    backbone: Backbone,
    reader: EpisodeReader,
    cfg: FewShotConfig,
    out: Path,
    *,
    resume: bool,
    log: Log,
    progress: bool,
) -> dict[str, Any]:
    """Classifier pre-training (or its saved result for these settings) then the meta stage,
    on ``backbone`` in place; returns the stage record (with the learned ``tau``)."""
    path = out / CLASSIFIER_FILE
    key = pretrain_key(cfg, [f"{t.dataset_id}:{t.name}" for t in sources])
    rec: dict[str, Any] = {"pretrain_key": key}
    try:
        saved = load_checkpoint(path) if resume and path.is_file() else {}
    except Exception:  # an unreadable file is trained again
        saved = {}
    if saved.get("pretrain_key") == key:
        load_checkpoint(path, backbone)
        rec.update(saved.get("stage", {}), pretrain_reused=str(path))
        log(f"meta-baseline: classifier pre-training of {path.name} reused")
    else:
        log(f"meta-baseline: classifier pre-training on {len(sources)} source tasks")
        t0 = time.perf_counter()
        bar_of = Progress(progress, cfg.pretrain_steps, "meta-baseline pre-training")
        with seeded(cfg.seed), bar_of as bar:  # seeded as mm-pt: the same pre-trained backbone
            pre = pretrain_multitask(
                root,
                sources,
                backbone,
                reader,
                cfg,
                log=log,
                progress=bar,
                label="meta-baseline pre-training",
            )
        pre = {f"pretrain_{k}": v for k, v in pre.items()}
        pre["pretrain_seconds"] = time.perf_counter() - t0
        save_checkpoint(path, backbone, record={"pretrain_key": key, "stage": pre})
        rec.update(pre)
    episodes = source_episodes(root, sources, cfg)
    used = len(episodes.samplers)
    note = f" ({len(sources) - used} of {len(sources)} skipped)" if used < len(sources) else ""
    log(f"meta-baseline: meta stage on {used} source tasks{note}")
    t0 = time.perf_counter()
    # its own seed: a reused pre-training gives the meta stage of a fresh run
    with (
        seeded(cfg.seed + 1),
        Progress(progress, cfg.meta_steps, "meta-baseline meta stage") as bar,
    ):
        rec.update(meta_finetune(backbone, episodes, reader, cfg, log=log, progress=bar))
    rec["meta_seconds"] = time.perf_counter() - t0
    rec["meta_sources_used"] = used
    return rec


def classifier_done(out: Path, cfg: FewShotConfig, source_ids: list[str]) -> bool:
    """Whether ``out`` holds the classifier pre-training for these settings and sources."""
    try:
        record = load_checkpoint(out / CLASSIFIER_FILE)
    except Exception:
        return False
    return bool(record.get("pretrain_key") == pretrain_key(cfg, source_ids))


def stage_tau(record: dict[str, Any], cfg: FewShotConfig) -> float:
    """The learned ``tau`` of a checkpoint record, else ``cfg.mb_tau`` (e.g. an mm-pt
    backbone given as ``--backbone-checkpoint``)."""
    tau = (record.get("stage") or {}).get("tau")
    return float(tau) if tau is not None else float(cfg.mb_tau)


def metabaseline_features(
    support: torch.Tensor,
    support_y: torch.Tensor,
    query: torch.Tensor,
    target: str,
    n_way: int,
    cfg: FewShotConfig,
    seed: int,
    *,
    tau: float,
) -> Scored:
    """Cosine-centroid scores from support and query features (no randomness)."""
    with one_thread():
        scores = centroid_scores(support.double(), support_y, query.double(), target, n_way, tau)
    return scores.double().cpu().numpy(), {}


def metabaseline_episode(
    backbone: Backbone, ep: EpisodeTensors, cfg: FewShotConfig, seed: int, *, tau: float
) -> Scored:
    """Cosine-centroid scores of the query with frozen (eval-mode) features."""
    support, query = features(backbone, ep.support_x), features(backbone, ep.query_x)
    return metabaseline_features(
        support, ep.support_y, query, ep.target, ep.n_way, cfg, seed, tau=tau
    )


def score_from_table(
    table: FeatureTable, ep: Episode, cfg: FewShotConfig, tau: float, device: torch.device
) -> Scored:
    """:func:`metabaseline_features` on one episode, features from ``table``."""
    support = table.take(ep.support_indices).to(device)
    query = table.take(ep.query_indices).to(device)
    labels = torch.from_numpy(np.ascontiguousarray(ep.support_labels)).to(device)
    return metabaseline_features(
        support, labels, query, ep.task_target.value, ep.n_way, cfg, 0, tau=tau
    )
