"""``finetune``: full fine-tuning with the MedIMeta authors' fixed foundation-model settings.

The follow-up benchmark of the MedIMeta authors (Woerner et al., arXiv:2408.08058) fine-tunes
every foundation model per episode with Adam, learning rate 1e-4, 150 full-batch steps and a
zero-initialised linear head: this is ``im-pt``'s learner
(:mod:`medimeta.train.fewshot.methods.finetune`) with those defaults, as its own method so
that the paper's ``im-pt`` (lr 1e-2, 100 steps) and this protocol appear as separate rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from medimeta.episodes import Episode
from medimeta.features.reader import EpisodeTensors
from medimeta.models.backbone import Backbone
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
class FmFinetuneOptions(FinetuneOptions):
    """finetune: the authors' Adam lr 1e-4 x 150 full-batch steps."""

    finetune_steps: int = 150
    finetune_lr: float = 1e-4
    finetune_bn: str = field(default="train", metadata={"omit_default": True})


@register_method
class FoundationFinetune(FewShotMethod):
    name = "finetune"
    paper_name = "Fine-tuning (FM protocol)"
    kind = MethodKind.ADAPTED
    summary = "fine-tune the whole model per episode: Adam 1e-4 x 150 steps, zero head"
    reference = "Woerner et al., arXiv:2408.08058 (MedIMeta foundation-model benchmark)"
    options = FmFinetuneOptions
    calibration = ("forward", "train")
    order = 15
    in_default_benchmark = False  # the fm-grid preset's
    cost_knobs = ("--steps",)

    def score_episode(
        self,
        backbone: Backbone,
        ep: EpisodeTensors,
        cfg: MethodSettings,
        seed: int,
        stage: dict[str, Any],
    ) -> Scored:
        return finetune_episode(backbone, ep, cfg, seed)

    def estimate(self, ctx: CostContext) -> tuple[float, dict[str, Any]]:
        return finetune_cost(ctx, ctx.cfg.options_as(FinetuneOptions).finetune_steps)

    def run_details(
        self, backbone: Backbone, cfg: MethodSettings, episodes: Sequence[Episode]
    ) -> dict[str, Any]:
        return trainable_parameters(backbone, cfg)
