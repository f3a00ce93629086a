"""Fixtures of the audit tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def root(tmp_path: Path) -> Path:
    out = tmp_path / "MedIMeta"
    out.mkdir()
    return out
