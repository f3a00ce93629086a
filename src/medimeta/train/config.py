"""Supervised training settings, the two protocol presets, optimiser and learning-rate schedule.

Presets (override any field afterwards):

* ``paper`` (MedIMeta Table 3, supplementary code): ImageNet weights, ImageNet-style
  normalisation of the backbone, Adam lr 1e-3, batch 64, the paper's augmentation,
  validation every epoch, early stopping on validation AUROC with patience 10, at most
  100 epochs, test metrics of the best-validation checkpoint.
* ``medmnist`` (MedMNIST v2 benchmark, ``MedMNIST/experiments``): random initialisation,
  Adam lr 1e-3, batch 128, 100 epochs, learning rate x0.1 at epochs 50 and 75, no
  augmentation, mean/std 0.5 normalisation, model selection by best validation AUC, metrics
  as ``medmnist.Evaluator``. (The published script keeps a reference to the live model as
  "best", so it actually reports the last epoch; ``select="last"`` reproduces that.)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch

from medimeta.errors import UnknownNameError, check_choice
from medimeta.train.augment import NO_AUGMENT, PAPER_AUGMENT, AugmentConfig

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "multistep", "cosine")
SELECTIONS = ("best", "last")
NORMALIZATIONS = ("auto", "half", "imagenet")
PRESETS = ("paper", "medmnist")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a supervised run besides data, backbone and seed.

    ``milestones`` are epochs (0-based epoch at which the rate is multiplied by ``gamma``).
    ``patience`` counts validations without improvement of ``monitor`` by more than
    ``min_delta`` (None: no early stopping). ``select`` picks the checkpoint evaluated on the
    test split: the best validation one or the last one. ``pretrained``: True/"imagenet" for
    the backbone's default weights, False for random init, or a weights file path.
    ``channels_last`` None: channels-last memory layout on CPU for inputs >= 64 pixels.
    """

    epochs: int = 100
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    schedule: str = "constant"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    patience: int | None = 10
    monitor: str = "auroc"
    min_delta: float = 0.0
    select: str = "best"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    image_size: int | None = None
    pretrained: bool | str = True
    normalize: str = "auto"
    head_init: str = "default"
    ordinal: str = "nominal"
    metrics_mode: str = "default"
    eval_batch_size: int = 256
    drop_last: bool = False
    channels_last: bool | None = None
    preset: str | None = None

    def __post_init__(self) -> None:
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("learning-rate schedule", self.schedule, SCHEDULES)
        check_choice("checkpoint selection", self.select, SELECTIONS)
        check_choice("normalisation", self.normalize, NORMALIZATIONS)
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError("epochs, batch_size and eval_batch_size must be >= 1")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0; got {self.lr}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 or None; got {self.patience}")

    def with_overrides(self, **changes: Any) -> TrainConfig:
        """A copy with the given fields changed (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["augment"] = self.augment.to_dict()
        out["milestones"] = list(self.milestones)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        values = dict(data)
        values["augment"] = AugmentConfig.from_dict(values.get("augment") or {})
        values["milestones"] = tuple(values.get("milestones") or ())
        return cls(**values)


def preset(name: str) -> TrainConfig:
    """The settings of a named protocol (see the module docstring)."""
    if name == "paper":
        return TrainConfig(
            epochs=100,
            batch_size=64,
            lr=1e-3,
            patience=10,
            augment=PAPER_AUGMENT,
            pretrained=True,
            metrics_mode="default",
            preset="paper",
        )
    if name == "medmnist":
        return TrainConfig(
            epochs=100,
            batch_size=128,
            lr=1e-3,
            schedule="multistep",
            milestones=(50, 75),
            gamma=0.1,
            patience=None,
            augment=NO_AUGMENT,
            pretrained=False,
            normalize="half",
            metrics_mode="medmnist",
            preset="medmnist",
        )
    raise UnknownNameError("training preset", name, PRESETS)


def lr_at(config: TrainConfig, epoch: int) -> float:
    """Learning rate of 0-based ``epoch`` (a pure function, so resuming needs no state)."""
    if config.schedule == "multistep":
        passed = sum(1 for m in config.milestones if epoch >= m)
        return config.lr * config.gamma**passed
    if config.schedule == "cosine":
        return 0.5 * config.lr * (1.0 + math.cos(math.pi * epoch / config.epochs))
    return config.lr


def make_optimizer(
    config: TrainConfig, params: list[torch.nn.Parameter] | Any
) -> torch.optim.Optimizer:
    """The configured optimiser over ``params``."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=config.lr, weight_decay=config.weight_decay)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
