"""``simpleshot``: SimpleShot's nearest centroid on centred, L2-normalised frozen features.

Wang et al., "SimpleShot: Revisiting Nearest-Neighbor Classification for Few-Shot Learning"
(2019), as THUNDER runs it on foundation-model features: every feature of the episode (support
and query) has the mean support feature subtracted ("CL2N": centring, then L2 normalisation);
a class centroid is the mean of its normalised support features; the query is scored by a
softmax over the negative squared Euclidean distances to the centroids (binary: P(class 1);
multi-label: per label a positive and a negative centroid, sigmoid(d_neg - d_pos)), as
ProtoNet scores distances. Nothing is trained; the result does not depend on a seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from medimeta.features.table import FeatureBatch
from medimeta.train.fewshot.batched import (
    centroids,
    class_scores,
    class_weights,
    label_weights,
    squared_distances,
)
from medimeta.train.fewshot.learners import Scored, one_thread
from medimeta.train.fewshot.methods.protonet import prototype_scores
from medimeta.train.fewshot.options import MethodOptions, MethodSettings
from medimeta.train.fewshot.registry import (
    CostContext,
    FewShotMethod,
    MethodKind,
    frozen_features_cost,
    register_method,
)


@dataclass(frozen=True)
class SimpleShotOptions(MethodOptions):
    """simpleshot: no options (centring on the support mean, L2 normalisation)."""


def cl2n(support: torch.Tensor, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre both on the mean support feature, then L2-normalise each row."""
    mean = support.mean(0, keepdim=True)
    return F.normalize(support - mean, dim=1), F.normalize(query - mean, dim=1)


@register_method
class SimpleShot(FewShotMethod):
    name = "simpleshot"
    paper_name = "SimpleShot"
    kind = MethodKind.FROZEN
    summary = "centred, L2-normalised features; nearest class centroid"
    reference = "Wang et al., arXiv:1911.04623 (2019); THUNDER's SimpleShot"
    options = SimpleShotOptions
    stages = ("features", "episodes")
    reads_features = True
    order = 25
    in_default_benchmark = False  # not in the MedIMeta paper: part of the fm-grid preset

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
        with one_thread():
            s, q = cl2n(support.double(), query.double())
            scores = prototype_scores(s, support_y, q, target, n_way, "squared_euclidean")
        return scores.double().cpu().numpy(), {}

    def score_batch(
        self, batch: FeatureBatch, cfg: MethodSettings, stage: dict[str, Any]
    ) -> list[Scored] | None:
        support, query = batch.support.double(), batch.query.double()
        mask = batch.support_mask[..., None].double()
        mean = (support * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True)
        support = F.normalize(support - mean, dim=-1) * mask
        query = F.normalize(query - mean, dim=-1)
        if batch.multilabel:
            pos, neg = label_weights(batch)
            d_pos = squared_distances(query, centroids(pos, support))
            d_neg = squared_distances(query, centroids(neg, support))
            scores = torch.sigmoid(d_neg - d_pos)
        else:
            protos = centroids(class_weights(batch), support)
            scores = class_scores(batch, -squared_distances(query, protos))
        return [(s, {}) for s in batch.unpad(scores)]

    def estimate(self, ctx: CostContext) -> tuple[float, dict[str, Any]]:
        return frozen_features_cost(ctx, 0.0)
