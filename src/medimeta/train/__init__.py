"""Training and evaluation of baselines: supervised runs and cross-domain few-shot methods.

The small backbones ``resnet18_cifar``, ``resnet50_cifar`` (MedMNIST "ResNet (28)") and
``tiny_cnn`` are registered with the others by :mod:`medimeta.models`.
"""

from __future__ import annotations

from medimeta.models.build import seeded
from medimeta.train.augment import PAPER_AUGMENT, AugmentConfig, augment_batch
from medimeta.train.checkpoint import load_checkpoint, save_checkpoint
from medimeta.train.config import PRESETS, TrainConfig, preset
from medimeta.train.model import Classifier, build_classifier
from medimeta.train.records import TrainResult
from medimeta.train.supervised import summarize_seeds, train_supervised

__all__ = [
    "PAPER_AUGMENT",
    "PRESETS",
    "AugmentConfig",
    "Classifier",
    "TrainConfig",
    "TrainResult",
    "augment_batch",
    "build_classifier",
    "load_checkpoint",
    "preset",
    "save_checkpoint",
    "seeded",
    "summarize_seeds",
    "train_supervised",
]
