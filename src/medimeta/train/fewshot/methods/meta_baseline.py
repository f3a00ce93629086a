"""Meta-Baseline (Chen et al., "Meta-Baseline: Exploring Simple Meta-Learning for Few-Shot
Learning", ICCV 2021), the few-shot baseline of MedFM.

1. Classifier pre-training: mm-pt's stage as is (:func:`~medimeta.train.fewshot.pretrain.
   pretrain_multitask`), saved as ``meta_baseline_classifier.safetensors`` with a hash of
   the settings it depends on (not the meta settings nor the episodes), so that a run killed
   in the meta stage, or one with other meta settings, does not pre-train again.
2. Meta stage: source episodes (mm-MAML's, ``meta_shots`` / ``meta_queries``), heads
   dropped; support and query go through the backbone in training mode in one batch (as the
   reference code), the class centroids are the mean support features and the logits
   ``tau * cos(query, centroid)`` with ``tau`` a learnable scalar from ``mb_tau``; query
   cross-entropy; SGD over backbone and ``tau`` (``mb_lr``, ``mb_momentum``,
   ``mb_weight_decay``: the paper's 1e-3, 0.9, 5e-4).
3. Evaluation: eval-mode features, centroids from the support, scores ``softmax(tau * cos)``
   (binary: the class-1 column; multi-label: per label a positive and a negative centroid,
   ``sigmoid(tau * (cos_pos - cos_neg))``, as :func:`~medimeta.train.fewshot.methods.
   prototype_scores` does with distances). Nothing is trained on the target.

The learned ``tau`` is part of the stage record saved with the backbone.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from medimeta.catalog import TaskSpec
from medimeta.catalog.tasks import TaskTarget
from medimeta.episodes import Episode
from medimeta.errors import OptionError
from medimeta.features.reader import EpisodeReader, EpisodeTensors
from medimeta.features.table import FeatureBatch
from medimeta.logs import Log
from medimeta.models.backbone import Backbone
from medimeta.models.build import seeded
from medimeta.progress import Progress
from medimeta.train.checkpoint import load_checkpoint, save_checkpoint
from medimeta.train.fewshot.batched import (
    centroids,
    class_scores,
    class_weights,
    cosines,
    label_weights,
)
from medimeta.train.fewshot.centroids import centroid_logits, centroid_scores
from medimeta.train.fewshot.learners import Scored, one_thread
from medimeta.train.fewshot.options import (
    MetaEpisodeOptions,
    MethodSettings,
    PretrainOptions,
    SourceOptions,
)
from medimeta.train.fewshot.pretrain import pretrain_multitask, source_episodes
from medimeta.train.fewshot.registry import (
    CostContext,
    FewShotMethod,
    MethodKind,
    StageContext,
    register_method,
)

CLASSIFIER_FILE = "meta_baseline_classifier.safetensors"


@dataclass(frozen=True)
class MetaBaselineOptions(PretrainOptions, MetaEpisodeOptions, SourceOptions):
    """meta-baseline: classifier pre-training, meta-episodes, sources, and the meta stage's
    SGD (``mb_lr`` 1e-3, ``mb_momentum`` 0.9, ``mb_weight_decay`` 5e-4) and initial
    temperature ``mb_tau`` 10 (the paper's)."""

    #: The meta stage's settings: the classifier pre-training does not depend on them.
    META_FIELDS: ClassVar[tuple[str, ...]] = (
        "meta_steps",
        "meta_batch_size",
        "meta_shots",
        "meta_queries",
        "mb_lr",
        "mb_momentum",
        "mb_weight_decay",
        "mb_tau",
    )

    mb_lr: float = 1e-3
    mb_momentum: float = 0.9
    mb_weight_decay: float = 5e-4
    mb_tau: float = 10.0

    def validate(self) -> None:
        super().validate()
        if not (self.mb_tau > 0 and self.mb_lr >= 0 and self.mb_weight_decay >= 0):
            raise OptionError(
                f"meta-baseline needs mb_tau > 0, mb_lr >= 0 and mb_weight_decay >= 0; got "
                f"{self.mb_tau}, {self.mb_lr}, {self.mb_weight_decay}"
            )


def query_loss(backbone: Backbone, ep: EpisodeTensors, tau: torch.Tensor) -> torch.Tensor:
    """The meta-stage loss of one episode (the backbone in its current mode)."""
    n = ep.support_x.shape[0]
    feats = backbone(torch.cat([ep.support_x, ep.query_x]))
    logits = centroid_logits(feats[:n], ep.support_y, feats[n:], ep.target, ep.n_way, tau)
    if ep.target == TaskTarget.MULTILABEL_CLASSIFICATION:
        return F.binary_cross_entropy_with_logits(logits, ep.query_y.to(logits.dtype))
    return F.cross_entropy(logits, ep.query_y.reshape(-1).long())


def meta_finetune(
    backbone: Backbone,
    episodes: Callable[[int], Episode] | Any,
    reader: EpisodeReader,
    cfg: MethodSettings,
    *,
    log: Log | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """The meta stage: ``meta_steps`` SGD steps of ``meta_batch_size`` episodes each
    on ``backbone`` (in place) and ``tau``; returns the record (query loss and tau curves)."""
    opts = cfg.options_as(MetaBaselineOptions)
    get = episodes if callable(episodes) else episodes.__getitem__
    tau = nn.Parameter(torch.tensor(float(opts.mb_tau), device=reader.device))
    optimizer = torch.optim.SGD(
        [*backbone.parameters(), tau],
        lr=opts.mb_lr,
        momentum=opts.mb_momentum,
        weight_decay=opts.mb_weight_decay,  # on tau too, as the reference code
    )
    curve: list[float] = []
    taus: list[float] = []
    backbone.train()
    for step in range(opts.meta_steps):
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for j in range(opts.meta_batch_size):
            ep = reader.load(get(step * opts.meta_batch_size + j))
            loss = query_loss(backbone, ep, tau) / opts.meta_batch_size
            loss.backward()
            total += float(loss.detach())
        optimizer.step()
        curve.append(total)
        taus.append(float(tau.detach()))
        if progress is not None:
            progress.advance(total, "query loss")
        if log is not None and (step + 1) % max(1, opts.meta_steps // 10) == 0:
            log(f"meta-baseline meta step {step + 1}/{opts.meta_steps}: query loss {total:.4f}")
    return {
        "meta_steps": opts.meta_steps,
        "query_loss_curve": curve,
        "tau_curve": taus,
        "tau_init": float(opts.mb_tau),
        "tau": float(tau.detach()),
    }


def pretrain_key(cfg: MethodSettings, source_ids: list[str]) -> str:
    """sha256 of what the classifier pre-training depends on: the settings without the meta
    stage's, and the source tasks (``ID:TASK``)."""
    key = {k: v for k, v in cfg.relevant().items() if k not in MetaBaselineOptions.META_FIELDS}
    key["source_task_ids"] = list(source_ids)
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def run_stage(
    root: str | Path,
    sources: list[TaskSpec],
    backbone: Backbone,
    reader: EpisodeReader,
    cfg: MethodSettings,
    out: Path,
    *,
    resume: bool,
    log: Log,
    progress: bool,
) -> dict[str, Any]:
    """Classifier pre-training (or its saved result for these settings) then the meta stage,
    on ``backbone`` in place; returns the stage record (with the learned ``tau``)."""
    opts = cfg.options_as(MetaBaselineOptions)
    path = out / CLASSIFIER_FILE
    key = pretrain_key(cfg, [f"{t.dataset_id}:{t.name}" for t in sources])
    rec: dict[str, Any] = {"pretrain_key": key}
    try:
        saved = load_checkpoint(path) if resume and path.is_file() else {}
    except Exception:  # an unreadable file is trained again
        saved = {}
    if saved.get("pretrain_key") == key:
        load_checkpoint(path, backbone)
        rec.update(saved.get("stage", {}), pretrain_reused=str(path))
        log(f"meta-baseline: classifier pre-training of {path.name} reused")
    else:
        log(f"meta-baseline: classifier pre-training on {len(sources)} source tasks")
        t0 = time.perf_counter()
        bar_of = Progress(progress, opts.pretrain_steps, "meta-baseline pre-training")
        with seeded(cfg.seed), bar_of as bar:  # seeded as mm-pt: the same pre-trained backbone
            pre = pretrain_multitask(
                root,
                sources,
                backbone,
                reader,
                cfg,
                log=log,
                progress=bar,
                label="meta-baseline pre-training",
            )
        pre = {f"pretrain_{k}": v for k, v in pre.items()}
        pre["pretrain_seconds"] = time.perf_counter() - t0
        save_checkpoint(path, backbone, record={"pretrain_key": key, "stage": pre})
        rec.update(pre)
    episodes = source_episodes(root, sources, cfg)
    used = len(episodes.samplers)
    note = f" ({len(sources) - used} of {len(sources)} skipped)" if used < len(sources) else ""
    log(f"meta-baseline: meta stage on {used} source tasks{note}")
    t0 = time.perf_counter()
    # its own seed: a reused pre-training gives the meta stage of a fresh run
    with (
        seeded(cfg.seed + 1),
        Progress(progress, opts.meta_steps, "meta-baseline meta stage") as bar,
    ):
        rec.update(meta_finetune(backbone, episodes, reader, cfg, log=log, progress=bar))
    rec["meta_seconds"] = time.perf_counter() - t0
    rec["meta_sources_used"] = used
    return rec


def classifier_done(out: Path, cfg: MethodSettings, source_ids: list[str]) -> bool:
    """Whether ``out`` holds the classifier pre-training for these settings and sources."""
    try:
        record = load_checkpoint(out / CLASSIFIER_FILE)
    except Exception:
        return False
    return bool(record.get("pretrain_key") == pretrain_key(cfg, source_ids))


def stage_tau(record: dict[str, Any], cfg: MethodSettings) -> float:
    """The learned ``tau`` of a checkpoint record, else ``mb_tau`` (e.g. an mm-pt
    backbone given as ``--backbone-checkpoint``)."""
    tau = (record.get("stage") or {}).get("tau")
    return float(tau) if tau is not None else float(cfg.options_as(MetaBaselineOptions).mb_tau)


@register_method
class MetaBaseline(FewShotMethod):
    name = "meta-baseline"
    paper_name = "Meta-Baseline"
    kind = MethodKind.META_TRAINED
    summary = "classifier pre-training, then cosine-centroid meta-training; centroids per episode"
    reference = "Chen et al., ICCV 2021 (MedFM's few-shot baseline)"
    options = MetaBaselineOptions
    stages = ("classifier pre-training", "meta stage", "features", "episodes")
    calibration = ("forward", "train")
    reads_features = True  # after its stage: the trained backbone's features are cached too
    order = 70
    cost_knobs = ("--pretrain-steps", "--meta-steps")

    def train_stage(self, ctx: StageContext) -> dict[str, Any]:
        return run_stage(
            ctx.root,
            ctx.sources["specs"],
            ctx.backbone,
            ctx.reader,
            ctx.cfg,
            ctx.out,
            resume=ctx.resume,
            log=ctx.log,
            progress=ctx.progress,
        )

    def stage_extras(
        self, checkpoint_record: dict[str, Any], cfg: MethodSettings
    ) -> dict[str, Any]:
        return {"tau": stage_tau(checkpoint_record, cfg)}

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
        tau = float(stage["tau"])
        with one_thread():
            scores = centroid_scores(
                support.double(), support_y, query.double(), target, n_way, tau
            )
        return scores.double().cpu().numpy(), {}

    def score_batch(
        self, batch: FeatureBatch, cfg: MethodSettings, stage: dict[str, Any]
    ) -> list[Scored] | None:
        tau = float(stage["tau"])
        support, query = batch.support.double(), batch.query.double()
        if batch.multilabel:
            pos, neg = label_weights(batch)
            diff = cosines(query, centroids(pos, support))
            diff = diff - cosines(query, centroids(neg, support))
            scores = torch.sigmoid(tau * diff)
        else:
            protos = centroids(class_weights(batch), support)
            scores = class_scores(batch, tau * cosines(query, protos))
        return [(s, {}) for s in batch.unpad(scores)]

    def estimate(self, ctx: CostContext) -> tuple[float, dict[str, Any]]:
        opts = ctx.cfg.options_as(MetaBaselineOptions)
        stage = 0.0
        if not ctx.stage_done():
            if not classifier_done(ctx.folder, ctx.cfg, ctx.sources):
                stage = opts.pretrain_steps * ctx.train_s(opts.pretrain_batch_size)
            n = ctx.source_ways() * (opts.meta_shots + opts.meta_queries)
            stage += opts.meta_steps * opts.meta_batch_size * ctx.train_s(n)
        # the trained backbone's features are never cached before its stage
        images = ctx.trained_images() if ctx.episodes else 0
        seconds = stage + images * ctx.forward_s() + ctx.episodes * ctx.bookkeeping_s
        detail = {"embed_images": images, "per_episode_s": ctx.bookkeeping_s, "stage_s": stage}
        return seconds, detail
