"""Backbones from timm and torchvision, created lazily as ``timm:<model>``/``torchvision:<model>``.

Neither library is a dependency: the handlers import it on first use and raise
MissingDependencyError naming the ``vision`` extra when it cannot be imported.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from medimeta.data.pixels import Normalizer, get_normalization
from medimeta.errors import MissingDependencyError, ShapeError
from medimeta.models.backbone import Backbone, PretrainedCfg
from medimeta.models.registry import Pretrained, register_backbone_prefix
from medimeta.models.weights import adapt_first_conv_weight, load_backbone_weights


def _require(package: str, backbone: str) -> Any:
    try:
        return importlib.import_module(package)
    except Exception as exc:  # a mismatched torchvision fails with RuntimeError, not ImportError
        raise MissingDependencyError.for_extra(
            "vision",
            f"backbone {backbone!r} needs the package {package!r}, which cannot be imported "
            f"here ({type(exc).__name__}: {exc})",
        ) from exc


class WrappedBackbone(Backbone):
    """An external feature extractor (classifier already removed) as a Backbone."""

    def __init__(
        self, model: nn.Module, *, num_features: int, in_chans: int, pretrained_cfg: PretrainedCfg
    ) -> None:
        super().__init__(
            num_features=num_features, in_chans=in_chans, pretrained_cfg=pretrained_cfg
        )
        self.model = model

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.model(x), 1)

    def weights_module(self) -> nn.Module:
        return self.model


def _get_submodule_parent(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    parent_name, _, child = name.rpartition(".")
    return (model.get_submodule(parent_name) if parent_name else model), child


def _set_first_conv(model: nn.Module, name: str, in_chans: int) -> None:
    """Replace the first conv by one for ``in_chans`` channels with adapted RGB kernels."""
    conv = model.get_submodule(name)
    if not isinstance(conv, nn.Conv2d) or conv.in_channels == in_chans:
        return
    new = nn.Conv2d(
        in_chans,
        conv.out_channels,
        conv.kernel_size,  # type: ignore[arg-type]
        stride=conv.stride,  # type: ignore[arg-type]
        padding=conv.padding,  # type: ignore[arg-type]
        dilation=conv.dilation,  # type: ignore[arg-type]
        groups=conv.groups,
        bias=conv.bias is not None,
    )
    with torch.no_grad():
        new.weight.copy_(adapt_first_conv_weight(conv.weight, in_chans))
        if conv.bias is not None and new.bias is not None:
            new.bias.copy_(conv.bias)
    parent, child = _get_submodule_parent(model, name)
    setattr(parent, child, new)


def _strip_classifier(model: nn.Module, backbone: str) -> tuple[str, int]:
    """Replace the last Linear layer by Identity; return its name and input width."""
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ShapeError(f"{backbone}: no Linear classifier found to remove")
    name, layer = linears[-1]
    parent, child = _get_submodule_parent(model, name)
    setattr(parent, child, nn.Identity())
    return name, layer.in_features


def _load_path(backbone: Backbone, pretrained: Pretrained) -> Backbone:
    if pretrained is not True and pretrained is not False and pretrained is not None:
        load_backbone_weights(backbone, Path(pretrained))
    return backbone


def _timm_normalization(tcfg: dict[str, Any]) -> str | Normalizer:
    """timm's own mean/std when its config has them (ImageNet's fill a missing one)."""
    if "mean" not in tcfg and "std" not in tcfg:
        return "imagenet"
    imagenet = get_normalization("imagenet")
    mean, std = tcfg.get("mean", imagenet.mean), tcfg.get("std", imagenet.std)
    return Normalizer(tuple(mean), tuple(std), "timm")


@register_backbone_prefix("timm")
def timm_backbone(model: str, *, pretrained: Pretrained, in_chans: int) -> Backbone:
    """``timm.create_model(model, num_classes=0, in_chans=...)``; True downloads timm's weights."""
    timm = _require("timm", f"timm:{model}")
    net = timm.create_model(model, pretrained=pretrained is True, num_classes=0, in_chans=in_chans)
    tcfg = dict(getattr(net, "pretrained_cfg", None) or {})
    cfg = PretrainedCfg(
        source=f"timm {model}" + (f" ({tcfg['tag']})" if tcfg.get("tag") else ""),
        input_size=tuple(tcfg.get("input_size", (3, 224, 224))),
        normalization=_timm_normalization(tcfg),
        interpolation=str(tcfg.get("interpolation", "bilinear")),
        first_conv=str(tcfg.get("first_conv", "conv1")),
        classifier=str(tcfg.get("classifier", "fc")),
        num_classes=int(tcfg.get("num_classes", 1000)),
        url=tcfg.get("url") or tcfg.get("hf_hub_id"),
        license=tcfg.get("license"),
    )
    backbone = WrappedBackbone(
        net, num_features=int(net.num_features), in_chans=in_chans, pretrained_cfg=cfg
    )
    if pretrained is True:
        backbone.weights = {"source": cfg.source}
    return _load_path(backbone, pretrained)


@register_backbone_prefix("torchvision")
def torchvision_backbone(model: str, *, pretrained: Pretrained, in_chans: int) -> Backbone:
    """``torchvision.models.get_model(model)`` minus its last Linear; True: "DEFAULT" weights."""
    tv = _require("torchvision", f"torchvision:{model}")
    net = tv.models.get_model(model, weights="DEFAULT" if pretrained is True else None)
    classifier, num_features = _strip_classifier(net, f"torchvision:{model}")
    first_conv = next(n for n, m in net.named_modules() if isinstance(m, nn.Conv2d))
    _set_first_conv(net, first_conv, in_chans)
    cfg = PretrainedCfg(
        source=f"torchvision {model}" + (" DEFAULT weights" if pretrained is True else ""),
        first_conv=first_conv,
        classifier=classifier,
    )
    backbone = WrappedBackbone(
        net, num_features=num_features, in_chans=in_chans, pretrained_cfg=cfg
    )
    if pretrained is True:
        backbone.weights = {"source": cfg.source}
    return _load_path(backbone, pretrained)
