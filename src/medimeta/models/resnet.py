"""ResNet-18/50 whose parameter names and shapes match torchvision's checkpoints.

A torchvision ImageNet state dict (the weights table's ``resnet18`` / ``resnet50``) loads into
these modules (its ``fc.*`` entries are dropped: a backbone ends at the pooled features).
Architecture as torchvision's: 7x7 stem, max-pool, four stages; the bottleneck puts the
stride on its 3x3 convolution ("ResNet v1.5"). The same class with the ``"cifar"`` stem (3x3
stride 1, no max-pool) is the MedMNIST "ResNet (28)" of :mod:`medimeta.models.small`.
"""

from __future__ import annotations

import torch
from torch import nn

from medimeta.errors import check_choice
from medimeta.models.backbone import Backbone, PretrainedCfg
from medimeta.models.registry import register_backbone
from medimeta.models.weights_table import WEIGHTS

STEMS: tuple[str, ...] = ("imagenet", "cifar")
INITS: tuple[str, ...] = ("torchvision", "pytorch")


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or 1x1 projection) shortcut."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(cin, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(cin, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand (x4), with a shortcut."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv1x1(cin, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(cin, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


def make_stages(
    block: type[BasicBlock] | type[Bottleneck], layers: tuple[int, int, int, int]
) -> list[nn.Sequential]:
    """The four residual stages (``layer1`` .. ``layer4``) of a ResNet with a 64-channel stem."""
    cin = 64
    stages = []
    for i, (planes, depth) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
        blocks = []
        for j in range(depth):
            blocks.append(block(cin, planes, stride=2 if (i > 0 and j == 0) else 1))
            cin = planes * block.expansion
        stages.append(nn.Sequential(*blocks))
    return stages


def _shortcut(cin: int, cout: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(_conv1x1(cin, cout, stride), nn.BatchNorm2d(cout))


def make_stem(in_chans: int, stem: str) -> tuple[nn.Conv2d, nn.Module]:
    """The stem convolution (``conv1``, 64 channels) and the pooling after it.

    ``"imagenet"``: 7x7 stride 2 and a 3x3 stride-2 max-pool (torchvision). ``"cifar"``: 3x3
    stride 1 and no pooling (an ``Identity``), which keeps small inputs at full resolution.
    """
    check_choice("ResNet stem", stem, STEMS)
    if stem == "cifar":
        return _conv3x3(in_chans, 64), nn.Identity()
    conv = nn.Conv2d(in_chans, 64, 7, stride=2, padding=3, bias=False)
    return conv, nn.MaxPool2d(kernel_size=3, stride=2, padding=1)


class ResNet(Backbone):
    """ResNet feature extractor: global average pooled output of ``layer4``.

    ``stem`` as in :func:`make_stem`; ``init`` "torchvision" (Kaiming fan-out convolutions,
    unit BatchNorm) or "pytorch" (the layers' own default initialisation). Parameter names
    (``conv1``, ``bn1``, ``layer1`` .. ``layer4``) are the same for every stem.
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: tuple[int, int, int, int],
        *,
        in_chans: int,
        pretrained_cfg: PretrainedCfg,
        stem: str = "imagenet",
        init: str = "torchvision",
    ) -> None:
        check_choice("ResNet initialisation", init, INITS)
        super().__init__(
            num_features=512 * block.expansion, in_chans=in_chans, pretrained_cfg=pretrained_cfg
        )
        self.conv1, pool = make_stem(in_chans, stem)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = pool
        self.layer1, self.layer2, self.layer3, self.layer4 = make_stages(block, layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        if init == "torchvision":
            self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's initialisation, so random-init baselines match theirs.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


@register_backbone("resnet18")
def resnet18(*, in_chans: int = 3) -> ResNet:
    """ResNet-18, 512 features (torchvision-compatible names; weights: the table's resnet18)."""
    cfg = WEIGHTS["resnet18"].pretrained_cfg()
    return ResNet(BasicBlock, (2, 2, 2, 2), in_chans=in_chans, pretrained_cfg=cfg)


@register_backbone("resnet50")
def resnet50(*, in_chans: int = 3) -> ResNet:
    """ResNet-50, 2048 features (torchvision-compatible names; weights: the table's resnet50)."""
    cfg = WEIGHTS["resnet50"].pretrained_cfg()
    return ResNet(Bottleneck, (3, 4, 6, 3), in_chans=in_chans, pretrained_cfg=cfg)
