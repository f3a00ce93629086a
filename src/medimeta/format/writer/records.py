"""What the writer is given: sample records, their label checks and the build fingerprint.

A build is described by a list of :class:`SampleRecord` (position = global sample index) and a
processing function. Every label is checked against its task before any image is processed,
so a bad label fails the build in seconds rather than after hours of image work.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from medimeta.catalog import TaskSpec, TaskTarget
from medimeta.errors import BuildError, LabelError, SplitError
from medimeta.format import layout
from medimeta.format.record import SampleRecord

#: Bumped whenever the bytes the writer produces for the same input change.
WRITER_FORMAT_VERSION = 1
FORMAT_NAMES = {
    layout.INFO_FILE,
    layout.LICENSE_FILE,
    layout.HDF5_FILE,
    layout.ANNOTATIONS_FILE,
}


def _where(index: int, record: SampleRecord) -> str:
    return f"record {index} ({record.original_filepath})"


def _as_int(value: Any, what: str) -> int:
    """An integer label value; integral floats are accepted, bools and NaN are not."""
    if isinstance(value, (bool, np.bool_)):
        raise LabelError(f"{what}: got the boolean {value!r}; give the label key as an integer")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if math.isfinite(value) and float(value).is_integer():
            return int(value)
        raise LabelError(f"{what}: {value!r} is not a whole number (missing label?)")
    raise LabelError(f"{what}: expected an integer label, got {type(value).__name__} {value!r}")


def normalize_label(task: TaskSpec, value: Any, what: str) -> int | tuple[int, ...]:
    """Check one label against its task; return the key (or the multi-hot tuple)."""
    if task.target is TaskTarget.MULTILABEL_CLASSIFICATION:
        if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
            raise LabelError(
                f"{what}: multi-label task {task.name!r} needs a sequence of {task.num_classes} "
                f"zeros and ones; got {value!r}"
            )
        items = [_as_int(v, what) for v in value]
        if len(items) != task.num_classes or any(v not in (0, 1) for v in items):
            raise LabelError(
                f"{what}: multi-label task {task.name!r} needs exactly {task.num_classes} values "
                f"in {{0, 1}} (column j = label key j); got {list(value)!r}"
            )
        return tuple(items)
    key = _as_int(value, what)
    if key not in task.labels:
        raise LabelError(
            f"{what}: label {key} is not a key of task {task.name!r}; "
            f"keys: {list(task.keys)} ({task.target.short})"
        )
    return key


@dataclass
class CheckedRecords:
    """Label arrays (int64, release conventions) and split names of all records."""

    labels: dict[str, np.ndarray]
    splits: list[str]
    original_splits: list[str]
    has_patient_id: bool

    def counts(self, *, original: bool = False) -> dict[str, int]:
        values = self.original_splits if original else self.splits
        return {s: values.count(s) for s in layout.SPLIT_NAMES}


def check_records(tasks: Sequence[TaskSpec], records: Sequence[SampleRecord]) -> CheckedRecords:
    """Validate every record (task set, labels, split names) and collect the label arrays."""
    n = len(records)
    if n == 0:
        raise LabelError("no records: a dataset needs at least one sample")
    names = [t.name for t in tasks]
    labels: dict[str, np.ndarray] = {}
    for t in tasks:
        multilabel = t.target is TaskTarget.MULTILABEL_CLASSIFICATION
        labels[t.name] = np.zeros((n, t.num_classes) if multilabel else (n,), dtype=np.int64)
    splits: list[str] = []
    originals: list[str] = []
    has_patient = False
    for i, rec in enumerate(records):
        if not isinstance(rec, SampleRecord):
            raise LabelError(f"record {i}: expected a SampleRecord, got {type(rec).__name__}")
        where = _where(i, rec)
        if set(rec.labels) != set(names):
            missing = sorted(set(names) - set(rec.labels))
            extra = sorted(set(rec.labels) - set(names))
            raise LabelError(
                f"{where}: labels must name exactly the tasks {names}; missing {missing}, "
                f"unknown {extra}"
            )
        for t in tasks:
            labels[t.name][i] = normalize_label(t, rec.labels[t.name], f"{where}, task {t.name!r}")
        for kind, value in (("split", rec.split), ("original_split", rec.original_split)):
            if value not in layout.SPLIT_NAMES:
                raise SplitError(f"{where}: {kind} {value!r} is not one of {layout.SPLIT_NAMES}")
        if not isinstance(rec.original_filepath, str) or not rec.original_filepath:
            raise LabelError(f"record {i}: original_filepath must be a non-empty string")
        splits.append(rec.split)
        originals.append(rec.original_split)
        has_patient = has_patient or rec.patient_id is not None
    return CheckedRecords(labels, splits, originals, has_patient)


# -- other inputs ------------------------------------------------------------------------


def check_aux_folder(name: str) -> str:
    """An auxiliary image folder must be a plain relative path outside ``images/``."""
    parts = PurePosixPath(name).parts
    bad = (
        not name
        or name.startswith("/")
        or "\\" in name
        or ".." in parts
        or "." in parts
        or parts[0]
        in (
            layout.IMAGES_DIR,
            layout.SPLITS_DIR,
            layout.ORIGINAL_SPLITS_DIR,
            layout.TASK_LABELS_DIR,
        )
    )
    if bad:
        raise BuildError(
            f"auxiliary image folder {name!r} must be a relative path such as 'masks' or "
            "'masks/cup', not inside images/, splits/, original_splits/ or task_labels/"
        )
    return "/".join(parts)


def check_extra_files(files: Mapping[str, str | Path | bytes]) -> dict[str, Path | bytes]:
    """Extra files to copy into the folder: relative path -> source file or bytes."""
    out: dict[str, Path | bytes] = {}
    for rel, content in files.items():
        name = check_aux_folder(rel)
        if name in FORMAT_NAMES:
            raise BuildError(f"extra file {rel!r} would replace a file of the format")
        if isinstance(content, (str, Path)) and not Path(content).is_file():
            raise BuildError(f"extra file {rel!r}: source {content} is not a file")
        out[name] = content if isinstance(content, bytes) else Path(content)
    return out


def split_counts(records: Sequence[SampleRecord]) -> dict[str, Any]:
    """The three info.yaml count keys as the records make them."""
    counts: dict[str, Any] = {"total_num_samples": len(records)}
    for key, attr in (
        ("splits_num_samples", "split"),
        ("original_splits_num_samples", "original_split"),
    ):
        values = [getattr(r, attr, None) for r in records]
        for i, value in enumerate(values):
            if value not in layout.SPLIT_NAMES:
                where = _where(i, records[i]) if isinstance(records[i], SampleRecord) else i
                raise SplitError(f"{where}: {attr} {value!r} is not one of {layout.SPLIT_NAMES}")
        counts[key] = {s: values.count(s) for s in layout.SPLIT_NAMES}
    return counts


# -- fingerprint ---------------------------------------------------------------------------


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(repr(o) for o in obj)
    # Anything else by repr: an object whose repr holds a memory address simply never matches,
    # so such a build restarts instead of resuming (safe, never wrong).
    return repr(obj)


def _code_digest(code: types.CodeType, digest: Any) -> None:
    digest.update(code.co_code)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _code_digest(const, digest)
        else:
            digest.update(repr(const).encode())
    digest.update(repr(code.co_names).encode())


def process_identity(process: Callable[..., Any]) -> str:
    """Name, bound arguments and bytecode digest of the processing function."""
    if isinstance(process, functools.partial):
        args = json.dumps(
            [list(process.args), dict(sorted(process.keywords.items()))], default=_jsonable
        )
        return f"partial({process_identity(process.func)}, {args})"
    name = f"{getattr(process, '__module__', '?')}.{getattr(process, '__qualname__', '?')}"
    code = getattr(process, "__code__", None)
    if code is None:
        return f"{name}:{type(process).__qualname__}"
    digest = hashlib.sha256()
    _code_digest(code, digest)
    return f"{name}:{digest.hexdigest()[:16]}"


def fingerprint(records: Sequence[SampleRecord], parts: Mapping[str, Any]) -> str:
    """SHA-256 over the writer version, the given parts (info text, process...) and all records."""
    digest = hashlib.sha256()
    head = {"writer": WRITER_FORMAT_VERSION, **parts}
    digest.update(json.dumps(head, sort_keys=True, default=_jsonable).encode())
    for rec in records:
        row = [
            rec.source,
            dict(rec.labels),
            rec.split,
            rec.original_split,
            rec.original_filepath,
            rec.patient_id,
            dict(rec.annotations),
        ]
        digest.update(b"\n")
        digest.update(json.dumps(row, sort_keys=True, default=_jsonable).encode())
    return digest.hexdigest()
