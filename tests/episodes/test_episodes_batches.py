"""Cross-domain batches: coverage, clean epoch end, workers and ranks, weighting, splits."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from medimeta import MedIMeta
from medimeta.data import TaskDescription
from medimeta.episodes import CrossDomainBatches
from medimeta.errors import EpisodeError, UnknownNameError

TASKS = [
    "ep_rgb:case category",
    "ep_gray:Malignancy",
    "ep_rgb:finding labels",
    ("ep_gray", "DR level"),
]


def batches(root: Path, **kw: object) -> CrossDomainBatches:
    options = {"batch_size": 7, "rank": 0, "world_size": 1, "dtype": "uint8", **kw}
    return CrossDomainBatches(root, TASKS, **options)  # type: ignore[arg-type]


def keys(items: list) -> Counter:
    return Counter((b.task.task_name, b.task.dataset_id, tuple(b.indices.tolist())) for b in items)


def test_epoch_covers_every_sample_once(ep_root: Path) -> None:
    cd = batches(ep_root)
    plan = cd.schedule()
    for t, ds in enumerate(cd.datasets):
        positions = np.concatenate([p for task, p in plan if task == t])
        assert np.array_equal(np.sort(positions), np.arange(len(ds)))
    items = list(cd)  # the epoch ends with StopIteration, not ValueError
    assert len(items) == len(plan) == len(cd)
    assert [b.indices.numel() for b in items] == [p.size for _, p in plan]


@pytest.mark.parametrize("weights", ["uniform", "proportional"])
def test_two_workers_yield_each_batch_once(ep_root: Path, weights: str) -> None:
    cd = batches(ep_root, weights=weights)
    expected = keys(list(cd))
    assert max(expected.values()) == 1
    for ctx in ("fork", "spawn") if weights == "proportional" else ("fork",):
        got = keys(list(cd.loader(num_workers=2, multiprocessing_context=ctx)))
        assert got == expected, f"{ctx}: duplicates or missing batches"
    assert keys(list(cd.loader(num_workers=2))) == expected  # a second epoch ends cleanly too


def test_batch_content(ep_root: Path) -> None:
    cd = batches(ep_root, dtype="float", batch_size=5)
    for batch in cd:
        x, y, task = batch
        assert isinstance(task, TaskDescription) and task.domain_identifier.startswith("Toy")
        assert x.shape[1:] == (3, 224, 224)  # grey datasets come out with 3 channels
        ref = MedIMeta(ep_root, task.dataset_id, task.task_name, channels=3, ordinal_labels="index")
        rx, ry = ref.get_batch(batch.indices.numpy())
        torch.testing.assert_close(x, rx, rtol=0, atol=0)
        assert torch.equal(y, ry)


def test_drop_last_and_no_shuffle(ep_root: Path) -> None:
    cd = batches(ep_root, drop_last=True, shuffle=False)
    plan = cd.schedule()
    assert all(p.size == 7 for _, p in plan)
    first = next(p for t, p in plan if t == 0)
    assert first.tolist() == list(range(7))


def test_epochs_are_reproducible_and_differ(ep_root: Path) -> None:
    a, b = batches(ep_root, seed=3), batches(ep_root, seed=3)
    assert keys(list(a)) == keys(list(b))
    order = [(t, p.tolist()) for t, p in a.schedule()]
    assert order == [(t, p.tolist()) for t, p in b.schedule()]
    b.set_epoch(1)
    assert order != [(t, p.tolist()) for t, p in b.schedule()]
    assert keys(list(b)).keys() != keys(list(a)).keys()


def test_uniform_exhausts_small_tasks_earlier(ep_root: Path) -> None:
    def mean_last_small(weights: str) -> float:
        ends = []
        for seed in range(20):
            cd = CrossDomainBatches(
                ep_root, ["ep_rgb:case category", "ep_gray:Malignancy"], 2, split="all",
                weights=weights, seed=seed, rank=0, world_size=1,
            )  # fmt: skip
            plan = [t for t, _ in cd.schedule()]
            ends.append(max(i for i, t in enumerate(plan) if t == 1) / len(plan))
        return float(np.mean(ends))

    assert mean_last_small("uniform") < mean_last_small("proportional") - 0.1


def test_ranks_get_disjoint_shards(ep_root: Path) -> None:
    whole = keys(list(batches(ep_root)))
    parts = [
        keys(list(batches(ep_root, rank=r, world_size=3).loader(num_workers=2))) for r in range(3)
    ]
    assert sum(parts, Counter()) == whole
    equal = [len(batches(ep_root, rank=r, world_size=3, equal_shards=True)) for r in range(3)]
    assert len(set(equal)) == 1


def test_splits_per_task(ep_root: Path) -> None:
    cd = batches(
        ep_root,
        split="train",
        splits={"ep_gray:Malignancy": "test", "ep_rgb:finding labels": "all"},
    )
    sizes = [len(d) for d in cd.datasets]
    assert sizes == [60, 20, 120, 30]
    with pytest.raises(EpisodeError, match="not in tasks"):
        batches(ep_root, splits={"ep_gray:nope": "test"})
    with pytest.raises(EpisodeError, match="twice"):
        CrossDomainBatches(ep_root, ["ep_rgb:grade", "ep_rgb:grade"], 4)
    with pytest.raises(UnknownNameError):
        batches(ep_root, weights="random")
