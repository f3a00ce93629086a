"""Progress lines with the time left when the output is not a terminal."""

from __future__ import annotations

import pytest

from medimeta.progress import Progress


def test_plain_lines_with_eta(capsys: pytest.CaptureFixture[str]) -> None:
    with Progress(True, 20, "episodes", plain=True) as bar:
        for i in range(20):
            bar.advance(0.5 + i / 100, "auroc")
    lines = capsys.readouterr().err.strip().splitlines()
    assert 2 <= len(lines) <= 11  # about every tenth of the way, and the last step
    assert lines[0].startswith("episodes: 1/20 (5 %)") and "ETA" in lines[0]
    assert lines[-1].startswith("episodes: 20/20 (100 %)") and lines[-1].endswith("auroc 0.6900")
    assert "ETA 0 s" in lines[-1]


def test_disabled_is_silent(capsys: pytest.CaptureFixture[str]) -> None:
    with Progress(False, 3, "x", plain=True) as bar:
        for _ in range(3):
            bar.advance()
    assert capsys.readouterr().err == "" and bar.done == 3 and bar.eta() == 0
