"""Cells of a benchmark: one (protocol, target, method, backbone, shots, seed) each.

A cell's *protocol* is everything that determines its numbers: target and its data (split
sizes and a sha256 of the split and label files; for few-shot cells the episode file's sha256,
shots, queries, episodes and seed), method settings, backbone and the sha256 of its weights,
image size, normalisation and, for mm-pt / mm-maml / meta-baseline, the source tasks. Its
sha256 names the cell's folder ``OUT/cells/<readable id>-<hash prefix>/``; the cell's run record
there (:mod:`medimeta.runs.record`, with a ``cell`` block), written last and atomically, marks
the cell finished: a cell whose record carries its hash is never recomputed (records of earlier
versions count too). Inside a cell the runs resume too (few-shot episode files, supervised
``last.safetensors``), so a killed cell continues where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import medimeta.data.distributed as D
from medimeta.bench.settings import SUPERVISED
from medimeta.errors import MedIMetaError
from medimeta.features.table import FeatureSource
from medimeta.format import layout
from medimeta.format.reader import DatasetFolder
from medimeta.logs import Log
from medimeta.runs.files import write_json
from medimeta.runs.integrity import DamagedResultWarning
from medimeta.runs.model import RunRecord
from medimeta.runs.record import is_run_folder, read_run, run_problems, write_run
from medimeta.train.config import TrainConfig
from medimeta.train.fewshot.config import FewShotConfig
from medimeta.train.settings import EpisodePlan, RunSettings

PLAN_FILE = "plan.json"
CELLS_DIR = "cells"


@dataclass
class Cell:
    """One unit of work of a plan; ``protocol`` is hashed, the rest is bookkeeping."""

    kind: str  # "supervised" (Table 3) or "fewshot" (Table 4)
    target: str
    method: str
    backbone: str
    seed: int
    shots: int | None
    config: FewShotConfig | TrainConfig
    protocol: dict[str, Any]
    folder: Path
    episodes_file: Path | None = None
    status: str = "todo"  # todo, done, skipped
    reason: str = ""
    estimate_s: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)  # what the estimate assumed

    @property
    def hash(self) -> str:
        return protocol_hash(self.protocol)

    @property
    def label(self) -> str:
        shots = f" {self.shots}-shot" if self.shots is not None else ""
        return f"{self.method} {self.target} {self.backbone}{shots} seed {self.seed}"

    @property
    def sources(self) -> list[str]:
        return list(self.protocol.get("sources") or [])

    @property
    def is_supervised(self) -> bool:
        return self.kind == SUPERVISED


def protocol_hash(protocol: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(protocol, sort_keys=True, default=str).encode()).hexdigest()


def cell_folder(out: Path, protocol: dict[str, Any], readable: str) -> Path:
    return out / CELLS_DIR / f"{readable}-{protocol_hash(protocol)[:10]}"


def files_sha256(paths: list[Path]) -> str:
    """sha256 over the names and bytes of files (missing ones count as absent)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0")
        if path.is_file():
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def supervised_data(folder: DatasetFolder, task: str) -> dict[str, Any]:
    """Split sizes and a sha256 of the split files and the task's label file."""
    files = [layout.split_path(folder.path, s, original=False) for s in layout.SPLIT_NAMES]
    files.append(layout.task_label_path(folder.path, task))
    return {
        "splits": dict(folder.spec.splits),
        "splits_sha256": files_sha256(files),
        "split_names": {"train": "train", "val": "val", "test": "test"},
    }


def finished(cell: Cell) -> RunRecord | None:
    """The record of a finished cell with this protocol hash, else None. A record that was
    damaged or edited, or whose listed files changed since, does not count: the cell is run
    again (resuming from what is sound in it) after one warning line."""
    return finished_in(cell.folder, cell.hash, cell.label)


def finished_in(folder: Path, cell_hash: str, label: str | None = None) -> RunRecord | None:
    """The sound record in ``folder`` of a finished cell with protocol hash ``cell_hash``,
    else None; with ``label``, a damaged one is named in a warning."""
    if not is_run_folder(folder):
        return None
    try:
        record = read_run(folder)
    except (MedIMetaError, OSError, ValueError) as exc:
        _damaged(folder, label, f"its record is not used ({exc})")
        return None
    block = record.cell or {}
    if block.get("hash") != cell_hash or block.get("status", record.status) != "done":
        return None
    changed = run_problems(folder, record)
    if changed:
        _damaged(folder, label, f"files changed since it finished: {', '.join(changed[:5])}")
        return None
    return record


