"""Tiny generated roots for the benchmark tests (tiny_cnn, 16-pixel images, few episodes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench_helpers import add_derived_from

from train.train_toys import make_learnable


@pytest.fixture(scope="session")
def bench_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``target`` (RGB, 36 samples), ``source`` (grey) and ``copy`` (derived from target)."""
    root = tmp_path_factory.mktemp("bench-root")
    make_learnable(
        root,
        "target",
        splits={"train": 18, "val": 6, "test": 12},
        channels=3,
        seed=1,
        domain="Target domain",
    )
    make_learnable(
        root, "source", splits={"train": 24, "val": 6, "test": 6}, seed=2, domain="Source domain"
    )
    copy = make_learnable(
        root, "copy", splits={"train": 24, "val": 0, "test": 6}, seed=3, domain="Copy domain"
    )
    add_derived_from(copy, ["target"])
    return root


@pytest.fixture(autouse=True)
def one_thread() -> object:
    """Tiny models run fastest on one thread (and far faster on a busy machine)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
