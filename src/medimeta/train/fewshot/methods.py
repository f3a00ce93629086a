"""Per-episode learners that need no meta-training: fine-tuning, linear probe, prototypes, k-NN.

Every learner takes the episode's tensors and returns query scores (probabilities, see
:func:`medimeta.models.scores_from_logits`) plus a small record. They never modify the
backbone they are given: fine-tuning works on a deep copy, the probe, the prototypes and the
k-NN vote only read features (``*_features`` take them directly, e.g. from the embedding
cache).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from medimeta.catalog.tasks import TaskTarget
from medimeta.models import make_loss, scores_from_logits
from medimeta.models.backbone import Backbone
from medimeta.train.fewshot.config import FewShotConfig
from medimeta.train.fewshot.knn import knn_scores
from medimeta.train.fewshot.tensors import EpisodeTensors, episode_head
from medimeta.train.model import Classifier, seeded

Scored = tuple[np.ndarray, dict[str, Any]]


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run a block of tiny tensor ops (a linear head on a few feature vectors) on one thread.

    On shared cores torch's intra-op threads stall on every small op; one thread is as fast
    when the cores are free and up to 100x faster when they are not."""
    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if before != 1:
            torch.set_num_threads(before)


def _fit(
    module: nn.Module,
    params: Any,
    forward: Any,
    targets: torch.Tensor,
    loss_fn: nn.Module,
    steps: int,
    lr: float,
) -> list[float]:
    """Full-batch Adam steps on ``loss_fn(forward(), targets)``; returns the loss curve."""
    optimizer = torch.optim.Adam(params, lr=lr)
    curve = []
    for _ in range(steps):
        loss = loss_fn(forward(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        curve.append(float(loss.detach()))
    return curve


def freeze_batchnorm(model: nn.Module) -> None:
    """Put every BatchNorm layer in eval mode: the running (pre-training) statistics normalise
    and are not updated; the affine parameters still train."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def finetune_episode(
    template: Backbone, ep: EpisodeTensors, cfg: FewShotConfig, seed: int
) -> Scored:
    """Fine-tune a copy of ``template`` and a fresh head on the support set (im-pt, mm-pt).

    Training mode (BatchNorm with support statistics; ``finetune_bn="frozen"`` keeps the
    running statistics instead) for ``finetune_steps`` full-batch Adam steps; the query set is
    scored in eval mode.
    """
    with seeded(seed):
        backbone = copy.deepcopy(template)
        head = episode_head(
            ep.target, ep.n_way, backbone.num_features, init=cfg.head_init, ordinal=cfg.ordinal
        ).to(ep.support_x.device)
    model = Classifier(backbone, head, ep.target, cfg.ordinal)
    loss_fn = make_loss(ep.target, ordinal=cfg.ordinal)
    model.train()
    if cfg.finetune_bn == "frozen":
        freeze_batchnorm(model)
    with seeded(seed):
        curve = _fit(
            model,
            model.parameters(),
            lambda: model(ep.support_x),
            ep.support_y,
            loss_fn,
            cfg.finetune_steps,
            cfg.finetune_lr,
        )
    model.eval()
    with torch.no_grad():
        scores = model.scores(model(ep.query_x).double())  # float64: fewer saturated ties
    return scores.double().cpu().numpy(), {"support_loss": curve[-1] if curve else None}


@torch.no_grad()
def features(backbone: Backbone, x: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
    """Eval-mode features of ``x`` (the backbone's mode is restored afterwards)."""
    was_training = backbone.training
    backbone.eval()
    out = torch.cat([backbone(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])
    backbone.train(was_training)
    return out


def linear_probe_features(
    support: torch.Tensor,
    support_y: torch.Tensor,
    query: torch.Tensor,
    target: str,
    n_way: int,
    cfg: FewShotConfig,
    seed: int,
) -> Scored:
    """Train a zero-initialised linear head on support features; score the query features."""
    with one_thread():
        return _probe(support, support_y, query, target, n_way, cfg, seed)


def _probe(
    support: torch.Tensor,
    support_y: torch.Tensor,
    query: torch.Tensor,
    target: str,
    n_way: int,
    cfg: FewShotConfig,
    seed: int,
) -> Scored:
    with seeded(seed):
        head = episode_head(
            target, n_way, support.shape[1], init=cfg.head_init, ordinal=cfg.ordinal
        ).to(support.device)
    loss_fn = make_loss(target, ordinal=cfg.ordinal)
    curve = _fit(
        head,
        head.parameters(),
        lambda: head(support),
        support_y,
        loss_fn,
        cfg.probe_steps,
        cfg.probe_lr,
    )
    with torch.no_grad():
        scores = scores_from_logits(target, head(query).double(), ordinal=cfg.ordinal)
    return scores.double().cpu().numpy(), {"support_loss": curve[-1] if curve else None}


def linear_probe_episode(
    backbone: Backbone, ep: EpisodeTensors, cfg: FewShotConfig, seed: int
) -> Scored:
    """Train a zero-initialised linear head on frozen support features; score the query."""
    support, query = features(backbone, ep.support_x), features(backbone, ep.query_x)
    return linear_probe_features(support, ep.support_y, query, ep.target, ep.n_way, cfg, seed)


def pairwise_distance(a: torch.Tensor, b: torch.Tensor, kind: str) -> torch.Tensor:
    """(N, F) x (M, F) -> (N, M) distances: squared Euclidean, Euclidean or cosine (1 - cos)."""
    if kind == "cosine":
        return 1.0 - F.normalize(a, dim=1) @ F.normalize(b, dim=1).T
    d2 = (a.unsqueeze(1) - b.unsqueeze(0)).pow(2).sum(-1)
    return d2 if kind == "squared_euclidean" else d2.clamp_min(0).sqrt()


def prototype_scores(
    support: torch.Tensor,
    labels: torch.Tensor,
    query: torch.Tensor,
    target: str,
    n_way: int,
    distance: str,
) -> torch.Tensor:
    """Query probabilities from class prototypes (mean support features).

    Multi-class and ordinal: softmax over negative distances to the n_way prototypes.
    Binary: the same over prototypes of class 0 and 1, P(positive) as one column.
    Multi-label: per label a positive and a negative prototype, P = sigmoid(d_neg - d_pos).
    """
    if target == TaskTarget.MULTILABEL_CLASSIFICATION:
        cols = []
        for c in range(n_way):
            pos = labels[:, c] == 1
            protos = torch.stack([support[pos].mean(0), support[~pos].mean(0)])
            d = pairwise_distance(query, protos, distance)
            cols.append(torch.sigmoid(d[:, 1] - d[:, 0]))
        return torch.stack(cols, dim=1)
    y = labels.reshape(-1).long()
    ways = 2 if target == TaskTarget.BINARY_CLASSIFICATION else n_way
    protos = torch.stack([support[y == c].mean(0) for c in range(ways)])
    probs = torch.softmax(-pairwise_distance(query, protos, distance), dim=1)
    return probs[:, 1:] if target == TaskTarget.BINARY_CLASSIFICATION else probs


def protonet_features(
    support: torch.Tensor,
    support_y: torch.Tensor,
    query: torch.Tensor,
    target: str,
    n_way: int,
    cfg: FewShotConfig,
    seed: int,
) -> Scored:
    """Nearest-prototype scores from support and query features (no randomness)."""
    with one_thread():
        scores = prototype_scores(
            support.double(), support_y, query.double(), target, n_way, cfg.distance
        )
    return scores.double().cpu().numpy(), {}


def knn_features(
    support: torch.Tensor,
    support_y: torch.Tensor,
    query: torch.Tensor,
    target: str,
    n_way: int,
    cfg: FewShotConfig,
    seed: int,
) -> Scored:
    """Weighted cosine k-NN vote (:mod:`medimeta.train.fewshot.knn`; no randomness)."""
    with one_thread():
        scores = knn_scores(
            support, support_y, query, target, n_way, k=cfg.knn_k, temperature=cfg.knn_temperature
        )
    return scores.double().cpu().numpy(), {"k": min(cfg.knn_k, int(support.shape[0]))}


def protonet_episode(
    backbone: Backbone, ep: EpisodeTensors, cfg: FewShotConfig, seed: int
) -> Scored:
    """Nearest-prototype classification with frozen (eval-mode) features."""
    support, query = features(backbone, ep.support_x), features(backbone, ep.query_x)
    return protonet_features(support, ep.support_y, query, ep.target, ep.n_way, cfg, seed)


def knn_episode(backbone: Backbone, ep: EpisodeTensors, cfg: FewShotConfig, seed: int) -> Scored:
    """Cosine k-NN vote with frozen (eval-mode) features."""
    support, query = features(backbone, ep.support_x), features(backbone, ep.query_x)
    return knn_features(support, ep.support_y, query, ep.target, ep.n_way, cfg, seed)


#: Learners of the frozen-feature methods on features (what the embedding cache feeds).
FEATURE_LEARNERS = {
    "linear-probe": linear_probe_features,
    "protonet": protonet_features,
    "knn": knn_features,
}
