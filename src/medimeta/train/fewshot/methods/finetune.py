"""``im-pt``: the MedIMeta paper's "ImageNet" row: fine-tune the whole network per episode.

ImageNet weights, then per episode a copy of the backbone and a fresh zero-initialised head
trained on the support set in training mode (BatchNorm with support statistics;
``finetune_bn="frozen"`` keeps the running statistics) for ``finetune_steps`` full-batch Adam
steps (lr ``finetune_lr`` 1e-2); the query is scored in eval mode. The backbone given is never
modified.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from medimeta.episodes import Episode
from medimeta.features.reader import EpisodeTensors
from medimeta.models import make_loss
from medimeta.models.backbone import Backbone
from medimeta.models.build import seeded
from medimeta.train.fewshot.learners import Scored, episode_head, fit_adam, freeze_batchnorm
from medimeta.train.fewshot.options import FinetuneOptions, MethodSettings
from medimeta.train.fewshot.registry import (
    CostContext,
    FewShotMethod,
    MethodKind,
    register_method,
)
from medimeta.train.model import Classifier

#: Prepares a copy of the backbone for training and returns the parameters to train (the
#: adapters of LoRA or VPT, which freeze the rest); None trains every parameter.
Adapter = Callable[[Backbone, MethodSettings], list[nn.Parameter]]


def finetune_episode(
    template: Backbone,
    ep: EpisodeTensors,
    cfg: MethodSettings,
    seed: int,
    adapt: Adapter | None = None,
) -> Scored:
    """Fine-tune a copy of ``template`` (all of it, or what ``adapt`` returns) and a fresh head
    on the support set; score the query."""
    opts = cfg.options_as(FinetuneOptions)
    with seeded(seed):
        backbone = copy.deepcopy(template)
        trained = adapt(backbone, cfg) if adapt is not None else list(backbone.parameters())
        head = episode_head(
            ep.target, ep.n_way, backbone.num_features, init=cfg.head_init, ordinal=cfg.ordinal
        ).to(ep.support_x.device)
    model = Classifier(backbone, head, ep.target, cfg.ordinal)
    loss_fn = make_loss(ep.target, ordinal=cfg.ordinal)
    model.train()
    if opts.finetune_bn == "frozen":
        freeze_batchnorm(model)
    with seeded(seed):
        curve = fit_adam(
            [*trained, *head.parameters()],
            lambda: model(ep.support_x),
            ep.support_y,
            loss_fn,
            opts.finetune_steps,
            opts.finetune_lr,
        )
    model.eval()
    with torch.no_grad():
        scores = model.scores(model(ep.query_x).double())  # float64: fewer saturated ties
    return scores.double().cpu().numpy(), {"support_loss": curve[-1] if curve else None}


def trainable_parameters(
    template: Backbone, cfg: MethodSettings, adapt: Adapter | None = None
) -> dict[str, Any]:
    """What an episode trains besides the head: the backbone's own parameters, those trained
    (all of them, or the adapters ``adapt`` adds) and their share, as the run record keeps
    them."""
    total = sum(p.numel() for p in template.parameters())
    if adapt is None:
        trained = total
    else:
        trained = sum(p.numel() for p in adapt(copy.deepcopy(template), cfg))
    return {
        "backbone_parameters": int(total),
        "trained_parameters": int(trained),
        "trained_share": trained / total if total else 0.0,
    }


def finetune_cost(ctx: CostContext, steps: int) -> tuple[float, dict[str, Any]]:
    """Episodes x (steps x a training step on the support + the query's forward)."""
    per_episode = steps * ctx.train_s(ctx.support) + ctx.query * ctx.forward_s()
    per_episode += ctx.bookkeeping_s
    return ctx.episodes * per_episode, {"per_episode_s": per_episode}


class EpisodeTraining(FewShotMethod):
    """Base of the methods that train a copy of the backbone (all of it, or the adapters that
    ``adapter`` adds) and a zero-initialised head on each support set: the learner, its cost
    model and the record of what it trains. A subclass declares its name, options and, for
    parameter-efficient methods, :meth:`adapter`."""

    kind = MethodKind.ADAPTED
    calibration = ("forward", "train")
    cost_knobs = ("--steps",)

    def adapter(self) -> Adapter | None:
        """What adds the parameters to train to a copy of the backbone (None: train all)."""
        return None

    def score_episode(
        self,
        backbone: Backbone,
        ep: EpisodeTensors,
        cfg: MethodSettings,
        seed: int,
        stage: dict[str, Any],
    ) -> Scored:
        return finetune_episode(backbone, ep, cfg, seed, self.adapter())

    def estimate(self, ctx: CostContext) -> tuple[float, dict[str, Any]]:
        return finetune_cost(ctx, ctx.cfg.options_as(FinetuneOptions).finetune_steps)

    def run_details(
        self, backbone: Backbone, cfg: MethodSettings, episodes: Sequence[Episode]
    ) -> dict[str, Any]:
        return trainable_parameters(backbone, cfg, self.adapter())


@dataclass(frozen=True)
class ImPtOptions(FinetuneOptions):
    """im-pt: the fine-tuning options only."""


@register_method
class ImageNetFinetune(EpisodeTraining):
    name = "im-pt"
    paper_name = "ImageNet"
    summary = "fine-tune the pretrained network and a zero-initialised head per episode"
    reference = "Woerner et al., MedIMeta (2024), Table 4 'ImageNet'"
    options = ImPtOptions
    order = 10
