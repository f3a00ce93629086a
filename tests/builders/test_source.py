"""Source trees: mounting folders and (nested) archives, reading, staging, locating parts."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from medimeta.builders.engine.scan import scan_sources
from medimeta.builders.engine.source import Part, Require, SourceReport, locate, locate_parts
from medimeta.builders.engine.staging import stage_files
from medimeta.builders.engine.tree import match_path
from medimeta.errors import SourceTreeError, UnsafeArchiveError


def _tar_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_match_path_is_segment_wise_and_case_insensitive() -> None:
    assert match_path("benign/benign (1).PNG", "benign/benign (*).png")
    assert not match_path("benign/sub/benign (1).png", "benign/*.png")
    assert match_path("images/a/b/c.jpg", "images/**")
    assert match_path("x.csv", "**/x.csv")


def test_folder_is_mounted_under_its_name_and_junk_ignored(tmp_path: Path) -> None:
    (tmp_path / "data" / "a").mkdir(parents=True)
    (tmp_path / "data" / "a" / "x.txt").write_text("x")
    (tmp_path / "data" / ".DS_Store").write_text("junk")
    (tmp_path / "data" / "__MACOSX").mkdir()
    (tmp_path / "data" / "__MACOSX" / "._x.txt").write_text("junk")
    tree = scan_sources(tmp_path / "data")
    assert list(tree.files) == ["data/a/x.txt"]
    assert tree.get("data/a/x.txt").read_bytes() == b"x"
    assert tree.listdir("data/") == ["a"]


def test_nested_tar_gz_in_zip_is_listed_read_and_staged(tmp_path: Path) -> None:
    inner = _tar_bytes({"images/001.png": b"one", "images/002.png": b"two"})
    with zipfile.ZipFile(tmp_path / "CXR8.zip", "w") as zf:
        zf.writestr("CXR8/images/images_001.tar.gz", inner)
        zf.writestr("CXR8/Data_Entry.csv", "a,b\n")
    tree = scan_sources(tmp_path)
    assert sorted(tree.files) == [
        f"{tmp_path.name}/CXR8/Data_Entry.csv",
        f"{tmp_path.name}/CXR8/images/images/001.png",
        f"{tmp_path.name}/CXR8/images/images/002.png",
    ]
    nested = tree.get(f"{tmp_path.name}/CXR8/images/images/002.png")
    assert nested.needs_staging and nested.read_bytes() == b"two"
    csv = tree.get(f"{tmp_path.name}/CXR8/Data_Entry.csv")
    assert not csv.needs_staging and csv.read_bytes() == b"a,b\n"
    staged = stage_files([csv, nested], tmp_path / "stage")
    assert staged[0] is csv
    assert staged[1].members == () and staged[1].read_bytes() == b"two"


def test_archive_beside_its_extracted_copy_uses_the_extracted_files(tmp_path: Path) -> None:
    (tmp_path / "dl" / "set" / "c").mkdir(parents=True)
    (tmp_path / "dl" / "set" / "c" / "1.png").write_bytes(b"disk")
    with zipfile.ZipFile(tmp_path / "dl" / "set.zip", "w") as zf:
        zf.writestr("set/c/1.png", b"zip")
        zf.writestr("set/c/2.png", b"zip2")
    tree = scan_sources(tmp_path / "dl")
    assert tree.get("dl/set/c/1.png").read_bytes() == b"disk"
    assert tree.get("dl/set/c/2.png").read_bytes() == b"zip2"
    assert any("extracted copies are used" in n for n in tree.notes)


def test_unsafe_member_and_broken_archive_are_refused(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        zf.writestr("../outside.txt", b"x")
    with pytest.raises(UnsafeArchiveError, match="outside"):
        scan_sources(tmp_path / "evil.zip")
    (tmp_path / "broken.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(SourceTreeError, match="cannot read this archive"):
        scan_sources(tmp_path / "broken.tar.gz")
    with pytest.raises(SourceTreeError, match="no such file"):
        scan_sources(tmp_path / "absent")


def test_locate_prefers_most_anchors_then_shallowest(tmp_path: Path) -> None:
    for base in ("a/full", "b/deeper/full", "c/half"):
        for cls in ("x", "y") if "half" not in base else ("x",):
            (tmp_path / base / cls).mkdir(parents=True)
            (tmp_path / base / cls / "1.png").write_bytes(b"p")
    tree = scan_sources(tmp_path)
    part = Part(
        "classes",
        ("x", "y"),
        requires=(Require("x/*.png"), Require("y/*.png")),
        expected=("x/*.png", "y/*.png"),
    )
    report = SourceReport("t", "here")
    loc = locate(tree, part, report)
    assert loc.prefix == f"{tmp_path.name}/a/full/"
    assert any("another copy" in w and "deeper" in w for w in report.warnings)


def test_locate_parts_reports_missing_and_unexpected(tmp_path: Path) -> None:
    (tmp_path / "set" / "x").mkdir(parents=True)
    (tmp_path / "set" / "x" / "1.png").write_bytes(b"p")
    (tmp_path / "set" / "notes.txt").write_text("hello")
    tree = scan_sources(tmp_path / "set")
    part = Part(
        "classes",
        ("x", "y"),
        requires=(Require("x/*.png"), Require("y/*.png", "y")),
        expected=("x/*.png", "y/*.png"),
    )
    report = SourceReport("t", "here")
    locate_parts(tree, [part], report)
    assert report.missing == ["set/y/*.png: y; found 0"]
    assert report.unexpected == ["set/notes.txt"]
    report = SourceReport("t", "here")
    locate_parts(tree, [part], report, partial=True)
    assert report.ok and report.warnings
