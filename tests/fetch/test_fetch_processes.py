"""Real processes: a download killed with SIGKILL resumes; two processes install one id once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fetch_server import Fault, ZenodoStub

from medimeta.fetch import download, is_installed
from medimeta.format.verify import verify_dataset

REC = "7884735"
CHILD = """
import sys
from medimeta.fetch import download
print("ready", flush=True)
path = download(sys.argv[1], sys.argv[2], mirror=sys.argv[3], quiet=True, backoff=0.01, timeout=30)
print(path, flush=True)
"""

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and locks")


def _child(dataset_id: str, root: Path, base: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, dataset_id, str(root), base],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_sigkill_mid_transfer_resumes_from_the_part_file(
    stub: ZenodoStub, toy_zip: bytes, fast: dict[str, Any], tmp_path: Path
) -> None:
    stub.add(REC, "toy_a.zip", toy_zip)
    file_path = stub.file_path(REC, "toy_a.zip")
    stub.queue(file_path, Fault(stall_after=200_000))  # streams 200 kB, then hangs
    part = tmp_path / ".medimeta" / "downloads" / "toy_a.zip.part"
    proc = _child("toy_a", tmp_path, stub.base)
    try:
        _wait_for(lambda: part.is_file() and part.stat().st_size >= 200_000, "partial bytes")
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    stub.state.release.set()
    have = part.stat().st_size
    assert have == 200_000
    assert not (tmp_path / "toy_a").exists()
    download("toy_a", tmp_path, **fast)
    first, second = stub.requests(file_path)
    assert first.range_start is None
    assert second.status == 206 and second.range_start == have > 0
    assert second.sent == len(toy_zip) - have < len(toy_zip)
    assert verify_dataset(tmp_path / "toy_a").ok


def test_two_processes_install_one_dataset_once(
    stub: ZenodoStub, toy_zip: bytes, tmp_path: Path
) -> None:
    stub.add(REC, "toy_a.zip", toy_zip)
    file_path = stub.file_path(REC, "toy_a.zip")
    stub.queue(file_path, Fault(stall_after=100_000))  # hold the first download until released
    procs = [_child("toy_a", tmp_path, stub.base) for _ in range(2)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        # One process is mid-download (holding the lock), the other waits on the lock.
        _wait_for(lambda: len(stub.requests(file_path)) == 1, "the first download")
        time.sleep(0.5)
        assert all(p.poll() is None for p in procs)
        stub.state.release.set()
        outputs = [p.communicate(timeout=60) for p in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert outputs[0][0].strip() == outputs[1][0].strip() == str(tmp_path / "toy_a")
    # The stalled response was cut off when released; the holder resumed it; the other
    # process reused the result without any request of its own.
    requests = stub.requests(file_path)
    assert [r.range_start for r in requests] == [None, requests[0].sent]
    assert len(stub.requests(stub.record_path(REC))) == 1
    assert is_installed(tmp_path, "toy_a") and verify_dataset(tmp_path / "toy_a").ok
