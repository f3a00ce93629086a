"""Hostile release zips and slow servers: every one refused with a clear error, nothing installed.

Each case is one class of fault, generated here (no binary fixtures): links that a later link
redirects, link chains, loops, dangling links, zip-slip members, duplicate or clashing members,
another dataset's zip, unreadable info.yaml, damaged members, special and encrypted members;
then the overall download deadline and the CLI forms (one line, no traceback).
"""

from __future__ import annotations

import io
import stat
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fetch_helpers import add_members, assert_nothing_installed, cli_app, dataset_zip
from fetch_server import Fault, ZenodoStub
from typer.testing import CliRunner

from medimeta.errors import (
    DownloadDeadlineError,
    FormatError,
    OptionError,
    UnsafeArchiveError,
)
from medimeta.fetch import MARKER, FetchOptions, ensure_dataset, is_installed

REC = "7884735"
ID = "toy_a"


def replace_member(data: bytes, name: str, content: bytes) -> bytes:
    """A copy of zip ``data`` with member ``name`` holding ``content`` instead."""
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for info in src.infolist():
            zf.writestr(info, content if info.filename == name else src.read(info))
    return buf.getvalue()


def with_member_info(data: bytes, name: str, edit: Callable[[zipfile.ZipInfo], None]) -> bytes:
    """A copy of zip ``data`` with one extra member whose ZipInfo ``edit`` changes."""
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for info in src.infolist():
            zf.writestr(info, src.read(info))
        info = zipfile.ZipInfo(name)
        edit(info)
        zf.writestr(info, b"payload")
    return buf.getvalue()


def corrupt_member(data: bytes, name: str) -> bytes:
    """Flip one byte inside the (stored) data of member ``name``: its CRC no longer matches."""
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(name)
    header = 30 + len(info.filename.encode()) + len(info.extra)
    at = info.header_offset + header + info.compress_size // 2
    out = bytearray(data)
    out[at] ^= 0xFF
    return bytes(out)


def _fifo(info: zipfile.ZipInfo) -> None:
    info.external_attr = (stat.S_IFIFO | 0o644) << 16


def mark_encrypted(data: bytes, name: str) -> bytes:
    """Set the 'encrypted' flag of member ``name`` in its local and central headers."""
    out = bytearray(data)
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(name)
    out[info.header_offset + 6] |= 0x1
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        size = int.from_bytes(data[at + 28 : at + 30], "little")
        if data[at + 46 : at + 46 + size] == name.encode():
            out[at + 8] |= 0x1
        at = data.find(b"PK\x01\x02", at + 4)
    return bytes(out)


BASE = dataset_zip(ID)

