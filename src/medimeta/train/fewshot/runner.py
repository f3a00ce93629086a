"""Cross-domain few-shot evaluation over a fixed set of episodes.

Output folder: ``episodes.json`` (the episodes, when they were sampled here), one JSON file
per evaluated episode in ``episodes/`` (metrics, query predictions, time; these make the
run resumable and let torchrun ranks share the work: rank r takes the episodes at
positions r, r + R, ...), the trained backbone of mm-pt / mm-maml, and at the end
``results.json`` (protocol, per-episode metrics, mean ± CI), ``results.md`` and
``predictions_query.csv`` (every query prediction with its episode number).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medimeta.episodes import EpisodeSampler, EpisodeSet
from medimeta.errors import EpisodeError
from medimeta.evaluate.predictions import Predictions, summarize_episodes, write_predictions
from medimeta.train import distributed as D
from medimeta.train.checkpoint import load_checkpoint, save_checkpoint
from medimeta.train.data import Normalizer, channels_last_default
from medimeta.train.fewshot import maml, methods, pretrain
from medimeta.train.fewshot.config import PAPER_NAMES, FewShotConfig
from medimeta.train.fewshot.report import result_markdown
from medimeta.train.fewshot.tensors import EpisodeReader, episode_metrics
from medimeta.train.model import build_backbone, seeded
from medimeta.train.progress import Progress
from medimeta.train.records import environment, read_json, write_json

Log = Callable[[str], None]
LEARNERS = {
    "im-pt": methods.finetune_episode,
    "mm-pt": methods.finetune_episode,
    "linear-probe": methods.linear_probe_episode,
    "protonet": methods.protonet_episode,
    "mm-maml": maml.maml_episode,
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _episode_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, index, 7]).generate_state(1)[0])


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


def _wait_for(
    path: Path, check: Callable[[], bool], what: str, timeout: float = 7 * 24 * 3600
) -> None:
    """Poll for a file another rank writes (no collective, so no process-group timeout)."""
    start = time.monotonic()
    while not (path.is_file() and check()):
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"waited {timeout:.0f} s for {what} at {path}")
        time.sleep(2.0)


def _matches(path: Path, run_hash: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return bool(read_json(path).get("run") == run_hash)
        except (OSError, ValueError):
            return False

    return check


def run_fewshot(
    root: str | Path,
    target: str | None,
    config: FewShotConfig,
    *,
    episodes_file: str | Path | None = None,
    shots: int = 5,
    queries: int = 10,
    num_episodes: int = 100,
    episode_seed: int = 0,
    split: str | None = None,
    limit: int | None = None,
    out_dir: str | Path = "runs/fewshot",
    resume: bool = True,
    backbone_checkpoint: str | Path | None = None,
    device: str | None = None,
    progress: bool = False,
    log: Log | None = None,
    env: D.DistEnv | None = None,
) -> dict[str, Any]:
    """Evaluate ``config.method`` on the episodes; returns the ``results.json`` record.

    ``limit`` evaluates only the first ``limit`` episodes of the set (recorded). With
    ``resume`` episodes whose result file exists for the same settings are not recomputed.
    ``backbone_checkpoint`` replaces the method's training stage by a saved backbone.
    """
    own_env = env is None
    env = D.init_distributed() if env is None else env
    try:
        return _run(
            root,
            target,
            config,
            episodes_file,
            shots,
            queries,
            num_episodes,
            episode_seed,
            split,
            limit,
            Path(out_dir),
            resume,
            backbone_checkpoint,
            device,
            progress,
            log,
            env,
        )
    finally:
        if own_env:
            D.shutdown(env)


def _run(
    root: str | Path,
    target: str | None,
    cfg: FewShotConfig,
    episodes_file: str | Path | None,
    shots: int,
    queries: int,
    num_episodes: int,
    episode_seed: int,
    split: str | None,
    limit: int | None,
    out: Path,
    resume: bool,
    backbone_checkpoint: str | Path | None,
    device_name: str | None,
    progress: bool,
    log: Log | None,
    env: D.DistEnv,
) -> dict[str, Any]:
    say = log if (log is not None and env.is_main) else (lambda _m: None)
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    eps = load_or_sample_episodes(
        root,
        target,
        episodes_file=episodes_file,
        shots=shots,
        queries=queries,
        num_episodes=num_episodes,
        seed=episode_seed,
        split=split,
        out_dir=out,
        env=env,
    )
    target_id = f"{eps.header['dataset']['id']}:{eps.header['task']['name']}"
    chosen = list(eps)[: limit if limit is not None else len(eps)]
    file = eps.path or out / "episodes.json"
    device = D.device_for(env, device_name)
    with seeded(cfg.seed):
        backbone = build_backbone(cfg.backbone, pretrained=cfg.pretrained).to(device)
    norm = backbone.pretrained_cfg
    normalizer = {
        "half": Normalizer((0.5,), (0.5,)),
        "imagenet": Normalizer((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    }.get(cfg.normalize, Normalizer(tuple(norm.mean), tuple(norm.std)))
    side = cfg.image_size or _side(root, eps)
    channels_last = channels_last_default(cfg.channels_last, device, side)
    if channels_last:
        backbone = backbone.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    reader = EpisodeReader(
        image_size=cfg.image_size, normalizer=normalizer, device=device, channels_last=channels_last
    )
    run_key = {
        "config": cfg.relevant(),
        "episodes_sha256": _sha256(Path(file)),
        "backbone_checkpoint": str(backbone_checkpoint) if backbone_checkpoint else None,
    }
    run_hash = hashlib.sha256(json.dumps(run_key, sort_keys=True).encode()).hexdigest()
    stage = _prepare(
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
    prepare_s = time.perf_counter() - started
    learner = LEARNERS[cfg.method]
    mine = [ep for pos, ep in enumerate(chosen) if pos % env.world_size == env.rank]
    ep_dir = out / "episodes"
    ep_dir.mkdir(exist_ok=True)
    with Progress(progress and env.is_main, len(mine), f"{cfg.method} episodes") as bar:
        for ep in mine:
            path = ep_dir / f"episode_{ep.index:05d}.json"
            if resume and path.is_file() and read_json(path).get("run") == run_hash:
                bar.advance()
                continue
            t0 = time.perf_counter()
            tensors = reader.load(ep)
            scores, extra = learner(backbone, tensors, cfg, _episode_seed(cfg.seed, ep.index))
            metrics = episode_metrics(tensors.target, ep.query_labels, scores)
            write_json(
                path,
                {
                    "run": run_hash,
                    "episode": ep.index,
                    "rank": env.rank,
                    "n_way": ep.n_way,
                    "classes": list(ep.class_keys),
                    "support": int(ep.support_indices.size),
                    "query": int(ep.query_indices.size),
                    "metrics": metrics,
                    "seconds": time.perf_counter() - t0,
                    **extra,
                    "predictions": {
                        "indices": ep.query_indices,
                        "labels": ep.query_labels,
                        "scores": scores,
                    },
                },
            )
            bar.advance(metrics.get("auroc"), "auroc")
            say(
                f"episode {ep.index}: auroc {metrics.get('auroc', float('nan')):.4f} "
                f"({time.perf_counter() - t0:.1f} s)"
            )
    reader.close()
    if not env.is_main:
        return {}
    for ep in chosen:  # other ranks' episodes
        path = ep_dir / f"episode_{ep.index:05d}.json"
        _wait_for(path, _matches(path, run_hash), f"episode {ep.index}")
    record = _collect(
        eps,
        chosen,
        cfg,
        backbone,
        stage,
        file,
        ep_dir,
        run_hash,
        target_id,
        prepare_s,
        time.perf_counter() - started,
        env,
    )
    write_json(out / "results.json", record)
    (out / "results.md").write_text(result_markdown(record), encoding="utf-8")
    summary = record["summary"].get("auroc", {})
    say(
        f"{cfg.method} {target_id}: AUROC {100 * (summary.get('mean') or float('nan')):.1f} "
        f"± {100 * (summary.get('ci') or float('nan')):.1f} over {len(chosen)} episodes"
    )
    return record


def _side(root: str | Path, eps: EpisodeSet) -> int:
    from medimeta.format.reader import DatasetFolder, locate_dataset

    return int(DatasetFolder(locate_dataset(root, eps.header["dataset"]["id"])).spec.input_size[-1])


def _prepare(
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
    """Run (or load) the method's training stage; returns its record."""
    if checkpoint is not None:
        record = load_checkpoint(checkpoint, backbone)
        return {"loaded": str(checkpoint), "record": record}
    if cfg.method not in ("mm-pt", "mm-maml"):
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
            say(f"{cfg.method}: training on {len(sources['tasks'])} source tasks")
            steps = cfg.pretrain_steps if cfg.method == "mm-pt" else cfg.meta_steps
            with seeded(cfg.seed), Progress(progress, steps, cfg.method) as bar:
                if cfg.method == "mm-pt":
                    rec = pretrain.pretrain_multitask(
                        root, sources["specs"], backbone, reader, cfg, log=say, progress=bar
                    )
                else:
                    episodes = pretrain.source_episodes(root, sources["specs"], cfg)
                    rec = maml.meta_train(backbone, episodes, reader, cfg, log=say, progress=bar)
            rec["seconds"] = time.perf_counter() - t0
            save_checkpoint(
                path, backbone, record={"run": run_hash, "stage": rec, "sources": sources["tasks"]}
            )
        else:
            _wait_for(path, done, f"the {cfg.method} backbone")
    record = load_checkpoint(path, backbone)
    return {
        "file": str(path),
        "sources": sources["tasks"],
        "excluded": sources["excluded"],
        "stage": {k: v for k, v in record.get("stage", {}).items() if "curve" not in k},
        "loss_curve_tail": (
            record.get("stage", {}).get("loss_curve")
            or record.get("stage", {}).get("query_loss_curve")
            or []
        )[-20:],
    }


def _collect(
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
        from medimeta.evaluate.predictions import concat_predictions

        merged = concat_predictions(preds)
        merged.info = {
            "method": cfg.method,
            "backbone": cfg.backbone,
            "run": run_hash,
            "note": "labels and score columns follow each episode's classes",
        }
        write_predictions(ep_dir.parent / "predictions_query.csv", merged)
    seconds = [r["seconds"] for r in rows]
    return {
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
            "file_sha256": _sha256(Path(file)),
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
