"""Small backbones for MedMNIST-size inputs and for smoke tests (random initialisation only).

* ``resnet18_cifar`` / ``resnet50_cifar``: the "ResNet (28)" of the MedMNIST v2 benchmark
  (MedMNIST/experiments ``models.py``, adapted from kuangliu/pytorch-cifar): the
  :class:`~medimeta.models.resnet.ResNet` of :mod:`medimeta.models.resnet` with its
  ``"cifar"`` stem (3x3 stride 1, no max-pooling) and PyTorch's default initialisation. On
  28x28 inputs a torchvision ResNet would reach 1x1 after ``layer3``; this one keeps 4x4 at
  ``layer4``. MedMNIST trains it from scratch.
* ``tiny_cnn``: two strided convolutions with GroupNorm (16 features). GroupNorm is
  per-sample, so results do not depend on how a batch is split over processes; it is the
  model of the distributed-training test and of quick smoke runs.
"""

from __future__ import annotations

import torch
from torch import nn

from medimeta.models.backbone import Backbone, PretrainedCfg
from medimeta.models.registry import register_backbone
from medimeta.models.resnet import BasicBlock, Bottleneck, ResNet

RANDOM_INIT = PretrainedCfg(
    source="random initialisation (no pretrained weights)", normalization="half"
)


class CifarResNet(ResNet):
    """ResNet with a 3x3 stride-1 stem and no max-pool (MedMNIST "ResNet (28)")."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: tuple[int, int, int, int],
        *,
        in_chans: int,
    ) -> None:
        super().__init__(
            block,
            layers,
            in_chans=in_chans,
            pretrained_cfg=RANDOM_INIT,
            stem="cifar",
            init="pytorch",
        )


class TinyCNN(Backbone):
    """conv(8, s2) GN ReLU -> conv(16, s2) GN ReLU -> global average: 16 features."""

    def __init__(self, *, in_chans: int) -> None:
        super().__init__(num_features=16, in_chans=in_chans, pretrained_cfg=RANDOM_INIT)
        self.conv1 = nn.Conv2d(in_chans, 8, 3, stride=2, padding=1)
        self.norm1 = nn.GroupNorm(2, 8)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.norm2 = nn.GroupNorm(4, 16)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.norm1(self.conv1(x)))
        x = torch.relu(self.norm2(self.conv2(x)))
        return x.mean(dim=(2, 3))


@register_backbone("resnet18_cifar")
def resnet18_cifar(*, in_chans: int = 3) -> CifarResNet:
    """MedMNIST "ResNet-18 (28)": 512 features, 3x3 stem, no max-pool."""
    return CifarResNet(BasicBlock, (2, 2, 2, 2), in_chans=in_chans)


@register_backbone("resnet50_cifar")
def resnet50_cifar(*, in_chans: int = 3) -> CifarResNet:
    """MedMNIST "ResNet-50 (28)": 2048 features, 3x3 stem, no max-pool."""
    return CifarResNet(Bottleneck, (3, 4, 6, 3), in_chans=in_chans)


@register_backbone("tiny_cnn")
def tiny_cnn(*, in_chans: int = 3) -> TinyCNN:
    """A 16-feature two-layer CNN for tests and smoke runs."""
    return TinyCNN(in_chans=in_chans)
