"""Ctrl-C on a long command: it says what was saved and the exact command that resumes, exits
with 130 without a traceback, and the printed command resumes (finished work is kept)."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medimeta.cli.interrupt import (
    NOTHING_KEPT,
    Resume,
    interrupted_message,
    on_interrupt,
    resume_command,
)
from train.train_toys import make_learnable

REPO = Path(__file__).resolve().parents[2]


def test_the_resume_command_adds_and_drops_options() -> None:
    train = Resume(lambda: "the checkpoint", add=("--resume",))
    assert resume_command(["train", "bus", "--root", "my data"], train) == (
        "medimeta train bus --root 'my data' --resume"
    )
    fewshot = Resume(lambda: None, drop=("--fresh",))
    assert resume_command(["fewshot", "--fresh", "--target", "bus"], fewshot) == (
        "medimeta fewshot --target bus"
    )


def test_the_message_names_what_was_saved(capsys: pytest.CaptureFixture[str]) -> None:
    saved = on_interrupt(lambda: "3 finished episodes in runs/x", drop=("--fresh",))
    with pytest.raises(KeyboardInterrupt) as caught, saved:
        raise KeyboardInterrupt
    printed = capsys.readouterr().err
    assert printed == interrupted_message(caught.value, sys.argv[1:]) + "\n"
    assert "saved: 3 finished episodes in runs/x" in printed and "resume with: medimeta" in printed

    def broken() -> str:
        raise OSError("disk gone")

    with pytest.raises(KeyboardInterrupt) as caught, on_interrupt(broken):
        raise KeyboardInterrupt
    assert "could not tell what was saved: OSError: disk gone" in capsys.readouterr().err
    assert interrupted_message(KeyboardInterrupt(), []) == NOTHING_KEPT


def _episodes(out: Path) -> dict[Path, tuple[int, bytes]]:
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.glob("episodes/episode_*.json")}


def _ctrl_c_reaches_it() -> None:
    """In the child: SIGINT as in a terminal (a shell's background job starts with it ignored,
    and Python then never raises KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run_until(args: list[str], out: Path, episodes: int, logs: Path) -> tuple[int, str]:
    """Start ``medimeta ARGS``, press Ctrl-C once ``episodes`` episode files exist."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "COLUMNS": "250"}
    env.pop("MEDIMETA_DEBUG", None)
    with open(logs, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "medimeta", *args],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
            preexec_fn=_ctrl_c_reaches_it,
        )
        try:
            deadline = time.monotonic() + 240
            while len(_episodes(out)) < episodes and time.monotonic() < deadline:
                assert proc.poll() is None, logs.read_text()
                time.sleep(0.1)
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    return code, logs.read_text()


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.timeout(600)
def test_ctrl_c_on_fewshot_prints_a_resume_line_that_resumes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make_learnable(root, "toy_rgb", splits={"train": 30, "val": 0, "test": 60}, channels=3)
    out = tmp_path / "run"
    args = ["fewshot", "--root", str(root), "--target", "toy_rgb", "--method", "im-pt"]
    args += ["--shots", "2", "--query", "3", "--episodes", "100", "--backbone", "tiny_cnn"]
    args += ["--pretrained", "none", "--image-size", "16", "--steps", "5", "--out", str(out)]
    code, err = _run_until(args, out, 3, tmp_path / "first.txt")
    assert code == 130, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert "interrupted" in lines
    saved = next(line for line in lines if line.startswith("saved: "))
    done = _episodes(out)
    assert f"saved: {len(done)} finished episodes in {out / 'episodes'}" in saved, saved
    resume = next(line for line in lines if line.startswith("resume with: "))
    command = shlex.split(resume.removeprefix("resume with: "))
    assert command == ["medimeta", *args]  # the same command: resuming is the default
    code, err = _run_until(command[1:], out, len(done) + 1, tmp_path / "second.txt")
    assert code == 130 and "Traceback" not in err, err
    again = _episodes(out)
    assert len(again) > len(done)
    assert all(again[p] == kept for p, kept in done.items())  # finished ones were not redone
