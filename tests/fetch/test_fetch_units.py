"""Pieces of the download manager that need no server: URLs, manifests, archives, markers."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from fetch_helpers import add_members, dataset_zip

from medimeta.errors import FormatError, UnknownNameError, UnsafeArchiveError
from medimeta.fetch import FetchOptions, medmnist_filename, resolve_base, rewrite_url
from medimeta.fetch.archive import safe_extract
from medimeta.fetch.files import file_problem, md5_file
from medimeta.fetch.zenodo import parse_record
from medimeta.safeio import archive_member_parts as member_parts


def test_mirror_replaces_zenodo_prefix_only(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_base() == "https://zenodo.org"
    monkeypatch.setenv("MEDIMETA_MIRROR", "http://mirror.local/zen/")
    assert resolve_base() == "http://mirror.local/zen"
    assert resolve_base("http://other") == "http://other"
    base = "http://mirror.local/zen"
    url = "https://zenodo.org/api/records/7884735/files/bus.zip/content"
    assert rewrite_url(url, base) == base + "/api/records/7884735/files/bus.zip/content"
    assert rewrite_url("https://zenodo.org.evil.com/x", base) == "https://zenodo.org.evil.com/x"
    assert rewrite_url("https://example.org/a.zip", base) == "https://example.org/a.zip"


def test_options_reject_unknown_keyword() -> None:
    with pytest.raises(UnknownNameError, match="retries"):
        FetchOptions.from_kwargs(retrys=3)


def test_parse_record_keeps_links_relative_and_checks_md5() -> None:
    data = {
        "files": [
            {
                "key": "bus.zip",
                "size": 10,
                "checksum": "md5:" + "A" * 32,
                "links": {"self": "https://zenodo.org/api/records/7884735/files/bus.zip/content"},
            }
        ]
    }
    manifest = parse_record("7884735", data, "http://m", "http://m/api/records/7884735")
    remote = manifest.files["bus.zip"]
    assert remote.md5 == "a" * 32 and remote.size == 10
    assert remote.url("http://mirror") == "http://mirror/api/records/7884735/files/bus.zip/content"
    bad = {"files": [{"key": "x.zip", "size": 1, "checksum": "sha256:00"}]}
    with pytest.raises(FormatError, match="unsupported checksum"):
        parse_record("1", bad, "http://m", "http://m/api/records/1")
    with pytest.raises(FormatError, match="no 'files' list"):
        parse_record("1", {"hits": []}, "http://m", "http://m/api/records/1")


def test_file_problem_reports_size_then_md5(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"hello")
    good = md5_file(path)
    assert good == "5d41402abc4b2a76b9719d911017c592"
    assert file_problem(path, size=5, md5=good) is None
    assert "size is 5 bytes, expected 6" in (file_problem(path, size=6, md5=good) or "")
    assert "md5 is" in (file_problem(path, size=5, md5="0" * 32) or "")


@pytest.mark.parametrize(
    "name",
    ["../evil.txt", "toy_a/../../evil.txt", "/etc/passwd", "C:/x.txt", "a\\..\\b", "a/\x00b", "./"],
)
def test_member_names_that_could_escape_are_refused(name: str) -> None:
    with pytest.raises(UnsafeArchiveError):
        member_parts(Path("x.zip"), name)


def test_member_parts_normalises_harmless_names() -> None:
    assert member_parts(Path("x.zip"), "toy_a/./images//000000.tiff") == (
        "toy_a",
        "images",
        "000000.tiff",
    )


def _write(tmp_path: Path, data: bytes, name: str = "toy_a.zip") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("top_folder", [True, False])
def test_extract_with_or_without_top_folder(tmp_path: Path, top_folder: bool) -> None:
    zip_path = _write(tmp_path, dataset_zip("toy_a", top_folder=top_folder))
    out = safe_extract(zip_path, tmp_path / "out" / "toy_a", "toy_a")
    assert (out / "info.yaml").is_file()
    assert (out / "images" / "000005.tiff").is_file()
    assert not (out / "toy_a").exists()


def test_extract_ignores_macos_junk_and_accepts_other_top_folder(tmp_path: Path) -> None:
    data = dataset_zip("toy_a", top_folder=False)
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for info in src.infolist():
            zf.writestr("BUSI_release/" + info.filename, src.read(info))
        zf.writestr("__MACOSX/._info.yaml", b"junk")
    zip_path = _write(tmp_path, buf.getvalue())
    out = safe_extract(zip_path, tmp_path / "out" / "toy_a", "toy_a")
    assert (out / "info.yaml").is_file() and not (out / "__MACOSX").exists()


def test_extract_without_info_yaml_is_a_format_error(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a/readme.txt", b"x")
        zf.writestr("b/readme.txt", b"y")
    with pytest.raises(FormatError, match=r"info\.yaml"):
        safe_extract(_write(tmp_path, buf.getvalue()), tmp_path / "out" / "toy_a", "toy_a")


def test_zip_slip_member_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    evil = add_members(dataset_zip("toy_a"), {"toy_a/../../evil.txt": b"pwned"})
    dest = tmp_path / "deep" / "out" / "toy_a"
    with pytest.raises(UnsafeArchiveError, match=r"evil\.txt"):
        safe_extract(_write(tmp_path, evil), dest, "toy_a")
    assert not (tmp_path / "deep" / "evil.txt").exists()
    assert not dest.exists()


def test_links_inside_are_kept_links_escaping_are_refused(tmp_path: Path) -> None:
    ok = add_members(dataset_zip("toy_a"), {}, links={"toy_a/first.tiff": "images/000000.tiff"})
    out = safe_extract(_write(tmp_path, ok), tmp_path / "ok" / "toy_a", "toy_a")
    assert (out / "first.tiff").is_symlink()
    assert (out / "first.tiff").read_bytes() == (out / "images" / "000000.tiff").read_bytes()
    for i, target in enumerate(["../../outside", "/etc/passwd", "images/../../x"]):
        bad = add_members(dataset_zip("toy_a"), {}, links={"toy_a/escape": target})
        with pytest.raises(UnsafeArchiveError, match="points outside"):
            safe_extract(
                _write(tmp_path, bad, f"bad{i}.zip"), tmp_path / f"b{i}" / "toy_a", "toy_a"
            )


def test_link_through_link_that_escapes_is_refused(tmp_path: Path) -> None:
    # "here" -> "." is inside; "here/.." looks inside lexically but resolves to the parent.
    links = {"toy_a/here": ".", "toy_a/up": "here/.."}
    bad = add_members(dataset_zip("toy_a"), {}, links=links)
    with pytest.raises(UnsafeArchiveError, match="up"):
        safe_extract(_write(tmp_path, bad), tmp_path / "out" / "toy_a", "toy_a")


def test_truncated_zip_is_a_format_error(tmp_path: Path) -> None:
    data = dataset_zip("toy_a")
    with pytest.raises(FormatError, match=r"not a readable zip|damaged"):
        safe_extract(_write(tmp_path, data[: len(data) // 2]), tmp_path / "o" / "toy_a", "toy_a")


def test_medmnist_file_names() -> None:
    assert medmnist_filename("breastmnist", 28) == "breastmnist.npz"
    assert medmnist_filename("medmnist:pathmnist", 224) == "pathmnist_224.npz"
    with pytest.raises(UnknownNameError, match="breastmnist"):
        medmnist_filename("breastmnst", 28)
    with pytest.raises(UnknownNameError, match="size"):
        medmnist_filename("breastmnist", 32)
    with pytest.raises(UnknownNameError):
        medmnist_filename("organmnist3d", 28)
