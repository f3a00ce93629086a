"""Set-up of a few-shot run: its episodes, the seeded backbone and reader, the training stage
and, for the frozen-feature methods, the feature table (see :mod:`medimeta.train.fewshot.runner`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

import medimeta.train.distributed as D
import medimeta.train.fewshot.frozen as frozen
from medimeta.episodes import Episode, EpisodeSampler, EpisodeSet
from medimeta.errors import EpisodeError
from medimeta.format.reader import DatasetFolder, locate_dataset
from medimeta.models.backbone import Backbone
from medimeta.train.fewshot.collect import sha256_file
from medimeta.train.fewshot.config import CACHED_METHODS, FewShotConfig
from medimeta.train.fewshot.stage import prepare_stage
from medimeta.train.fewshot.tensors import EpisodeReader
from medimeta.train.inputs import channels_last_default
from medimeta.train.model import build_backbone, make_normalizer, seeded
from medimeta.train.records import Log


def load_or_sample_episodes(
    root: str | Path,
    target: str | None,
    *,
    episodes_file: str | Path | None,
    shots: int,
    queries: int,
    num_episodes: int,
    seed: int,
    split: str | None,
    out_dir: Path,
    env: D.DistEnv,
) -> EpisodeSet:
    """The episode set: a saved file (checked against the data), or sampled and saved."""
    if episodes_file is not None:
        eps = EpisodeSet.load(episodes_file, root)
        if (
            target is not None
            and eps.header["dataset"]["id"] + ":" + eps.header["task"]["name"] != target
        ):
            raise EpisodeError(
                f"{episodes_file} holds episodes of {eps.task_id!r} "
                f"({eps.header['dataset']['id']}:{eps.header['task']['name']}), not {target!r}"
            )
        return eps
    if target is None:
        raise EpisodeError("pass --target ID:TASK or --episodes-file")
    sampler = EpisodeSampler.from_root(
        root, target, split, shots=shots, queries=queries, seed=seed, num_episodes=num_episodes
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
    """The seeded backbone on ``device`` and the episode reader normalising for it."""
    with seeded(cfg.seed):
        backbone = build_backbone(cfg.backbone, pretrained=cfg.pretrained).to(device)
    normalizer = make_normalizer(cfg, backbone)
    side = cfg.image_size or _side(root, eps)
    channels_last = channels_last_default(cfg.channels_last, device, side)
    if channels_last:
        backbone = backbone.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    reader = EpisodeReader(
        image_size=cfg.image_size, normalizer=normalizer, device=device, channels_last=channels_last
    )
    return backbone, reader


def prepare(
    root: str | Path,
    cfg: FewShotConfig,
    eps: EpisodeSet,
    chosen: list[Episode],
    out: Path,
    resume: bool,
    backbone_checkpoint: str | Path | None,
    device: torch.device,
    env: D.DistEnv,
    say: Log,
    progress: bool,
    features: frozen.FeatureSource | None,
) -> tuple[Backbone, EpisodeReader, str, dict[str, Any], frozen.FeatureTable | None]:
    """Backbone, reader, run hash, the training stage (mm-pt, mm-maml, meta-baseline) and,
    for the methods that only read eval-mode features (the frozen-feature ones and
    meta-baseline, after its stage) with a feature source, the features of the chosen
    episodes."""
    backbone, reader = backbone_and_reader(root, eps, cfg, device)
    run_hash = episode_run_hash(cfg, Path(eps.path or out / "episodes.json"), backbone_checkpoint)
    target_id = f"{eps.header['dataset']['id']}:{eps.header['task']['name']}"
    stage = prepare_stage(
        root,
        target_id,
        cfg,
        backbone,
        reader,
        out,
        run_hash,
        resume,
        backbone_checkpoint,
        env,
        say,
        progress,
    )
    if features is None or cfg.method not in CACHED_METHODS:
        return backbone, reader, run_hash, stage, None
    table = features.table(
        folder=locate_dataset(root, eps.header["dataset"]["id"]),
        split=str(eps.header["split_label"]),
        rows=frozen.episode_rows(chosen),  # every rank asks for the same rows
        backbone=backbone,
        backbone_name=cfg.backbone,
        reader=reader,
        env=env,
        log=say,
        progress=progress and env.is_main,
    )
    return backbone, reader, run_hash, {**stage, "features": table.info}, table


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
