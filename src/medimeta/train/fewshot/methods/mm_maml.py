"""``mm-maml``: multi-domain multi-task MAML, the MedIMeta paper's "MM-MAML", with ``torch.func``.

Each episode gets a fresh zero-initialised head sized for its classes (so tasks with
different targets and class counts share one backbone). The inner loop adapts backbone and
head by plain SGD steps computed with ``torch.func.grad`` on a parameter dictionary
(``inner_lr`` 0.1 x ``inner_steps`` 4); meta-training back-propagates the query loss of the
adapted parameters into the backbone (second order, or first order when ``first_order``;
outer Adam ``meta_lr`` 1e-3), and only the backbone is meta-learned.

Evaluation adapts a *copy* (SGD ``eval_inner_lr`` 0.1 x ``eval_inner_steps`` 32): the
parameter and buffer dictionaries are cloned per episode and fed through
``torch.func.functional_call``, so the meta-learned module is never written to and every
evaluation episode starts from the same weights (the reference implementation adapted the
backbone in place, so each test episode started from the previous one's fine-tuned weights).
BatchNorm buffers are cloned per episode as well.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad

from medimeta.episodes import Episode
from medimeta.errors import OptionError
from medimeta.features.reader import EpisodeReader, EpisodeTensors
from medimeta.models import make_head, make_loss, scores_from_logits
from medimeta.models.backbone import Backbone
from medimeta.models.build import seeded
from medimeta.progress import Progress
from medimeta.train.fewshot.calibration import Probe, timed
from medimeta.train.fewshot.learners import Scored, episode_head
from medimeta.train.fewshot.options import MetaEpisodeOptions, MethodSettings, SourceOptions
from medimeta.train.fewshot.pretrain import source_episodes
from medimeta.train.fewshot.registry import (
    CostContext,
    FewShotMethod,
    MethodKind,
    StageContext,
    register_method,
)


@dataclass(frozen=True)
class MamlOptions(MetaEpisodeOptions, SourceOptions):
    """mm-maml: meta-episodes and sources, inner and outer loops, evaluation adaptation.

    ``transductive``: BatchNorm uses the query batch's statistics when scoring it (the
    paper's code)."""

    meta_lr: float = 1e-3
    inner_lr: float = 0.1
    inner_steps: int = 4
    eval_inner_lr: float = 0.1
    eval_inner_steps: int = 32
    first_order: bool = False
    transductive: bool = True

    def validate(self) -> None:
        super().validate()
        for name in ("inner_steps", "eval_inner_steps"):
            if getattr(self, name) < 0:
                raise OptionError(f"{name} must be >= 0; got {getattr(self, name)}")


Params = dict[str, torch.Tensor]


class EpisodeNet(nn.Module):
    """Backbone (shared, not copied) + one episode's head; called through ``functional_call``."""

    def __init__(self, backbone: Backbone, head: nn.Linear) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def episode_net(backbone: Backbone, ep: EpisodeTensors, cfg: MethodSettings) -> EpisodeNet:
    head = episode_head(
        ep.target, ep.n_way, backbone.num_features, init="zero", ordinal=cfg.ordinal
    ).to(ep.support_x.device)
    return EpisodeNet(backbone, head)


def adapt(
    net: EpisodeNet,
    params: Params,
    buffers: Params,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: nn.Module,
    *,
    steps: int,
    lr: float,
    order: str,
) -> Params:
    """``steps`` SGD steps on the support loss; returns new parameter tensors.

    ``order``: ``"second"`` keeps the result differentiable with respect to ``params``
    through the gradients (full MAML); ``"first"`` detaches each gradient (first-order MAML:
    the result depends on ``params`` only through the identity path); ``"none"`` detaches
    everything (evaluation).
    """

    def support_loss(p: Params, b: Params) -> torch.Tensor:
        return loss_fn(functional_call(net, (p, b), (x,)), y)

    for _ in range(steps):
        grads = grad(support_loss)(params, buffers)
        if order == "second":
            params = {k: params[k] - lr * grads[k] for k in params}
        elif order == "first":
            params = {k: params[k] - lr * grads[k].detach() for k in params}
        else:
            params = {k: (params[k] - lr * grads[k]).detach() for k in params}
    return params


