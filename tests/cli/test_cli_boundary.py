"""What reaches a CLI user: one line per error and per warning, a traceback only with --debug."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fixtures.release import ToySpec, make_release_dataset


def _medimeta(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medimeta", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_library_error_is_one_line_and_debug_shows_the_traceback() -> None:
    plain = _medimeta("info", "buss")
    assert plain.returncode == 2
    assert "Traceback" not in plain.stderr
    assert plain.stderr.strip().count("\n") == 0 and "did you mean 'bus'" in plain.stderr
    debug = _medimeta("info", "buss", "--debug")
    assert debug.returncode != 0 and "Traceback" in debug.stderr
    assert "UnknownNameError" in debug.stderr


def test_warnings_are_one_line_without_source_lines(tmp_path: Path) -> None:
    folder = make_release_dataset(tmp_path, ToySpec(dataset_id="toy"))
    folder.rename(tmp_path / "renamed")  # folder name differs from the id: a RuntimeWarning
    result = _medimeta("list", "--root", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if line.strip()]
    assert warned and all(line.startswith("warning (RuntimeWarning): ") for line in warned)
    assert "folder name differs" in result.stderr
    assert ".py:" not in result.stderr  # no "file.py:123: RuntimeWarning" source line


def test_unexpected_exception_is_one_line_too(tmp_path: Path) -> None:
    # a predictions "file" that is a folder: an OSError from deep inside, not a toolkit error
    result = _medimeta("score", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and str(tmp_path) in result.stderr
