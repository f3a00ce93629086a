"""Interrupting a build with real signals: nothing half-built is visible, the re-run completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from fixtures.writing import (
    SLOW_INFO,
    find_original_loader_source,
    original_loader,
    slow_image,
    slow_records,
    tree_bytes,
)
from medimeta.format.reader import find_datasets
from medimeta.format.verify import verify_dataset
from medimeta.format.writer import write_dataset

N = 240
HERE = Path(__file__).resolve().parents[1]  # tests/, where fixtures/ lives
SCRIPT = """
import signal
import sys
# a build started from a background shell job inherits SIGINT ignored: Ctrl-C must reach it
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {here!r})
from fixtures.writing import SLOW_INFO, slow_image, slow_records
from medimeta.format.writer import write_dataset

write_dataset(sys.argv[1], SLOW_INFO, slow_records({n}), slow_image, workers=2, chunksize=4,
              progress=lambda done, total: print(done, flush=True))
print("finished", flush=True)
"""

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


def _start(root: Path) -> subprocess.Popen[str]:
    code = SCRIPT.format(here=str(HERE), n=N)
    return subprocess.Popen(
        [sys.executable, "-c", code, str(root), "medimeta-signal-test"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_progress(proc: subprocess.Popen[str], at_least: int) -> int:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip().isdigit() and int(line) >= at_least:
            return int(line)
    raise AssertionError(f"build ended before {at_least} samples: {proc.stderr.read()}")  # type: ignore[union-attr]


def _build_processes(root: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "medimeta-signal-test" in cmdline and str(root) in cmdline:
            found.append(proc)
    return found


def _wait_gone(root: Path, timeout: float = 15.0) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = _build_processes(root)
        if not left:
            return []
        time.sleep(0.05)
    return _build_processes(root)


def _assert_nothing_loadable(root: Path) -> None:
    assert not (root / "killme").exists()
    assert find_datasets(root) == {}
    for sub in root.iterdir():
        if sub.is_dir():
            assert not verify_dataset(sub).ok
    source = find_original_loader_source()
    if source is not None:  # the original loader scans root/*/info.yaml the same way
        with original_loader(source) as loader:
            assert loader.get_available_datasets(str(root)) == []


@pytest.fixture(scope="module")
def clean_build(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("clean")
    return tree_bytes(write_dataset(root, SLOW_INFO, slow_records(N), slow_image, workers=2))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_interrupted_build_is_invisible_and_resumes(
    tmp_path: Path, sig: int, clean_build: dict[str, bytes]
) -> None:
    root = tmp_path / "root"
    proc = _start(root)
    reached = _wait_for_progress(proc, N // 3)
    proc.send_signal(sig)
    proc.wait(timeout=30)
    assert proc.returncode != 0
    left = _wait_gone(root)
    assert left == [], f"processes of the killed build still run: {left}"
    _assert_nothing_loadable(root)
    staging = list(root.glob(".killme.partial-*"))
    assert len(staging) == 1 and (staging[0] / "journal.jsonl").is_file()
    starts: list[int] = []
    path = write_dataset(
        root,
        SLOW_INFO,
        slow_records(N),
        slow_image,
        workers=2,
        progress=lambda done, total: starts.append(done),
    )
    assert 0 < starts[0] <= reached + 8  # resumed, not restarted
    assert verify_dataset(path, deep=True).ok
    assert tree_bytes(path) == clean_build
    assert not list(root.glob(".killme.partial-*"))
