"""Roots with learnable toy datasets for the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from train_toys import make_learnable


@pytest.fixture(scope="session")
def learn_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One grey learnable dataset ``learn`` (48 train / 12 val / 24 test)."""
    root = tmp_path_factory.mktemp("train-root")
    make_learnable(root)
    return root


@pytest.fixture(scope="session")
def fewshot_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Target ``target`` (RGB, 90 samples) and source ``source`` (grey) in other domains."""
    root = tmp_path_factory.mktemp("fewshot-root")
    make_learnable(
        root,
        "target",
        splits={"train": 30, "val": 0, "test": 60},
        channels=3,
        seed=1,
        domain="Target domain",
    )
    make_learnable(
        root, "source", splits={"train": 60, "val": 6, "test": 6}, seed=2, domain="Source domain"
    )
    return root


@pytest.fixture(autouse=True)
def one_thread() -> object:
    """Tiny models run fastest on one thread (and far faster on a busy machine)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
