"""Download → check → install against a local HTTP server in the Zenodo layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fetch_helpers import add_members, assert_nothing_installed, dataset_zip
from fetch_server import Fault, ZenodoStub

from medimeta.errors import (
    ChecksumMismatchError,
    DatasetNotFoundError,
    DownloadError,
    FormatError,
    UnknownNameError,
    UnsafeArchiveError,
)
from medimeta.fetch import MARKER, download, ensure_dataset, is_installed, plan, read_marker
from medimeta.format.verify import verify_dataset

REC = "7884735"


def _bytes_for(stub: ZenodoStub, key: str) -> int:
    return sum(e.sent for e in stub.requests(stub.file_path(REC, key)))


def test_happy_path_installs_verifies_and_records(
    stub: ZenodoStub, toy_zip: bytes, fast: dict[str, Any], tmp_path: Path
) -> None:
    entry = stub.add(REC, "toy_a.zip", toy_zip)
    stub.add(REC, "other.zip", b"not needed")
    root = tmp_path / "root"
    path = download("toy_a", root, **fast)
    assert path == root / "toy_a"
    assert verify_dataset(path).ok
    marker = read_marker(path)
    assert marker is not None and marker["md5"] == entry.md5 and marker["checksum_verified"]
    # The stub's links say https://zenodo.org/...; the mirror replaced that prefix.
    assert marker["source"] == stub.base + stub.file_path(REC, "toy_a.zip")
    manifest = json.loads((root / ".medimeta/manifests/zenodo-7884735.json").read_text())
    assert {f["key"] for f in manifest["files"]} == {"toy_a.zip", "other.zip"}
    downloads = root / ".medimeta" / "downloads"
    assert not list(downloads.iterdir())  # zip removed after install, no .part left
    requests_before = len(stub.state.log)
    assert ensure_dataset(root, "toy_a", **fast) == path  # installed: no request at all
    assert len(stub.state.log) == requests_before


def test_mirror_from_environment_variable(
    stub: ZenodoStub, toy_zip: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub.add(REC, "toy_a.zip", toy_zip)
    monkeypatch.setenv("MEDIMETA_MIRROR", stub.base)
    path = download("toy_a", tmp_path, quiet=True, keep_archive=True)
    assert is_installed(tmp_path, "toy_a")
    assert (tmp_path / ".medimeta" / "downloads" / "toy_a.zip").is_file()
    assert (path / MARKER).is_file()


def test_dropped_connection_resumes_with_range(
    stub: ZenodoStub, toy_zip: bytes, fast: dict[str, Any], tmp_path: Path
) -> None:
    stub.add(REC, "toy_a.zip", toy_zip)
    file_path = stub.file_path(REC, "toy_a.zip")
    stub.queue(file_path, Fault(drop_after=100_000))
    download("toy_a", tmp_path, **fast)
    first, second = stub.requests(file_path)
    assert (first.range_start, first.sent) == (None, 100_000)
    assert second.status == 206 and second.range_start == 100_000
    assert second.sent == len(toy_zip) - 100_000
    assert verify_dataset(tmp_path / "toy_a").ok


def test_resume_survives_a_redirect(
    stub: ZenodoStub, toy_zip: bytes, fast: dict[str, Any], tmp_path: Path
) -> None:
    stub.add(REC, "toy_a.zip", toy_zip)
    file_path = stub.file_path(REC, "toy_a.zip")
    stub.queue(file_path, Fault(drop_after=100_000), Fault(redirect=True))
    download("toy_a", tmp_path, **fast)
    log = stub.requests(file_path)
    assert [(e.status, e.range_start) for e in log] == [(200, None), (302, None), (206, 100_000)]
    assert stub.state.log[-1].path.endswith("?redirected=1")
    assert is_installed(tmp_path, "toy_a")


def test_stalled_connection_times_out_and_resumes(
    stub: ZenodoStub, toy_zip: bytes, fast: dict[str, Any], tmp_path: Path
) -> None:
    stub.add(REC, "toy_a.zip", toy_zip)
    file_path = stub.file_path(REC, "toy_a.zip")
    stub.queue(file_path, Fault(stall_after=150_000, stall_seconds=3.0))
    download("toy_a", tmp_path, **{**fast, "timeout": 0.3})
    first, second = stub.requests(file_path)
    assert first.range_start is None and second.range_start == 150_000
    assert is_installed(tmp_path, "toy_a")


def test_wrong_checksum_is_a_clear_error_and_installs_nothing(
    stub: ZenodoStub, toy_zip: bytes, fast: dict[str, Any], tmp_path: Path
) -> None:
    stub.add(REC, "toy_a.zip", toy_zip, md5="0123456789abcdef0123456789abcdef")
    with pytest.raises(ChecksumMismatchError) as info:
        download("toy_a", tmp_path, **fast)
    message = str(info.value)
    target = tmp_path / ".medimeta" / "downloads" / "toy_a.zip"
    assert "0123456789abcdef0123456789abcdef" in message
    assert stub.base + stub.file_path(REC, "toy_a.zip") in message
    assert str(target) in message and "--from DIR" in message and "md5sum" in message
    assert not target.exists() and not target.with_name("toy_a.zip.part").exists()
    assert_nothing_installed(tmp_path, "toy_a")


def test_truncated_download_is_refused(
    stub: ZenodoStub, toy_zip: bytes, fast: dict[str, Any], tmp_path: Path
) -> None:
    stub.add(REC, "toy_a.zip", toy_zip)
    # The server sends a complete-looking but shorter body (its Content-Length agrees).
    stub.state.always[stub.file_path(REC, "toy_a.zip")] = Fault(body=toy_zip[: len(toy_zip) // 2])
    with pytest.raises(ChecksumMismatchError, match=f"expected {len(toy_zip)} bytes"):
        download("toy_a", tmp_path, **fast)
    assert_nothing_installed(tmp_path, "toy_a")


def test_truncated_zip_with_matching_checksum_fails_extraction(
    stub: ZenodoStub, toy_zip: bytes, fast: dict[str, Any], tmp_path: Path
) -> None:
    stub.add(REC, "toy_a.zip", toy_zip[: len(toy_zip) - 5000])  # the record itself is bad
    with pytest.raises(FormatError, match="zip"):
        download("toy_a", tmp_path, **fast)
    assert_nothing_installed(tmp_path, "toy_a")


def test_zip_slip_archive_is_refused(
    stub: ZenodoStub, toy_zip: bytes, fast: dict[str, Any], tmp_path: Path
) -> None:
    root = tmp_path / "root"
    stub.add(REC, "toy_a.zip", add_members(toy_zip, {"toy_a/../../escaped.txt": b"x"}))
    with pytest.raises(UnsafeArchiveError, match=r"escaped\.txt"):
        download("toy_a", root, **fast)
    assert not (tmp_path / "escaped.txt").exists() and not (root / "escaped.txt").exists()
    assert_nothing_installed(root, "toy_a")


@pytest.mark.parametrize("top_folder", [True, False])
def test_zip_with_or_without_top_folder(
    stub: ZenodoStub, fast: dict[str, Any], tmp_path: Path, top_folder: bool
) -> None:
    stub.add(REC, "toy_b.zip", dataset_zip("toy_b", top_folder=top_folder))
    path = download("toy_b", tmp_path, **fast)
    assert verify_dataset(path).ok
    assert sorted(p.name for p in path.iterdir()) == [
        MARKER,
        "LICENSE",
        "annotations.csv",
        "images",
        "images.hdf5",
        "info.yaml",
        "original_splits",
        "splits",
        "task_labels",
    ]


def test_server_errors_are_retried(
    stub: ZenodoStub, toy_zip: bytes, fast: dict[str, Any], tmp_path: Path
) -> None:
    stub.add(REC, "toy_a.zip", toy_zip)
    stub.queue(stub.record_path(REC), Fault(status=503))
    stub.queue(stub.file_path(REC, "toy_a.zip"), Fault(status=500), Fault(status=502))
    download("toy_a", tmp_path, **fast)
    assert [e.status for e in stub.requests(stub.record_path(REC))] == [503, 200]
    assert [e.status for e in stub.requests(stub.file_path(REC, "toy_a.zip"))] == [500, 502, 200]
    assert is_installed(tmp_path, "toy_a")


def test_persistent_server_error_names_url_checksum_target_and_fix(
    stub: ZenodoStub, toy_zip: bytes, fast: dict[str, Any], tmp_path: Path
) -> None:
    entry = stub.add(REC, "toy_a.zip", toy_zip)
    stub.state.always[stub.file_path(REC, "toy_a.zip")] = Fault(status=500)
    with pytest.raises(DownloadError) as info:
        download("toy_a", tmp_path, **{**fast, "retries": 2})
    message = str(info.value)
    assert "HTTP 500" in message and "3 attempts" in message
    assert stub.base + stub.file_path(REC, "toy_a.zip") in message
    assert entry.md5 in message and f"{len(toy_zip):,} bytes" in message
    assert str(tmp_path / ".medimeta" / "downloads" / "toy_a.zip") in message
    assert "--offline --from DIR" in message
    assert len(stub.requests(stub.file_path(REC, "toy_a.zip"))) == 3
    assert_nothing_installed(tmp_path, "toy_a")


def test_not_found_fails_without_retrying(
    stub: ZenodoStub, toy_zip: bytes, fast: dict[str, Any], tmp_path: Path
) -> None:
    stub.add(REC, "toy_a.zip", toy_zip)
    stub.state.always[stub.file_path(REC, "toy_a.zip")] = Fault(status=404)
    with pytest.raises(DownloadError, match="HTTP 404"):
        download("toy_a", tmp_path, **fast)
    assert len(stub.requests(stub.file_path(REC, "toy_a.zip"))) == 1


def test_unknown_dataset_id_lists_the_record(
    stub: ZenodoStub, toy_zip: bytes, fast: dict[str, Any], tmp_path: Path
) -> None:
    stub.add(REC, "toy_a.zip", toy_zip)
    with pytest.raises(UnknownNameError, match="did you mean 'toy_a'"):
        download("toy_aa", tmp_path, **fast)
    with pytest.raises(UnknownNameError):
        download("../toy_a", tmp_path, **fast)


def test_dataset_failing_verify_is_not_installed(
    stub: ZenodoStub, fast: dict[str, Any], tmp_path: Path
) -> None:
    import io
    import zipfile

    good = zipfile.ZipFile(io.BytesIO(dataset_zip("toy_a")))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for info in good.infolist():
            if info.filename != "toy_a/splits/test.txt":  # info.yaml says test has 1 sample
                zf.writestr(info, good.read(info))
    stub.add(REC, "toy_a.zip", buf.getvalue())
    with pytest.raises(FormatError, match="fails verification"):
        download("toy_a", tmp_path, **fast)
    assert_nothing_installed(tmp_path, "toy_a")


def test_offline_uses_local_zips_only(
    stub: ZenodoStub, toy_zip: bytes, fast: dict[str, Any], tmp_path: Path
) -> None:
    root = tmp_path / "root"
    zips = tmp_path / "zips"
    zips.mkdir()
    (zips / "toy_a.zip").write_bytes(toy_zip)
    offline = {**fast, "offline": True, "mirror": "http://127.0.0.1:9"}  # nothing listens there
    # No manifest cached and no zip anywhere: a clear error, no network.
    with pytest.raises(DatasetNotFoundError, match="offline mode"):
        download("toy_a", root, **offline)
    # A zip in --from DIR, no manifest: installed, recorded as unchecked.
    path = download("toy_a", root, **offline, from_dir=zips)
    marker = read_marker(path)
    assert marker is not None and not marker["checksum_verified"]
    assert (zips / "toy_a.zip").is_file()  # the user's file is left alone
    assert stub.state.log == []


def test_offline_with_cached_manifest_checks_local_zips(
    stub: ZenodoStub, toy_zip: bytes, fast: dict[str, Any], tmp_path: Path
) -> None:
    stub.add(REC, "toy_a.zip", toy_zip)
    stub.add(REC, "toy_b.zip", dataset_zip("toy_b"))
    root = tmp_path / "root"
    download("toy_b", root, **fast)  # caches the manifest
    n_requests = len(stub.state.log)
    (root / "toy_a.zip").write_bytes(toy_zip[:-10] + b"0123456789")  # damaged copy in the root
    with pytest.raises(ChecksumMismatchError, match="does not match the published file"):
        download("toy_a", root, **fast, offline=True)
    (root / "toy_a.zip").write_bytes(toy_zip)
    path = download("toy_a", root, **fast, offline=True)
    marker = read_marker(path)
    assert marker is not None and marker["checksum_verified"]
    assert len(stub.state.log) == n_requests  # offline: not a single request


def test_existing_unmarked_folder_is_not_overwritten_without_force(
    stub: ZenodoStub, toy_zip: bytes, fast: dict[str, Any], tmp_path: Path
) -> None:
    stub.add(REC, "toy_a.zip", toy_zip)
    mine = tmp_path / "toy_a"
    mine.mkdir()
    (mine / "notes.txt").write_text("my own work")
    with pytest.raises(DownloadError, match="not a completed download"):
        download("toy_a", tmp_path, **fast)
    assert (mine / "notes.txt").is_file() and stub.requests(stub.file_path(REC, "toy_a.zip")) == []
    path = download("toy_a", tmp_path, **fast, force=True)
    assert not (path / "notes.txt").exists() and is_installed(tmp_path, "toy_a")


def test_interrupted_install_leftovers_are_cleaned(
    stub: ZenodoStub, toy_zip: bytes, fast: dict[str, Any], tmp_path: Path
) -> None:
    stub.add(REC, "toy_a.zip", toy_zip)
    path = download("toy_a", tmp_path, **fast)
    # Simulate a crash after the rename and before the marker: the folder is ours, unmarked.
    (path / MARKER).unlink()
    staging = tmp_path / ".medimeta" / "staging"
    (staging / "toy_a.pending.json").write_text("{}")
    (staging / "toy_a" / "tmpstale" / "toy_a").mkdir(parents=True)
    (staging / ".trash-old" / "x").mkdir(parents=True)
    assert not is_installed(tmp_path, "toy_a")
    download("toy_a", tmp_path, **fast)
    assert is_installed(tmp_path, "toy_a")
    assert sorted(p.name for p in staging.iterdir()) == []


def test_dry_run_plan_changes_nothing(
    stub: ZenodoStub, toy_zip: bytes, fast: dict[str, Any], tmp_path: Path
) -> None:
    stub.add(REC, "toy_a.zip", toy_zip)
    stub.add(REC, "toy_b.zip", b"x" * 1000)
    items = plan(["toy_a", "toy_b"], tmp_path, **fast)
    assert [(i.name, i.action, i.nbytes) for i in items] == [
        ("toy_a", "download", len(toy_zip)),
        ("toy_b", "download", 1000),
    ]
    assert list(tmp_path.iterdir()) == []
    part = tmp_path / ".medimeta" / "downloads" / "toy_b.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 400)
    assert plan(["toy_b"], tmp_path, **fast)[0].nbytes == 600
