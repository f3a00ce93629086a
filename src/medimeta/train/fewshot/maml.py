"""Multi-domain multi-task MAML (mm-MAML) with ``torch.func``.

Each episode gets a fresh zero-initialised head sized for its classes (so tasks with
different targets and class counts share one backbone). The inner loop adapts backbone and
head by plain SGD steps computed with ``torch.func.grad`` on a parameter dictionary;
meta-training back-propagates the query loss of the adapted parameters into the backbone
(second order, or first order when ``first_order``), and only the backbone is meta-learned.

Evaluation adapts a *copy*: the parameter and buffer dictionaries are cloned per episode
and fed through ``torch.func.functional_call``, so the meta-learned module is never written
to and every evaluation episode starts from the same weights (the reference implementation
adapted the backbone in place, so each test episode started from the previous one's
fine-tuned weights). BatchNorm buffers are cloned per episode as well.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad

from medimeta.episodes import Episode
from medimeta.models import make_loss, scores_from_logits
from medimeta.models.backbone import Backbone
from medimeta.train.fewshot.config import FewShotConfig
from medimeta.train.fewshot.tensors import EpisodeReader, EpisodeTensors, episode_head
from medimeta.train.model import seeded

Params = dict[str, torch.Tensor]


class EpisodeNet(nn.Module):
    """Backbone (shared, not copied) + one episode's head; called through ``functional_call``."""

    def __init__(self, backbone: Backbone, head: nn.Linear) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def episode_net(backbone: Backbone, ep: EpisodeTensors, cfg: FewShotConfig) -> EpisodeNet:
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
    backbone: Backbone, ep: EpisodeTensors, cfg: FewShotConfig, seed: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """Adapt a copy of the meta-learned weights to the support set; score the query."""
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
            steps=cfg.eval_inner_steps,
            lr=cfg.eval_inner_lr,
            order="none",
        )
        net.train(cfg.transductive)  # transductive: query batch statistics, as the paper
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
    cfg: FewShotConfig,
    *,
    log: Callable[[str], None] | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Meta-learn ``backbone`` in place on ``cfg.meta_steps`` x ``cfg.meta_batch_size`` episodes.

    ``episodes(i)`` (or ``episodes[i]``, e.g. a MultiTaskEpisodes) gives source episode
    ``i``; episode numbers run
    consecutively over steps, so the run is a function of the episode source and seed.
    """
    get = episodes if callable(episodes) else episodes.__getitem__
    optimizer = torch.optim.Adam(backbone.parameters(), lr=cfg.meta_lr)
    curve: list[float] = []
    backbone.train()
    for step in range(cfg.meta_steps):
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for j in range(cfg.meta_batch_size):
            ep = reader.load(get(step * cfg.meta_batch_size + j))
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
                    steps=cfg.inner_steps,
                    lr=cfg.inner_lr,
                    order="first" if cfg.first_order else "second",
                )
                net.train(cfg.transductive)
                logits = functional_call(net, (adapted, buffers), (ep.query_x,))
                net.train()
            loss = loss_fn(logits, ep.query_y) / cfg.meta_batch_size
            loss.backward()
            total += float(loss.detach())
        optimizer.step()
        curve.append(total)
        if progress is not None:
            progress.advance(total, "query loss")
        if log is not None and (step + 1) % max(1, cfg.meta_steps // 10) == 0:
            log(f"mm-maml step {step + 1}/{cfg.meta_steps}: query loss {total:.4f}")
    return {"steps": cfg.meta_steps, "query_loss_curve": curve}