def _damaged(folder: Path, label: str | None, problem: str) -> None:
    if label is None:
        return
    warnings.warn(
        f"{folder}: cell {label} is computed again: {problem}",
        DamagedResultWarning,
        stacklevel=3,
    )


def run_cell(
    cell: Cell,
    root: Path,
    *,
    env: D.DistEnv,
    features: FeatureSource | None,
    device: str | None = None,
    log: Log | None = None,
    progress: bool = False,
    job: dict[str, str] | None = None,
) -> RunRecord | None:
    """Run one cell (resuming inside it) and write its record; the record on the rank that
    wrote it, else None. Few-shot cells use every rank (episodes are sharded, rank 0
    merges); a supervised cell runs in one process on the rank that calls it. ``job``: the
    Slurm job that ran it (recorded in the cell block)."""
    t0 = time.perf_counter()
    cell.folder.mkdir(parents=True, exist_ok=True)
    run = RunSettings(out_dir=cell.folder, resume=True, device=device, progress=progress)
    if cell.is_supervised:
        record: RunRecord | None = _run_supervised(cell, root, run, log)
    else:
        record = _run_fewshot(cell, root, run, env, features, log)
    if record is None:
        return None
    record.cell = {
        "hash": cell.hash,
        "status": "done",
        "label": cell.label,
        "protocol": cell.protocol,
        "seconds": time.perf_counter() - t0,
        "estimate_s": cell.estimate_s,
        "estimate_detail": cell.detail,
        "world_size": env.world_size,
        "rank": env.rank,
        "host": socket.gethostname(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if job:
        record.cell["slurm"] = dict(job)
    write_run(cell.folder, record)
    return record


def _run_fewshot(
    cell: Cell,
    root: Path,
    run: RunSettings,
    env: D.DistEnv,
    features: FeatureSource | None,
    log: Log | None,
) -> RunRecord | None:
    from medimeta.train.fewshot.runner import run_fewshot

    if not (isinstance(cell.config, FewShotConfig) and cell.episodes_file is not None):
        raise RuntimeError("internal inconsistency (please report)")
    return run_fewshot(
        root,
        None,
        cell.config,
        episodes=EpisodePlan(file=cell.episodes_file),
        run=run,
        log=log,
        env=env,
        features=features,
    )


def _run_supervised(cell: Cell, root: Path, run: RunSettings, log: Log | None) -> RunRecord:
    from medimeta.train.supervised import train_supervised

    if not (isinstance(cell.config, TrainConfig)):
        raise RuntimeError("internal inconsistency (please report)")
    dataset_id, _, task = cell.target.partition(":")
    result = train_supervised(
        root,
        dataset_id,
        task,
        backbone=cell.backbone,
        config=cell.config,
        seed=cell.seed,
        run=run,
        log=log,
        env=D.DistEnv(),  # one process: cells, not batches, are shared over ranks
    )
    return result.record


def write_plan(path: Path, cells: list[Cell], extra: dict[str, Any]) -> None:
    """``plan.json``: every cell with status, estimate, sources, folder and what rebuilds it
    (``extra``: the root, the settings and the cache folder)."""
    write_json(
        path,
        {
            **extra,
            "cells": [
                {
                    "label": c.label,
                    "kind": c.kind,
                    "status": c.status,
                    "reason": c.reason,
                    "estimate_s": c.estimate_s,
                    "estimate_detail": c.detail,
                    "sources": c.sources,
                    "folder": str(c.folder),
                    "hash": c.hash,
                    # what rebuilds the cell in another process (medimeta.bench.tasks)
                    "target": c.target,
                    "method": c.method,
                    "backbone": c.backbone,
                    "shots": c.shots,
                    "seed": c.seed,
                    "episodes_file": str(c.episodes_file.resolve()) if c.episodes_file else None,
                }
                for c in cells
            ],
        },
    )
