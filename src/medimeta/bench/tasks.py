"""The cell function: what every executor (local, torchrun, Slurm) runs for a cell.

:func:`execute_cell` skips a finished cell, claims the cell (:mod:`medimeta.bench.claims`),
runs it with :func:`~medimeta.bench.cells.run_cell` (which writes the record atomically and
last) and releases it; a failure leaves ``failed.txt`` with one line. It is idempotent: anyone
may run it again, at any time, in any process.

A Slurm task is a list of cell hashes: :func:`run_task` reads the plan the submission wrote
(``OUT/slurm/plan-<stamp>.json``), rebuilds those cells (:func:`plan_cells`, checking each
one's protocol hash against the plan) and executes them in turn. :func:`run_embedding` is the
job that fills the feature cache for the frozen-feature cells of one dataset and backbone
first (:func:`embed_cells`; the local executor calls it too, so both compute the features in
the same batches and their tables are the same, byte for byte).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import medimeta.data.distributed as D
from medimeta.bench.cells import Cell, finished, run_cell
from medimeta.bench.claims import CLAIM_TTL_S, CellClaim, describe, job_ids
from medimeta.bench.plan import backbone_facts, fewshot_cell, supervised_cell
from medimeta.bench.settings import SUPERVISED, BenchSettings, format_duration
from medimeta.episodes import EpisodeSet
from medimeta.errors import BenchmarkError, FormatError, MedIMetaError
from medimeta.features.cache import FeatureCache
from medimeta.features.table import episode_rows
from medimeta.format.reader import locate_dataset
from medimeta.logs import Log, emit, main_only, plural
from medimeta.runs.files import read_json_object
from medimeta.runs.record import FAILED_FILE
from medimeta.safeio import write_text
from medimeta.train.fewshot.config import FewShotConfig

#: What a task prints per cell (the tests count the cells computed from the job logs).
COMPUTED = "computed"


@dataclass(frozen=True)
class CellRun:
    """How cells are executed: data root, feature cache (None: per episode), device, the
    ranks of a torchrun, log, progress bars and the claims' time to live."""

    root: Path
    features: FeatureCache | None = None
    device: str | None = None
    env: D.DistEnv = field(default_factory=D.DistEnv)
    log: Log | None = None
    progress: bool = False
    ttl: float = CLAIM_TTL_S


@dataclass(frozen=True)
class Outcome:
    """What :func:`execute_cell` did: ``computed``, ``finished`` (already), ``claimed`` (by
    another live process, named in ``detail``) or ``failed`` (``detail``: the error line)."""

    status: str
    detail: str = ""
    seconds: float = 0.0


def one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _decide(cell: Cell, run: CellRun) -> tuple[CellClaim | None, Outcome | None]:
    """Finished, claimed elsewhere, or claimed now (the claim returned)."""
    if finished(cell) is not None:
        return None, Outcome("finished")
    claim = CellClaim(cell.folder, run.ttl)
    holder = claim.take()
    if holder is not None:
        return None, Outcome("claimed", describe(holder))
    if finished(cell) is not None:  # finished by another process while this one looked
        claim.release()
        return None, Outcome("finished")
    if claim.took_over:
        emit(run.log)(f"{cell.label}: took over the stale claim of {claim.took_over}")
    return claim, None


def execute_cell(cell: Cell, run: CellRun) -> Outcome:
    """Run ``cell`` unless it is finished or a live process holds its claim.

    Under torchrun a few-shot cell is run by every rank: rank 0 decides (and claims) for all.
    A supervised cell runs in the one process that calls this."""
    env = run.env
    shared = env.active and not cell.is_supervised
    claim, verdict = None, None
    if not shared or env.is_main:
        claim, verdict = _decide(cell, run)
    if shared:
        verdict = D.broadcast_object(verdict, env)
    if verdict is not None:
        return verdict
    t0 = time.perf_counter()
    try:
        run_cell(
            cell,
            run.root,
            env=env,
            features=run.features,
            device=run.device,
            log=run.log,
            progress=run.progress,
            job=job_ids(),
        )
    except (MedIMetaError, ValueError, RuntimeError, OSError) as exc:
        line = one_line(exc)
        if not shared or env.is_main:
            write_text(cell.folder / FAILED_FILE, line + "\n")
        return Outcome("failed", line, time.perf_counter() - t0)
    finally:
        if claim is not None:
            claim.release()
    if not shared or env.is_main:
        (cell.folder / FAILED_FILE).unlink(missing_ok=True)
    return Outcome(COMPUTED, "", time.perf_counter() - t0)


