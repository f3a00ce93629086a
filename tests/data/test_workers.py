"""DataLoader workers started with fork, spawn and forkserver see exactly the same batches."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from medimeta import MedIMeta, MedIMetaMultiTask


def _batches(loader: torch.utils.data.DataLoader) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x.clone(), y.clone()) for x, y in loader]


def _same(
    a: list[tuple[torch.Tensor, torch.Tensor]], b: list[tuple[torch.Tensor, torch.Tensor]]
) -> None:
    assert len(a) == len(b)
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_fork_spawn_forkserver_batches_identical(toy_root: Path) -> None:
    data = MedIMeta(toy_root, "toy_rgb", "finding labels")
    data[0]  # open the file in the parent first: workers must not reuse that handle
    ref = _batches(data.loader(4, shuffle=True, seed=3))
    for ctx in ("fork", "spawn", "forkserver"):
        got = _batches(
            data.loader(4, shuffle=True, seed=3, num_workers=2, multiprocessing_context=ctx)
        )
        _same(ref, got)


@pytest.mark.parametrize("ctx", ["fork", "spawn"])
def test_standard_dataloader_with_h5py_backend(toy_root: Path, ctx: str) -> None:
    data = MedIMeta(toy_root, "toy_gray", "case category", backend="hdf5")
    data[1]
    ref = _batches(torch.utils.data.DataLoader(data, batch_size=5))
    got = _batches(
        torch.utils.data.DataLoader(data, batch_size=5, num_workers=2, multiprocessing_context=ctx)
    )
    _same(ref, got)


def test_multitask_in_spawn_workers(toy_root: Path) -> None:
    data = MedIMetaMultiTask(toy_root, "toy_rgb", split="train")
    ref = [b["labels"]["DR level"] for b in data.loader(3)]
    got = [
        b["labels"]["DR level"]
        for b in data.loader(3, num_workers=2, multiprocessing_context="spawn")
    ]
    assert all(torch.equal(a, b) for a, b in zip(ref, got, strict=True)) and len(ref) == 4