#: class of fault -> (zip bytes, error type, words the message must contain)
ARCHIVES: dict[str, tuple[Callable[[], bytes], type[Exception], tuple[str, ...]]] = {
    # safe when created, redirected by a later link: l1 ends up at the data root
    "link-redirected-later": (
        lambda: add_members(
            BASE, {}, links={f"{ID}/l1": "images/l2/images/../..", f"{ID}/images/l2": ".."}
        ),
        UnsafeArchiveError,
        ("'l1'", "outside the dataset folder", "once the whole archive is extracted"),
    ),
    "link-chain-escapes": (
        lambda: add_members(
            BASE,
            {},
            links={
                f"{ID}/first": "second",
                f"{ID}/second": "images/hop/../..",
                f"{ID}/images/hop": "..",
            },
        ),
        UnsafeArchiveError,
        ("outside the dataset folder",),
    ),
    "link-dangling": (
        lambda: add_members(BASE, {}, links={f"{ID}/nowhere.tiff": "images/missing.tiff"}),
        UnsafeArchiveError,
        ("'nowhere.tiff'", "leads nowhere"),
    ),
    "link-loop": (
        lambda: add_members(BASE, {}, links={f"{ID}/images/self": "."}),
        UnsafeArchiveError,
        ("'images/self'", "a loop"),
    ),
    "link-absolute": (
        lambda: add_members(BASE, {}, links={f"{ID}/passwd": "/etc/passwd"}),
        UnsafeArchiveError,
        ("'/etc/passwd'", "points outside"),
    ),
    "member-zip-slip": (
        lambda: add_members(BASE, {f"{ID}/../../evil.txt": b"pwned"}),
        UnsafeArchiveError,
        ("evil.txt", "'..'"),
    ),
    "member-listed-twice": (
        lambda: add_members(BASE, {f"{ID}/info.yaml": b"id: someone_else\n"}),
        UnsafeArchiveError,
        ("info.yaml", "listed twice"),
    ),
    "file-and-folder": (
        lambda: add_members(BASE, {f"{ID}/extra": b"a file", f"{ID}/extra/inner.txt": b"x"}),
        UnsafeArchiveError,
        ("'toy_a/extra'", "also a folder"),
    ),
    "member-below-a-link": (
        lambda: add_members(BASE, {f"{ID}/via/evil.txt": b"x"}, links={f"{ID}/via": "images"}),
        UnsafeArchiveError,
        ("'toy_a/via'", "also a folder"),
    ),
    "link-target-not-utf8": (
        lambda: replace_member(
            add_members(BASE, {}, links={f"{ID}/bad": "images"}), f"{ID}/bad", b"\xff\xfe"
        ),
        UnsafeArchiveError,
        ("'toy_a/bad'", "not UTF-8"),
    ),
    "special-file": (
        lambda: with_member_info(BASE, f"{ID}/pipe", _fifo),
        UnsafeArchiveError,
        ("'toy_a/pipe'", "not a file, folder or link"),
    ),
    "encrypted-member": (
        lambda: mark_encrypted(add_members(BASE, {f"{ID}/secret.bin": b"x"}), f"{ID}/secret.bin"),
        UnsafeArchiveError,
        ("secret.bin", "encrypted"),
    ),
    "other-dataset": (
        lambda: dataset_zip("toy_b"),
        FormatError,
        ("holds dataset 'toy_b', not 'toy_a'", "expected: 'toy_a'", "actual: 'toy_b'"),
    ),
    "info-yaml-not-text": (
        lambda: replace_member(BASE, f"{ID}/info.yaml", b"\xff\xfe\x00garbage"),
        FormatError,
        ("info.yaml cannot be read", "UnicodeDecodeError"),
    ),
    "info-yaml-not-yaml": (
        lambda: replace_member(BASE, f"{ID}/info.yaml", b"id: [unclosed\n  - x: {"),
        FormatError,
        ("info.yaml cannot be read",),
    ),
    "info-yaml-without-id": (
        lambda: replace_member(BASE, f"{ID}/info.yaml", b"name: no id here\n"),
        FormatError,
        ("names no dataset id",),
    ),
    "member-crc-damaged": (
        lambda: corrupt_member(BASE, f"{ID}/images.hdf5"),
        FormatError,
        ("archive is damaged", "BadZipFile", "toy_a/images.hdf5"),
    ),
    "not-a-zip": (
        lambda: b"PK\x03\x04 this is not really a zip archive" * 10,
        FormatError,
        ("not a readable zip archive",),
    ),
}


def _install(tmp_path: Path, data: bytes) -> tuple[Path, Path]:
    zips = tmp_path / "zips"
    zips.mkdir(exist_ok=True)
    (zips / f"{ID}.zip").write_bytes(data)
    root = tmp_path / "root"
    return root, zips


@pytest.mark.filterwarnings("ignore:Duplicate name")  # written on purpose
@pytest.mark.parametrize("fault", sorted(ARCHIVES))
def test_hostile_archive_is_refused_and_nothing_installed(tmp_path: Path, fault: str) -> None:
    make, error, words = ARCHIVES[fault]
    data = make()
    root, zips = _install(tmp_path, data)
    with pytest.raises(error) as info:
        ensure_dataset(root, ID, offline=True, from_dir=zips, quiet=True)
    text = str(info.value)
    assert f"{ID}.zip" in text, text
    for word in words:
        assert word in text, (word, text)
    assert "Traceback" not in text
    assert_nothing_installed(root, ID)
    assert not list(root.rglob(MARKER))
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path.parent / "evil.txt").exists()
    assert (zips / f"{ID}.zip").read_bytes() == data  # the user's zip is never touched


