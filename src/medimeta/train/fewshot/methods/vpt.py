"""``vpt``: visual prompt tuning (Jia et al., ECCV 2022), trained per episode with a head.

Per episode a copy of the backbone gets ``vpt_tokens`` learnable prompt tokens after its class
token: *deep* (the default, MedFM's VPT baseline) a new set before every transformer layer,
*shallow* one set after the embeddings. The backbone's own weights stay frozen; the prompts and a
zero-initialised head are trained on the support set with full-batch Adam (``finetune_steps``
150, ``finetune_lr`` 1e-3). For class-token transformers: ViT, DeiT, DINOv2 and the CLIP image
tower (and open_clip / timm ViTs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from medimeta.episodes import Episode
from medimeta.errors import OptionError
from medimeta.features.reader import EpisodeTensors
from medimeta.models.backbone import Backbone
from medimeta.models.hf.adapters import add_prompts, token_tower
from medimeta.train.fewshot.learners import Scored
from medimeta.train.fewshot.methods.finetune import (
    finetune_cost,
    finetune_episode,
    trainable_parameters,
)
from medimeta.train.fewshot.options import FinetuneOptions, MethodSettings
from medimeta.train.fewshot.registry import (
    CostContext,
    FewShotMethod,
    MethodKind,
    register_method,
)


@dataclass(frozen=True)
class VptOptions(FinetuneOptions):
    """vpt: prompt tokens per layer and deep (every layer) or shallow (after the embeddings)."""

    finetune_steps: int = 150
    finetune_lr: float = 1e-3
    finetune_bn: str = field(default="train", metadata={"omit_default": True})
    vpt_tokens: int = 10
    vpt_deep: bool = True

    def validate(self) -> None:
        super().validate()
        if self.vpt_tokens < 1:
            raise OptionError(f"vpt_tokens must be >= 1; got {self.vpt_tokens}")


def _adapt(backbone: Backbone, cfg: MethodSettings) -> list[nn.Parameter]:
    o = cfg.options_as(VptOptions)
    return add_prompts(backbone, tokens=o.vpt_tokens, deep=o.vpt_deep)


@register_method
class VisualPromptTuning(FewShotMethod):
    name = "vpt"
    paper_name = "VPT"
    kind = MethodKind.ADAPTED
    summary = "learnable prompt tokens (deep) and a zero head, backbone frozen, per episode"
    reference = "Jia et al., ECCV 2022 (VPT); MedFM's VPT baseline (Wang et al., NeurIPS 2023)"
    options = VptOptions
    calibration = ("forward", "train")
    order = 17
    in_default_benchmark = False
    cost_knobs = ("--steps",)

    def unsupported(self, backbone: Backbone) -> str | None:
        if token_tower(backbone) is None:
            return "VPT needs a class-token transformer (an hf: ViT, DeiT, DINOv2 or CLIP)"
        return None

    def score_episode(
        self,
        backbone: Backbone,
        ep: EpisodeTensors,
        cfg: MethodSettings,
        seed: int,
        stage: dict[str, Any],
    ) -> Scored:
        return finetune_episode(backbone, ep, cfg, seed, adapt=_adapt)

    def run_details(
        self, backbone: Backbone, cfg: MethodSettings, episodes: Sequence[Episode]
    ) -> dict[str, Any]:
        return trainable_parameters(backbone, cfg, _adapt)

    def estimate(self, ctx: CostContext) -> tuple[float, dict[str, Any]]:
        return finetune_cost(ctx, ctx.cfg.options_as(FinetuneOptions).finetune_steps)
