"""What the report says about each image of a pair: its split and its label, by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from medimeta.catalog import TaskSpec, TaskTarget
from medimeta.format import layout
from medimeta.format.reader import DatasetFolder


@dataclass
class DatasetFacts:
    """A dataset folder with its per-sample split names and label names, computed once."""

    folder: DatasetFolder
    _labels: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.folder.id

    @property
    def num_samples(self) -> int:
        return self.folder.num_samples

    @cached_property
    def split_of(self) -> np.ndarray:
        """Split name of every sample (MedIMeta's ``splits/``; ``""`` for none)."""
        out = np.full(self.num_samples, "", dtype=object)
        for name in layout.SPLIT_NAMES:
            out[self.folder.split_indices(name)] = name
        return out

    def tasks(self) -> tuple[TaskSpec, ...]:
        return tuple(self.folder.spec.tasks)

    def label_names(self, task: TaskSpec) -> np.ndarray:
        """The label of every sample as text: the class name; for multi-label tasks the
        names of the positive labels joined by ``|`` (``(none)`` without any)."""
        if task.name not in self._labels:
            values = self.folder.labels(task.name)
            names = dict(task.labels)
            if task.target == TaskTarget.MULTILABEL_CLASSIFICATION:
                cols = [names[k] for k in task.keys]
                text = ["|".join(c for c, v in zip(cols, row, strict=True) if v) for row in values]
                out = np.array([t or "(none)" for t in text], dtype=object)
            else:
                out = np.array([names.get(int(v), str(int(v))) for v in values], dtype=object)
            self._labels[task.name] = out
        return self._labels[task.name]


def label_set(task: TaskSpec) -> frozenset[str]:
    return frozenset(task.labels.values())


def pair_tasks(a: DatasetFacts, b: DatasetFacts) -> tuple[TaskSpec | None, TaskSpec | None, bool]:
    """The tasks whose labels a pair shows: the first pair of tasks (a's order) with the same
    label names, else each dataset's first task; the flag says whether the names match."""
    for ta in a.tasks():
        for tb in b.tasks():
            if ta.target == tb.target and label_set(ta) == label_set(tb):
                return ta, tb, True
    first_a = a.tasks()[0] if a.tasks() else None
    first_b = b.tasks()[0] if b.tasks() else None
    return first_a, first_b, False


def labels_of(facts: DatasetFacts, task: TaskSpec | None, index: np.ndarray) -> np.ndarray:
    if task is None:
        return np.full(index.size, "", dtype=object)
    return facts.label_names(task)[index]
