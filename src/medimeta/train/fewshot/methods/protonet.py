"""``protonet``: nearest class prototype on frozen features (the MedIMeta paper's "ProtoNet").

A class prototype is the mean support embedding; the query is scored by a softmax over the
negative distances to the prototypes (``distance``: squared Euclidean, as Snell et al.;
Euclidean; or cosine, 1 - cos). Nothing is trained on the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from medimeta.catalog.tasks import TaskTarget
from medimeta.errors import check_choice
from medimeta.features.table import FeatureBatch
from medimeta.train.fewshot.batched import (
    centroids,
    class_scores,
    class_weights,
    cosines,
    label_weights,
    squared_distances,
)
from medimeta.train.fewshot.learners import Scored, one_thread
from medimeta.train.fewshot.options import MethodOptions, MethodSettings
from medimeta.train.fewshot.registry import (
    CostContext,
    FewShotMethod,
    MethodKind,
    frozen_features_cost,
    register_method,
)

DISTANCES = ("squared_euclidean", "euclidean", "cosine")


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


@dataclass(frozen=True)
class ProtoNetOptions(MethodOptions):
    """protonet: the distance to the prototypes."""

    distance: str = "squared_euclidean"

    def validate(self) -> None:
        super().validate()
        check_choice("prototype distance", self.distance, DISTANCES)


@register_method
class ProtoNet(FewShotMethod):
    name = "protonet"
    paper_name = "ProtoNet"
    kind = MethodKind.FROZEN
    summary = "nearest class prototype (mean support feature), softmax over distances"
    reference = "Snell et al., NeurIPS 2017; MedIMeta (2024), Table 4 'ProtoNet'"
    options = ProtoNetOptions
    stages = ("features", "episodes")
    reads_features = True
    order = 30

    def score_features(
        self,
        support: torch.Tensor,
        support_y: torch.Tensor,
        query: torch.Tensor,
        target: str,
        n_way: int,
        cfg: MethodSettings,
        seed: int,
        stage: dict[str, Any],
    ) -> Scored:
        distance = cfg.options_as(ProtoNetOptions).distance
        with one_thread():
            scores = prototype_scores(
                support.double(), support_y, query.double(), target, n_way, distance
            )
        return scores.double().cpu().numpy(), {}

    def score_batch(
        self, batch: FeatureBatch, cfg: MethodSettings, stage: dict[str, Any]
    ) -> list[Scored] | None:
        distance = cfg.options_as(ProtoNetOptions).distance
        support, query = batch.support.double(), batch.query.double()
        if batch.multilabel:
            pos, neg = label_weights(batch)
            d_pos = _distance(query, centroids(pos, support), distance)
            d_neg = _distance(query, centroids(neg, support), distance)
            scores = torch.sigmoid(d_neg - d_pos)
        else:
            protos = centroids(class_weights(batch), support)
            scores = class_scores(batch, -_distance(query, protos, distance))
        return [(s, {}) for s in batch.unpad(scores)]

    def estimate(self, ctx: CostContext) -> tuple[float, dict[str, Any]]:
        return frozen_features_cost(ctx, 0.0)


def _distance(query: torch.Tensor, points: torch.Tensor, kind: str) -> torch.Tensor:
    """Batched :func:`pairwise_distance`: (E, Q, F) x (E, W, F) -> (E, Q, W)."""
    if kind == "cosine":
        return 1.0 - cosines(query, points)
    d2 = squared_distances(query, points)
    return d2 if kind == "squared_euclidean" else d2.clamp_min(0).sqrt()
