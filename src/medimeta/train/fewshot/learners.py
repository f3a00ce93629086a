"""Pieces the few-shot methods share: a fresh episode head, full-batch Adam fitting, eval-mode
features, one-thread blocks for tiny tensor work and the metrics of an episode.

Every learner returns :data:`Scored`: query scores (probabilities, see
:func:`medimeta.models.scores_from_logits`; binary: one column) and a small record.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from medimeta.models import make_head
from medimeta.models.backbone import Backbone

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


def fit_adam(
    params: Any,
    forward: Callable[[], torch.Tensor],
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


@torch.no_grad()
def eval_features(backbone: Backbone, x: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
    """Eval-mode features of ``x`` (the backbone's mode is restored afterwards)."""
    was_training = backbone.training
    backbone.eval()
    out = torch.cat([backbone(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])
    backbone.train(was_training)
    return out


def episode_head(
    target: str, n_way: int, num_features: int, *, init: str = "zero", ordinal: str = "nominal"
) -> torch.nn.Linear:
    """A fresh head for an episode's classes (zero init: every class row starts at 0)."""
    return make_head(target, n_way, num_features, init, ordinal=ordinal)
