"""``medimeta benchmark --executor slurm``: the plan's cells as Slurm job arrays (submitit).

1. the cells to do are cut into *tasks* of about ``task_minutes`` by the cost model (a cell
   longer than that is a task of its own); a task runs its cells one after the other through
   the cell function (:func:`medimeta.bench.tasks.run_task`);
2. the frozen-feature cells of each dataset and backbone wait for one *embedding job*
   (:func:`medimeta.bench.tasks.run_embedding`, one array for all of them) that fills the
   feature cache: their array depends on it (``afterok``; a failed embedding job cancels its
   dependants, ``--kill-on-invalid-dep``); the other cells form one array without dependency;
3. every task is checkpointable (:class:`submitit.helpers.Checkpointable`, in
   :mod:`medimeta.bench.slurm_jobs`): on a time-out or a preemption submitit requeues it with
   the same cells; finished cells are skipped, a running one resumes from its episode files,
   and the claim of its earlier run is taken over at once;
4. ``OUT/slurm/`` holds submitit's job files and logs, the copy of the plan the tasks read and
   one ``submission-<stamp>.json`` per submission (jobs, their cells and estimates).

Two submissions into one folder never compute a cell twice (claims), and a submission after a
cancelled one submits only the cells not finished.
"""

from __future__ import annotations

import math
import re
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from medimeta.bench.cells import PLAN_FILE, Cell
from medimeta.bench.settings import format_duration, parse_duration
from medimeta.bench.status import counts_line, folder_status, queue_states
from medimeta.bench.tasks import TaskSpec, feature_groups
from medimeta.errors import BenchmarkError, MissingDependencyError, OptionError
from medimeta.logs import Log, plural
from medimeta.runs.files import read_json_object, write_json
from medimeta.runs.record import SLURM_DIR, submission_file, task_plan_file
from medimeta.safeio import write_bytes

#: sbatch options the executor sets itself (``--slurm-opt`` may not change them).
RESERVED = ("array", "dependency", "output", "error", "open-mode", "signal", "job-name", "wrap")
_OPTION = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_MEMORY = re.compile(r"^\d+(\.\d+)?[KMGT]?B?$", re.IGNORECASE)


@dataclass(frozen=True)
class SlurmSettings:
    """Where and how the tasks run: sbatch's partition, account, qos, time limit (minutes;
    None: 1.5 x the longest task's estimate + 10 min), memory, GPUs and CPUs per task, the
    array parallelism (``%N``, per array), the target task length, free-form sbatch options,
    and whether to wait for the jobs (polling every ``poll_s`` seconds)."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time_min: int | None = None
    mem: str | None = None
    gpus_per_task: int | None = None
    cpus_per_task: int | None = None
    array_parallelism: int = 100
    task_minutes: float = 60.0
    options: tuple[tuple[str, str], ...] = ()
    wait: bool = False
    poll_s: float = 10.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", tuple((str(k), str(v)) for k, v in self.options))
        if not (self.task_minutes > 0 and self.array_parallelism >= 1 and self.poll_s > 0):
            raise OptionError(
                "--task-minutes must be > 0 and --array-parallelism >= 1; got "
                f"{self.task_minutes} and {self.array_parallelism}"
            )
        for name in ("time_min", "gpus_per_task", "cpus_per_task"):
            value = getattr(self, name)
            if value is not None and value < (0 if name == "gpus_per_task" else 1):
                raise OptionError(f"--{name.replace('_', '-')} is out of range; got {value}")
        if self.mem is not None and not _MEMORY.match(self.mem):
            raise OptionError(f"--mem takes sbatch's form (16G, 4000M, 500); got {self.mem!r}")
        for key, _ in self.options:
            if not _OPTION.match(key) or key.replace("_", "-") in RESERVED:
                raise OptionError(
                    f"--slurm-opt {key!r}: a sbatch long option without dashes (e.g. "
                    f"constraint=a100), not one of {', '.join(RESERVED)} (set by the executor)"
                )


def parse_options(values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``["constraint=a100", "exclusive"]`` -> pairs (a flag alone: ``"true"``)."""
    pairs = []
    for text in values:
        key, sep, value = text.partition("=")
        key = key.strip().lstrip("-")
        if not key:
            raise OptionError(f"--slurm-opt takes KEY=VALUE (e.g. constraint=a100); got {text!r}")
        pairs.append((key, value.strip() if sep else "true"))
    return tuple(pairs)


