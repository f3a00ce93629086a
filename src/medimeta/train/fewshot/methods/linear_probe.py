"""``linear-probe``: a linear head on frozen features ("ImageNet (linear probe)").

The backbone's eval-mode features of the support set train a zero-initialised linear head
(Adam lr ``probe_lr`` 1e-2, ``probe_steps`` 100 full-batch steps); the query features are
scored by it. The backbone is never trained.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from medimeta.catalog.tasks import TaskTarget
from medimeta.errors import OptionError
from medimeta.features.table import FeatureBatch
from medimeta.models import head_out_features, make_loss, scores_from_logits
from medimeta.models.build import seeded
from medimeta.train.fewshot.batched import probe_logits
from medimeta.train.fewshot.calibration import Probe, timed
from medimeta.train.fewshot.learners import Scored, episode_head, fit_adam, one_thread
from medimeta.train.fewshot.options import MethodOptions, MethodSettings
from medimeta.train.fewshot.registry import (
    CostContext,
    FewShotMethod,
    MethodKind,
    frozen_features_cost,
    register_method,
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
    """Train a zero-initialised linear head on support features; score the query features.

    In float64: the episodes' batched solver then gives the same numbers to 1e-12 (float32
    Adam steps differ by rounding by up to ~1e-4 between two summation orders)."""
    opts = cfg.options_as(ProbeOptions)
    support, query = support.double(), query.double()
    with one_thread():
        with seeded(seed):
            head = episode_head(
                target, n_way, support.shape[1], init=cfg.head_init, ordinal=cfg.ordinal
            ).to(support.device, torch.float64)
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
            scores = scores_from_logits(target, head(query), ordinal=cfg.ordinal)
    return scores.double().cpu().numpy(), {"support_loss": curve[-1] if curve else None}


def measure_probe(probe: Probe) -> dict[str, Any]:
    """Calibration part ``probe``: the batched solver's time per episode and step, on 100
    random 3-way 5-shot episodes of the backbone's feature size."""
    from medimeta.features.table import FeatureBatch

    e, s, dim, steps = 100, 15, probe.backbone.num_features, 20
    gen = torch.Generator().manual_seed(0)
    batch = FeatureBatch(
        [],
        torch.randn(e, s, dim, generator=gen, dtype=torch.float64),
        torch.ones(e, s, dtype=torch.bool),
        (torch.arange(s) % 3).repeat(e, 1),
        torch.randn(e, 30, dim, generator=gen, dtype=torch.float64),
        torch.ones(e, 30, dtype=torch.bool),
        TaskTarget.MULTICLASS_CLASSIFICATION.value,
        3,
    )
    seconds = timed(lambda: probe_logits(batch, 3, steps, 1e-2, False), 3)
    return {"s_per_step": seconds / (steps * e), "episodes": e}


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

    def score_batch(
        self, batch: FeatureBatch, cfg: MethodSettings, stage: dict[str, Any]
    ) -> list[Scored] | None:
        corn = cfg.ordinal == "corn" and batch.target == TaskTarget.ORDINAL_REGRESSION
        if cfg.head_init != "zero" or corn:
            return None  # a seeded random head or CORN: the one-episode path
        opts = cfg.options_as(ProbeOptions)
        outputs = head_out_features(batch.target, batch.n_way, ordinal=cfg.ordinal)
        bce = batch.target in (
            TaskTarget.BINARY_CLASSIFICATION,
            TaskTarget.MULTILABEL_CLASSIFICATION,
        )
        double = dataclasses.replace(
            batch, support=batch.support.double(), query=batch.query.double()
        )  # float64, as the one-episode probe
        logits = probe_logits(double, outputs, opts.probe_steps, opts.probe_lr, bce)
        scores = scores_from_logits(batch.target, logits, ordinal=cfg.ordinal)
        return [(s, {}) for s in batch.unpad(scores)]

    def estimate(self, ctx: CostContext) -> tuple[float, dict[str, Any]]:
        steps = ctx.cfg.options_as(ProbeOptions).probe_steps
        return frozen_features_cost(ctx, steps * ctx.part("probe")["s_per_step"])
