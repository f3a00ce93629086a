"""``vpt``: visual prompt tuning (Jia et al., ECCV 2022), trained per episode with a head.

Per episode a copy of the backbone gets ``vpt_tokens`` learnable prompt tokens after its class
token: *deep* (the default, MedFM's VPT baseline) a new set before every transformer layer,
*shallow* one set after the embeddings. The backbone's own weights stay frozen; the prompts and a
zero-initialised head are trained on the support set with full-batch Adam (``finetune_steps``
150, ``finetune_lr`` 1e-3). For class-token transformers: ViT, DeiT, DINOv2 and the CLIP image
tower (and open_clip / timm ViTs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from medimeta.errors import OptionError
from medimeta.models.backbone import Backbone
from medimeta.models.hf.adapters import add_prompts, token_tower
from medimeta.train.fewshot.methods.finetune import Adapter, EpisodeTraining
from medimeta.train.fewshot.options import FinetuneOptions, MethodSettings
from medimeta.train.fewshot.registry import register_method


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
class VisualPromptTuning(EpisodeTraining):
    name = "vpt"
    paper_name = "VPT"
    summary = "learnable prompt tokens (deep) and a zero head, backbone frozen, per episode"
    reference = "Jia et al., ECCV 2022 (VPT); MedFM's VPT baseline (Wang et al., NeurIPS 2023)"
    options = VptOptions
    order = 17
    in_default_benchmark = False

    def adapter(self) -> Adapter:
        return _adapt

    def unsupported(self, backbone: Backbone) -> str | None:
        if token_tower(backbone) is None:
            return "VPT needs a class-token transformer (an hf: ViT, DeiT, DINOv2 or CLIP)"
        return None
