"""Backbone + linear head for one task, built reproducibly from a seed (see
:mod:`medimeta.models.build` for the seeded construction)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from medimeta.catalog.tasks import TaskSpec
from medimeta.models import create_backbone, make_head, scores_from_logits
from medimeta.models.backbone import Backbone
from medimeta.models.build import Pretrained, pretrained_arg, seeded


class Classifier(nn.Module):
    """``head(backbone(x))``: logits of one task; ``scores`` gives the metric probabilities."""

    def __init__(
        self, backbone: Backbone, head: nn.Module, target: object, ordinal: str = "nominal"
    ):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.target = target
        self.ordinal = ordinal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        return scores_from_logits(self.target, logits, ordinal=self.ordinal)


def num_classes(task: TaskSpec) -> int:
    """Classes of the task (binary: 2, multi-label: labels)."""
    return len(task.keys)


def build_classifier(
    backbone: str | Backbone,
    task: TaskSpec,
    *,
    pretrained: Pretrained = False,
    in_chans: int = 3,
    head_init: str = "default",
    ordinal: str = "nominal",
    seed: int = 0,
) -> Classifier:
    """A classifier for ``task``; ``head_init`` "default" (Kaiming, seeded) or "zero"."""
    with seeded(seed):
        if isinstance(backbone, str):
            backbone = create_backbone(
                backbone, pretrained=pretrained_arg(pretrained), in_chans=in_chans
            )
        head = make_head(
            task.target, num_classes(task), backbone.num_features, head_init, ordinal=ordinal
        )
    return Classifier(backbone, head, task.target, ordinal)


def describe_weights(backbone: Backbone, pretrained: Pretrained) -> dict[str, Any]:
    """Record of the backbone and its weights for result files."""
    info = backbone.describe()
    info["pretrained"] = str(pretrained) if not isinstance(pretrained, bool) else pretrained
    return info
