"""Subject leakage across splits and class / split balance per task, from the dataset's own
files (``annotations.csv``, ``splits/``, ``task_labels/``).

A *subject* is the value of a subject column of ``annotations.csv``: ``patient_id``,
``subject_id`` or ``lesion_id`` when present, plus any named with ``--subject-column``. A
subject with images in two splits leaks: a model trained on one of its images is tested on
another image of the same patient (or lesion).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from medimeta.audit.context import DatasetFacts
from medimeta.catalog import TaskSpec, TaskTarget
from medimeta.format import layout

SUBJECT_COLUMNS = ("patient_id", "subject_id", "lesion_id")
EXAMPLES = 20


def subject_columns(facts: DatasetFacts, extra: Sequence[str] = ()) -> list[str]:
    """The subject columns of the dataset's annotations.csv that exist."""
    frame = facts.folder.read_annotations()
    wanted = list(dict.fromkeys([*SUBJECT_COLUMNS, *extra]))
    return [c for c in wanted if c in frame.columns]


def subject_leakage(facts: DatasetFacts, extra: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Per subject column: subjects, leaking subjects (in more than one split), their images,
    counts per pair of splits and up to ``EXAMPLES`` examples."""
    columns = subject_columns(facts, extra)
    if not columns:
        return []
    frame = facts.folder.read_annotations()
    split = facts.split_of
    out = []
    for col in columns:
        values = frame[col]
        known = values.notna().to_numpy() & (values.astype(str).str.strip() != "").to_numpy()
        ids = values.astype(str).to_numpy()
        sub = {"subject": ids[known], "split": split[known]}
        out.append(_leak_summary(col, sub["subject"], sub["split"], int((~known).sum())))
    return out


def _leak_summary(column: str, subjects: np.ndarray, splits: np.ndarray, missing: int) -> dict:
    import pandas as pd

    table = pd.crosstab(pd.Series(subjects, name="subject"), pd.Series(splits, name="split"))
    present = table > 0
    leaking = table[present.sum(axis=1) > 1]
    by_pair = {}
    for s1, s2 in itertools.combinations([s for s in layout.SPLIT_NAMES if s in table], 2):
        n = int((present[s1] & present[s2]).sum())
        if n:
            by_pair[f"{s1}/{s2}"] = n
    examples = [
        {"subject": str(sid), "images": {str(k): int(v) for k, v in row.items() if v}}
        for sid, row in leaking.head(EXAMPLES).iterrows()
    ]
    return {
        "column": column,
        "subjects": int(table.shape[0]),
        "images_without_subject": missing,
        "leaking_subjects": int(leaking.shape[0]),
        "images_of_leaking_subjects": int(leaking.to_numpy().sum()),
        "by_split_pair": by_pair,
        "examples": examples,
    }


def _counts(facts: DatasetFacts, task: TaskSpec) -> dict[str, dict[str, int]]:
    """Per split (and ``all``): samples per class (multi-label: positives per label)."""
    values = facts.folder.labels(task.name)
    names = dict(task.labels)
    out: dict[str, dict[str, int]] = {}
    for split in ("all", *layout.SPLIT_NAMES):
        rows = np.arange(facts.num_samples) if split == "all" else facts.folder.split_indices(split)
        if split != "all" and not rows.size:
            continue
        v = values[rows]
        if task.target == TaskTarget.MULTILABEL_CLASSIFICATION:
            out[split] = {names[k]: int(v[:, j].sum()) for j, k in enumerate(task.keys)}
        else:
            out[split] = {names[k]: int((v == k).sum()) for k in task.keys}
    return out


def balance(facts: DatasetFacts) -> list[dict[str, Any]]:
    """Per task: counts per class and split, the largest-to-smallest class ratio and the
    largest gap (percentage points) between a class's share in a split and overall."""
    out = []
    for task in facts.tasks():
        counts = _counts(facts, task)
        overall = counts["all"]
        total = sum(overall.values()) or 1
        sizes = [n for n in overall.values() if n]
        shift = 0.0
        for split, per_class in counts.items():
            n = sum(per_class.values())
            if split == "all" or not n:
                continue
            for name, k in per_class.items():
                shift = max(shift, abs(k / n - overall[name] / total) * 100)
        out.append(
            {
                "task": task.name,
                "target": task.target.short,
                "counts": counts,
                "empty_classes": [name for name, n in overall.items() if not n],
                "imbalance": (max(sizes) / min(sizes)) if sizes else None,
                "split_shift_pp": round(shift, 2),
            }
        )
    return out
