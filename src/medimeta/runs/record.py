"""Run records on disk. This module is the only one that knows the file names of results: a
run folder's record (``run.json``, :class:`~medimeta.runs.model.RunRecord`, written atomically
and last by :func:`write_run`, read by :func:`read_run`), its summary, episode, prediction and
log files, and the merged tables of a benchmark folder. Files written by earlier versions of
the toolkit (``results.json``, ``result.json``, ``cell.json``) are read through
:mod:`medimeta.runs.convert`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from medimeta.errors import FormatError
from medimeta.runs import convert
from medimeta.runs.files import jsonable, read_json_object, write_json
from medimeta.runs.integrity import changed_files, file_digests, seal, seal_problem
from medimeta.runs.model import SCHEMA, RunRecord

#: The record of a run folder (the one result file name of this version).
RUN_FILE = "run.json"
#: The Markdown summary written beside a run's record.
SUMMARY_FILE = "results.md"
#: A supervised run's epoch log (one row per epoch) and its protocol, written at the start.
TRAINING_LOG = "log.csv"
CONFIG_FILE = "config.json"
#: Per-episode result files of a few-shot run (they make it resumable).
EPISODE_DIR = "episodes"
#: The merged tables of a benchmark folder, one per format.
MERGED_STEM = "results"
#: A benchmark cell's claim (who computes it now, with a heartbeat), the lock taken while a
#: claim is read or changed, and the one-line error of a cell that failed.
CLAIM_FILE = "claim.json"
CLAIM_LOCK = ".claim.lock"
FAILED_FILE = "failed.txt"
#: A benchmark folder's Slurm folder: submitit's job files and logs, our submission records.
SLURM_DIR = "slurm"


def episode_file(run_dir: Path, index: int) -> Path:
    """The result file of episode ``index`` in a few-shot run folder."""
    return run_dir / EPISODE_DIR / f"episode_{index:05d}.json"


def predictions_file(run_dir: Path, split: str) -> Path:
    """The prediction file of ``split`` (``val``, ``test``, ``query``) in a run folder."""
    return run_dir / f"predictions_{split}.csv"


def submission_file(folder: Path, stamp: str) -> Path:
    """The record of one Slurm submission of a benchmark folder (its jobs and their cells)."""
    return folder / SLURM_DIR / f"submission-{stamp}.json"


def submission_files(folder: Path) -> list[Path]:
    """The Slurm submission records of a benchmark folder, oldest first."""
    return sorted((folder / SLURM_DIR).glob("submission-*.json"))


def task_plan_file(folder: Path, stamp: str) -> Path:
    """The copy of the plan a Slurm submission's tasks read (a later plan into the same
    folder does not change what a queued task computes)."""
    return folder / SLURM_DIR / f"plan-{stamp}.json"


def merged_file(folder: Path, suffix: str) -> Path:
    """A merged table of a benchmark folder (``.md``, ``.csv``, ``.json``, ``.tex``, ``.png``)."""
    return folder / f"{MERGED_STEM}{suffix}"


#: Record files of earlier versions: results.json (few-shot runs), result.json (supervised
#: runs), cell.json (benchmark cells, beside one of the other two). Read, never written.
LEGACY_FILES = {"results.json": "fewshot", "result.json": "supervised"}
LEGACY_CELL_FILE = "cell.json"
_RECORD_FILES = (RUN_FILE, *LEGACY_FILES)


def write_run(folder: str | Path, record: RunRecord, files: Sequence[str] = ()) -> Path:
    """Write ``record`` as the folder's ``run.json`` (atomically: a crash leaves the old
    record or the new one, never half), sealed with its sha256; ``files`` (relative to the
    folder) are recorded with theirs in ``record.files`` first."""
    if files:
        record.files = {**record.files, **file_digests(Path(folder), files)}
    return write_json(Path(folder) / RUN_FILE, seal(jsonable(record.to_dict())))


def write_record_file(path: str | Path, record: RunRecord) -> Path:
    """Write ``record`` to a file of the caller's choosing (``results medfm --out``)."""
    return write_json(Path(path), seal(jsonable(record.to_dict())))


