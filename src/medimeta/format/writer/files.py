"""The small files of a dataset folder: info.yaml, LICENSE, splits, task labels, annotations.csv.

Each follows the release format (reference §1.4-1.8): split files hold ``images/NNNNNN.tiff``
lines joined by ``\\n`` without a trailing newline and exist only for non-empty splits; label
arrays are int64; ``annotations.csv`` has the release column order and pandas' text forms.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from medimeta.catalog import DatasetSpec, TaskSpec, TaskTarget
from medimeta.errors import BuildError, FormatError
from medimeta.format import layout

#: info.yaml keys in release order (reference §1.7); other keys follow in the order given.
INFO_KEY_ORDER = (
    "id",
    "name",
    "summary",
    "domain",
    "tasks",
    "input_size",
    "total_num_samples",
    "splits_num_samples",
    "original_splits_num_samples",
    "domain_overlaps",
    "subject_overlaps",
    "license",
    "project_website",
    "download_url",
    "DOI",
    "original_data",
)
COUNT_KEYS = ("total_num_samples", "splits_num_samples", "original_splits_num_samples")


# -- info.yaml -----------------------------------------------------------------------------


def assemble_info(
    info: DatasetSpec | Mapping[str, Any],
    counts: Mapping[str, Any],
    extra: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], str]:
    """The info.yaml mapping (release key order, counts checked or filled) and its YAML text.

    Counts already in ``info`` must equal the records' counts unless ``partial`` is true (in
    ``info`` or ``extra``), in which case they are replaced: a partial build describes what
    it holds. Missing counts are filled in.
    """
    given = info.to_info_dict() if isinstance(info, DatasetSpec) else dict(info)
    extra = dict(extra or {})
    clash = sorted(set(extra) & set(INFO_KEY_ORDER))
    if clash:
        raise BuildError(
            f"extra info keys {clash} would replace release keys; set them in the info itself"
        )
    partial = bool(extra.get("partial", given.get("partial", False)))
    for key in COUNT_KEYS:
        if key in given and given[key] != counts[key] and not partial:
            raise FormatError(
                "info.yaml",
                "the info's sample counts differ from the records",
                key=key,
                expected=counts[key],
                actual=given[key],
                fix="drop the counts from the info (they are filled in) or set partial: true",
            )
        given[key] = counts[key]
    ordered = {k: given[k] for k in INFO_KEY_ORDER if k in given}
    ordered.update({k: v for k, v in given.items() if k not in ordered})
    ordered.update(extra)
    text = yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True, width=100)
    if yaml.safe_load(text) != ordered:
        raise BuildError(
            "info.yaml does not survive a YAML round trip; use plain str/int/list values"
        )
    DatasetSpec.from_info_dict(ordered)  # the reader's own validation, before any image work
    return ordered, text


def append_info_keys(text: str, extra: Mapping[str, Any]) -> str:
    """A byte-copied info.yaml with extra top-level keys appended (comments kept)."""
    if not extra:
        return text
    present = yaml.safe_load(text) or {}
    clash = sorted(set(extra) & set(present))
    if clash:
        raise BuildError(f"extra info keys {clash} are already in the info file")
    sep = "" if text.endswith("\n") or not text else "\n"
    return text + sep + yaml.safe_dump(dict(extra), sort_keys=False, allow_unicode=True)


# -- LICENSE -------------------------------------------------------------------------------

_CC_NAMES = {
    "BY": "Attribution",
    "BY-SA": "Attribution-ShareAlike",
    "BY-NC": "Attribution-NonCommercial",
    "BY-NC-SA": "Attribution-NonCommercial-ShareAlike",
    "BY-ND": "Attribution-NoDerivatives",
    "BY-NC-ND": "Attribution-NonCommercial-NoDerivatives",
}
_CC_RE = re.compile(r"\bCC (BY(?:-NC)?(?:-SA|-ND)?) (\d\.\d)\b")


def license_text(license_field: str) -> str:
    """One-line LICENSE notice: licence name and deed URL for CC licences, else the string."""
    found = _CC_RE.search(license_field)
    if found:
        kind, version = found.groups()
        name = f"Creative Commons {_CC_NAMES[kind]} {version} International (CC {kind} {version})"
        url = f"https://creativecommons.org/licenses/{kind.lower()}/{version}/"
        return f"This dataset is made available under the {name} licence: {url}\n"
    if re.search(r"\bCC0 1\.0\b", license_field):
        url = "https://creativecommons.org/publicdomain/zero/1.0/"
        return f"This dataset is dedicated to the public domain under CC0 1.0 Universal: {url}\n"
    if not license_field.strip():
        raise BuildError("info has no licence; set 'license' (e.g. 'CC BY 4.0') or license_text")
    return f"Licence: {license_field.strip()}\n"


# -- splits and labels ---------------------------------------------------------------------


def write_split_files(folder: Path, splits: Sequence[str], *, original: bool) -> None:
    """``splits/`` or ``original_splits/``: one file per non-empty split, no trailing newline."""
    sub = folder / (layout.ORIGINAL_SPLITS_DIR if original else layout.SPLITS_DIR)
    sub.mkdir(exist_ok=True)
    for name in layout.SPLIT_NAMES:
        lines = [layout.image_name(i) for i, s in enumerate(splits) if s == name]
        path = layout.split_path(folder, name, original=original)
        if lines:
            path.write_text("\n".join(lines), encoding="utf-8", newline="\n")
        else:
            path.unlink(missing_ok=True)


def write_task_labels(folder: Path, labels: Mapping[str, np.ndarray]) -> None:
    """``task_labels/<task name>.npy`` as int64 (file stem = task name verbatim)."""
    (folder / layout.TASK_LABELS_DIR).mkdir(exist_ok=True)
    for name, arr in labels.items():
        path = layout.task_label_path(folder, name)
        with open(path, "wb") as fh:  # np.save(path) would append .npy to names with a dot
            np.save(fh, np.ascontiguousarray(arr, dtype=np.int64), allow_pickle=False)


# -- annotations.csv -----------------------------------------------------------------------


def cell_text(value: Any) -> str:
    """A value as pandas' ``to_csv`` writes it (tuples as ``(2048, 1536)``, None/NaN empty)."""
    value = _plain(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value if isinstance(value, str) else str(value)


def _plain(value: Any) -> Any:
    # numpy scalars inside tuples would print as np.int64(3) with numpy 2.
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def label_name(task: TaskSpec, row: np.ndarray | int) -> str:
    """Human-readable label: the key's name; multi-label: positive names joined with ``|``."""
    if task.target is TaskTarget.MULTILABEL_CLASSIFICATION:
        values = np.asarray(row).tolist()
        return "|".join(task.labels[k] for k, v in zip(task.keys, values, strict=True) if v)
    return task.labels[int(row)]


def reserved_columns(tasks: Sequence[TaskSpec]) -> set[str]:
    """Columns the writer fills itself; extra annotations may not use these names."""
    fixed = {"filepath", "split", "original_filepath", "original_split", "patient_id"}
    return fixed | {f"tasks/{t.name}" for t in tasks} | {t.name for t in tasks}


def annotation_columns(
    tasks: Sequence[TaskSpec], extra_columns: Iterable[str], *, has_patient_id: bool
) -> list[str]:
    """Release column order: filepath, split, tasks/*, original_*, patient_id, rest sorted."""
    head = ["filepath", "split", *(f"tasks/{t.name}" for t in tasks)]
    head += ["original_filepath", "original_split"] + (["patient_id"] if has_patient_id else [])
    rest = sorted(set(extra_columns) | {t.name for t in tasks})
    return head + rest


def write_annotations(
    path: Path,
    columns: Sequence[str],
    rows: Iterator[Mapping[str, str]],
) -> int:
    """Stream rows (column -> text) into a CSV in pandas' dialect; return the row count."""
    count = 0
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row.get(c, "") for c in columns])
            count += 1
    return count


# -- durability ----------------------------------------------------------------------------


def fsync_path(path: Path) -> None:
    """fsync one file or directory (directories where the OS allows opening them)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if path.is_dir() else os.O_RDONLY
    try:
        fd = os.open(path, flags)
    except OSError:
        return  # Windows cannot open directories; the rename below is still atomic there
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sync_tree(folder: Path) -> None:
    """Make every file under ``folder`` durable before it is renamed into place."""
    if hasattr(os, "sync"):
        os.sync()  # one call instead of one fsync per TIFF (100k files would take minutes)
    else:
        for path in sorted(folder.rglob("*")):
            fsync_path(path)
    for path in [folder, *sorted(p for p in folder.rglob("*") if p.is_dir())]:
        fsync_path(path)