# -- the feature cache, filled first --------------------------------------------------------
def reads_cached_features(cell: Cell) -> bool:
    """A to-do few-shot cell whose method scores the frozen backbone's cached features."""
    cfg = cell.config
    return (
        cell.status == "todo"
        and isinstance(cfg, FewShotConfig)
        and cell.episodes_file is not None
        and cfg.spec.reads_features
        and not cfg.spec.has_stage
    )


def feature_groups(cells: Sequence[Cell]) -> dict[str, list[Cell]]:
    """The cells that read cached features, by ``dataset/backbone`` (one embedding job each)."""
    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        if reads_cached_features(cell):
            dataset = cell.protocol["target"]["dataset_id"]
            groups.setdefault(f"{dataset}/{cell.backbone}", []).append(cell)
    return groups


def _setup_key(cell: Cell, split: str) -> str:
    """Cells whose backbone and reader are built alike (so their features share a key)."""
    cfg = cell.config
    if not isinstance(cfg, FewShotConfig):
        raise RuntimeError("internal inconsistency (please report)")
    parts = [cfg.backbone, str(cfg.pretrained), cfg.image_size, cfg.seed, split]
    return json.dumps([*parts, cell.protocol.get("normalization")], sort_keys=True)


def embed_cells(cells: Sequence[Cell], run: CellRun) -> int:
    """Fill the feature cache with the features every episode of ``cells`` reads (those of
    :func:`reads_cached_features`), in sorted batches; returns the rows asked for. Under
    torchrun every rank calls it (the rows are sharded)."""
    from medimeta.train.fewshot.setup import backbone_and_reader

    if run.features is None:
        return 0
    setups: dict[str, list[tuple[Cell, EpisodeSet]]] = {}
    for cell in cells:
        if reads_cached_features(cell) and cell.episodes_file is not None:
            eps = EpisodeSet.load(cell.episodes_file)
            key = _setup_key(cell, str(eps.header["split_label"]))
            setups.setdefault(key, []).append((cell, eps))
    asked = 0
    say = main_only(run.log, run.env.is_main)
    device = D.device_for(run.env, run.device)
    for group in setups.values():
        first, eps = group[0]
        rows = np.unique(np.concatenate([episode_rows(list(e)) for _, e in group]))
        backbone, reader = backbone_and_reader(run.root, eps, first.config, device)  # type: ignore[arg-type]
        say(f"embedding {plural(rows.size, 'image')} of {first.target} with {first.backbone}")
        run.features.table(
            folder=locate_dataset(run.root, str(eps.header["dataset"]["id"])),
            split=str(eps.header["split_label"]),
            rows=rows,
            backbone=backbone,
            backbone_name=first.backbone,
            reader=reader,
            env=run.env,
            log=say,
            progress=run.progress and run.env.is_main,
        )
        asked += int(rows.size)
    return asked


# -- tasks in other processes ---------------------------------------------------------------
@dataclass(frozen=True)
class TaskSpec:
    """One Slurm task: the plan file it reads, its cells' hashes, the device."""

    plan: str
    hashes: tuple[str, ...]
    device: str | None = None
    name: str = ""


def load_plan(path: Path) -> dict[str, Any]:
    """A plan file with what rebuilds its cells (root, out, settings, cells)."""
    plan = read_json_object(path)
    missing = [k for k in ("root", "out", "settings", "cells") if k not in plan]
    if missing:
        raise FormatError(
            path,
            "not a plan that tasks can run",
            key=", ".join(missing),
            expected="root, out, settings and cells",
            actual=sorted(plan),
            fix="plan again with this version: run the same `medimeta benchmark` command",
        )
    return plan


