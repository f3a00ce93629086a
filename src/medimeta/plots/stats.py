"""Counts behind the charts and report tables: samples per split and per class per task."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medimeta.catalog import SPLIT_NAMES, TaskSpec, TaskTarget
from medimeta.format.reader import DatasetFolder


@dataclass(frozen=True)
class ClassCounts:
    """Samples per class of one task (multi-label: positives per label), per split."""

    task: TaskSpec
    splits: tuple[str, ...]
    counts: np.ndarray  # (len(splits), num_classes), classes in key order
    totals: tuple[int, ...]  # samples per split

    @property
    def names(self) -> tuple[str, ...]:
        return self.task.class_names

    def rows(self) -> list[tuple[str, list[int]]]:
        """``(class name, counts per split)`` in key order."""
        return [(name, self.counts[:, j].tolist()) for j, name in enumerate(self.names)]


def split_counts(folder: DatasetFolder, *, original: bool = False) -> dict[str, int]:
    """Samples per split as info.yaml records them (splits with no samples included)."""
    return folder.split_counts(original=original)


def used_splits(folder: DatasetFolder, *, original: bool = False) -> tuple[str, ...]:
    """The splits that have samples."""
    counts = split_counts(folder, original=original)
    return tuple(s for s in SPLIT_NAMES if counts.get(s, 0))


def class_counts(folder: DatasetFolder, task: TaskSpec, *, original: bool = False) -> ClassCounts:
    """Per split with samples: how many samples have each class (multi-label: each label)."""
    raw = folder.labels(task.name)
    splits = used_splits(folder, original=original)
    table = np.zeros((len(splits), task.num_classes), dtype=np.int64)
    totals = []
    for i, split in enumerate(splits):
        part = raw[folder.split_indices(split, original=original)]
        totals.append(int(part.shape[0]))
        if task.target is TaskTarget.MULTILABEL_CLASSIFICATION:
            table[i] = part.sum(axis=0)
        else:
            flat = part.reshape(-1)
            table[i] = [int(np.count_nonzero(flat == k)) for k in task.keys]
    return ClassCounts(task, splits, table, tuple(totals))