def parse_time(text: str) -> int:
    """Slurm's ``MM``, ``HH:MM:SS``, ``D-HH:MM:SS`` or a duration (``2h``, ``90m``) -> minutes."""
    value = text.strip()
    days, _, clock = value.rpartition("-") if re.match(r"^\d+-", value) else ("", "", value)
    if ":" in clock:
        parts = clock.split(":")
        if len(parts) > 3 or not all(p.isdigit() for p in parts):
            raise OptionError(f"--time is like 90, 1:30:00, 2-00:00:00 or 2h; got {text!r}")
        hms = [int(p) for p in parts] + [0] * (3 - len(parts))
        seconds = float(hms[0] * 3600 + hms[1] * 60 + hms[2])
    else:
        plain = re.fullmatch(r"\d+(\.\d+)?", clock) is not None  # Slurm: plain minutes
        seconds = parse_duration(clock) * (60 if plain else 1)
    seconds += int(days or 0) * 86400
    if seconds <= 0:
        raise OptionError(f"--time must be positive; got {text!r}")
    return math.ceil(seconds / 60)


def chunk(cells: Sequence[Cell], seconds: float) -> list[list[Cell]]:
    """Consecutive cells in tasks of at most ``seconds`` by their estimates (at least one)."""
    tasks: list[list[Cell]] = []
    current: list[Cell] = []
    total = 0.0
    for cell in cells:
        estimate = cell.estimate_s or 0.0
        if current and total + estimate > seconds:
            tasks.append(current)
            current, total = [], 0.0
        current.append(cell)
        total += estimate
    if current:
        tasks.append(current)
    return tasks


def _limit(s: SlurmSettings, seconds: float) -> int:
    return s.time_min or math.ceil(1.5 * seconds / 60) + 10


def _submitit() -> Any:
    try:
        import submitit
    except ImportError as exc:
        raise MissingDependencyError.for_extra(
            "cluster", f"--executor slurm needs submitit ({exc})"
        ) from None
    return submitit


def _submit_array(
    folder: Path, s: SlurmSettings, kind: str, specs: list[TaskSpec], job: dict[str, Any]
) -> list[str]:
    """Submit the ``kind`` job (``cells`` or ``embed``) over ``specs`` as one array (``job``:
    name, minutes, dependency)."""
    executor = _submitit().SlurmExecutor(folder=folder, max_num_timeout=3)
    extra = {"kill-on-invalid-dep": "yes", **dict(s.options)}
    if s.mem:
        extra["mem"] = s.mem
    params = {
        "job_name": job["name"],
        "time": job["minutes"],
        "array_parallelism": s.array_parallelism,
        "partition": s.partition,
        "account": s.account,
        "qos": s.qos,
        "cpus_per_task": s.cpus_per_task,
        "gpus_per_task": s.gpus_per_task,
        "dependency": job.get("dependency"),
        "additional_parameters": extra,
    }
    executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
    from medimeta.bench.slurm_jobs import CellTask, EmbedTask

    fn = CellTask() if kind == "cells" else EmbedTask()
    try:
        jobs = executor.map_array(fn, specs)
    except Exception as exc:  # submitit wraps sbatch's refusal in its own error types
        text = " ".join(str(exc).split())[-400:]
        raise BenchmarkError(
            f"sbatch refused the {job['name']} jobs: {text}; check --partition, --account, "
            "--qos, --time and --slurm-opt (sinfo lists the partitions)"
        ) from None
    return [str(j.job_id) for j in jobs]


def _check_slurm() -> None:
    missing = [c for c in ("sbatch", "srun", "squeue") if shutil.which(c) is None]
    if missing:
        raise OptionError(
            f"--executor slurm needs Slurm's commands on PATH ({', '.join(missing)} missing); "
            "submit from a login node of the cluster, or use --executor local"
        )


