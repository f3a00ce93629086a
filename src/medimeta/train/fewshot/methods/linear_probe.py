"""``linear-probe``: a linear head on frozen features ("ImageNet (linear probe)").

The backbone's eval-mode features of the support set train a zero-initialised linear head
(Adam lr ``probe_lr`` 1e-2, ``probe_steps`` 100 full-batch steps); the query features are
scored by it. The backbone is never trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from medimeta.errors import OptionError
from medimeta.features.reader import EpisodeReader
from medimeta.models import make_head, make_loss, scores_from_logits
from medimeta.models.backbone import Backbone
from medimeta.models.build import seeded
from medimeta.train.fewshot.learners import Scored, episode_head, fit_adam, one_thread
from medimeta.train.fewshot.options import MethodOptions, MethodSettings
from medimeta.train.fewshot.registry import (
    CostContext,
    FewShotMethod,
    MethodKind,
    frozen_features_cost,
    register_method,
    timed,
)


@dataclass(frozen=True)
class ProbeOptions(MethodOptions):
    """linear-probe: full-batch Adam steps and learning rate of the head."""

    probe_steps: int = 100
    probe_lr: float = 1e-2

    def validate(self) -> None:
        super().validate()
        if self.probe_steps < 0 or self.probe_lr < 0:
            raise OptionError(
                f"probe_steps and probe_lr must be >= 0; got {self.probe_steps}, {self.probe_lr}"
            )


def probe_scores(
    support: torch.Tensor,
    support_y: torch.Tensor,
    query: torch.Tensor,
    target: str,
    n_way: int,
    cfg: MethodSettings,
    seed: int,
) -> Scored:
    """Train a zero-initialised linear head on support features; score the query features."""
    opts = cfg.options_as(ProbeOptions)
    with one_thread():
        with seeded(seed):
            head = episode_head(
                target, n_way, support.shape[1], init=cfg.head_init, ordinal=cfg.ordinal
            ).to(support.device)
        loss_fn = make_loss(target, ordinal=cfg.ordinal)
        curve = fit_adam(
            head.parameters(),
            lambda: head(support),
            support_y,
            loss_fn,
            opts.probe_steps,
            opts.probe_lr,
        )
        with torch.no_grad():
            scores = scores_from_logits(target, head(query).double(), ordinal=cfg.ordinal)
    return scores.double().cpu().numpy(), {"support_loss": curve[-1] if curve else None}


def measure_probe(backbone: Backbone, reader: EpisodeReader, folder: Path) -> dict[str, Any]:
    """Calibration part ``probe``: one Adam step of a linear head on 15 random features."""
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(15, backbone.num_features, generator=gen).to(reader.device)
    y = torch.arange(15, device=reader.device) % 3
    target = "MULTICLASS_CLASSIFICATION"
    head = make_head(target, 3, backbone.num_features, "zero").to(reader.device)
    loss_fn = make_loss(target)
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)

    def steps() -> None:
        with one_thread():  # as the probe runs
            for _ in range(20):
                loss = loss_fn(head(feats), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

    return {"s_per_step": timed(steps, 5) / 20}


@register_method
class LinearProbe(FewShotMethod):
    name = "linear-probe"
    paper_name = "ImageNet (linear probe)"
    kind = MethodKind.FROZEN
    summary = "a zero-initialised linear head trained on frozen support features"
    reference = "MedIMeta (2024), Table 4 'ImageNet (linear probe)'"
    options = ProbeOptions
    stages = ("features", "episodes")
    calibration = ("forward", "probe")
    measures = {"probe": measure_probe}
    reads_features = True
    order = 20
    cost_knobs = ("--steps",)

    def score_features(
        self,
        support: torch.Tensor,
        support_y: torch.Tensor,
        query: torch.Tensor,
        target: str,
        n_way: int,
        cfg: MethodSettings,
        seed: int,
        stage: dict[str, Any],
    ) -> Scored:
        return probe_scores(support, support_y, query, target, n_way, cfg, seed)

    def estimate(self, ctx: CostContext) -> tuple[float, dict[str, Any]]:
        steps = ctx.cfg.options_as(ProbeOptions).probe_steps
        return frozen_features_cost(ctx, steps * ctx.part("probe")["s_per_step"])
