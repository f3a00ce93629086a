"""Merging the per-episode files of a few-shot run into its run record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medimeta.evaluate.predictions import (
    Predictions,
    concat_predictions,
    summarize_episodes,
    write_predictions,
)
from medimeta.runs.convert import fewshot_record
from medimeta.runs.files import environment, jsonable
from medimeta.runs.model import RunRecord
from medimeta.runs.record import episode_file, predictions_file
from medimeta.train.fewshot.episode_files import checked_result
from medimeta.train.fewshot.medfm import medfm_record
from medimeta.train.fewshot.setup import RunContext, sha256_file


def write_query_predictions(ctx: RunContext, rows: list[dict[str, Any]]) -> None:
    """Every query prediction of the episode files ``rows`` in the query prediction file."""
    h = ctx.eps.header
    preds = []
    for ep, row in zip(ctx.chosen, rows, strict=True):
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
            "method": ctx.cfg.method,
            "backbone": ctx.cfg.backbone,
            "run": ctx.run_hash,
            "note": "labels and score columns follow each episode's classes",
        }
        write_predictions(predictions_file(ctx.out, "query"), merged)


def collect_results(ctx: RunContext, prepare_s: float, total_s: float) -> RunRecord:
    """The run record of the chosen episodes' result files (and their query predictions)."""
    rows = [checked_result(episode_file(ctx.out, ep.index), ctx.run_hash, ep) for ep in ctx.chosen]
    h = ctx.eps.header
    write_query_predictions(ctx, rows)
    seconds = [r["seconds"] for r in rows]
    backbone = ctx.backbone.describe() if ctx.backbone is not None else None
    flat = {
        "method": ctx.cfg.method,
        "paper_name": ctx.cfg.spec.paper_name,
        "target": {
            "dataset_id": h["dataset"]["id"],
            "task": h["task"]["name"],
            "target": h["task"]["target"],
            "dataset_name": h["dataset"]["name"],
            # where the data came from, so commands reading this run need no --root
            "folder": str(ctx.folder),
        },
        "episodes": {
            "file": str(ctx.file),
            "file_sha256": sha256_file(Path(ctx.file)),
            "fingerprint": h["fingerprint"]["value"],
            "seed": h["seed"],
            "split": h["split_label"],
            "settings": h["settings"],
            "in_file": len(ctx.eps),
            "evaluated": len(ctx.chosen),
            "indices": [ep.index for ep in ctx.chosen],
        },
        "config": ctx.cfg.relevant(),
        "backbone": backbone,
        "stage": ctx.stage,
        "method_details": _method_details(ctx),
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
            "world_size": ctx.env.world_size,
        },
        "run": ctx.run_hash,
        "environment": environment(),
        "medfm": medfm_record(h, rows),  # only for files imported from MedFM's lists
    }
    return fewshot_record(jsonable(flat))


def _method_details(ctx: RunContext) -> dict[str, Any] | None:
    """The method's account of how it ran (trained parameters, prompts), if it gives one."""
    if ctx.backbone is None:
        return None
    return ctx.cfg.spec.run_details(ctx.backbone, ctx.cfg, ctx.chosen) or None
