"""Loss functions per task target, taking head logits and labels as the loader yields them.

* multi-class and ordinal ("nominal"): cross-entropy on class indices (N,) or (N, 1);
* binary and multi-label: BCE-with-logits on float 0/1 targets shaped like the logits;
* ordinal ("corn"): :class:`CornLoss` on C-1 rank logits.

Ordinal labels must be class indices 0..C-1 (map raw keys with ``labels_to_indices``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from medimeta.catalog.tasks import TaskTarget
from medimeta.errors import LabelError, ShapeError, check_choice
from medimeta.models.heads import ORDINAL_MODES


def _index_targets(targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    if targets.ndim == 2 and targets.shape[1] == 1:
        targets = targets[:, 0]
    if targets.ndim != 1:
        raise ShapeError(f"class-index targets must have shape (N,) or (N, 1); got {targets.shape}")
    if targets.is_floating_point() and not torch.equal(targets, targets.round()):
        raise LabelError("class-index targets must be whole numbers")
    targets = targets.long()
    if targets.numel() and (targets.min() < 0 or targets.max() >= num_classes):
        raise LabelError(
            f"targets must be class indices 0..{num_classes - 1}; got values "
            f"{torch.unique(targets).tolist()[:10]}; fix: map raw keys with labels_to_indices"
        )
    return targets


class IndexCrossEntropyLoss(nn.Module):
    """Cross-entropy of logits (N, C) against class indices (N,) or (N, 1), mean over N."""

    def __init__(self, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.weight: torch.Tensor | None

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, _index_targets(targets, logits.shape[1]), weight=self.weight)


class FloatBCEWithLogitsLoss(nn.Module):
    """BCE-with-logits against 0/1 targets cast to float and reshaped to the logits' shape."""

    def __init__(self, pos_weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("pos_weight", pos_weight)
        self.pos_weight: torch.Tensor | None

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if targets.numel() != logits.numel():
            raise ShapeError(f"targets {tuple(targets.shape)} do not fit logits {logits.shape}")
        targets = targets.reshape(logits.shape).to(logits.dtype)
        return F.binary_cross_entropy_with_logits(logits, targets, pos_weight=self.pos_weight)


class CornLoss(nn.Module):
    """CORN loss (Shi et al. 2021) on rank logits (N, C-1) and class indices (N,).

    Rank task k (k = 0..C-2) is a binary problem "y > k" trained only on samples with
    y >= k (the conditional training subset). The loss is the sum of the binary cross-
    entropies over all (sample, task) pairs in those subsets divided by their number.
    """

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if logits.ndim != 2:
            raise ShapeError(f"CORN logits must have shape (N, C-1); got {tuple(logits.shape)}")
        y = _index_targets(targets, logits.shape[1] + 1)
        ranks = torch.arange(logits.shape[1], device=logits.device)
        in_subset = (y[:, None] >= ranks[None, :]).to(logits.dtype)
        above = (y[:, None] > ranks[None, :]).to(logits.dtype)
        bce = F.binary_cross_entropy_with_logits(logits, above, reduction="none")
        return (bce * in_subset).sum() / in_subset.sum().clamp_min(1.0)


def make_loss(
    target: object,
    *,
    ordinal: str = "nominal",
    class_weight: torch.Tensor | None = None,
    pos_weight: torch.Tensor | None = None,
) -> nn.Module:
    """The loss module for a task target; called as ``loss(logits, targets)``.

    ``class_weight`` weights cross-entropy classes; ``pos_weight`` weights positives in BCE
    (one value per label). Both are rejected where they do not apply.
    """
    name = TaskTarget.from_value(target)
    check_choice("ordinal loss", ordinal, ORDINAL_MODES)
    if name in (TaskTarget.BINARY_CLASSIFICATION, TaskTarget.MULTILABEL_CLASSIFICATION):
        if class_weight is not None:
            raise LabelError(f"{name} uses BCE: pass pos_weight, not class_weight")
        return FloatBCEWithLogitsLoss(pos_weight)
    if pos_weight is not None:
        raise LabelError(f"{name} uses cross-entropy: pass class_weight, not pos_weight")
    if name is TaskTarget.ORDINAL_REGRESSION and ordinal == "corn":
        if class_weight is not None:
            raise LabelError("the CORN loss takes no class_weight")
        return CornLoss()
    return IndexCrossEntropyLoss(class_weight)
