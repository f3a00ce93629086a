"""Session root with the episode toy datasets."""

from __future__ import annotations

from pathlib import Path

import pytest
from episode_toys import make_gray, make_rgb


@pytest.fixture(scope="session")
def ep_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("episodes-root")
    make_rgb(root)
    make_gray(root)
    return root
