"""``lora``: low-rank adapters on the attention projections, trained per episode with a head.

Per episode a copy of the backbone gets LoRA adapters (Hu et al., ICLR 2022; via ``peft``) on
its attention query and value projections (``lora_targets`` to choose others), its own weights
frozen; the adapters and a zero-initialised head are trained on the support set with full-batch
Adam (``finetune_steps`` 150, ``finetune_lr`` 1e-3), as THUNDER's LoRA baseline adapts
foundation models. Rank 8, alpha 16 and dropout 0.1 are peft's usual values for ViTs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from medimeta.episodes import Episode
from medimeta.errors import OptionError
from medimeta.models.backbone import Backbone
from medimeta.models.hf.adapters import add_lora, lora_targets
from medimeta.train.fewshot.methods.finetune import Adapter, EpisodeTraining
from medimeta.train.fewshot.options import FinetuneOptions, MethodSettings
from medimeta.train.fewshot.registry import register_method


@dataclass(frozen=True)
class LoraOptions(FinetuneOptions):
    """lora: adapter rank, scaling (alpha / rank), dropout and the modules it adapts (empty:
    the attention query and value projections)."""

    finetune_steps: int = 150
    finetune_lr: float = 1e-3
    finetune_bn: str = field(default="train", metadata={"omit_default": True})
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    lora_targets: tuple[str, ...] = ()

    def validate(self) -> None:
        super().validate()
        if self.lora_rank < 1 or self.lora_alpha <= 0 or not 0 <= self.lora_dropout < 1:
            raise OptionError(
                "LoRA needs lora_rank >= 1, lora_alpha > 0 and 0 <= lora_dropout < 1; got "
                f"{self.lora_rank}, {self.lora_alpha}, {self.lora_dropout}"
            )


def _adapt(backbone: Backbone, cfg: MethodSettings) -> list[nn.Parameter]:
    o = cfg.options_as(LoraOptions)
    return add_lora(
        backbone,
        rank=o.lora_rank,
        alpha=o.lora_alpha,
        dropout=o.lora_dropout,
        targets=tuple(o.lora_targets),
    )


@register_method
class Lora(EpisodeTraining):
    name = "lora"
    paper_name = "LoRA"
    summary = "low-rank adapters on attention query/value and a zero head, trained per episode"
    reference = "Hu et al., ICLR 2022 (LoRA, via peft); THUNDER's LoRA baseline"
    options = LoraOptions
    order = 16
    in_default_benchmark = False

    def adapter(self) -> Adapter:
        return _adapt

    def unsupported(self, backbone: Backbone) -> str | None:
        if lora_targets(backbone) is None:
            return (
                "LoRA needs a transformer with attention query/value projections "
                "(an hf: ViT, DeiT, BEiT, DINOv2, CLIP, SigLIP or Swin)"
            )
        return None

    def run_details(
        self, backbone: Backbone, cfg: MethodSettings, episodes: Sequence[Episode]
    ) -> dict[str, Any]:
        chosen = lora_targets(backbone, tuple(cfg.options_as(LoraOptions).lora_targets))
        return {**super().run_details(backbone, cfg, episodes), "lora_modules": list(chosen or ())}
