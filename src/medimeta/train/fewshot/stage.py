"""The training stage of mm-pt / mm-maml / meta-baseline before few-shot evaluation, shared
by ranks.

Rank 0 trains and saves the backbone (with the run's hash); other ranks poll for the file
instead of waiting in a collective, so a long stage cannot hit a process-group timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import medimeta.train.distributed as D
import medimeta.train.fewshot.maml as maml
import medimeta.train.fewshot.metabaseline as metabaseline
import medimeta.train.fewshot.pretrain as pretrain
from medimeta.train.checkpoint import load_checkpoint, save_checkpoint
from medimeta.train.fewshot.config import SOURCE_METHODS, FewShotConfig
from medimeta.train.fewshot.tensors import EpisodeReader
from medimeta.train.model import seeded
from medimeta.train.progress import Progress
from medimeta.train.records import read_json

Log = Callable[[str], None]


def wait_for(
    path: Path, check: Callable[[], bool], what: str, timeout: float = 7 * 24 * 3600
) -> None:
    """Poll for a file another rank writes (no collective, so no process-group timeout)."""
    start = time.monotonic()
    while not (path.is_file() and check()):
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"waited {timeout:.0f} s for {what} at {path}")
        time.sleep(2.0)


def matches(path: Path, run_hash: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return bool(read_json(path).get("run") == run_hash)
        except (OSError, ValueError):
            return False

    return check


def prepare_stage(
    root: str | Path,
    target: str,
    cfg: FewShotConfig,
    backbone: Any,
    reader: EpisodeReader,
    out: Path,
    run_hash: str,
    resume: bool,
    checkpoint: str | Path | None,
    env: D.DistEnv,
    say: Log,
    progress: bool,
) -> dict[str, Any]:
    """Run (or load) the method's training stage; returns its record (meta-baseline: with
    the ``tau`` its episodes use)."""
    if checkpoint is not None:
        record = load_checkpoint(checkpoint, backbone)
        loaded: dict[str, Any] = {"loaded": str(checkpoint), "record": record}
        if cfg.method == "meta-baseline":
            loaded["tau"] = metabaseline.stage_tau(record, cfg)
        return loaded
    if cfg.method not in SOURCE_METHODS:
        return {}
    path = out / f"{cfg.method.replace('-', '_')}_backbone.safetensors"
    sources = pretrain.choose_sources(root, target, cfg)

    def done() -> bool:
        try:
            return load_checkpoint(path).get("run") == run_hash
        except Exception:
            return False

    if not (resume and path.is_file() and done()):
        if env.is_main:
            t0 = time.perf_counter()
            rec = _train(root, sources, cfg, backbone, reader, out, resume, say, progress)
            rec["seconds"] = time.perf_counter() - t0
            save_checkpoint(
                path, backbone, record={"run": run_hash, "stage": rec, "sources": sources["tasks"]}
            )
        else:
            wait_for(path, done, f"the {cfg.method} backbone")
    record = load_checkpoint(path, backbone)
    stage = record.get("stage", {})
    out_record = {
        "file": str(path),
        "sources": sources["tasks"],
        "excluded": sources["excluded"],
        "stage": {k: v for k, v in stage.items() if "curve" not in k},
        "loss_curve_tail": (stage.get("loss_curve") or stage.get("query_loss_curve") or [])[-20:],
    }
    if cfg.method == "meta-baseline":
        out_record["tau"] = metabaseline.stage_tau(record, cfg)
    return out_record


def _train(
    root: str | Path,
    sources: dict[str, Any],
    cfg: FewShotConfig,
    backbone: Any,
    reader: EpisodeReader,
    out: Path,
    resume: bool,
    say: Log,
    progress: bool,
) -> dict[str, Any]:
    """The training stage of ``cfg.method`` on rank 0 (``backbone`` trained in place)."""
    specs, chosen = sources["specs"], len(sources["tasks"])
    if cfg.method == "meta-baseline":
        return metabaseline.run_stage(
            root, specs, backbone, reader, cfg, out, resume=resume, log=say, progress=progress
        )
    steps = cfg.pretrain_steps if cfg.method == "mm-pt" else cfg.meta_steps
    if cfg.method == "mm-pt":
        say(f"{cfg.method}: training on {chosen} source tasks")
    else:
        # tasks too small for the meta-episodes are dropped here: announce what is used
        episodes = pretrain.source_episodes(root, specs, cfg)
        used = len(episodes.samplers)
        note = f" ({chosen - used} of {chosen} skipped, see above)" if used < chosen else ""
        say(f"{cfg.method}: training on {used} source tasks{note}")
    with seeded(cfg.seed), Progress(progress, steps, cfg.method) as bar:
        if cfg.method == "mm-pt":
            return pretrain.pretrain_multitask(
                root, specs, backbone, reader, cfg, log=say, progress=bar
            )
        return maml.meta_train(backbone, episodes, reader, cfg, log=say, progress=bar)
