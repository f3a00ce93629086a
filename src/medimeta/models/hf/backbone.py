"""``hf:`` backbones: the image tower of a transformers, open_clip or timm model folder, named
model or hub id (``hf:SOURCE[@pool=POOL]``) as a :class:`~medimeta.models.backbone.Backbone`.

The backbone carries its model's own :class:`~medimeta.models.preprocessing.Preprocessing`
(the readers apply it) and pools as ``pooling`` says (:mod:`medimeta.models.hf.families`).
``describe()`` records the hub id, revision and commit, the weights' sha256, the family, the
pooling and the preprocessing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from medimeta.data.pixels import Normalizer
from medimeta.errors import ShapeError
from medimeta.models.backbone import Backbone, PretrainedCfg
from medimeta.models.hf.families import (
    Family,
    check_pool,
    default_pool,
    num_features,
    pool_features,
    prefix_tokens,
)
from medimeta.models.hf.source import ModelSource, parse_spec, resolve
from medimeta.models.preprocessing import Preprocessing
from medimeta.models.registry import Pretrained, register_backbone_prefix


class HFBackbone(Backbone):
    """An image tower (``model``) pooled as ``pooling``; input: the model's own pixels."""

    def __init__(
        self,
        model: nn.Module,
        *,
        family: Family,
        pool: str,
        config: Any,
        preprocessing: Preprocessing,
        pretrained_cfg: PretrainedCfg,
        info: dict[str, Any],
    ) -> None:
        super().__init__(
            num_features=num_features(family, config, pool),
            in_chans=3,
            pretrained_cfg=pretrained_cfg,
        )
        self.model = model
        self.family = family
        self.pooling = pool
        self.preprocessing = preprocessing
        self.prefix = prefix_tokens(family, config)
        self.hf = info

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return pool_features(self.family, self.model, x, self.pooling, self.prefix)

    def weights_module(self) -> nn.Module:
        return self.model

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "hf": dict(self.hf)}


def _pretrained_cfg(source: ModelSource, prep: Preprocessing, label: str) -> PretrainedCfg:
    side = prep.output_size(224, 224)
    mean, std = prep.unit_statistics()
    return PretrainedCfg(
        source=f"hf {label}",
        input_size=(3, side[0], side[1]),
        normalization=Normalizer(tuple(mean), tuple(std), "hf"),
        interpolation=prep.resample,
        first_conv="",
        classifier="",
        num_classes=0,
        url=f"https://huggingface.co/{source.hub_id}" if source.hub_id else None,
        license=source.named.license if source.named else None,
    )


@register_backbone_prefix("hf")
def hf_backbone(model: str, *, pretrained: Pretrained, in_chans: int) -> Backbone:
    """``hf:SOURCE[@pool=POOL]``; ``pretrained``: True loads the folder's weights, False builds
    the architecture randomly (seeded by the caller), a path loads that state dict."""
    from medimeta.models.hf.loading import load_model

    if in_chans != 3:
        raise ShapeError(
            f"hf:{model} takes RGB input (grey images are expanded to RGB); got in_chans="
            f"{in_chans}; fix: in_chans=3"
        )
    spec = parse_spec(model)
    source = resolve(spec.source)  # fails at once when a hub model is not cached
    loaded = load_model(source, weights=pretrained is True)
    pool = spec.pool or (source.named.pool if source.named else None)
    pool = check_pool(loaded.family, pool or default_pool(loaded.family, loaded.config))
    info = {
        "name": spec.name(),
        "source": source.label,
        "folder": str(source.folder),
        "format": source.format,
        "family": loaded.family.name,
        "model_type": loaded.model_type,
        "hub_id": source.hub_id,
        "revision": source.revision,
        "commit": source.commit,
        "named": source.named.name if source.named else None,
    }
    backbone = HFBackbone(
        loaded.module,
        family=loaded.family,
        pool=pool,
        config=loaded.config,
        preprocessing=loaded.preprocessing,
        pretrained_cfg=_pretrained_cfg(source, loaded.preprocessing, source.label),
        info=info,
    )
    if pretrained is True:
        backbone.weights = source.weights_record()
    elif pretrained is not False and pretrained is not None:
        from medimeta.models.weights import load_backbone_weights

        load_backbone_weights(backbone, Path(pretrained))
    return backbone