def _clone(tensors: dict[str, torch.Tensor]) -> Params:
    return {k: v.detach().clone() for k, v in tensors.items()}


def maml_episode(
    backbone: Backbone, ep: EpisodeTensors, cfg: MethodSettings, seed: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """Adapt a copy of the meta-learned weights to the support set; score the query."""
    opts = cfg.options_as(MamlOptions)
    net = episode_net(backbone, ep, cfg)
    loss_fn = make_loss(ep.target, ordinal=cfg.ordinal)
    params = _clone(dict(net.named_parameters()))
    buffers = _clone(dict(net.named_buffers()))
    was_training = net.training
    net.train()  # support statistics during adaptation
    with seeded(seed):
        adapted = adapt(
            net,
            params,
            buffers,
            ep.support_x,
            ep.support_y,
            loss_fn,
            steps=opts.eval_inner_steps,
            lr=opts.eval_inner_lr,
            order="none",
        )
        net.train(opts.transductive)  # transductive: query batch statistics, as the paper
        with torch.no_grad():
            logits = functional_call(net, (adapted, buffers), (ep.query_x,))
            support_loss = float(
                loss_fn(functional_call(net, (adapted, buffers), (ep.support_x,)), ep.support_y)
            )
    net.train(was_training)
    scores = scores_from_logits(ep.target, logits.double(), ordinal=cfg.ordinal)
    return scores.double().cpu().numpy(), {"support_loss": support_loss}


def meta_train(
    backbone: Backbone,
    episodes: Callable[[int], Episode] | Any,
    reader: EpisodeReader,
    cfg: MethodSettings,
    *,
    log: Callable[[str], None] | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Meta-learn ``backbone`` in place on ``meta_steps`` x ``meta_batch_size`` episodes.

    ``episodes(i)`` (or ``episodes[i]``, e.g. a MultiTaskEpisodes) gives source episode
    ``i``; episode numbers run
    consecutively over steps, so the run is a function of the episode source and seed.
    """
    opts = cfg.options_as(MamlOptions)
    get = episodes if callable(episodes) else episodes.__getitem__
    optimizer = torch.optim.Adam(backbone.parameters(), lr=opts.meta_lr)
    curve: list[float] = []
    backbone.train()
    for step in range(opts.meta_steps):
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for j in range(opts.meta_batch_size):
            ep = reader.load(get(step * opts.meta_batch_size + j))
            net = episode_net(backbone, ep, cfg)
            loss_fn = make_loss(ep.target, ordinal=cfg.ordinal)
            params: Params = dict(net.named_parameters())
            buffers = _clone(dict(net.named_buffers()))
            with seeded(cfg.seed + step):
                adapted = adapt(
                    net,
                    params,
                    buffers,
                    ep.support_x,
                    ep.support_y,
                    loss_fn,
                    steps=opts.inner_steps,
                    lr=opts.inner_lr,
                    order="first" if opts.first_order else "second",
                )
                net.train(opts.transductive)
                logits = functional_call(net, (adapted, buffers), (ep.query_x,))
                net.train()
            loss = loss_fn(logits, ep.query_y) / opts.meta_batch_size
            loss.backward()
            total += float(loss.detach())
        optimizer.step()
        curve.append(total)
        if progress is not None:
            progress.advance(total, "query loss")
        if log is not None and (step + 1) % max(1, opts.meta_steps // 10) == 0:
            log(f"mm-maml step {step + 1}/{opts.meta_steps}: query loss {total:.4f}")
    return {"steps": opts.meta_steps, "query_loss_curve": curve}


def measure_maml(probe: Probe) -> dict[str, Any]:
    """Calibration part ``maml``: one second-order meta-step (one inner SGD step on 2 support
    images through ``torch.func``, backward of the query loss of 4 images); the cost model
    scales it to the real meta-episode sizes with the ``train`` part."""
    backbone, device = probe.backbone, probe.reader.device
    xs, xq = probe.batch(2), probe.batch(4)
    ys = torch.arange(2, device=device) % 2
    yq = torch.arange(4, device=device) % 2
    target = "MULTICLASS_CLASSIFICATION"
    head = make_head(target, 2, backbone.num_features, "zero").to(device)
    net = EpisodeNet(copy.deepcopy(backbone), head)
    loss_fn = make_loss(target)
    net.train()

    def meta_step() -> None:
        params: dict[str, torch.Tensor] = dict(net.named_parameters())
        buffers = {k: v.detach().clone() for k, v in net.named_buffers()}
        adapted = adapt(net, params, buffers, xs, ys, loss_fn, steps=1, lr=0.1, order="second")
        loss_fn(functional_call(net, (adapted, buffers), (xq,)), yq).backward()
        net.zero_grad(set_to_none=True)

    return {"s_per_meta_step": timed(meta_step, 1), "support": 2, "query": 4}


@register_method
class MultiTaskMaml(FewShotMethod):
    name = "mm-maml"
    paper_name = "MM-MAML"
    kind = MethodKind.META_TRAINED
    summary = "MAML on source-task episodes, then adapt a copy per episode"
    reference = "Woerner et al., MedIMeta (2024), Table 4 'MM-MAML'; Finn et al., ICML 2017"
    options = MamlOptions
    stages = ("meta-training on source episodes", "episodes")
    calibration = ("forward", "train", "maml")
    measures = {"maml": measure_maml}
    order = 60
    cost_knobs = ("--meta-steps",)

    def train_stage(self, ctx: StageContext) -> dict[str, Any]:
        chosen = len(ctx.sources["tasks"])
        # tasks too small for the meta-episodes are dropped here: announce what is used
        episodes = source_episodes(ctx.root, ctx.sources["specs"], ctx.cfg)
        used = len(episodes.samplers)
        note = f" ({chosen - used} of {chosen} skipped, see above)" if used < chosen else ""
        ctx.log(f"{self.name}: training on {used} source tasks{note}")
        steps = ctx.cfg.options_as(MamlOptions).meta_steps
        with seeded(ctx.cfg.seed), Progress(ctx.progress, steps, self.name) as bar:
            return meta_train(
                ctx.backbone, episodes, ctx.reader, ctx.cfg, log=ctx.log, progress=bar
            )

    def score_episode(
        self,
        backbone: Backbone,
        ep: EpisodeTensors,
        cfg: MethodSettings,
        seed: int,
        stage: dict[str, Any],
    ) -> Scored:
        return maml_episode(backbone, ep, cfg, seed)

    def estimate(self, ctx: CostContext) -> tuple[float, dict[str, Any]]:
        opts = ctx.cfg.options_as(MamlOptions)
        per_episode = opts.eval_inner_steps * ctx.train_s(ctx.support)
        per_episode += ctx.query * ctx.forward_s() + ctx.bookkeeping_s
        stage = 0.0
        if not ctx.stage_done():
            # one timed second-order meta-step, scaled by the sizes of these meta-episodes
            ways = ctx.source_ways()
            ns, nq = opts.meta_shots * ways, opts.meta_queries * ways
            m = ctx.part("maml")
            scale = (opts.inner_steps * ctx.train_s(ns) + ctx.train_s(nq)) / max(
                ctx.train_s(m["support"]) + ctx.train_s(m["query"]), 1e-9
            )
            stage = opts.meta_steps * opts.meta_batch_size * m["s_per_meta_step"] * scale
        seconds = stage + ctx.episodes * per_episode
        return seconds, {"per_episode_s": per_episode, "stage_s": stage}