def submit_plan(
    out: Path, cells: list[Cell], s: SlurmSettings, device: str | None, say: Log
) -> dict[str, Any]:
    """Submit the plan's cells to do; returns the submission record (also written to
    ``OUT/slurm/submission-<stamp>.json``)."""
    todo = [c for c in cells if c.status == "todo"]
    if not todo:
        say("nothing to submit: every cell of the plan is done or skipped")
        return {"tasks": [], "embedding": []}
    _check_slurm()
    _submitit()
    stamp = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
    plan = task_plan_file(out, stamp)
    write_bytes(plan, (out / PLAN_FILE).read_bytes())  # what this submission's tasks read
    folder = out / SLURM_DIR
    cached = read_json_object(plan).get("cache") is not None
    groups = feature_groups(todo) if cached else {}
    record: dict[str, Any] = {
        "stamp": stamp,
        "submitted": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "plan": str(plan),
        "device": device,
        "settings": asdict(s),
        "embedding": [],
        "tasks": [],
    }
    path = submission_file(out, stamp)
    name = f"mm-{out.resolve().name}"[:40]
    if groups:
        specs = [
            TaskSpec(str(plan), tuple(c.hash for c in g), device, f"embed {key}")
            for key, g in groups.items()
        ]
        longest = max(sum(c.estimate_s or 0.0 for c in g) for g in groups.values())
        job = {"name": f"{name}-embed", "minutes": _limit(s, longest)}
        ids = _submit_array(folder, s, "embed", specs, job)
        for (key, g), job_id in zip(groups.items(), ids, strict=True):
            record["embedding"].append({"group": key, "job": job_id, "cells": [c.hash for c in g]})
        write_json(path, record)
    grouped = {c.hash for g in groups.values() for c in g}
    arrays = [(e["job"], groups[e["group"]]) for e in record["embedding"]]
    arrays.append((None, [c for c in todo if c.hash not in grouped]))
    for after, group in arrays:
        if group:
            _submit_cells(folder, s, (plan, device, name), (after, group), record)
            write_json(path, record)
    say(_summary(out, record))
    return record


def _submit_cells(
    folder: Path,
    s: SlurmSettings,
    where: tuple[Path, str | None, str],
    what: tuple[str | None, list[Cell]],
    record: dict[str, Any],
) -> None:
    """One array of cell tasks (after the embedding job ``what[0]`` when given)."""
    plan, device, name = where
    after, cells = what
    tasks = chunk(cells, s.task_minutes * 60)
    specs = [
        TaskSpec(str(plan), tuple(c.hash for c in t), device, f"task {i}")
        for i, t in enumerate(tasks)
    ]
    longest = max(sum(c.estimate_s or 0.0 for c in t) for t in tasks)
    job = {"name": f"{name}-cells", "minutes": _limit(s, longest)}
    if after is not None:
        job["dependency"] = f"afterok:{after}"
    ids = _submit_array(folder, s, "cells", specs, job)
    for job_id, task in zip(ids, tasks, strict=True):
        record["tasks"].append(
            {
                "job": job_id,
                "after": after,
                "cells": [c.hash for c in task],
                "labels": [c.label for c in task],
                "estimate_s": sum(c.estimate_s or 0.0 for c in task),
                "time_min": job["minutes"],
            }
        )


def _summary(out: Path, record: dict[str, Any]) -> str:
    tasks, embeds = record["tasks"], record["embedding"]
    arrays = sorted({t["job"].split("_")[0] for t in tasks})
    cells = sum(len(t["cells"]) for t in tasks)
    total = sum(t["estimate_s"] for t in tasks)
    lines = [
        f"submitted {plural(cells, 'cell')} as {plural(len(tasks), 'task')} in "
        f"{plural(len(arrays), 'job array')} "
        f"({', '.join(arrays)}), estimated {format_duration(total)} of work"
        + (f", after {len(embeds)} embedding jobs" if embeds else "")
    ]
    for e in embeds:
        lines.append(
            f"  embedding {e['group']}: job {e['job']} ({plural(len(e['cells']), 'cell')} waiting)"
        )
    return "\n".join(lines)


def wait_for_jobs(out: Path, record: dict[str, Any], poll_s: float, say: Log) -> list[str]:
    """Follow the submission until each of its cells is done or failed, or its jobs have all
    left the queue; returns the labels of the cells not done (failed or never run)."""
    hashes = {h for t in record["tasks"] for h in t["cells"]}
    jobs = {t["job"] for t in record["tasks"]} | {e["job"] for e in record["embedding"]}
    last, start = "", time.monotonic()
    while True:
        queue = queue_states()
        statuses = folder_status(out, hashes, queue)
        line = counts_line(statuses)
        if line != last:
            say(f"{time.strftime('%H:%M:%S')} {line}")
            last = line
        states = {s.state for s in statuses}
        if not states & {"pending", "running"}:
            break
        gone = queue is not None and not jobs & set(queue)
        if gone and "running" not in states:
            break  # the jobs ended (or were cancelled) with cells left undone
        # look often at first (small plans end in seconds), then every poll_s
        time.sleep(min(poll_s, max(1.0, (time.monotonic() - start) / 10)))
    left = [s for s in statuses if s.state not in ("done", "skipped")]
    if any(s.state == "pending" for s in left):
        say(
            f"{sum(s.state == 'pending' for s in left)} cells were not run (their jobs ended or "
            "were cancelled); submit the same command again to finish them"
        )
    return [f"{s.label} ({s.state})" for s in left]


__all__ = [
    "SlurmSettings",
    "chunk",
    "parse_options",
    "parse_time",
    "submit_plan",
    "wait_for_jobs",
]
