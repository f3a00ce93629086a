"""One few-shot episode: global sample indices and re-indexed labels of its support and query."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from medimeta.catalog import TaskTarget
from medimeta.data import TaskDescription


@dataclass(frozen=True)
class EpisodeClass:
    """Class ``index`` of an episode is class ``key`` (named ``name``) of the task."""

    index: int
    key: int
    name: str


@dataclass(frozen=True, eq=False)
class Episode:
    """Indices are global sample indices (rows of images.hdf5) of the dataset.

    Labels are re-indexed to the episode's classes: multi-class and ordinal (n,) in
    0..n_way-1 (ordinal classes keep their order); binary (n,) 0/1 as in the task;
    multi-label (n, n_way) multi-hot over the chosen labels. ``classes`` maps each new index
    back to the task's label key and name. ``folder`` (not saved, not compared) is the
    dataset folder the images are read from.
    """

    index: int
    seed: int
    dataset_id: str
    task_name: str
    task_target: TaskTarget
    domain: str
    split: str
    classes: tuple[EpisodeClass, ...]
    support_indices: np.ndarray
    support_labels: np.ndarray
    query_indices: np.ndarray
    query_labels: np.ndarray
    dataset_name: str = ""
    folder: Path | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return (
            f"Episode({self.task_id!r}, index={self.index}, seed={self.seed}, "
            f"split={self.split!r}, ways={self.n_way}, support={self.support_indices.size}, "
            f"query={self.query_indices.size})"
        )

    @property
    def task_id(self) -> str:
        """``"<dataset id>:<task name>"``."""
        return f"{self.dataset_id}:{self.task_name}"

    @property
    def task_identifier(self) -> str:
        """``"<dataset name>: <task name>"``, the identifier MedIMeta datasets carry."""
        return f"{self.dataset_name or self.dataset_id}: {self.task_name}"

    @property
    def n_way(self) -> int:
        return len(self.classes)

    @property
    def class_keys(self) -> tuple[int, ...]:
        return tuple(c.key for c in self.classes)

    @property
    def description(self) -> TaskDescription:
        """Task description with the episode's classes (new index -> name)."""
        return TaskDescription(
            self.task_target,
            {c.index: c.name for c in self.classes},
            self.task_identifier,
            self.domain,
            self.dataset_id,
            self.task_name,
        )

    def bind(self, folder: Path | None) -> Episode:
        """The same episode reading its images from ``folder``."""
        return replace(self, folder=folder)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Episode):
            return NotImplemented
        arrays = ("support_indices", "support_labels", "query_indices", "query_labels")
        for name in arrays:
            a, b = getattr(self, name), getattr(other, name)
            if a.dtype != b.dtype or a.shape != b.shape or not np.array_equal(a, b):
                return False
        plain = (
            "index",
            "seed",
            "dataset_id",
            "task_name",
            "task_target",
            "domain",
            "split",
            "classes",
            "dataset_name",
        )
        return all(getattr(self, n) == getattr(other, n) for n in plain)

    __hash__ = None  # type: ignore[assignment]

    # -- plain-data form (episode files) -------------------------------------------------------
    def to_record(self) -> dict[str, Any]:
        """The per-episode part of an episode file (task-level facts live in the header)."""
        return {
            "index": self.index,
            "classes": list(self.class_keys),
            "support": self.support_indices.tolist(),
            "support_labels": self.support_labels.tolist(),
            "query": self.query_indices.tolist(),
            "query_labels": self.query_labels.tolist(),
        }


class EpisodeSequence:
    """Collection protocol for anything that draws episode ``i`` on demand: indexing, ``len``
    (only when bounded by ``num_episodes``) and iteration in index order."""

    num_episodes: int | None

    def episode(self, index: int) -> Episode:
        raise TypeError(f"{type(self).__name__} must define episode(index)")

    def __getitem__(self, index: int) -> Episode:
        return self.episode(index)

    def __len__(self) -> int:
        if self.num_episodes is None:
            raise TypeError(
                f"{type(self).__name__} is unbounded (num_episodes=None); index it instead"
            )
        return self.num_episodes

    def __iter__(self) -> Iterator[Episode]:
        index = 0
        while self.num_episodes is None or index < self.num_episodes:
            yield self.episode(index)
            index += 1
