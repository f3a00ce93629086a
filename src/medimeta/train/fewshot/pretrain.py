"""Source tasks and the training stages before few-shot evaluation (mm-PT, mm-MAML; the
classifier pre-training of meta-baseline is mm-PT's).

Sources are chosen leave-one-out by :func:`medimeta.episodes.source_tasks` among the
datasets present under the data root: every dataset except the target and those sharing
domain or subjects with it, first task of each (the paper), or all tasks.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from medimeta.audit import shared_image_sources
from medimeta.catalog import TaskSpec
from medimeta.episodes import (
    CrossDomainBatches,
    EpisodeSampler,
    MultiTaskEpisodes,
    excluded_datasets,
    source_tasks,
)
from medimeta.errors import EpisodeError, MedIMetaError
from medimeta.features.reader import EpisodeReader
from medimeta.format.reader import locate_dataset
from medimeta.logs import Log
from medimeta.models import make_head, make_loss
from medimeta.models.backbone import Backbone
from medimeta.train.fewshot.options import (
    MetaEpisodeOptions,
    MethodSettings,
    PretrainOptions,
    SourceOptions,
)


def choose_sources(root: str | Path, target: str, cfg: MethodSettings) -> dict[str, Any]:
    """Source task ids for ``target`` and the excluded datasets with reasons."""
    opts = cfg.options_as(SourceOptions)
    tasks = source_tasks(
        target,
        datasets=root,
        tasks=opts.source_tasks,
        include=opts.sources,
        exclude=opts.exclude_sources,
    )
    excluded = excluded_datasets(target, datasets=root)
    if not opts.allow_shared and tasks:
        # the same images at another resolution in a source make a few-shot number meaningless
        shared = shared_image_sources(
            root, target.split(":")[0], sorted({t.dataset_id for t in tasks})
        )
        tasks = [t for t in tasks if t.dataset_id not in shared]
        excluded.update({k: f"{v} (--allow-shared keeps it)" for k, v in shared.items()})
    if not tasks:
        raise EpisodeError(
            f"no source tasks for {target!r} under {root}: every dataset there is the target, "
            "overlaps with it or was excluded; add datasets to the root (mm-pt, mm-maml and "
            "meta-baseline need sources)"
        )
    for ref in opts.exclude_sources:
        excluded.setdefault(ref, "excluded by the user (--exclude-sources)")
    return {
        "tasks": [f"{t.dataset_id}:{t.name}" for t in tasks],
        "excluded": excluded,
        "selection": opts.source_tasks,
        "requested": list(opts.sources),
        "allow_shared": opts.allow_shared,
        "specs": tasks,
    }


def _head_key(task_id: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]", "_", task_id)  # ModuleDict keys: no dots


def pretrain_multitask(
    root: str | Path,
    sources: list[TaskSpec],
    backbone: Backbone,
    reader: EpisodeReader,
    cfg: MethodSettings,
    *,
    log: Log | None = None,
    progress: Any = None,
    label: str = "mm-pt",
) -> dict[str, Any]:
    """mm-PT: ``pretrain_steps`` updates, each on a batch of one random source task.

    Batches come from :class:`CrossDomainBatches` over the sources' train splits (uniform
    task draw, a new order each pass); every task has its own zero-initialised head. Trains
    ``backbone`` in place and returns a record (steps, passes, loss curve, heads); ``label``
    names the method in the log (meta-baseline pre-trains the same way).
    """
    opts = cfg.options_as(PretrainOptions)
    device = reader.device
    batches = CrossDomainBatches(
        root,
        [(t.dataset_id, t.name) for t in sources],
        opts.pretrain_batch_size,
        split="train",
        weights="uniform",
        seed=cfg.seed,
        channels=3,
        dtype="uint8",
        rank=0,
        world_size=1,
    )
    heads = nn.ModuleDict()
    losses: dict[str, nn.Module] = {}
    for spec in sources:
        key = _head_key(f"{spec.dataset_id}:{spec.name}")
        heads[key] = make_head(
            spec.target, len(spec.keys), backbone.num_features, "zero", ordinal=cfg.ordinal
        )
        losses[key] = make_loss(spec.target, ordinal=cfg.ordinal)
    heads.to(device)
    optimizer = torch.optim.Adam(
        list(backbone.parameters()) + list(heads.parameters()), lr=opts.pretrain_lr
    )
    backbone.train()
    step, passes, curve = 0, 0, []
    while step < opts.pretrain_steps:
        batches.set_epoch(passes)
        for batch in batches:
            key = _head_key(f"{batch.task.dataset_id}:{batch.task.task_name}")
            x = reader.prepare(batch.x)
            loss = losses[key](heads[key](backbone(x)), batch.y.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            curve.append(float(loss.detach()))
            step += 1
            if progress is not None:
                progress.advance(curve[-1])
            if log is not None and step % max(1, opts.pretrain_steps // 10) == 0:
                log(f"{label} step {step}/{opts.pretrain_steps}: loss {curve[-1]:.4f}")
            if step >= opts.pretrain_steps:
                break
        passes += 1
    return {
        "steps": step,
        "passes_started": passes,
        "loss_curve": curve,
        "heads": sorted(heads.keys()),
    }


def source_episodes(
    root: str | Path, sources: list[TaskSpec], cfg: MethodSettings
) -> MultiTaskEpisodes:
    """Unbounded source episodes (train splits, uniform over tasks) for mm-MAML and the
    meta stage of meta-baseline.

    Tasks whose train split cannot give an episode with these shots/queries are skipped with
    a warning.
    """
    opts = cfg.options_as(MetaEpisodeOptions)
    samplers = []
    for spec in sources:
        try:
            samplers.append(
                EpisodeSampler(
                    locate_dataset(root, spec.dataset_id),
                    spec.name,
                    "train",
                    shots=opts.meta_shots,
                    queries=opts.meta_queries,
                    seed=cfg.seed,
                )
            )
        except MedIMetaError as exc:
            warnings.warn(
                f"source task {spec.dataset_id}:{spec.name} skipped: {exc}",
                UserWarning,
                stacklevel=2,
            )
    if not samplers:
        raise EpisodeError("no source task can give meta-training episodes; see the warnings")
    return MultiTaskEpisodes(samplers, weights="uniform", seed=cfg.seed)
