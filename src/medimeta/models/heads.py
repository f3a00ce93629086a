"""Linear heads per task target and the map from head outputs (logits) to probabilities.

Head sizes (F = backbone features, C = number of classes):

================================  ==========================  =========================
target                            head                        probabilities
================================  ==========================  =========================
BINARY_CLASSIFICATION             Linear(F, 1)                sigmoid, (N, 1)
MULTICLASS_CLASSIFICATION         Linear(F, C)                softmax, (N, C)
MULTILABEL_CLASSIFICATION         Linear(F, C)                sigmoid per label, (N, C)
ORDINAL_REGRESSION, "nominal"     Linear(F, C)                softmax, (N, C)
ORDINAL_REGRESSION, "corn"        Linear(F, C - 1)            :func:`ordinal_probs`, (N, C)
================================  ==========================  =========================
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from medimeta.catalog.tasks import TaskTarget
from medimeta.errors import LabelError, ShapeError, check_choice

ORDINAL_MODES: tuple[str, ...] = ("nominal", "corn")
HEAD_INITS: tuple[str, ...] = ("zero", "default")


def head_out_features(target: object, num_classes: int, *, ordinal: str = "nominal") -> int:
    """Number of logits the head of this target has (see the module table)."""
    name = TaskTarget.from_value(target)
    check_choice("ordinal head", ordinal, ORDINAL_MODES)
    minimum = 1 if name is TaskTarget.MULTILABEL_CLASSIFICATION else 2
    if num_classes < minimum or (name is TaskTarget.BINARY_CLASSIFICATION and num_classes > 2):
        allowed = "1 or 2" if name is TaskTarget.BINARY_CLASSIFICATION else f">= {minimum}"
        raise LabelError(f"{name} needs num_classes {allowed}; got {num_classes}")
    if name is TaskTarget.BINARY_CLASSIFICATION:
        return 1
    if name is TaskTarget.ORDINAL_REGRESSION and ordinal == "corn":
        return num_classes - 1
    return num_classes


def make_head(
    target: object,
    num_classes: int,
    in_features: int,
    init: str = "zero",
    *,
    ordinal: str = "nominal",
) -> nn.Linear:
    """A ``Linear(in_features, k)`` head; ``init="zero"`` zeroes weight and bias.

    A zero head predicts uniform probabilities (0.5 for sigmoid outputs) until trained;
    ``"default"`` keeps PyTorch's Kaiming-uniform initialisation (uses torch's global RNG).
    """
    check_choice("head init", init, HEAD_INITS)
    head = nn.Linear(in_features, head_out_features(target, num_classes, ordinal=ordinal))
    if init == "zero":
        nn.init.zeros_(head.weight)
        nn.init.zeros_(head.bias)
    return head


def ordinal_probs(logits: torch.Tensor) -> torch.Tensor:
    """CORN rank logits (N, C-1) -> class probabilities (N, C) that sum to 1.

    Logit k models P(y > k | y > k-1) (Shi et al. 2021, "Deep neural networks for rank-
    consistent ordinal regression based on conditional probabilities"). Hence
    P(y > k) = prod_{j<=k} sigmoid(l_j), P(y = 0) = 1 - P(y > 0),
    P(y = c) = P(y > c-1) * sigmoid(-l_c) for 0 < c < C-1 and P(y = C-1) = P(y > C-2).
    Computed in log space for stability.
    """
    if logits.ndim != 2 or logits.shape[1] < 1:
        raise ShapeError(f"CORN logits must have shape (N, C-1) with C >= 2; got {logits.shape}")
    log_up = F.logsigmoid(logits)  # log P(y > k | y > k-1)
    log_stop = F.logsigmoid(-logits)  # log P(y = k | y > k-1)
    zeros = logits.new_zeros((logits.shape[0], 1))
    log_reach = torch.cat([zeros, torch.cumsum(log_up, dim=1)], dim=1)  # log P(y > c-1)
    log_stay = torch.cat([log_stop, zeros], dim=1)  # the last class has no further step
    return torch.exp(log_reach + log_stay)


def corn_rank(logits: torch.Tensor) -> torch.Tensor:
    """CORN's predicted class index: the number of k with P(y > k) > 0.5 (the median class)."""
    cumulative = torch.exp(torch.cumsum(F.logsigmoid(logits), dim=1))
    return (cumulative > 0.5).sum(dim=1)


def scores_from_logits(
    target: object, logits: torch.Tensor, *, ordinal: str = "nominal"
) -> torch.Tensor:
    """Probabilities that :func:`medimeta.evaluate.compute_metrics` expects, from head logits."""
    name = TaskTarget.from_value(target)
    check_choice("ordinal head", ordinal, ORDINAL_MODES)
    if name in (TaskTarget.BINARY_CLASSIFICATION, TaskTarget.MULTILABEL_CLASSIFICATION):
        return torch.sigmoid(logits)
    if name is TaskTarget.ORDINAL_REGRESSION and ordinal == "corn":
        return ordinal_probs(logits)
    return torch.softmax(logits, dim=-1)
