"""Backbones (registry), heads and losses per task target.

Importing this package registers the built-in backbones: ``resnet18``, ``resnet50``,
``efficientnet_lite0``, the small ``resnet18_cifar``, ``resnet50_cifar`` (MedMNIST "ResNet
(28)") and ``tiny_cnn``, and the ``timm:`` / ``torchvision:`` prefixes.
"""

from __future__ import annotations

# Imported for their registrations only.
import medimeta.models.efficientnet as _efficientnet
import medimeta.models.external as _external
import medimeta.models.resnet as _resnet
import medimeta.models.small as _small
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

del _efficientnet, _external, _resnet, _small

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
