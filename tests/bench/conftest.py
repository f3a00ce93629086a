"""Tiny generated roots for the benchmark tests (tiny_cnn, 16-pixel images, few episodes) and
a real single-node Slurm (``slurm_cluster.py``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench_helpers import add_derived_from
from slurm_cluster import SlurmCluster, SlurmUnavailable, start_cluster, stop_cluster

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


@pytest.fixture(scope="session")
def slurm() -> Iterator[SlurmCluster]:
    """munged, slurmctld and slurmd for this session, stopped by pid at its end. Skips with
    the reason when Slurm cannot start here, but fails under CI (``CI`` set), which installs
    slurm-wlm and munge (.ci/run) and must not pass these tests by skipping them."""
    try:
        cluster = start_cluster()
    except SlurmUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"the Slurm tests need a Slurm in CI: {exc}")
        pytest.skip(f"Slurm cannot start here: {exc}")
    try:
        yield cluster
    finally:
        stop_cluster(cluster)
