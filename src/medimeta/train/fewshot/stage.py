"""The training stage of a method with one (mm-pt, mm-maml, meta-baseline, ...) before its
few-shot episodes, shared by ranks.

Rank 0 trains and saves the backbone (with the run's hash); other ranks poll for the file
instead of waiting in a collective, so a long stage cannot hit a process-group timeout. What the
stage does is the method's own :meth:`~medimeta.train.fewshot.registry.FewShotMethod.train_stage`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import medimeta.data.distributed as D
from medimeta.features.reader import EpisodeReader
from medimeta.logs import Log
from medimeta.models.backbone import Backbone
from medimeta.runs.files import read_json
from medimeta.safeio import wait_for
from medimeta.train.checkpoint import load_checkpoint, save_checkpoint
from medimeta.train.fewshot.config import FewShotConfig
from medimeta.train.fewshot.options import MethodSettings
from medimeta.train.fewshot.pretrain import choose_sources
from medimeta.train.fewshot.registry import StageContext, get_method


def matches(path: Path, run_hash: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return bool(read_json(path).get("run") == run_hash)
        except (OSError, ValueError):
            return False

    return check


def stage_file(out: Path, cfg: MethodSettings) -> Path:
    """Where a method's trained backbone is saved in a run folder."""
    return out / f"{cfg.method.replace('-', '_')}_backbone.safetensors"


def stage_finished(path: Path, run_hash: str) -> bool:
    """Whether ``path`` holds a stage checkpoint of the run ``run_hash``."""
    try:
        return bool(load_checkpoint(path).get("run") == run_hash)
    except Exception:  # an unreadable file is trained again
        return False


def prepare_stage(
    ctx: StageContext, run_hash: str, checkpoint: str | Path | None, env: D.DistEnv
) -> dict[str, Any]:
    """Run (or load) the method's training stage; returns its record (with what the method
    adds from the checkpoint, e.g. meta-baseline's learned ``tau``)."""
    method = get_method(ctx.cfg.method)
    if checkpoint is not None:
        record = load_checkpoint(checkpoint, ctx.backbone)
        return {
            "loaded": str(checkpoint),
            "record": record,
            **method.stage_extras(record, ctx.cfg),
        }
    if not method.has_stage:
        return {}
    path = stage_file(ctx.out, ctx.cfg)
    if not (ctx.resume and path.is_file() and stage_finished(path, run_hash)):
        if env.is_main:
            t0 = time.perf_counter()
            rec = method.train_stage(ctx)
            rec["seconds"] = time.perf_counter() - t0
            save_checkpoint(
                path,
                ctx.backbone,
                record={"run": run_hash, "stage": rec, "sources": ctx.sources["tasks"]},
            )
        else:
            wait_for(path, lambda: stage_finished(path, run_hash), f"the {ctx.cfg.method} backbone")
    record = load_checkpoint(path, ctx.backbone)
    stage = record.get("stage", {})
    return {
        "file": str(path),
        "sources": ctx.sources["tasks"],
        "excluded": ctx.sources["excluded"],
        "stage": {k: v for k, v in stage.items() if "curve" not in k},
        "loss_curve_tail": (stage.get("loss_curve") or stage.get("query_loss_curve") or [])[-20:],
        **method.stage_extras(record, ctx.cfg),
    }


def stage_context(
    root: str | Path,
    target: str,
    cfg: FewShotConfig,
    backbone: Backbone,
    reader: EpisodeReader,
    out: Path,
    *,
    resume: bool,
    log: Log,
    progress: bool,
    checkpoint: str | Path | None = None,
) -> StageContext:
    """The stage's inputs; the source tasks are chosen here for the methods that use them
    (unless a trained ``checkpoint`` replaces the stage)."""
    choose = cfg.spec.uses_sources and checkpoint is None
    sources = choose_sources(root, target, cfg) if choose else {}
    return StageContext(
        Path(root), target, cfg, backbone, reader, out, sources, resume, log, progress
    )
