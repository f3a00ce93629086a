"""``knn``: cosine k-nearest-neighbour vote over frozen features (not in the MedIMeta paper).

Each query sample takes the ``k`` support samples with the highest cosine similarity ``s``
(``k = min(knn_k, support size)``; ties broken by support order) and weights each by
``exp(s / T)`` (``T = knn_temperature``; k 10 and T 0.07 follow DINO's k-NN evaluation). The
score of a class is the weighted share of its neighbours:

* multi-class / ordinal: ``P(c) = sum_{j in kNN, y_j = c} w_j / sum_{j in kNN} w_j`` (rows
  sum to 1; a class with no neighbour scores 0);
* binary: the same share for class 1, one column;
* multi-label: per label, the weighted share of neighbours that carry the label.

Nothing is trained, so the result does not depend on a seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from medimeta.catalog.tasks import TaskTarget
from medimeta.errors import OptionError
from medimeta.features.table import FeatureBatch
from medimeta.train.fewshot.batched import ways_of
from medimeta.train.fewshot.learners import Scored, one_thread
from medimeta.train.fewshot.options import MethodOptions, MethodSettings
from medimeta.train.fewshot.registry import (
    CostContext,
    FewShotMethod,
    MethodKind,
    frozen_features_cost,
    register_method,
)


def knn_scores(
    support: torch.Tensor,
    labels: torch.Tensor,
    query: torch.Tensor,
    target: str,
    n_way: int,
    *,
    k: int = 10,
    temperature: float = 0.07,
) -> torch.Tensor:
    """Query scores from a weighted cosine k-NN vote (see the module docstring)."""
    sims = F.normalize(query.double(), dim=1) @ F.normalize(support.double(), dim=1).T
    k = max(1, min(int(k), support.shape[0]))
    top, idx = sims.topk(k, dim=1, largest=True, sorted=True)
    weights = torch.exp((top - top[:, :1]) / temperature)  # shifted: same shares, no overflow
    weights = weights / weights.sum(dim=1, keepdim=True)
    if target == TaskTarget.MULTILABEL_CLASSIFICATION:
        votes = labels.double()[idx]  # (Q, k, L)
        return (weights.unsqueeze(-1) * votes).sum(dim=1)
    y = labels.reshape(-1).long()
    ways = 2 if target == TaskTarget.BINARY_CLASSIFICATION else n_way
    onehot = F.one_hot(y[idx], ways).double()  # (Q, k, ways)
    shares = (weights.unsqueeze(-1) * onehot).sum(dim=1)
    return shares[:, 1:] if target == TaskTarget.BINARY_CLASSIFICATION else shares


@dataclass(frozen=True)
class KnnOptions(MethodOptions):
    """knn: neighbours ``knn_k`` and temperature ``knn_temperature`` of the vote weights."""

    knn_k: int = 10
    knn_temperature: float = 0.07

    def validate(self) -> None:
        super().validate()
        if self.knn_k < 1 or not self.knn_temperature > 0:
            raise OptionError(
                f"knn_k must be >= 1 and knn_temperature > 0; got {self.knn_k}, "
                f"{self.knn_temperature}"
            )


@register_method
class KNearestNeighbours(FewShotMethod):
    name = "knn"
    paper_name = "ImageNet (kNN)"
    kind = MethodKind.FROZEN
    summary = "weighted cosine k-NN vote over frozen features"
    reference = "Wu et al., CVPR 2018; k and temperature of DINO's k-NN evaluation (Caron et al.)"
    options = KnnOptions
    stages = ("features", "episodes")
    reads_features = True
    order = 40

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
        opts = cfg.options_as(KnnOptions)
        with one_thread():
            scores = knn_scores(
                support,
                support_y,
                query,
                target,
                n_way,
                k=opts.knn_k,
                temperature=opts.knn_temperature,
            )
        return scores.double().cpu().numpy(), {"k": min(opts.knn_k, int(support.shape[0]))}

    def score_batch(
        self, batch: FeatureBatch, cfg: MethodSettings, stage: dict[str, Any]
    ) -> list[Scored] | None:
        opts = cfg.options_as(KnnOptions)
        scores = batched_knn_scores(batch, opts.knn_k, opts.knn_temperature)
        sizes = batch.support_mask.sum(1).tolist()
        pairs = zip(batch.unpad(scores), sizes, strict=True)
        return [(s, {"k": min(opts.knn_k, int(n))}) for s, n in pairs]

    def estimate(self, ctx: CostContext) -> tuple[float, dict[str, Any]]:
        return frozen_features_cost(ctx, 0.0)


def batched_knn_scores(batch: FeatureBatch, k: int, temperature: float) -> torch.Tensor:
    """:func:`knn_scores` of every episode of ``batch``: padded support rows have similarity
    -inf, so they get weight 0 wherever the top ``k`` reach them."""
    q = F.normalize(batch.query.double(), dim=-1)
    s = F.normalize(batch.support.double(), dim=-1)
    sims = (q @ s.transpose(1, 2)).masked_fill(~batch.support_mask[:, None, :], -math.inf)
    k = max(1, min(int(k), batch.support.shape[1]))
    top, idx = sims.topk(k, dim=-1, largest=True, sorted=True)
    weights = torch.exp((top - top[..., :1]) / temperature)
    weights = weights / weights.sum(-1, keepdim=True)
    if batch.multilabel:
        labels = batch.support_y.double()  # (E, S, L)
        votes = torch.gather(
            labels[:, None].expand(-1, idx.shape[1], -1, -1),
            2,
            idx[..., None].expand(-1, -1, -1, labels.shape[-1]),
        )
        return (weights[..., None] * votes).sum(2)
    neighbours = torch.gather(batch.support_y[:, None].expand(-1, idx.shape[1], -1), 2, idx)
    onehot = F.one_hot(neighbours, ways_of(batch)).double()
    shares = (weights[..., None] * onehot).sum(2)
    return shares[..., 1:] if batch.target == TaskTarget.BINARY_CLASSIFICATION else shares
