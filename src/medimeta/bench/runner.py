"""``medimeta benchmark``: the paper's validation as one plan of resumable cells.

1. targets (given, of a domain, or every dataset present) x backbones x methods x shots x
   seeds become cells (:mod:`medimeta.bench.plan`); a cell with a finished record is done;
2. calibration and the estimated time of every cell; the plan is printed and written to
   ``OUT/plan.json``; ``dry_run`` stops here, ``budget_s`` refuses a plan over it;
3. the executor runs the cells through one cell function
   (:func:`medimeta.bench.tasks.execute_cell`: skip if finished, claim, run, release):

   * ``local`` (the default): the embedding cache is filled first, then the cells run in
     order; under torchrun the episodes of a few-shot cell are shared by all ranks (rank 0
     merges them) and supervised cells go to the ranks in turn, each in one process, so the
     numbers equal those of one process;
   * ``slurm``: the cells are submitted as job arrays (:mod:`medimeta.bench.slurm`), after
     one embedding job per dataset and backbone; ``wait`` follows them to the end;

4. rank 0 merges the records of every finished cell in ``OUT/cells`` (this plan's and those of
   earlier plans into the same folder) into ``OUT/results.{md,json,csv,tex}`` and the
   intervals figure ``OUT/results.png`` (``medimeta benchmark collect OUT`` does it again).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import medimeta.data.distributed as D
from medimeta.bench.calibrate import Calibrator
from medimeta.bench.cells import PLAN_FILE, Cell, finished, write_plan
from medimeta.bench.costs import Estimator
from medimeta.bench.merge import merge_folder
from medimeta.bench.plan import Plan, build_plan, check_budget, plan_table
from medimeta.bench.settings import BenchSettings, format_duration, resolve_targets
from medimeta.bench.tasks import COMPUTED, CellRun, embed_cells, execute_cell, one_line
from medimeta.errors import MedIMetaError, OptionError
from medimeta.features.cache import FeatureCache
from medimeta.logs import Log, main_only, plural
from medimeta.paths import cache_dir
from medimeta.runs.record import FAILED_FILE, RUN_FILE, read_run
from medimeta.safeio import wait_for

if TYPE_CHECKING:
    from medimeta.bench.slurm import SlurmSettings

__all__ = ["FAILED_FILE", "run_benchmark"]


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
    slurm: SlurmSettings | None = None,
) -> dict[str, Any]:
    """Plan, estimate and run the benchmark; returns a summary (plan, cells, merged tables).

    The targets are ``settings.targets`` (``settings.domain``, every dataset present);
    ``cache``: the embedding cache folder (or a :class:`FeatureCache`) [``$MEDIMETA_CACHE``,
    else ``ROOT/.cache``]; ``settings.cache=False`` runs the backbone per episode instead;
    ``slurm``: submit the cells as Slurm job arrays instead of running them here."""
    own_env = env is None
    env = D.init_distributed() if env is None else env
    try:
        return _benchmark(
            Path(root), settings, Path(out), dry_run, cache, device, log, progress, env, slurm
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
    slurm: SlurmSettings | None,
) -> dict[str, Any]:
    say = main_only(log, env.is_main)
    if slurm is not None and env.active:
        raise OptionError("--executor slurm submits jobs from one process; run it without torchrun")
    out.mkdir(parents=True, exist_ok=True)
    chosen = resolve_targets(
        root, settings.targets, domain=settings.domain, all_tasks=settings.all_tasks
    )
    features = None
    if settings.cache:
        features = (
            cache if isinstance(cache, FeatureCache) else FeatureCache(cache_dir(cache, root))
        )
    plan = build_plan(root, out, chosen, settings, env, say)
    cells = plan.cells
    problem = None
    if env.is_main:
        extra = {
            "root": str(root.resolve()),
            "out": str(out.resolve()),
            "budget_s": settings.budget_s,
            "settings": {**dataclasses.asdict(settings), "targets": chosen},
            "cache": str(features.directory.resolve()) if features is not None else None,
            "left_out": plan.notes,
        }
        problem = _estimate_and_print(root, out, plan, features, extra, device, say)
    problem = D.broadcast_object(problem, env)  # every rank stops when rank 0 refuses
    if problem is not None:
        raise OptionError(problem)
    summary: dict[str, Any] = {"targets": chosen, "cells": cells, "plan": str(out / PLAN_FILE)}
    if dry_run:
        return summary
    if not any(c.status == "todo" for c in cells):
        return _nothing_to_do(out, cells, summary, say, env)
    if slurm is not None:
        return _submit(out, cells, slurm, device, say, summary)
    run = CellRun(root, features, device, env, log, progress)
    failed = _run_cells(cells, run, say)
    summary["failed"] = failed
    if env.is_main:
        summary["merged"] = merge_folder(out, say)
    return summary


def _submit(
    out: Path,
    cells: list[Cell],
    slurm: SlurmSettings,
    device: str | None,
    say: Log,
    summary: dict[str, Any],
) -> dict[str, Any]:
    """Submit the cells to do as Slurm job arrays; with ``slurm.wait``, follow them and merge."""
    from medimeta.bench.slurm import submit_plan, wait_for_jobs

    submission = submit_plan(out, cells, slurm, device, say)
    summary["submission"] = submission
    if slurm.wait:
        if submission.get("tasks"):
            summary["failed"] = wait_for_jobs(out, submission, slurm.poll_s, say)
        summary["merged"] = merge_folder(out, say)
    return summary


def _nothing_to_do(
    out: Path, cells: list[Cell], summary: dict[str, Any], say: Log, env: D.DistEnv
) -> dict[str, Any]:
    """Every cell is finished (or skipped): say so; refresh the merged tables where the
    folder can be written, keep them as they are where it cannot (a read-only copy)."""
    done = sum(c.status == "done" for c in cells)
    rest = f", {len(cells) - done} skipped" if done < len(cells) else ""
    say(f"nothing to do: {done} of {plural(len(cells), 'cell')} finished{rest}")
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
    plan: Plan,
    features: FeatureCache | None,
    extra: dict[str, Any],
    device: str | None,
    say: Log,
) -> str | None:
    """Calibrate, estimate every cell to run, print and save the plan (with ``extra``: what
    rebuilds its cells in another process); the budget refusal."""
    cells = plan.cells
    # timings depend on the machine, not the data: cached beside the features when there are
    home = features.directory if features is not None and features.persist else out
    calibrator = Calibrator(home, D.device_for(D.DistEnv(), device), say)
    estimator = Estimator(root, calibrator, features)
    for cell in cells:
        if cell.status == "todo":
            estimator.estimate(cell)
    say(plan_table(cells, plan.notes))
    try:
        write_plan(out / PLAN_FILE, cells, extra)
    except OSError:
        if any(c.status == "todo" for c in cells):
            raise  # cells to run need a writable folder: the error says which
        say(f"{out / PLAN_FILE} cannot be written (a read-only folder); kept as it is")
    try:
        check_budget(cells, extra["budget_s"])
    except OptionError as exc:
        return str(exc)
    return None


_NOT_COMPUTED = {
    "failed": "FAILED: ",
    "claimed": "left to the process that claimed it: ",
    "finished": "finished meanwhile by another process",
}


def _run_cells(cells: list[Cell], run: CellRun, say: Log) -> list[str]:
    """Fill the feature cache, then run the cells to do on this rank through the cell function;
    returns the labels of those that failed (on every rank)."""
    env = run.env
    todo = [c for c in cells if c.status == "todo"]
    try:
        embed_cells(todo, run)
    except (MedIMetaError, ValueError, RuntimeError, OSError) as exc:
        # each cell then embeds what it reads itself, and a broken one fails alone
        say(f"embedding first failed ({one_line(exc)}); the cells embed their own features")
    supervised = [c for c in todo if c.is_supervised]
    owner = {id(c): i % env.world_size for i, c in enumerate(supervised)}
    left = sum(c.estimate_s or 0.0 for c in todo)
    outcomes: dict[str, str] = {}
    spent = 0.0
    for i, cell in enumerate(todo, 1):
        mine = not cell.is_supervised or owner[id(cell)] == env.rank
        if not mine:
            continue
        say(f"[cell {i}/{len(todo)}] {cell.label} (estimated {format_duration(cell.estimate_s)})")
        talk = env.is_main or cell.is_supervised
        got = execute_cell(
            cell,
            dataclasses.replace(run, log=run.log if talk else None, progress=run.progress and talk),
        )
        outcomes[cell.label] = got.status
        if got.status != COMPUTED:
            say(f"[cell {i}/{len(todo)}] {_NOT_COMPUTED[got.status]}{got.detail}")
            continue
        spent += cell.estimate_s or 0.0
        rest = max(left - spent, 0.0) * _ratio(todo[:i])
        say(
            f"[cell {i}/{len(todo)}] done in {format_duration(got.seconds)} (estimated "
            f"{format_duration(cell.estimate_s)}); about {format_duration(rest)} left"
        )
    every: dict[str, str] = {}
    for part in D.all_gather_objects(outcomes, env):
        every.update(part)
    if env.is_main:
        _wait_for_records(todo, every)
    return [label for label, status in every.items() if status == "failed"]


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


def _wait_for_records(cells: list[Cell], outcomes: dict[str, str]) -> None:
    """On rank 0: the records of the cells other ranks computed (supervised cells)."""
    for cell in cells:
        if outcomes.get(cell.label) == COMPUTED and cell.is_supervised:
            done = lambda c=cell: finished(c) is not None  # noqa: E731
            wait_for(cell.folder / RUN_FILE, done, f"the record of {cell.label}")
