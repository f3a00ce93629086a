"""Small backbones for MedMNIST-size inputs and for smoke tests, added to the model registry.

* ``resnet18_cifar`` / ``resnet50_cifar``: the "ResNet (28)" of the MedMNIST v2 benchmark
  (MedMNIST/experiments ``models.py``, adapted from kuangliu/pytorch-cifar): a 3x3 stride-1
  stem without max-pooling, then torchvision's four stages. On 28x28 inputs a torchvision
  ResNet would reach 1x1 after ``layer3``; this one keeps 4x4 at ``layer4``. Random
  initialisation only (MedMNIST trains from scratch).
* ``tiny_cnn``: two strided convolutions with GroupNorm (16 features). GroupNorm is
  per-sample, so results do not depend on how a batch is split over processes; it is the
  model of the distributed-training test and of quick smoke runs.

Registered when :mod:`medimeta.train` is imported (names already registered elsewhere are
left alone).
"""

from __future__ import annotations

import torch
from torch import nn

from medimeta.models.backbone import Backbone, PretrainedCfg
from medimeta.models.registry import list_backbones, register_backbone
from medimeta.models.resnet import BasicBlock, Bottleneck, make_stages

_RANDOM_INIT = PretrainedCfg(
    source="random initialisation (no pretrained weights)",
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
)


class CifarResNet(Backbone):
    """ResNet with a 3x3 stride-1 stem and no max-pool (MedMNIST "ResNet (28)")."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: tuple[int, int, int, int],
        *,
        in_chans: int,
    ) -> None:
        super().__init__(
            num_features=512 * block.expansion, in_chans=in_chans, pretrained_cfg=_RANDOM_INIT
        )
        self.conv1 = nn.Conv2d(in_chans, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.layer1, self.layer2, self.layer3, self.layer4 = make_stages(block, layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


class TinyCNN(Backbone):
    """conv(8, s2) GN ReLU -> conv(16, s2) GN ReLU -> global average: 16 features."""

    def __init__(self, *, in_chans: int) -> None:
        super().__init__(num_features=16, in_chans=in_chans, pretrained_cfg=_RANDOM_INIT)
        self.conv1 = nn.Conv2d(in_chans, 8, 3, stride=2, padding=1)
        self.norm1 = nn.GroupNorm(2, 8)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.norm2 = nn.GroupNorm(4, 16)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.norm1(self.conv1(x)))
        x = torch.relu(self.norm2(self.conv2(x)))
        return x.mean(dim=(2, 3))


def resnet18_cifar(*, in_chans: int = 3) -> CifarResNet:
    """MedMNIST "ResNet-18 (28)": 512 features, 3x3 stem, no max-pool."""
    return CifarResNet(BasicBlock, (2, 2, 2, 2), in_chans=in_chans)


def resnet50_cifar(*, in_chans: int = 3) -> CifarResNet:
    """MedMNIST "ResNet-50 (28)": 2048 features, 3x3 stem, no max-pool."""
    return CifarResNet(Bottleneck, (3, 4, 6, 3), in_chans=in_chans)


def tiny_cnn(*, in_chans: int = 3) -> TinyCNN:
    """A 16-feature two-layer CNN for tests and smoke runs."""
    return TinyCNN(in_chans=in_chans)


def register_small_backbones() -> None:
    """Add the backbones of this module to the registry (idempotent)."""
    have = set(list_backbones())
    for name, factory in (
        ("resnet18_cifar", resnet18_cifar),
        ("resnet50_cifar", resnet50_cifar),
        ("tiny_cnn", tiny_cnn),
    ):
        if name not in have:
            register_backbone(name)(factory)
