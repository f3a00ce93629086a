"""Atomic writes and archive-member paths (medimeta.safeio)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medimeta.errors import UnsafeArchiveError
from medimeta.safeio import (
    archive_member_parts,
    atomic_open,
    atomic_path,
    write_bytes,
    write_json,
    write_text,
)


def test_writes_replace_the_target_and_leave_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.json"
    write_json(target, {"b": 1, "a": [1, 2]}, sort_keys=True)
    assert target.read_text(encoding="utf-8") == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'
    write_text(target, "ü\n")
    assert target.read_text(encoding="utf-8") == "ü\n"
    write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.json"]


def test_a_failing_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "keep.txt"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write("half of the new")
        raise RuntimeError("crash while writing")
    assert target.read_text(encoding="utf-8") == "old"
    with pytest.raises(ValueError), atomic_path(target) as tmp:
        tmp.write_text("new", encoding="utf-8")
        raise ValueError("writer failed")
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_json_options_reach_dumps(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_json(tmp_path / "nan.json", {"x": float("nan")}, allow_nan=False)
    assert not (tmp_path / "nan.json").exists()
    write_json(tmp_path / "u.json", {"k": "é"}, ensure_ascii=False)
    assert "é" in (tmp_path / "u.json").read_text(encoding="utf-8")
    assert json.loads((tmp_path / "u.json").read_text(encoding="utf-8")) == {"k": "é"}


def test_atomic_open_refuses_other_modes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode"), atomic_open(tmp_path / "x", "a"):
        pass


@pytest.mark.parametrize(
    ("name", "windows", "parts"),
    [
        ("a/./b//c.png", False, ("a", "b", "c.png")),
        ("a\\b\\c.png", True, ("a", "b", "c.png")),
    ],
)
def test_member_parts_of_harmless_names(name: str, windows: bool, parts: tuple[str, ...]) -> None:
    assert archive_member_parts("x.zip", name, windows_separators=windows) == parts


@pytest.mark.parametrize(
    ("name", "windows", "why"),
    [
        ("../up.txt", False, "'..'"),
        ("a/../../up.txt", True, "'..'"),
        ("..\\up.txt", True, "'..'"),
        ("/etc/passwd", False, "absolute"),
        ("\\share\\x", True, "absolute"),
        ("C:/x.txt", True, "absolute"),
        ("a\\b.txt", False, "backslash"),
        ("a\x00b", False, "NUL"),
        ("./", False, "empty"),
    ],
)
def test_member_parts_refuse_escapes(name: str, windows: bool, why: str) -> None:
    with pytest.raises(UnsafeArchiveError, match=why) as err:
        archive_member_parts("some/archive.zip", name, windows_separators=windows)
    assert "some/archive.zip" in str(err.value)


def test_written_files_get_the_usual_mode(tmp_path: Path) -> None:
    import os

    old = os.umask(0o022)
    try:
        path = write_text(tmp_path / "shared.txt", "x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
