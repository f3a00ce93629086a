"""All episodes of a run at once: the frozen-feature learners on a padded
:class:`~medimeta.features.table.FeatureBatch`.

Each function computes, for every episode, exactly what the episode-by-episode learner
computes (the same objective, initialisation, optimiser and number of steps), as batched
tensor operations: padded support rows carry zero weight, padded query rows are dropped by
:meth:`FeatureBatch.unpad`. They agree with the one-episode path up to floating-point
summation order (tests/train/test_batched.py checks < 1e-4 on real BUSI features).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from medimeta.catalog.tasks import TaskTarget
from medimeta.features.table import FeatureBatch

BINARY = TaskTarget.BINARY_CLASSIFICATION.value


def ways_of(batch: FeatureBatch) -> int:
    """Columns of the class one-hot: 2 for a binary task, else the episodes' classes."""
    return 2 if batch.target == BINARY else batch.n_way


def class_weights(batch: FeatureBatch) -> torch.Tensor:
    """(E, S, W) float64 one-hot of the support classes, zero on padding."""
    onehot = F.one_hot(batch.support_y.clamp_min(0), ways_of(batch)).double()
    return onehot * batch.support_mask[..., None].double()


def label_weights(batch: FeatureBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-label: (E, S, L) float64 weights of the positive and of the negative support rows
    of each label, zero on padding."""
    mask = batch.support_mask[..., None].double()
    pos = (batch.support_y == 1).double() * mask
    return pos, (1.0 - (batch.support_y == 1).double()) * mask


def centroids(weights: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """(E, S, W) weights x (E, S, F) features -> (E, W, F) weighted means (per column)."""
    total = torch.einsum("esw,esf->ewf", weights, features)
    return total / weights.sum(1)[..., None]


def squared_distances(query: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(E, Q, F) x (E, W, F) -> (E, Q, W) squared Euclidean distances, as |q|^2 - 2 q.p +
    |p|^2 (one batched product instead of an (E, Q, W, F) difference; in float64 the
    cancellation is far below the 1e-4 the per-episode path is matched to)."""
    cross = torch.bmm(query, points.transpose(1, 2))
    q2 = query.pow(2).sum(-1, keepdim=True)
    p2 = points.pow(2).sum(-1)[:, None, :]
    return (q2 - 2.0 * cross + p2).clamp_min_(0.0)


def cosines(query: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(E, Q, F) x (E, W, F) -> (E, Q, W) cosine similarities."""
    return F.normalize(query, dim=-1) @ F.normalize(points, dim=-1).transpose(1, 2)


def class_scores(batch: FeatureBatch, logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the class columns (a binary task: P(class 1) as one column)."""
    probs = torch.softmax(logits, dim=-1)
    return probs[..., 1:] if batch.target == BINARY else probs


def probe_logits(
    batch: FeatureBatch, outputs: int, steps: int, lr: float, multilabel_or_binary: bool
) -> torch.Tensor:
    """A zero-initialised linear head per episode trained with full-batch Adam on the support
    features (mean cross-entropy, or mean BCE for binary and multi-label), as the one-episode
    probe; returns the query logits (E, Q, outputs) in float64.

    Adam is element-wise and each episode's gradient depends only on its own head, so Adam
    over the stacked heads takes every episode's steps at once. The gradient of the mean
    loss is written out (softmax or sigmoid minus the target, over the real rows), which
    is what autograd computes, without its per-step overhead."""
    e, _, dim = batch.support.shape
    weight = batch.support.new_zeros(e, outputs, dim)
    bias = batch.support.new_zeros(e, outputs)
    optimizer = Adam([weight, bias], lr=lr)
    mask = batch.support_mask.to(batch.support.dtype)[..., None]
    if multilabel_or_binary:
        target = batch.support_y.reshape(e, -1, outputs).to(batch.support.dtype)
        scale = mask / (mask.sum(1, keepdim=True) * outputs)
    else:
        target = F.one_hot(batch.support_y, outputs).to(batch.support.dtype)
        scale = mask / mask.sum(1, keepdim=True)
    for _ in range(steps):
        logits = torch.baddbmm(bias[:, None, :], batch.support, weight.transpose(1, 2))
        probs = torch.sigmoid(logits) if multilabel_or_binary else torch.softmax(logits, -1)
        grad = (probs - target) * scale  # d(mean loss) / d(logits), zero on padding
        optimizer.step([torch.bmm(grad.transpose(1, 2), batch.support), grad.sum(1)])
    return torch.baddbmm(bias[:, None, :], batch.query, weight.transpose(1, 2)).double()


class Adam:
    """Adam with torch's defaults (betas 0.9 / 0.999, eps 1e-8, no weight decay), the update
    of ``torch.optim.Adam``'s single-tensor path written out: the same arithmetic, without
    the optimiser machinery whose first use imports torch's compiler (about 2 s)."""

    def __init__(self, params: list[torch.Tensor], lr: float) -> None:
        self.params, self.lr, self.step_count = params, lr, 0
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self, grads: list[torch.Tensor]) -> None:
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        self.step_count += 1
        bias_correction1 = 1 - beta1**self.step_count
        bias_correction2_sqrt = (1 - beta2**self.step_count) ** 0.5
        step_size = self.lr / bias_correction1
        state = zip(self.params, grads, self.exp_avg, self.exp_avg_sq, strict=True)
        for param, grad, avg, avg_sq in state:
            avg.lerp_(grad, 1 - beta1)
            avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = (avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
            param.addcdiv_(avg, denom, value=-step_size)
