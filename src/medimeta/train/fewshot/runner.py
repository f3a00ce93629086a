"""Cross-domain few-shot evaluation over a fixed set of episodes.

Output folder: ``episodes.json`` (the episodes, when they were sampled here), one JSON file
per evaluated episode in ``episodes/`` (metrics, query predictions, time; these make the
run resumable and let torchrun ranks share the work: rank r takes the episodes at
positions r, r + R, ...), the trained backbone of mm-pt / mm-maml / meta-baseline, and at
the end ``results.json`` (protocol, per-episode metrics, mean ± CI), ``results.md`` and
``predictions_query.csv`` (every query prediction with its episode number).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import medimeta.train.distributed as D
import medimeta.train.fewshot.frozen as frozen
import medimeta.train.fewshot.maml as maml
import medimeta.train.fewshot.metabaseline as metabaseline
import medimeta.train.fewshot.methods as methods
from medimeta.episodes import Episode, EpisodeSet
from medimeta.format.reader import locate_dataset
from medimeta.models.backbone import Backbone
from medimeta.train.fewshot.collect import collect_results
from medimeta.train.fewshot.config import FewShotConfig
from medimeta.train.fewshot.report import result_markdown
from medimeta.train.fewshot.setup import load_or_sample_episodes, prepare
from medimeta.train.fewshot.stage import matches, wait_for
from medimeta.train.fewshot.tensors import EpisodeReader, episode_metrics
from medimeta.train.progress import Progress
from medimeta.train.records import read_json, write_json

Log = Callable[[str], None]
LEARNERS = {
    "im-pt": methods.finetune_episode,
    "mm-pt": methods.finetune_episode,
    "linear-probe": methods.linear_probe_episode,
    "protonet": methods.protonet_episode,
    "knn": methods.knn_episode,
    "mm-maml": maml.maml_episode,
}  # meta-baseline: metabaseline.metabaseline_episode with its stage's tau (see _scorer)
Scorer = Callable[[Episode, int], tuple[np.ndarray, dict[str, Any]]]


def _episode_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, index, 7]).generate_state(1)[0])


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
    features: frozen.FeatureSource | None = None,
) -> dict[str, Any]:
    """Evaluate ``config.method`` on the episodes; returns the ``results.json`` record.

    ``limit`` evaluates only the first ``limit`` episodes of the set (recorded). With
    ``resume`` episodes whose result file exists for the same settings are not recomputed.
    ``backbone_checkpoint`` replaces the method's training stage by a saved backbone.
    ``features`` (e.g. a :class:`medimeta.bench.cache.FeatureCache`) gives the frozen-feature
    methods the features of every sample the episodes touch, computed once (else each
    episode runs the backbone on its own images).
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
            features,
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
    features: frozen.FeatureSource | None = None,
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
    backbone, reader, run_hash, stage, table = prepare(
        root,
        cfg,
        eps,
        chosen,
        out,
        resume,
        backbone_checkpoint,
        D.device_for(env, device_name),
        env,
        say,
        progress,
        features,
    )
    prepare_s = time.perf_counter() - started
    ep_dir = out / "episodes"
    ep_dir.mkdir(exist_ok=True)
    mine = [ep for pos, ep in enumerate(chosen) if pos % env.world_size == env.rank]
    score = _scorer(backbone, reader, cfg, stage, table)
    _evaluate_episodes(mine, score, cfg, ep_dir, run_hash, resume, env, progress, say)
    reader.close()
    if not env.is_main:
        return {}
    total_s = time.perf_counter() - started
    return _report(
        eps,
        locate_dataset(root, eps.header["dataset"]["id"]),
        chosen,
        cfg,
        backbone,
        stage,
        file,
        out,
        run_hash,
        target_id,
        prepare_s,
        total_s,
        env,
        say,
    )


def _report(
    eps: EpisodeSet,
    folder: Path,
    chosen: list[Episode],
    cfg: FewShotConfig,
    backbone: Backbone,
    stage: dict[str, Any],
    file: Path,
    out: Path,
    run_hash: str,
    target_id: str,
    prepare_s: float,
    total_s: float,
    env: D.DistEnv,
    say: Log,
) -> dict[str, Any]:
    """On rank 0: wait for every episode file, then write results.json and results.md."""
    ep_dir = out / "episodes"
    for ep in chosen:  # other ranks' episodes
        path = ep_dir / f"episode_{ep.index:05d}.json"
        wait_for(path, matches(path, run_hash), f"episode {ep.index}")
    record = collect_results(
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
        total_s,
        env,
    )
    # where the data came from, so commands reading this run need no --root
    record["target"]["folder"] = str(folder)
    write_json(out / "results.json", record)
    (out / "results.md").write_text(result_markdown(record), encoding="utf-8")
    summary = record["summary"].get("auroc", {})
    say(
        f"{cfg.method} {target_id}: AUROC {100 * (summary.get('mean') or float('nan')):.1f} "
        f"± {100 * (summary.get('ci') or float('nan')):.1f} over {len(chosen)} episodes"
    )
    return record


def _scorer(
    backbone: Backbone,
    reader: EpisodeReader,
    cfg: FewShotConfig,
    stage: dict[str, Any],
    table: frozen.FeatureTable | None,
) -> Scorer:
    """``score(episode, seed)``: the method on one episode; with a feature ``table`` the
    methods that only read features take them from it; meta-baseline uses its stage's tau."""
    if cfg.method == "meta-baseline":
        tau = float(stage["tau"])
        if table is not None:
            return lambda ep, seed: metabaseline.score_from_table(
                table, ep, cfg, tau, reader.device
            )
        return lambda ep, seed: metabaseline.metabaseline_episode(
            backbone, reader.load(ep), cfg, seed, tau=tau
        )
    if table is not None:
        return lambda ep, seed: frozen.score_from_table(table, ep, cfg, seed, reader.device)
    learner = LEARNERS[cfg.method]
    return lambda ep, seed: learner(backbone, reader.load(ep), cfg, seed)


def _evaluate_episodes(
    mine: list[Episode],
    score: Scorer,
    cfg: FewShotConfig,
    ep_dir: Path,
    run_hash: str,
    resume: bool,
    env: D.DistEnv,
    progress: bool,
    say: Log,
) -> None:
    """Run the method on this rank's episodes, one result file each (kept when resuming)."""
    with Progress(progress and env.is_main, len(mine), f"{cfg.method} episodes") as bar:
        for ep in mine:
            path = ep_dir / f"episode_{ep.index:05d}.json"
            if resume and path.is_file() and read_json(path).get("run") == run_hash:
                bar.advance()
                continue
            t0 = time.perf_counter()
            scores, extra = score(ep, _episode_seed(cfg.seed, ep.index))
            metrics = episode_metrics(ep.task_target.value, ep.query_labels, scores)
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
