"""Inference over a split: scores, labels and loss, sharded over ranks and gathered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from medimeta.data.device import model_input
from medimeta.data.distributed import DistEnv, all_gather_objects, shard
from medimeta.data.pixels import Normalizer
from medimeta.data.splits import SplitData
from medimeta.evaluate.compute import compute_metrics
from medimeta.evaluate.predictions import Predictions
from medimeta.train.model import Classifier


@dataclass
class Evaluation:
    """Predictions on a split, their mean loss and metrics."""

    predictions: Predictions
    loss: float
    metrics: dict[str, float]


def forward_batch(
    model: nn.Module,
    x: torch.Tensor,
    normalizer: Normalizer,
    device: torch.device,
    channels_last: bool = False,
) -> torch.Tensor:
    """Logits of a uint8 batch (converted, normalised, moved to ``device``)."""
    return model(model_input(normalizer.to_float(x), normalizer, device, channels_last))


@torch.no_grad()
def predict(
    model: Classifier,
    data: SplitData,
    normalizer: Normalizer,
    *,
    loss_fn: nn.Module | None = None,
    batch_size: int = 256,
    device: torch.device | None = None,
    env: DistEnv | None = None,
    metrics_mode: str = "default",
    info: dict[str, Any] | None = None,
    channels_last: bool = False,
) -> Evaluation:
    """Scores of ``model`` (in eval mode) on every sample of ``data``.

    With several ranks each scores a contiguous slice and all ranks receive the whole result.
    The model's training mode is restored afterwards.
    """
    env = env or DistEnv()
    device = device or torch.device("cpu")
    was_training = model.training
    model.eval()
    mine = shard(np.arange(len(data)), env)
    score_parts: list[np.ndarray] = []
    loss_sum = 0.0
    for start in range(0, mine.size, batch_size):
        pos = mine[start : start + batch_size]
        x, y = data.batch(pos)
        logits = forward_batch(model, x, normalizer, device, channels_last)
        if loss_fn is not None:
            loss_sum += float(loss_fn(logits, y.to(device))) * pos.size
        # float64 before softmax/sigmoid: float32 saturates to exact 0/1 (ties) at |logit| > ~17
        score_parts.append(model.scores(logits.double()).cpu().numpy())
    model.train(was_training)
    width = score_parts[0].shape[1] if score_parts else 0
    local = np.concatenate(score_parts) if score_parts else np.zeros((0, width))
    gathered = all_gather_objects((local, loss_sum), env)
    width = max(g[0].shape[1] for g in gathered)
    scores = np.concatenate([g[0].reshape(-1, width) for g in gathered])
    loss = sum(g[1] for g in gathered) / max(len(data), 1)
    task = data.task
    preds = Predictions(
        data.indices,
        data.labels,
        scores,
        task.target.value,
        data.folder.id,
        task.name,
        data.split,
        list(task.class_names),
        [int(k) for k in task.keys],
        info=dict(info or {}),
    )
    metrics = compute_metrics(preds.target, preds.labels, preds.metric_scores(), mode=metrics_mode)
    return Evaluation(preds, loss if loss_fn is not None else float("nan"), metrics)
