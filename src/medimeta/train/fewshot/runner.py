"""Cross-domain few-shot evaluation over a fixed set of episodes.

Output folder: ``episodes.json`` (the episodes, when they were sampled here), one JSON file
per evaluated episode in ``episodes/`` (metrics, query predictions, time; these make the
run resumable and let torchrun ranks share the work: rank r takes the episodes at
positions r, r + R, ...), the trained backbone of the methods with a training stage, and at
the end the run record (:mod:`medimeta.runs.record`: protocol, per-episode metrics,
mean ± CI), its Markdown summary and the query predictions (every query prediction with its
episode number). Which method runs is the registry's business
(:mod:`medimeta.train.fewshot.registry`): this loop is the same for every method.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import medimeta.data.distributed as D
from medimeta.episodes import Episode
from medimeta.evaluate.compute import episode_metrics
from medimeta.features.table import FeatureSource, episode_batch
from medimeta.format.locate import resolve_task_ref
from medimeta.logs import Log, main_only, plural
from medimeta.progress import Progress
from medimeta.runs.model import RunRecord
from medimeta.runs.record import SUMMARY_FILE, episode_file, predictions_file, write_run
from medimeta.safeio import wait_for, write_text
from medimeta.train.fewshot.collect import collect_results
from medimeta.train.fewshot.config import FewShotConfig
from medimeta.train.fewshot.episode_files import read_result, write_result
from medimeta.train.fewshot.learners import Scored
from medimeta.train.fewshot.registry import Scorer
from medimeta.train.fewshot.report import result_markdown
from medimeta.train.fewshot.setup import RunContext, load_or_sample_episodes, prepare
from medimeta.train.fewshot.stage import matches
from medimeta.train.settings import EpisodePlan, RunSettings


def _episode_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, index, 7]).generate_state(1)[0])


def run_fewshot(
    root: str | Path,
    target: str | None,
    config: FewShotConfig,
    *,
    episodes: EpisodePlan | str | Path | None = None,
    run: RunSettings | None = None,
    log: Log | None = None,
    env: D.DistEnv | None = None,
    features: FeatureSource | None = None,
) -> RunRecord | None:
    """Evaluate ``config.method`` on the episodes; returns the run record (None on ranks
    other than the main one).

    ``episodes``: an episode file, or how to sample them (:class:`EpisodePlan`; default: 100
    5-shot 10-query episodes of ``target``, ``"ID:TASK"`` or ``"ID"`` for its first task).
    ``run``: the run folder and how the run executes
    (:class:`RunSettings`; with ``resume`` episodes whose result file exists for the same
    settings are not recomputed). ``features`` (e.g. a
    :class:`medimeta.features.cache.FeatureCache`) gives the methods that read only features
    the features of every sample the episodes touch, computed once.
    """
    plan = episodes if isinstance(episodes, EpisodePlan) else EpisodePlan(file=episodes)
    if target is not None:  # "bus" alone: its first task (with a note)
        target = ":".join(resolve_task_ref(root, target))
    run = run or RunSettings(out_dir=Path("runs/fewshot"))
    own_env = env is None
    env = D.init_distributed() if env is None else env
    try:
        started = time.perf_counter()
        run.out_dir.mkdir(parents=True, exist_ok=True)
        eps = load_or_sample_episodes(root, target, plan, run.out_dir, env)
        chosen = list(eps)[: plan.limit if plan.limit is not None else len(eps)]
        ctx = RunContext(Path(root), config, eps, chosen, run, env, main_only(log, env.is_main))
        prepare(ctx, features)
        prepare_s = time.perf_counter() - started
        if ctx.backbone is None or ctx.reader is None:
            raise RuntimeError("internal inconsistency (please report)")
        score = config.spec.scorer(ctx.backbone, ctx.reader, config, ctx.stage, ctx.table)
        mine = [ep for pos, ep in enumerate(chosen) if pos % env.world_size == env.rank]
        _evaluate_episodes(ctx, mine, score)
        ctx.reader.close()
        if not env.is_main:
            return None
        return _report(ctx, prepare_s, time.perf_counter() - started)
    finally:
        if own_env:
            D.shutdown(env)


def _report(ctx: RunContext, prepare_s: float, total_s: float) -> RunRecord:
    """On rank 0: wait for every episode file, then write the run record and its summary."""
    for ep in ctx.chosen:  # other ranks' episodes
        path = episode_file(ctx.out, ep.index)
        wait_for(path, matches(path, ctx.run_hash), f"episode {ep.index}")
    record = collect_results(ctx, prepare_s, total_s)
    write_text(ctx.out / SUMMARY_FILE, result_markdown(record))
    write_run(ctx.out, record, run_files(ctx))
    mean, ci, _ = record.metric("auroc")
    ctx.say(
        f"{ctx.cfg.method} {ctx.target_id}: AUROC {100 * mean:.1f} ± {100 * ci:.1f} over "
        f"{plural(len(ctx.chosen), 'episode')}"
    )
    return record


def run_files(ctx: RunContext) -> list[str]:
    """The files of the run folder its record lists with their sha256: every episode result,
    the query predictions, the summary, and the episode file and trained backbone when they
    are in the folder."""
    paths = [episode_file(ctx.out, ep.index) for ep in ctx.chosen]
    paths += [predictions_file(ctx.out, "query"), ctx.out / SUMMARY_FILE, ctx.file]
    stage = ctx.stage.get("file")
    if stage:
        paths.append(Path(stage))
    out = ctx.out.resolve()
    inside = [p.resolve() for p in paths if p.resolve().is_relative_to(out)]
    return [p.relative_to(out).as_posix() for p in inside]


def _batched(ctx: RunContext, todo: list[Episode]) -> dict[int, tuple[Scored, float]]:
    """Episode index -> (scores and record, seconds) of every episode to do, scored at once
    when the method reads cached features and has a batched path; empty otherwise."""
    spec = ctx.cfg.spec
    if not (ctx.settings.batched and ctx.table is not None and spec.reads_features and todo):
        return {}
    device = ctx.reader.device if ctx.reader is not None else "cpu"
    batch = episode_batch(ctx.table, todo, device)
    t0 = time.perf_counter()
    # torch's own thread count: 100 episodes at once are large enough to gain from threads
    # (the 5-shot probe: 0.39 s on two idle cores, 0.69 s on one); on cores busy with other
    # work, set OMP_NUM_THREADS=1 (docs/benchmark.md)
    scored = None if batch is None else spec.score_batch(batch, ctx.cfg, ctx.stage)
    if scored is None:
        return {}
    each = (time.perf_counter() - t0) / len(todo)
    return {ep.index: (result, each) for ep, result in zip(todo, scored, strict=True)}


def _evaluate_episodes(ctx: RunContext, mine: list[Episode], score: Scorer) -> None:
    """Run the method on this rank's episodes, one result file each (kept when resuming)."""
    cfg, env = ctx.cfg, ctx.env
    show = ctx.settings.progress and env.is_main
    resume = ctx.settings.resume
    done = {ep.index for ep in mine if resume and _done(_path(ctx, ep), ctx.run_hash, ep)}
    batched = _batched(ctx, [ep for ep in mine if ep.index not in done])
    with Progress(show, len(mine), f"{cfg.method} episodes") as bar:
        for ep in mine:
            path = _path(ctx, ep)
            if ep.index in done:
                bar.advance()
                continue
            t0 = time.perf_counter()
            if ep.index in batched:
                (scores, extra), seconds = batched[ep.index]
            else:
                scores, extra = score(ep, _episode_seed(cfg.seed, ep.index))
                seconds = time.perf_counter() - t0
            metrics = episode_metrics(ep.task_target.value, ep.query_labels, scores, ep.class_keys)
            write_result(
                path,
                {
                    "run": ctx.run_hash,
                    "episode": ep.index,
                    "rank": env.rank,
                    "n_way": ep.n_way,
                    "classes": list(ep.class_keys),
                    "support": int(ep.support_indices.size),
                    "query": int(ep.query_indices.size),
                    "metrics": metrics,
                    "seconds": seconds,
                    **extra,
                    "predictions": {
                        "indices": ep.query_indices,
                        "labels": ep.query_labels,
                        "scores": scores,
                    },
                },
            )
            bar.advance(metrics.get("auroc"), "auroc")
            ctx.say(
                f"episode {ep.index}: auroc {metrics.get('auroc', float('nan')):.4f} "
                f"({seconds:.1f} s)"
            )


def _path(ctx: RunContext, ep: Episode) -> Path:
    return episode_file(ctx.out, ep.index)


def _done(path: Path, run_hash: str, ep: Episode) -> bool:
    """Whether an episode's result file is there for this run and sound (a damaged or
    edited one is said so once and computed again)."""
    return read_result(path, run_hash, ep) is not None
