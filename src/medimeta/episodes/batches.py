"""Cross-domain batches: single-task batches from many (dataset, task) pairs, interleaved.

One epoch is enumerated up front, deterministically from (seed, epoch): every task's samples
are permuted and cut into batches, and the batches of all tasks are interleaved. Weighting
``"proportional"`` draws the next task with probability proportional to its remaining batches
(a uniformly random order of all batches, as medimeta 0.0.6 meant to); ``"uniform"`` draws
uniformly among the tasks that still have batches (small tasks run out early). The epoch ends
when every task is exhausted. The enumerated list is split over torch.distributed ranks
(``[rank::world]``) and then DataLoader workers (``[worker::workers]``), so each batch is
produced exactly once per epoch across all processes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from medimeta.catalog import TaskSpec
from medimeta.data import MedIMeta, TaskDescription
from medimeta.episodes.pool import normalise_split
from medimeta.episodes.sampler import parse_task_ref
from medimeta.episodes.seeding import check_seed, current_shard, item_rng, resolve_rank, stable_hash
from medimeta.errors import EpisodeError, SplitError, check_choice

BATCH_WEIGHTS = ("uniform", "proportional")
TaskRef = str | tuple[str, str] | TaskSpec
SplitArg = str | Sequence[str] | None


@dataclass(frozen=True)
class TaskBatch:
    """One single-task batch; unpacks as ``x, y, task``. ``indices`` are global sample indices."""

    x: torch.Tensor
    y: torch.Tensor
    task: TaskDescription
    indices: torch.Tensor

    def __iter__(self) -> Iterator[Any]:
        return iter((self.x, self.y, self.task))


def _ref(task: TaskRef, root: str | Path | None) -> tuple[str, str]:
    if isinstance(task, TaskSpec):
        return task.dataset_id, task.name
    return parse_task_ref(task, root)


class CrossDomainBatches(IterableDataset):
    """Interleaved single-task batches over several tasks; use with ``batch_size=None``.

    ``split`` applies to every task; ``splits`` maps ``"id:task"`` to a per-task split and
    overrides it (no guessing from list lengths). ``original_split`` reads the original
    splits instead. Images: ``channels`` (default 3, so grey and RGB tasks share a backbone),
    ``dtype``, ``normalize``, ``backend`` as in :class:`~medimeta.data.MedIMeta`; ordinal labels
    default to class indices. Call :meth:`set_epoch` before each epoch for a new order
    (as with ``DistributedSampler``; with ``persistent_workers`` the workers keep the old one).
    """

    def __init__(
        self,
        root: str | Path | None,
        tasks: Sequence[TaskRef],
        batch_size: int,
        *,
        split: SplitArg = "train",
        splits: Mapping[str, SplitArg] | None = None,
        original_split: bool = False,
        weights: str = "proportional",
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        epoch: int = 0,
        channels: int | None = 3,
        dtype: str = "float",
        normalize: str = "half",
        ordinal_labels: str = "index",
        backend: str | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        equal_shards: bool = False,
    ) -> None:
        if not tasks:
            raise EpisodeError("CrossDomainBatches needs at least one task")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise EpisodeError(f"batch_size must be an integer >= 1; got {batch_size!r}")
        self.weights = check_choice("task weighting", weights, BATCH_WEIGHTS)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.seed = check_seed(seed)
        self.epoch = check_seed(epoch)
        self.rank, self.world_size = resolve_rank(rank, world_size)
        self.equal_shards = equal_shards
        refs = [_ref(t, root) for t in tasks]
        ids = [f"{d}:{t}" for d, t in refs]
        if len(set(ids)) != len(ids):
            raise EpisodeError(f"a task is listed twice: {ids}")
        per_task = dict(splits or {})
        unknown = sorted(set(per_task) - set(ids))
        if unknown:
            raise EpisodeError(f"splits names tasks that are not in tasks: {unknown}; tasks: {ids}")
        self.splits = [normalise_split(per_task.get(i, split)) for i in ids]
        self.datasets: list[MedIMeta] = []
        for (dataset_id, task_name), task_split in zip(refs, self.splits, strict=True):
            chosen = list(task_split) if task_split else None
            ds = MedIMeta(
                root,
                dataset_id,
                task_name,
                split=None if original_split else chosen,
                original_split=chosen if original_split else None,
                channels=channels,
                dtype=dtype,
                normalize=normalize,
                ordinal_labels=ordinal_labels,
                backend=backend,
            )
            if len(ds) == 0:
                raise SplitError(
                    f"{dataset_id}:{task_name} has no samples in split {chosen or 'all'}"
                )
            self.datasets.append(ds)
        self.task_ids = ids
        self.key = stable_hash(
            "medimeta-cross-domain-batches-v1",
            ids,
            [list(s) if s else None for s in self.splits],
            original_split,
            batch_size,
            shuffle,
            drop_last,
            weights,
        )

    @property
    def descriptions(self) -> list[TaskDescription]:
        return [ds.task_description for ds in self.datasets]

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` (each epoch is a pure function of seed and epoch)."""
        self.epoch = check_seed(epoch)

    def task_batches(self, task: int, epoch: int) -> list[np.ndarray]:
        """Local positions of the batches of one task in one epoch."""
        n = len(self.datasets[task])
        if self.shuffle:
            order = item_rng(self.seed, epoch, stable_hash(self.key, "task", task)).permutation(n)
        else:
            order = np.arange(n)
        stop = n - n % self.batch_size if self.drop_last else n
        return [order[i : i + self.batch_size] for i in range(0, stop, self.batch_size)]

    def schedule(self, epoch: int | None = None) -> list[tuple[int, np.ndarray]]:
        """The whole epoch in order: (task number, local positions) per batch."""
        epoch = self.epoch if epoch is None else check_seed(epoch)
        batches = [self.task_batches(t, epoch) for t in range(len(self.datasets))]
        counts = np.array([len(b) for b in batches], dtype=np.int64)
        rng = item_rng(self.seed, epoch, stable_hash(self.key, "interleave"))
        if self.weights == "proportional":
            order = rng.permutation(np.repeat(np.arange(counts.size), counts))
        else:
            order = np.empty(int(counts.sum()), dtype=np.int64)
            left = counts.copy()
            active = [t for t in range(counts.size) if left[t]]
            for step in range(order.size):
                t = active[int(rng.integers(len(active)))]
                order[step] = t
                left[t] -= 1
                if not left[t]:
                    active.remove(t)  # exhausted tasks leave the draw: the epoch ends cleanly
        taken = np.zeros(counts.size, dtype=np.int64)
        out = []
        for t in order.tolist():
            out.append((t, batches[t][taken[t]]))
            taken[t] += 1
        return out

    def __len__(self) -> int:
        """Batches this rank yields per epoch (all its workers together)."""
        sizes = [len(ds) for ds in self.datasets]
        b = self.batch_size
        total = sum(n // b if self.drop_last else -(-n // b) for n in sizes)
        return len(
            current_shard(self.rank, self.world_size).rank_items(total, equal=self.equal_shards)
        )

    def __iter__(self) -> Iterator[TaskBatch]:
        plan = self.schedule(self.epoch)
        shard = current_shard(self.rank, self.world_size)
        for j in shard.items(len(plan), equal=self.equal_shards):
            task, positions = plan[j]
            ds = self.datasets[task]
            x, y = ds.get_batch(positions)
            yield TaskBatch(
                x, y, ds.task_description, torch.from_numpy(ds.global_indices(positions))
            )

    def loader(self, num_workers: int = 0, **kwargs: Any) -> DataLoader:
        """A DataLoader over this dataset (items are whole batches)."""
        return DataLoader(self, batch_size=None, num_workers=num_workers, **kwargs)