def plan_cells(plan: dict[str, Any], hashes: Sequence[str], where: Path) -> list[Cell]:
    """The cells of ``plan`` with these hashes, rebuilt; FormatError when one no longer
    matches its data, weights or episode file."""
    settings = BenchSettings(**plan["settings"])
    root, out = Path(plan["root"]), Path(plan["out"])
    entries = {c["hash"]: c for c in plan["cells"]}
    facts: dict[str, Any] = {}
    cells = []
    for h in hashes:
        e = entries.get(h)
        if e is None:
            raise FormatError(where, "no such cell in the plan", key="cells[].hash", actual=h)
        if e["backbone"] not in facts:
            facts[e["backbone"]] = backbone_facts(e["backbone"], settings.pretrained)
        bb = facts[e["backbone"]]
        if e["kind"] == SUPERVISED:
            cell = supervised_cell(root, out, e["target"], bb, e["seed"], settings)
        else:
            file = Path(e["episodes_file"])
            args = (root, out, e["target"], e["method"], bb, e["shots"], e["seed"], file)
            cell = fewshot_cell(*args, settings)
        if cell.hash != h:
            raise FormatError(
                where,
                f"cell {e['label']} no longer matches its data, weights or episode file",
                key="hash",
                expected=h,
                actual=cell.hash,
                fix="plan again: run the same `medimeta benchmark` command",
            )
        cell.estimate_s, cell.detail = e.get("estimate_s"), e.get("estimate_detail") or {}
        cells.append(cell)
    return cells


def _task_run(plan: dict[str, Any], spec: TaskSpec) -> CellRun:
    cache = plan.get("cache")
    features = FeatureCache(cache) if cache else None
    return CellRun(Path(plan["root"]), features, spec.device, log=_print)


def _print(line: str) -> None:
    print(line, flush=True)


def run_task(spec: TaskSpec) -> dict[str, Any]:
    """Execute the cells of one task in turn; BenchmarkError at the end when one failed
    (the others still ran)."""
    plan_file = Path(spec.plan)
    plan = load_plan(plan_file)
    run = _task_run(plan, spec)
    cells = plan_cells(plan, spec.hashes, plan_file)
    outcomes: dict[str, str] = {}
    for i, cell in enumerate(cells, 1):
        head = f"[{spec.name} {i}/{len(cells)}] {cell.label} [{cell.hash[:10]}]"
        _print(f"{head}: starting (estimated {format_duration(cell.estimate_s)})")
        got = execute_cell(cell, run)
        took = f" in {format_duration(got.seconds)}" if got.status == COMPUTED else ""
        _print(f"{head}: {got.status}{took}" + (f" ({got.detail})" if got.detail else ""))
        outcomes[cell.hash] = got.status
    failed = [h for h, s in outcomes.items() if s == "failed"]
    if failed:
        raise BenchmarkError(
            f"{len(failed)} of {plural(len(cells), 'cell')} failed (failed.txt in their folders)"
        )
    return {"task": spec.name, "outcomes": outcomes}


def run_embedding(spec: TaskSpec) -> dict[str, Any]:
    """Fill the feature cache for the cells of ``spec`` (the job the cell tasks wait for);
    on failure every one of those cells gets ``failed.txt`` naming this job."""
    plan_file = Path(spec.plan)
    plan = load_plan(plan_file)
    run = _task_run(plan, spec)
    cells = plan_cells(plan, spec.hashes, plan_file)
    t0 = time.perf_counter()
    try:
        rows = embed_cells(cells, run)
    except (MedIMetaError, ValueError, RuntimeError, OSError) as exc:
        job = job_ids().get("id", "?")
        for cell in cells:
            write_text(cell.folder / FAILED_FILE, f"embedding job {job}: {one_line(exc)}\n")
        raise
    _print(f"[{spec.name}] {rows} rows embedded in {format_duration(time.perf_counter() - t0)}")
    return {"task": spec.name, "rows": rows}
