"""Claims: which process computes a benchmark cell now.

Before it computes a cell, a process (a local benchmark, a torchrun rank, a Slurm task)
writes ``claim.json`` into the cell's folder: host, pid (and the pid's start time, so a reused
pid does not count), the Slurm job and array task, a random token and a heartbeat that a thread
renews every ``ttl / 4`` seconds. The claim is read and changed only under a short file lock
(``.claim.lock``, :mod:`filelock`), so two processes never both take it; the lock is held for
milliseconds, the claim for the whole cell.

A claim is *stale*, and another process may take it over, when its heartbeat is older than
its ``ttl`` (a node that died or hangs), when its process is gone (same host), or when it is
held by an earlier run of the same Slurm job (a requeued job: Slurm runs one instance of a
job at a time). A dead task therefore never holds a cell for ever; a live one is never robbed.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from medimeta.errors import FormatError
from medimeta.runs.files import read_json_object, write_json
from medimeta.runs.record import CLAIM_FILE, CLAIM_LOCK

#: Seconds without a heartbeat after which a claim is stale.
CLAIM_TTL_S = 600.0
LOCK_TIMEOUT_S = 120.0


def job_ids() -> dict[str, str]:
    """The Slurm job of this process (``id``: ``ARRAY_TASK`` for an array task), else {}."""
    env = os.environ
    if "SLURM_JOB_ID" not in env:
        return {}
    out = {"job_id": env["SLURM_JOB_ID"]}
    if "SLURM_ARRAY_JOB_ID" in env and "SLURM_ARRAY_TASK_ID" in env:
        out["array_job_id"] = env["SLURM_ARRAY_JOB_ID"]
        out["array_task_id"] = env["SLURM_ARRAY_TASK_ID"]
        out["id"] = f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    else:
        out["id"] = env["SLURM_JOB_ID"]
    if env.get("SLURM_RESTART_COUNT"):
        out["restart_count"] = env["SLURM_RESTART_COUNT"]
    return out


def _start_ticks(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks (``/proc``), None when unknown;
    ``"zombie"`` for a process that has exited but was not reaped yet."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[-1].split()
    if fields and fields[0] in ("Z", "X"):
        return "zombie"
    return fields[19] if len(fields) > 19 else None


def process_gone(pid: int, start: str | None) -> bool:
    """Whether process ``pid`` (started at ``start`` ticks, when known) no longer runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # another user's process: alive
    now = _start_ticks(pid)
    return now == "zombie" or (start is not None and now is not None and now != start)


def stale_reason(claim: dict[str, Any], now: float | None = None) -> str | None:
    """Why ``claim`` no longer holds its cell, or None while it does."""
    now = time.time() if now is None else now
    age = now - float(claim.get("heartbeat") or 0.0)
    if age > float(claim.get("ttl") or CLAIM_TTL_S):
        return f"no heartbeat for {age:.0f} s"
    if claim.get("host") == socket.gethostname() and process_gone(
        int(claim.get("pid") or 0), claim.get("pid_start")
    ):
        return f"process {claim.get('pid')} on {claim.get('host')} is gone"
    mine = job_ids().get("id")
    if mine and (claim.get("job") or {}).get("id") == mine and claim.get("pid") != os.getpid():
        return f"an earlier run of job {mine} (requeued)"
    return None


def read_claim(folder: Path) -> dict[str, Any] | None:
    """The claim of a cell folder, None when there is none (or it cannot be read)."""
    path = folder / CLAIM_FILE
    if not path.is_file():
        return None
    try:
        return read_json_object(path)
    except (FormatError, OSError):
        return None


def describe(claim: dict[str, Any]) -> str:
    """``job 12_3 on host (pid 123)``: who holds a claim."""
    job = (claim.get("job") or {}).get("id")
    where = f"{claim.get('host')} (pid {claim.get('pid')})"
    return f"job {job} on {where}" if job else where


class CellClaim:
    """This process's claim on one cell folder; a heartbeat thread renews it while held."""

    def __init__(self, folder: Path, ttl: float = CLAIM_TTL_S) -> None:
        self.folder = Path(folder)
        self.ttl = float(ttl)
        self.token = uuid.uuid4().hex
        self.took_over: str | None = None  # why the claim found was stale, when it was
        self.lost = False  # another process took the claim (this one looked stale to it)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _lock(self) -> FileLock:
        return FileLock(str(self.folder / CLAIM_LOCK), timeout=LOCK_TIMEOUT_S)

    def _record(self, claimed: float) -> dict[str, Any]:
        pid = os.getpid()
        return {
            "token": self.token,
            "host": socket.gethostname(),
            "pid": pid,
            "pid_start": _start_ticks(pid),
            "job": job_ids(),
            "claimed": claimed,
            "heartbeat": time.time(),
            "ttl": self.ttl,
        }

    def take(self) -> dict[str, Any] | None:
        """Claim the cell: None when this process holds it now, else the live claim of the
        process that does."""
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            with self._lock():
                current = read_claim(self.folder)
                if current is not None and current.get("token") != self.token:
                    reason = stale_reason(current)
                    if reason is None:
                        return current
                    self.took_over = f"{describe(current)}: {reason}"
                write_json(self.folder / CLAIM_FILE, self._record(time.time()))
        except Timeout:
            return {"host": "?", "pid": "?", "note": "the claim lock is busy"}
        self._thread = threading.Thread(target=self._beat, name="cell-claim", daemon=True)
        self._thread.start()
        return None

    def _beat(self) -> None:
        while not self._stop.wait(max(self.ttl / 4, 0.5)):
            try:
                with self._lock():
                    current = read_claim(self.folder)
                    if current is None or current.get("token") != self.token:
                        self.lost = True
                        return
                    current["heartbeat"] = time.time()
                    write_json(self.folder / CLAIM_FILE, current)
            except (Timeout, OSError):
                continue  # a missed beat; the ttl allows three more

    def release(self) -> None:
        """Stop the heartbeat and remove the claim if it is still this process's."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        try:
            with self._lock():
                current = read_claim(self.folder)
                if current is not None and current.get("token") == self.token:
                    (self.folder / CLAIM_FILE).unlink(missing_ok=True)
        except (Timeout, OSError):
            pass  # left behind: stale once this process is gone