def run_problems(folder: Path, record: RunRecord) -> list[str]:
    """The files of ``record.files`` in ``folder`` that are missing or changed since the
    record was written (empty: the folder is as the run left it)."""
    return changed_files(Path(folder), record.files)


def record_beside(path: str | Path) -> Path:
    """Where the record of an output is kept: ``run.json`` in an output folder, else
    ``<file>.run.json`` beside an output file (an export, one imported episode file)."""
    path = Path(path)
    return path / RUN_FILE if path.is_dir() else path.with_name(f"{path.name}.{RUN_FILE}")


def record_file(folder: Path) -> Path | None:
    """The record file of a run folder (this version's, else an earlier version's; a file
    of an earlier name counts only when it holds a run: a benchmark folder's merged
    ``results.json`` does not)."""
    if (folder / RUN_FILE).is_file():
        return folder / RUN_FILE
    for name, kind in LEGACY_FILES.items():
        path = folder / name
        if path.is_file() and _legacy_kind(path) == kind:
            return path
    return None


def _legacy_kind(path: Path) -> str | None:
    try:
        data = read_json_object(path)
    except FormatError:
        return LEGACY_FILES[path.name]  # unreadable: reported when the run is read
    return None if data.get("kind") is None else str(data["kind"])


def is_run_folder(folder: Path) -> bool:
    return folder.is_dir() and record_file(folder) is not None


def read_run(path: str | Path) -> RunRecord:
    """The record of a run folder (or of a record file), whichever version wrote it."""
    path = Path(path)
    beside = path.with_name(f"{path.name}.{RUN_FILE}")
    file = beside if path.is_file() and beside.is_file() else None
    file = file or (path if path.is_file() else record_file(path))
    if file is None:
        raise FormatError(
            path,
            "not a run folder",
            expected=f"{RUN_FILE} (or {', '.join(LEGACY_FILES)} of earlier versions)",
            actual="none of them",
            fix="pass a folder written by `medimeta train`, `fewshot` or `benchmark`",
        )
    data = read_json_object(file)
    problem = seal_problem(data, required=False)
    if problem is not None:
        raise FormatError(
            file,
            f"run record not trusted: {problem}",
            key="sha256",
            fix="rerun the command that wrote it (`medimeta benchmark` recomputes its cells)",
        )
    if file.name in LEGACY_FILES and data.get("schema") != SCHEMA:
        cell_file = file.parent / LEGACY_CELL_FILE
        cell = read_json_object(cell_file) if cell_file.is_file() else None
        return convert.convert(data, LEGACY_FILES[file.name], cell, str(file))
    if data.get("schema") != SCHEMA and file.name != RUN_FILE:
        return convert.convert(data, str(data.get("kind")), None, str(file))
    return RunRecord.from_dict({k: v for k, v in data.items() if k != "sha256"}, str(file))


def find_run_folders(paths: Sequence[str | Path]) -> list[Path]:
    """Run folders at or below each of ``paths`` (a record file counts as its folder), sorted,
    each once."""
    found: list[Path] = []
    for base in map(Path, paths):
        if not base.exists():
            raise FormatError(base, "no such file or folder", fix="pass run or benchmark folders")
        if base.is_file() or is_run_folder(base):
            candidates = [base.parent if base.is_file() else base]
        else:
            files = [f for name in _RECORD_FILES for f in base.rglob(name)]
            candidates = sorted({f.parent for f in files if is_run_folder(f.parent)})
        found += [c for c in candidates if c not in found]
    return found


def read_runs(paths: Sequence[str | Path]) -> list[RunRecord]:
    """Every run record at or below ``paths``."""
    return [read_run(folder) for folder in find_run_folders(paths)]
