"""Set-up of a few-shot run: its episodes, the seeded backbone and reader, the method's training
stage and, for the methods that only read eval-mode features, the feature table (see
:mod:`medimeta.train.fewshot.runner`). Everything the run needs is one :class:`RunContext`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import medimeta.data.distributed as D
from medimeta.data.device import channels_last_default
from medimeta.episodes import Episode, EpisodeSampler, EpisodeSet
from medimeta.errors import EpisodeError, OptionError
from medimeta.features.reader import EpisodeReader, reader_for
from medimeta.features.table import FeatureSource, FeatureTable, episode_rows
from medimeta.format.reader import DatasetFolder, locate_dataset
from medimeta.logs import Log
from medimeta.models.backbone import Backbone
from medimeta.models.build import build_backbone, seeded
from medimeta.train.fewshot.config import FewShotConfig
from medimeta.train.fewshot.stage import prepare_stage, stage_context
from medimeta.train.settings import EpisodePlan, RunSettings


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass
class RunContext:
    """One few-shot run: its inputs, then what :func:`prepare` builds for it."""

    root: Path
    cfg: FewShotConfig
    eps: EpisodeSet
    chosen: list[Episode]
    settings: RunSettings
    env: D.DistEnv
    say: Log
    backbone: Backbone | None = None
    reader: EpisodeReader | None = None
    run_hash: str = ""
    stage: dict[str, Any] = field(default_factory=dict)
    table: FeatureTable | None = None

    @property
    def out(self) -> Path:
        return self.settings.out_dir

    @property
    def file(self) -> Path:
        """The episode file (the one given, or the one sampled into the run folder)."""
        return Path(self.eps.path) if self.eps.path else self.out / "episodes.json"

    @property
    def target_id(self) -> str:
        return f"{self.eps.header['dataset']['id']}:{self.eps.header['task']['name']}"

    @property
    def folder(self) -> Path:
        return locate_dataset(self.root, self.eps.header["dataset"]["id"])


def load_or_sample_episodes(
    root: str | Path, target: str | None, plan: EpisodePlan, out_dir: Path, env: D.DistEnv
) -> EpisodeSet:
    """The episode set: a saved file (checked against the data), or sampled and saved."""
    if plan.file is not None:
        eps = EpisodeSet.load(plan.file, root)
        found = f"{eps.header['dataset']['id']}:{eps.header['task']['name']}"
        if target is not None and found != target:
            raise EpisodeError(f"{plan.file} holds episodes of {found!r}, not {target!r}")
        return eps
    if target is None:
        raise EpisodeError("pass --target ID:TASK or --episodes-file")
    sampler = EpisodeSampler.from_root(
        root,
        target,
        plan.split,
        shots=plan.shots,
        queries=plan.queries,
        seed=plan.seed,
        num_episodes=plan.episodes,
    )
    eps = sampler.sample()
    path = out_dir / "episodes.json"
    if env.is_main:
        eps.save(path)
    D.barrier(env)
    return EpisodeSet.load(path, root)


def backbone_and_reader(
    root: str | Path, eps: EpisodeSet, cfg: FewShotConfig, device: torch.device
) -> tuple[Backbone, EpisodeReader]:
    """The seeded backbone on ``device`` and the episode reader preparing images for it."""
    with seeded(cfg.seed):
        backbone = build_backbone(cfg.backbone, pretrained=cfg.pretrained).to(device)
    why = cfg.spec.unsupported(backbone)
    if why is not None:
        raise OptionError(
            f"--method {cfg.method} cannot run on --backbone {cfg.backbone}: {why}; fix: choose "
            "another method or backbone"
        )
    side = cfg.image_size or _side(root, eps)
    channels_last = channels_last_default(cfg.channels_last, device, side)
    if channels_last:
        backbone = backbone.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    # the stored size when none is asked for: the same features get the same cache key
    reader = reader_for(
        backbone,
        image_size=side,
        device=device,
        normalize=cfg.normalize,
        channels_last=channels_last,
    )
    return backbone, reader


def prepare(ctx: RunContext, features: FeatureSource | None) -> None:
    """Backbone, reader, run hash, the method's training stage and, for the methods that
    only read eval-mode features with a feature source, the features of the chosen episodes
    (set on ``ctx``)."""
    cfg, settings = ctx.cfg, ctx.settings
    device = D.device_for(ctx.env, settings.device)
    ctx.backbone, ctx.reader = backbone_and_reader(ctx.root, ctx.eps, cfg, device)
    ctx.run_hash = episode_run_hash(cfg, ctx.file, settings.backbone_checkpoint)
    stage_ctx = stage_context(
        ctx.root,
        ctx.target_id,
        cfg,
        ctx.backbone,
        ctx.reader,
        ctx.out,
        resume=settings.resume,
        log=ctx.say,
        progress=settings.progress,
        checkpoint=settings.backbone_checkpoint,
    )
    ctx.stage = prepare_stage(stage_ctx, ctx.run_hash, settings.backbone_checkpoint, ctx.env)
    if features is None or not cfg.spec.reads_features:
        return
    ctx.table = features.table(
        folder=ctx.folder,
        split=str(ctx.eps.header["split_label"]),
        rows=episode_rows(ctx.chosen),  # every rank asks for the same rows
        backbone=ctx.backbone,
        backbone_name=cfg.backbone,
        reader=ctx.reader,
        env=ctx.env,
        log=ctx.say,
        progress=settings.progress and ctx.env.is_main,
    )
    ctx.stage = {**ctx.stage, "features": ctx.table.info}


def episode_run_hash(
    cfg: FewShotConfig, file: Path, backbone_checkpoint: str | Path | None = None
) -> str:
    """What makes per-episode results reusable: settings, episode file, given backbone."""
    run_key = {
        "config": cfg.relevant(),
        "episodes_sha256": sha256_file(file),
        "backbone_checkpoint": str(backbone_checkpoint) if backbone_checkpoint else None,
    }
    return hashlib.sha256(json.dumps(run_key, sort_keys=True).encode()).hexdigest()


def _side(root: str | Path, eps: EpisodeSet) -> int:
    return int(DatasetFolder(locate_dataset(root, eps.header["dataset"]["id"])).spec.input_size[-1])