def test_inner_links_that_stay_inside_still_install(tmp_path: Path) -> None:
    ok = add_members(
        BASE, {}, links={f"{ID}/first.tiff": "images/000000.tiff", f"{ID}/pictures": "images"}
    )
    root, zips = _install(tmp_path, ok)
    path = ensure_dataset(root, ID, offline=True, from_dir=zips, quiet=True)
    assert (path / "pictures" / "000000.tiff").is_file() and is_installed(root, ID)


@pytest.mark.parametrize("fault", ["link-redirected-later", "other-dataset", "not-a-zip"])
def test_cli_reports_one_line_without_traceback(tmp_path: Path, fault: str) -> None:
    root, zips = _install(tmp_path, ARCHIVES[fault][0]())
    args = ["download", ID, "--offline", "--from", str(zips), "--root", str(root), "-q"]
    result = CliRunner().invoke(cli_app(), args)
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and f"error: {ID}:" in result.stderr
    assert f"{ID}.zip" in result.stderr
    assert_nothing_installed(root, ID)


# -- the overall deadline -------------------------------------------------------------------


def _part(root: Path) -> Path:
    return root / ".medimeta" / "downloads" / f"{ID}.zip.part"


def test_deadline_stops_a_stalled_download_keeps_the_part_and_resumes(
    stub: ZenodoStub, toy_zip: bytes, fast: dict[str, Any], tmp_path: Path
) -> None:
    stub.add(REC, f"{ID}.zip", toy_zip)
    path = stub.file_path(REC, f"{ID}.zip")
    stub.queue(path, Fault(stall_after=40_000))  # sends 40 kB, then nothing until released
    root = tmp_path / "root"
    started = time.monotonic()
    with pytest.raises(DownloadDeadlineError) as info:
        ensure_dataset(root, ID, **fast, deadline=0.6)
    assert time.monotonic() - started < 8
    text = str(info.value)
    assert "deadline of 0.6 s reached" in text and f"40,000 of {len(toy_zip):,} bytes" in text
    assert "again to resume" in text and f"{ID}.zip" in text
    assert isinstance(info.value, TimeoutError)
    assert _part(root).stat().st_size == 40_000  # kept for resuming
    assert_nothing_installed(root, ID)
    stub.state.release.set()
    ensure_dataset(root, ID, **fast)
    assert is_installed(root, ID)
    assert stub.requests(path)[-1].range_start == 40_000  # resumed, not restarted


def test_deadline_cuts_retry_waits_short(
    stub: ZenodoStub, toy_zip: bytes, fast: dict[str, Any], tmp_path: Path
) -> None:
    stub.add(REC, f"{ID}.zip", toy_zip)
    stub.state.always[stub.file_path(REC, f"{ID}.zip")] = Fault(status=503)
    root = tmp_path / "root"
    started = time.monotonic()
    opts = {**fast, "backoff": 20.0, "max_backoff": 20.0, "retries": 50}
    with pytest.raises(DownloadDeadlineError, match=r"deadline of 0.5 s reached: 0 of"):
        ensure_dataset(root, ID, **opts, deadline=0.5)
    assert time.monotonic() - started < 8  # not 50 waits of 20 s
    assert_nothing_installed(root, ID)


def test_cli_deadline_is_one_line_and_resumable(
    stub: ZenodoStub, toy_zip: bytes, tmp_path: Path
) -> None:
    stub.add(REC, f"{ID}.zip", toy_zip)
    stub.queue(stub.file_path(REC, f"{ID}.zip"), Fault(stall_after=10_000))
    root = tmp_path / "root"
    args = ["download", ID, "--root", str(root), "--mirror", stub.base, "-q", "--deadline", "0.5"]
    result = CliRunner().invoke(cli_app(), args)
    stub.state.release.set()
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "deadline of" in result.stderr and "resume" in result.stderr
    assert _part(root).stat().st_size == 10_000
    assert_nothing_installed(root, ID)


@pytest.mark.parametrize("value", [-1.0, float("nan"), "soon"])
def test_bad_deadline_is_an_option_error(value: object) -> None:
    with pytest.raises(OptionError, match="deadline must be a number of seconds >= 0"):
        FetchOptions(deadline=value)  # type: ignore[arg-type]
