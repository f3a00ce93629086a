"""``medimeta benchmark``: the paper's validation as one plan of resumable cells.

1. targets (given, of a domain, or every dataset present) x backbones x methods x shots x
   seeds become cells (:mod:`medimeta.bench.plan`); a cell with a finished record is done;
2. calibration and the estimated time of every cell; the plan is printed and written to
   ``OUT/plan.json``; ``dry_run`` stops here, ``budget_s`` refuses a plan over it;
3. the cells run in order; under torchrun the episodes of a few-shot cell are shared by all
   ranks (rank 0 merges them) and supervised cells go to the ranks in turn, each in one
   process, so the numbers equal those of one process;
4. rank 0 merges the records of every finished cell in ``OUT/cells`` (this plan's and those of
   earlier plans into the same folder) into ``OUT/results.{md,json,csv,tex}`` and the
   intervals figure ``OUT/results.png``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import medimeta.data.distributed as D
from medimeta.bench.calibrate import Calibrator
from medimeta.bench.cells import PLAN_FILE, Cell, finished, run_cell, write_plan
from medimeta.bench.costs import Estimator
from medimeta.bench.merge import merge_folder
from medimeta.bench.plan import build_plan, check_budget, plan_table
from medimeta.bench.settings import BenchSettings, format_duration, resolve_targets
from medimeta.errors import MedIMetaError, OptionError
from medimeta.features.cache import FeatureCache
from medimeta.logs import Log, main_only
from medimeta.paths import cache_dir
from medimeta.runs.record import RUN_FILE, read_run
from medimeta.safeio import wait_for, write_text

FAILED_FILE = "failed.txt"


def run_benchmark(
    root: str | Path,
    settings: BenchSettings,
    *,
    out: str | Path = "runs/benchmark",
    dry_run: bool = False,
    cache: str | Path | FeatureCache | None = None,
    device: str | None = None,
    log: Log | None = None,
    progress: bool = False,
    env: D.DistEnv | None = None,
) -> dict[str, Any]:
    """Plan, estimate and run the benchmark; returns a summary (plan, cells, merged tables).

    The targets are ``settings.targets`` (``settings.domain``, every dataset present);
    ``cache``: the embedding cache folder (or a :class:`FeatureCache`) [``$MEDIMETA_CACHE``,
    else ``ROOT/.cache``]; ``settings.cache=False`` runs the backbone per episode instead."""
    own_env = env is None
    env = D.init_distributed() if env is None else env
    try:
        return _benchmark(
            Path(root), settings, Path(out), dry_run, cache, device, log, progress, env
        )
    finally:
        if own_env:
            D.shutdown(env)


def _benchmark(
    root: Path,
    settings: BenchSettings,
    out: Path,
    dry_run: bool,
    cache: str | Path | FeatureCache | None,
    device: str | None,
    log: Log | None,
    progress: bool,
    env: D.DistEnv,
) -> dict[str, Any]:
    say = main_only(log, env.is_main)
    out.mkdir(parents=True, exist_ok=True)
    chosen = resolve_targets(
        root, settings.targets, domain=settings.domain, all_tasks=settings.all_tasks
    )
    features = None
    if settings.cache:
        features = (
            cache if isinstance(cache, FeatureCache) else FeatureCache(cache_dir(cache, root))
        )
    cells = build_plan(root, out, chosen, settings, env, say)
    problem = None
    if env.is_main:
        problem = _estimate_and_print(root, out, cells, features, settings.budget_s, device, say)
    problem = D.broadcast_object(problem, env)  # every rank stops when rank 0 refuses
    if problem is not None:
        raise OptionError(problem)
    summary: dict[str, Any] = {"targets": chosen, "cells": cells, "plan": str(out / PLAN_FILE)}
    if dry_run:
        return summary
    if not any(c.status == "todo" for c in cells):
        return _nothing_to_do(out, cells, summary, say, env)
    failed = _run_cells(root, cells, features, device, log, progress, env, say)
    summary["failed"] = failed
    if env.is_main:
        _wait_for_records(cells, failed)
        summary["merged"] = merge_folder(out, say)
    return summary


def _nothing_to_do(
    out: Path, cells: list[Cell], summary: dict[str, Any], say: Log, env: D.DistEnv
) -> dict[str, Any]:
    """Every cell is finished (or skipped): say so; refresh the merged tables where the
    folder can be written, keep them as they are where it cannot (a read-only copy)."""
    done = sum(c.status == "done" for c in cells)
    rest = f", {len(cells) - done} skipped" if done < len(cells) else ""
    say(f"nothing to do: {done} of {len(cells)} cells are finished{rest}")
    summary["failed"] = []
    if env.is_main:
        try:
            summary["merged"] = merge_folder(out, say)
        except OSError as exc:
            summary["merged"] = None
            say(f"{out} cannot be written ({exc.strerror or exc}); its tables are kept as they are")
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
    # timings depend on the machine, not the data: cached beside the features when there are
    home = features.directory if features is not None and features.persist else out
    calibrator = Calibrator(home, D.device_for(D.DistEnv(), device), say)
    estimator = Estimator(root, calibrator, features)
    for cell in cells:
        if cell.status == "todo":
            estimator.estimate(cell)
    say(plan_table(cells))
    try:
        write_plan(out / PLAN_FILE, cells, {"root": str(root), "budget_s": budget_s})
    except OSError:
        if any(c.status == "todo" for c in cells):
            raise  # cells to run need a writable folder: the error says which
        say(f"{out / PLAN_FILE} cannot be written (a read-only folder); kept as it is")
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
    supervised = [c for c in todo if c.is_supervised]
    owner = {id(c): i % env.world_size for i, c in enumerate(supervised)}
    left = sum(c.estimate_s or 0.0 for c in todo)
    spent, failed = 0.0, []
    for i, cell in enumerate(todo, 1):
        mine = not cell.is_supervised or owner[id(cell)] == env.rank
        if not mine:
            continue
        say(f"[cell {i}/{len(todo)}] {cell.label} (estimated {format_duration(cell.estimate_s)})")
        t0 = time.perf_counter()
        cell_log = log if (log is not None and (env.is_main or cell.is_supervised)) else None
        try:
            run_cell(
                cell,
                root,
                env=env,
                features=features,
                device=device,
                log=cell_log,
                progress=progress and (env.is_main or cell.is_supervised),
            )
        except (MedIMetaError, ValueError, RuntimeError) as exc:
            failed.append(cell.label)
            line = " ".join(f"{type(exc).__name__}: {exc}".split())  # one line
            say(f"[cell {i}/{len(todo)}] FAILED: {line}")
            write_text(cell.folder / FAILED_FILE, line + "\n")
            continue
        (cell.folder / FAILED_FILE).unlink(missing_ok=True)
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
            rec = read_run(cell.folder)
        except (MedIMetaError, OSError, ValueError):
            continue
        measured += float((rec.cell or {}).get("seconds") or 0.0)
        estimated += float(cell.estimate_s or 0.0)
    return measured / estimated if measured > 0 and estimated > 0 else 1.0


def _wait_for_records(cells: list[Cell], failed: list[str]) -> None:
    """On rank 0: the records of cells other ranks ran (supervised cells)."""
    for cell in cells:
        if cell.status == "todo" and cell.label not in failed and cell.is_supervised:
            done = lambda c=cell: finished(c) is not None  # noqa: E731
            wait_for(cell.folder / RUN_FILE, done, f"the record of {cell.label}")


__all__ = ["run_benchmark"]
