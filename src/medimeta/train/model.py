"""Backbone + linear head for one task, built reproducibly from a seed.

PyTorch initialises layers from its global generator. :func:`seeded` runs a block with that
generator forked and seeded, and restores it afterwards, so building a model (or training
with modules that draw random numbers) is a function of the seed and leaves the caller's
global random state untouched.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from medimeta.catalog.tasks import TaskSpec
from medimeta.data.pixels import Normalizer, get_normalization
from medimeta.models import create_backbone, make_head, scores_from_logits
from medimeta.models.backbone import Backbone

Pretrained = bool | str | os.PathLike[str]


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with torch's global CPU generator forked and seeded with ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


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


def build_backbone(
    name: str, *, pretrained: Pretrained = False, in_chans: int = 3, seed: int = 0
) -> Backbone:
    """``create_backbone`` with a seeded random initialisation."""
    with seeded(seed):
        return create_backbone(name, pretrained=_pretrained_arg(pretrained), in_chans=in_chans)


def _pretrained_arg(pretrained: Pretrained) -> Pretrained:
    if isinstance(pretrained, str) and pretrained.lower() in ("imagenet", "default", "true"):
        return True
    if isinstance(pretrained, str) and pretrained.lower() in ("none", "false", "random", ""):
        return False
    return pretrained if isinstance(pretrained, bool) else Path(pretrained)


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
                backbone, pretrained=_pretrained_arg(pretrained), in_chans=in_chans
            )
        head = make_head(
            task.target, num_classes(task), backbone.num_features, head_init, ordinal=ordinal
        )
    return Classifier(backbone, head, task.target, ordinal)


class _Normalize(Protocol):
    """A configuration with a ``normalize`` choice (TrainConfig, FewShotConfig)."""

    @property
    def normalize(self) -> str: ...


def make_normalizer(config: _Normalize, backbone: nn.Module) -> Normalizer:
    """The normaliser of ``config.normalize``: a preset ("half", "imagenet"), or for "auto"
    the mean and std of the backbone's weights ("half" for a module without them)."""
    if config.normalize != "auto":
        return get_normalization(config.normalize)
    cfg: Any = getattr(backbone, "pretrained_cfg", None)
    if cfg is None:
        return get_normalization("half")
    return Normalizer(tuple(cfg.mean), tuple(cfg.std))


def describe_weights(backbone: Backbone, pretrained: Pretrained) -> dict[str, Any]:
    """Record of the backbone and its weights for result files."""
    info = backbone.describe()
    info["pretrained"] = str(pretrained) if not isinstance(pretrained, bool) else pretrained
    return info
