"""Cosine class centroids: the scoring of Meta-Baseline (and of any method that compares
query features with mean support features by cosine)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from medimeta.catalog.tasks import TaskTarget


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
