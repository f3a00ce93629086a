"""Where a benchmark folder stands: ``medimeta benchmark status DIR`` and ``collect DIR``.

Every cell of the folder's plan (``OUT/plan.json``) is, read from its folder alone:

* ``done``: its run record carries the cell's protocol hash (the Slurm job that ran it is in
  the record's ``cell`` block);
* ``running``: a live claim (:mod:`medimeta.bench.claims`) names the process and its job;
* ``failed``: ``failed.txt`` holds the error line;
* ``pending``: none of these; the job of the latest Slurm submission that holds the cell, with
  its queue state when ``squeue`` answers (``not queued``: that job ended or was cancelled;
  submit again to finish the cell);
* ``skipped``: the plan skipped it (its reason).

Nothing here writes to the folder except :func:`collect`, which merges the records again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from medimeta.bench.cells import CELLS_DIR, PLAN_FILE, finished_in
from medimeta.bench.claims import describe, read_claim, stale_reason
from medimeta.errors import FormatError
from medimeta.logs import Log, plural
from medimeta.runs.files import read_json_object
from medimeta.runs.record import FAILED_FILE, submission_files

STATES = ("done", "running", "pending", "failed", "skipped")


@dataclass(frozen=True)
class CellStatus:
    """One cell of a benchmark folder: its state, the Slurm job, and a detail."""

    hash: str
    label: str
    state: str
    job: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_entries(out: Path) -> list[dict[str, Any]]:
    """The cells of the folder's plan."""
    path = out / PLAN_FILE
    if not path.is_file():
        raise FormatError(
            path,
            "no benchmark plan here",
            fix="pass a folder written by `medimeta benchmark --out DIR`",
        )
    cells = read_json_object(path).get("cells")
    if not isinstance(cells, list):
        raise FormatError(path, "plan without cells", key="cells", expected="a list")
    return cells


def submitted_jobs(out: Path) -> dict[str, str]:
    """Cell hash -> the Slurm job of the latest submission that holds the cell."""
    jobs: dict[str, str] = {}
    for path in submission_files(out):
        try:
            record = read_json_object(path)
        except FormatError:
            continue
        for task in record.get("tasks") or []:
            for h in task.get("cells") or []:
                jobs[h] = str(task.get("job"))
    return jobs


def queue_states(user: str | None = None) -> dict[str, str] | None:
    """Job id (``ARRAY_TASK`` for array tasks) -> state of the user's queued jobs, from
    ``squeue``; None when squeue is absent or does not answer."""
    if shutil.which("squeue") is None:
        return None
    cmd = ["squeue", "-h", "-r", "-u", user or str(os.getuid()), "-o", "%i|%T"]
    try:
        got = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if got.returncode != 0:
        return None
    states = {}
    for line in got.stdout.splitlines():
        job, _, state = line.strip().partition("|")
        if job:
            states[job] = state
    return states


def cell_status(
    out: Path, entry: dict[str, Any], job: str | None, queue: dict[str, str] | None
) -> CellStatus:
    """The state of one plan entry (see the module docstring)."""
    h, label = str(entry["hash"]), str(entry["label"])
    if entry.get("status") == "skipped":
        return CellStatus(h, label, "skipped", None, str(entry.get("reason") or ""))
    folder = out / CELLS_DIR / Path(entry["folder"]).name  # wherever the folder is now
    record = finished_in(folder, h)
    if record is not None:
        ran = ((record.cell or {}).get("slurm") or {}).get("id")
        return CellStatus(h, label, "done", ran, "")
    claim = read_claim(folder)
    stale = stale_reason(claim) if claim is not None else None
    if claim is not None and stale is None:
        age = time.time() - float(claim.get("heartbeat") or 0.0)
        held = (claim.get("job") or {}).get("id")
        return CellStatus(
            h, label, "running", held, f"{describe(claim)}, heartbeat {age:.0f} s ago"
        )
    failed = folder / FAILED_FILE
    if failed.is_file():
        lines = [x for x in failed.read_text(encoding="utf-8").splitlines() if x.strip()]
        return CellStatus(h, label, "failed", job, lines[-1] if lines else "failed")
    notes = []
    if claim is not None:
        notes.append(f"interrupted: {describe(claim)}, {stale}")
    if job is not None and queue is not None:
        notes.append(queue.get(job, "not queued: its job ended; submit again"))
    return CellStatus(h, label, "pending", job, "; ".join(notes))


def folder_status(
    out: Path, hashes: set[str] | None = None, queue: dict[str, str] | None = None
) -> list[CellStatus]:
    """Every cell of the folder's plan (only ``hashes`` when given), in plan order."""
    jobs = submitted_jobs(out)
    entries = [e for e in plan_entries(out) if hashes is None or e["hash"] in hashes]
    return [cell_status(out, e, jobs.get(e["hash"]), queue) for e in entries]


def counts_line(statuses: list[CellStatus]) -> str:
    counts = Counter(s.state for s in statuses)
    return f"{plural(len(statuses), 'cell')}: " + ", ".join(f"{counts[k]} {k}" for k in STATES)


def status_table(out: Path, statuses: list[CellStatus]) -> str:
    """The printed status: the counts, then one line per cell."""
    lines = [f"benchmark {out}: {counts_line(statuses)}", f"{'state':<8} {'job':<12} cell"]
    for s in statuses:
        line = f"{s.state:<8} {s.job or '-':<12} {s.label}"
        lines.append(line + (f"  ({s.detail})" if s.detail else ""))
    return "\n".join(lines)


def collect(out: Path, log: Log | None = None) -> dict[str, Any]:
    """Merge the records of every finished cell of ``out`` into its tables again."""
    from medimeta.bench.merge import merge_folder

    merged = merge_folder(out, log)
    if merged is None:
        raise FormatError(
            out,
            "no finished cell to collect",
            fix="wait for the jobs (medimeta benchmark status DIR), or run the benchmark",
        )
    return merged
