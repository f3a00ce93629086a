"""Backbones (registry), heads and losses per task target.

Names are imported on first use (so that, e.g., looking a hub model up in the named table does
not import torch). Importing :mod:`medimeta.models.registry` (as any of its names does)
registers the built-in backbones: ``resnet18``, ``resnet50``, ``efficientnet_lite0``, the small
``resnet18_cifar``, ``resnet50_cifar`` (MedMNIST "ResNet (28)") and ``tiny_cnn``, and the
``timm:`` / ``torchvision:`` / ``hf:`` prefixes (the named hub models of ``medimeta backbones
list`` are also accepted without ``hf:``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medimeta._lazy import lazy_getattr

_LAZY = {
    "IMAGENET_MEAN": "medimeta.models.backbone",
    "IMAGENET_STD": "medimeta.models.backbone",
    "Backbone": "medimeta.models.backbone",
    "InputAdapter": "medimeta.models.backbone",
    "PretrainedCfg": "medimeta.models.backbone",
    "corn_rank": "medimeta.models.heads",
    "head_out_features": "medimeta.models.heads",
    "make_head": "medimeta.models.heads",
    "ordinal_probs": "medimeta.models.heads",
    "scores_from_logits": "medimeta.models.heads",
    "CornLoss": "medimeta.models.losses",
    "FloatBCEWithLogitsLoss": "medimeta.models.losses",
    "IndexCrossEntropyLoss": "medimeta.models.losses",
    "make_loss": "medimeta.models.losses",
    "create_backbone": "medimeta.models.registry",
    "list_backbones": "medimeta.models.registry",
    "register_backbone": "medimeta.models.registry",
    "register_backbone_prefix": "medimeta.models.registry",
    "adapt_first_conv_weight": "medimeta.models.weights",
    "load_backbone_weights": "medimeta.models.weights",
    "read_state_dict": "medimeta.models.weights",
}

if TYPE_CHECKING:
    from medimeta.models.backbone import (
        IMAGENET_MEAN,
        IMAGENET_STD,
        Backbone,
        InputAdapter,
        PretrainedCfg,
    )
    from medimeta.models.heads import (
        corn_rank,
        head_out_features,
        make_head,
        ordinal_probs,
        scores_from_logits,
    )
    from medimeta.models.losses import (
        CornLoss,
        FloatBCEWithLogitsLoss,
        IndexCrossEntropyLoss,
        make_loss,
    )
    from medimeta.models.registry import (
        create_backbone,
        list_backbones,
        register_backbone,
        register_backbone_prefix,
    )
    from medimeta.models.weights import (
        adapt_first_conv_weight,
        load_backbone_weights,
        read_state_dict,
    )

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Backbone",
    "CornLoss",
    "FloatBCEWithLogitsLoss",
    "IndexCrossEntropyLoss",
    "InputAdapter",
    "PretrainedCfg",
    "adapt_first_conv_weight",
    "corn_rank",
    "create_backbone",
    "head_out_features",
    "list_backbones",
    "load_backbone_weights",
    "make_head",
    "make_loss",
    "ordinal_probs",
    "read_state_dict",
    "register_backbone",
    "register_backbone_prefix",
    "scores_from_logits",
]

__getattr__ = lazy_getattr(__name__, _LAZY, globals())
