"""``mm-pt``: the MedIMeta paper's multi-domain multi-task pre-training ("MM-PFT").

The backbone is first pre-trained on the leave-one-out source tasks (a random source task
per step, one zero-initialised head per task; Adam lr ``pretrain_lr`` 1e-3, batch 64, see
:func:`~medimeta.train.fewshot.pretrain.pretrain_multitask`), then fine-tuned per episode as
``im-pt`` (:mod:`medimeta.train.fewshot.methods.finetune`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medimeta.features.reader import EpisodeTensors
from medimeta.models.backbone import Backbone
from medimeta.models.build import seeded
from medimeta.progress import Progress
from medimeta.train.fewshot.learners import Scored
from medimeta.train.fewshot.methods.finetune import finetune_cost, finetune_episode
from medimeta.train.fewshot.options import (
    FinetuneOptions,
    MethodSettings,
    PretrainOptions,
    SourceOptions,
)
from medimeta.train.fewshot.pretrain import pretrain_multitask
from medimeta.train.fewshot.registry import (
    CostContext,
    FewShotMethod,
    MethodKind,
    StageContext,
    register_method,
)


@dataclass(frozen=True)
class MmPtOptions(FinetuneOptions, PretrainOptions, SourceOptions):
    """mm-pt: fine-tuning, pre-training and source options."""


@register_method
class MultiTaskPretrain(FewShotMethod):
    name = "mm-pt"
    paper_name = "MM-PFT"
    kind = MethodKind.META_TRAINED
    summary = "pre-train on the source tasks, then fine-tune per episode"
    reference = "Woerner et al., MedIMeta (2024), Table 4 'MM-PFT'"
    options = MmPtOptions
    stages = ("source pre-training", "episodes")
    calibration = ("forward", "train")
    order = 50
    cost_knobs = ("--pretrain-steps", "--steps")

    def train_stage(self, ctx: StageContext) -> dict[str, Any]:
        opts = ctx.cfg.options_as(PretrainOptions)
        ctx.log(f"{self.name}: training on {len(ctx.sources['tasks'])} source tasks")
        with seeded(ctx.cfg.seed), Progress(ctx.progress, opts.pretrain_steps, self.name) as bar:
            return pretrain_multitask(
                ctx.root,
                ctx.sources["specs"],
                ctx.backbone,
                ctx.reader,
                ctx.cfg,
                log=ctx.log,
                progress=bar,
            )

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
        opts = ctx.cfg.options_as(MmPtOptions)
        seconds, detail = finetune_cost(ctx, opts.finetune_steps)
        stage = (
            0.0 if ctx.stage_done() else opts.pretrain_steps * ctx.train_s(opts.pretrain_batch_size)
        )
        return seconds + stage, {**detail, "stage_s": stage}
