"""``medimeta benchmark``: the paper's validation as one plan of resumable cells.

1. targets (given, of a domain, or every dataset present) x backbones x methods x shots x
   seeds become cells (:mod:`medimeta.bench.plan`); a cell with a finished record is done;
2. calibration and the estimated time of every cell; the plan is printed and written to
   ``OUT/plan.json``; ``dry_run`` stops here, ``budget_s`` refuses a plan over it;
3. the cells run in order; under torchrun the episodes of a few-shot cell are shared by all
   ranks (rank 0 merges them) and supervised cells go to the ranks in turn, each in one
   process, so the numbers equal those of one process;
4. rank 0 merges every record into ``OUT/results.{md,json,csv,tex}`` (and
   ``results.png`` when :mod:`medimeta.plots` has the intervals figure).
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Any

import medimeta.train.distributed as D
from medimeta.bench.cache import FeatureCache, cache_dir
from medimeta.bench.calibrate import Calibrator
from medimeta.bench.cells import RECORD, Cell, run_cell, write_plan
from medimeta.bench.costs import Estimator
from medimeta.bench.merge import find_records, merge_tables, save_figure, write_merged
from medimeta.bench.plan import build_plan, check_budget, plan_table
from medimeta.bench.settings import BenchSettings, format_duration, resolve_targets
from medimeta.errors import MedIMetaError, OptionError
from medimeta.train.fewshot.stage import wait_for
from medimeta.train.records import Log, read_json


def run_benchmark(
    root: str | Path,
    settings: BenchSettings,
    *,
    out: str | Path = "runs/benchmark",
    targets: list[str] | tuple[str, ...] = (),
    domain: str | None = None,
    all_tasks: bool = False,
    budget_s: float | None = None,
    dry_run: bool = False,
    cache: str | Path | FeatureCache | None = None,
    device: str | None = None,
    log: Log | None = None,
    progress: bool = False,
    env: D.DistEnv | None = None,
) -> dict[str, Any]:
    """Plan, estimate and run the benchmark; returns a summary (plan, cells, merged tables).

    ``cache``: the embedding cache folder (or a :class:`FeatureCache`) [``$MEDIMETA_CACHE``,
    else ``ROOT/.cache``]; ``settings.cache=False`` runs the backbone per episode instead."""
    own_env = env is None
    env = D.init_distributed() if env is None else env
    try:
        return _benchmark(
            Path(root),
            settings,
            Path(out),
            list(targets),
            domain,
            all_tasks,
            budget_s,
            dry_run,
            cache,
            device,
            log,
            progress,
            env,
        )
    finally:
        if own_env:
            D.shutdown(env)


def _benchmark(
    root: Path,
    settings: BenchSettings,
    out: Path,
    targets: list[str],
    domain: str | None,
    all_tasks: bool,
    budget_s: float | None,
    dry_run: bool,
    cache: str | Path | FeatureCache | None,
    device: str | None,
    log: Log | None,
    progress: bool,
    env: D.DistEnv,
) -> dict[str, Any]:
    say: Log = log if (log is not None and env.is_main) else (lambda _m: None)
    out.mkdir(parents=True, exist_ok=True)
    chosen = resolve_targets(root, targets, domain=domain, all_tasks=all_tasks)
    features = None
    if settings.cache:
        features = (
            cache if isinstance(cache, FeatureCache) else FeatureCache(cache_dir(cache, root))
        )
    cells = build_plan(root, out, chosen, settings, env, say)
    problem = None
    if env.is_main:
        problem = _estimate_and_print(root, out, cells, features, budget_s, device, say)
    problem = D.broadcast_object(problem, env)  # every rank stops when rank 0 refuses
    if problem is not None:
        raise OptionError(problem)
    summary: dict[str, Any] = {"targets": chosen, "cells": cells, "plan": str(out / "plan.json")}
    if dry_run:
        return summary
    failed = _run_cells(root, cells, features, device, log, progress, env, say)
    summary["failed"] = failed
    if env.is_main:
        _wait_for_records(cells, failed)
        summary["merged"] = _merge(out, cells, say)
    return summary


def _estimate_and_print(
    root: Path,
    out: Path,
    cells: list[Cell],
    features: FeatureCache | None,
    budget_s: float | None,
    device: str | None,
    say: Log,
) -> str | None:
    """Calibrate, estimate every cell to run, print and save the plan; the budget refusal."""
    calibrator = Calibrator(out, D.device_for(D.DistEnv(), device), say)
    estimator = Estimator(root, calibrator, features)
    for cell in cells:
        if cell.status == "todo":
            estimator.estimate(cell)
    say(plan_table(cells))
    write_plan(out / "plan.json", cells, {"root": str(root), "budget_s": budget_s})
    try:
        check_budget(cells, budget_s)
    except OptionError as exc:
        return str(exc)
    return None


def _run_cells(
    root: Path,
    cells: list[Cell],
    features: FeatureCache | None,
    device: str | None,
    log: Log | None,
    progress: bool,
    env: D.DistEnv,
    say: Log,
) -> list[str]:
    """Run the cells to do on this rank; returns the labels of those that failed."""
    todo = [c for c in cells if c.status == "todo"]
    supervised = [c for c in todo if c.kind == "supervised"]
    owner = {id(c): i % env.world_size for i, c in enumerate(supervised)}
    left = sum(c.estimate_s or 0.0 for c in todo)
    spent, failed = 0.0, []
    for i, cell in enumerate(todo, 1):
        mine = cell.kind == "fewshot" or owner[id(cell)] == env.rank
        if not mine:
            continue
        say(f"[cell {i}/{len(todo)}] {cell.label} (estimated {format_duration(cell.estimate_s)})")
        t0 = time.perf_counter()
        cell_log = log if (log is not None and (env.is_main or cell.kind == "supervised")) else None
        try:
            run_cell(
                cell,
                root,
                env=env,
                features=features,
                device=device,
                log=cell_log,
                progress=progress and (env.is_main or cell.kind == "supervised"),
            )
        except (MedIMetaError, ValueError, RuntimeError) as exc:
            failed.append(cell.label)
            say(f"[cell {i}/{len(todo)}] FAILED: {type(exc).__name__}: {exc}")
            (cell.folder / "failed.txt").write_text(traceback.format_exc(), encoding="utf-8")
            continue
        took = time.perf_counter() - t0
        spent += cell.estimate_s or 0.0
        ratio = _ratio(todo[:i])
        rest = max(left - spent, 0.0) * ratio
        say(
            f"[cell {i}/{len(todo)}] done in {format_duration(took)} (estimated "
            f"{format_duration(cell.estimate_s)}); about {format_duration(rest)} left"
        )
    return failed


def _ratio(done: list[Cell]) -> float:
    """Measured / estimated time of the finished cells (1 when unknown)."""
    measured = estimated = 0.0
    for cell in done:
        try:
            rec = read_json(cell.record_path)
        except (OSError, ValueError):
            continue
        measured += float(rec.get("seconds") or 0.0)
        estimated += float(cell.estimate_s or 0.0)
    return measured / estimated if measured > 0 and estimated > 0 else 1.0


def _wait_for_records(cells: list[Cell], failed: list[str]) -> None:
    """On rank 0: the records of cells other ranks ran (supervised cells)."""
    for cell in cells:
        if cell.status == "todo" and cell.label not in failed and cell.kind == "supervised":
            wait_for(cell.record_path, cell.record_path.is_file, f"the record of {cell.label}")


def _merge(out: Path, cells: list[Cell], say: Log) -> dict[str, Any] | None:
    """The plan's finished cells (not stale cells of other settings) as merged tables."""
    folders = [c.folder for c in cells if c.status != "skipped" and c.record_path.is_file()]
    records = find_records(folders)
    if not records:
        return None
    merged = merge_tables(records)
    for suffix in (".md", ".json", ".csv", ".tex"):
        write_merged(merged, out / f"results{suffix}", records)
    figure = save_figure(records, out / "results.png")
    written = "results.md/.json/.csv/.tex" + (" and results.png" if figure else "")
    say(f"merged {len(records)} records into {out}/{written}")
    return merged


__all__ = ["RECORD", "run_benchmark"]
