"""Merging the per-episode files of a few-shot run into its result record."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

import medimeta.train.distributed as D
from medimeta.episodes import EpisodeSet
from medimeta.evaluate.predictions import (
    Predictions,
    concat_predictions,
    summarize_episodes,
    write_predictions,
)
from medimeta.train.fewshot.config import PAPER_NAMES, FewShotConfig
from medimeta.train.fewshot.medfm import medfm_record
from medimeta.train.records import environment, read_json


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_query_predictions(
    eps: EpisodeSet,
    chosen: list[Any],
    rows: list[dict[str, Any]],
    cfg: FewShotConfig,
    run_hash: str,
    out: Path,
) -> None:
    """Every query prediction of the episode files ``rows`` in ``predictions_query.csv``."""
    h = eps.header
    preds = []
    for ep, row in zip(chosen, rows, strict=True):
        p = row["predictions"]
        preds.append(
            Predictions(
                p["indices"],
                p["labels"],
                p["scores"],
                h["task"]["target"],
                h["dataset"]["id"],
                h["task"]["name"],
                h["split_label"],
                [c.name for c in ep.classes],
                list(ep.class_keys),
                np.full(len(p["indices"]), ep.index),
            )
        )
    if preds:
        merged = concat_predictions(preds)
        merged.info = {
            "method": cfg.method,
            "backbone": cfg.backbone,
            "run": run_hash,
            "note": "labels and score columns follow each episode's classes",
        }
        write_predictions(out / "predictions_query.csv", merged)


def collect_results(
    eps: EpisodeSet,
    chosen: list[Any],
    cfg: FewShotConfig,
    backbone: Any,
    stage: dict[str, Any],
    file: Path,
    ep_dir: Path,
    run_hash: str,
    target_id: str,
    prepare_s: float,
    total_s: float,
    env: D.DistEnv,
) -> dict[str, Any]:
    rows = [read_json(ep_dir / f"episode_{ep.index:05d}.json") for ep in chosen]
    h = eps.header
    write_query_predictions(eps, chosen, rows, cfg, run_hash, ep_dir.parent)
    seconds = [r["seconds"] for r in rows]
    record = {
        "kind": "fewshot",
        "method": cfg.method,
        "paper_name": PAPER_NAMES[cfg.method],
        "target": {
            "dataset_id": h["dataset"]["id"],
            "task": h["task"]["name"],
            "target": h["task"]["target"],
            "dataset_name": h["dataset"]["name"],
        },
        "episodes": {
            "file": str(file),
            "file_sha256": sha256_file(Path(file)),
            "fingerprint": h["fingerprint"]["value"],
            "seed": h["seed"],
            "split": h["split_label"],
            "settings": h["settings"],
            "in_file": len(eps),
            "evaluated": len(chosen),
            "indices": [ep.index for ep in chosen],
        },
        "config": cfg.relevant(),
        "backbone": backbone.describe(),
        "stage": stage,
        "confidence": 0.95,
        "summary": summarize_episodes([r["metrics"] for r in rows]),
        "per_episode": [
            {
                "episode": r["episode"],
                "metrics": r["metrics"],
                "seconds": r["seconds"],
                "support_loss": r.get("support_loss"),
            }
            for r in rows
        ],
        "timings": {
            "total_s": total_s,
            "prepare_s": prepare_s,
            "episode_mean_s": float(np.mean(seconds)) if seconds else float("nan"),
            "episode_sum_s": float(np.sum(seconds)),
            "world_size": env.world_size,
        },
        "run": run_hash,
        "environment": environment(),
    }
    medfm = medfm_record(h, rows)  # only for files imported from MedFM's lists
    if medfm is not None:
        record["medfm"] = medfm
    return record
