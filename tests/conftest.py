"""Shared fixtures: generated release-layout datasets and the real-data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fixtures.release import ToySpec, make_release_dataset

REPO = Path(__file__).resolve().parents[1]


def realdata_dir() -> Path:
    """``$MEDIMETA_REALDATA`` or ``<repo>/../shared/realdata``."""
    return Path(os.environ.get("MEDIMETA_REALDATA", REPO.parent / "shared" / "realdata"))


@pytest.fixture(scope="session")
def realdata() -> Path:
    path = realdata_dir()
    if not path.is_dir():
        pytest.skip(f"real data folder {path} is absent (set MEDIMETA_REALDATA)")
    return path


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root with a grey and an RGB toy dataset (all four task targets, no val split)."""
    root = tmp_path_factory.mktemp("medimeta-root")
    make_release_dataset(root, ToySpec(dataset_id="toy_gray", channels=1, seed=1))
    make_release_dataset(
        root,
        ToySpec(
            dataset_id="toy_rgb",
            channels=3,
            seed=2,
            splits={"train": 10, "val": 3, "test": 5},
            original_splits={"train": 13, "val": 0, "test": 5},
        ),
    )
    return root


@pytest.fixture(scope="session")
def busi_root(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root holding ``bus`` built from the real BUSI images (780, stored 224 x 224 grey)."""
    from medimeta.builders import build_dataset

    source = realdata / "busi-256"
    if not source.is_dir():
        pytest.skip(f"{source} is absent")
    root = tmp_path_factory.mktemp("busi-root")
    build_dataset("bus", source, root=root, workers=1)
    return root
