"""torchrun with two CPU processes (gloo) reproduces the single-process loss curve."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ddp_train_worker import CONFIG

from medimeta.runs.record import read_run
from medimeta.train import train_supervised
from medimeta.train.settings import RunSettings

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_torchrun_two_processes_match_single_process(learn_root: Path, tmp_path: Path) -> None:
    single = train_supervised(
        learn_root,
        "learn",
        "case category",
        backbone="tiny_cnn",
        config=CONFIG,
        seed=3,
        run=RunSettings(out_dir=tmp_path / "single", resume=False),
    )
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(
            [str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")]
        ),
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        str(HERE / "ddp_train_worker.py"),
        str(learn_root),
        str(tmp_path / "ddp"),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = json.loads((tmp_path / "ddp" / "history.json").read_text())
    assert len(ddp) == len(single.history) == CONFIG.epochs
    for key in ("train_loss", "val_loss", "val_auroc"):
        a = np.array([row[key] for row in single.history])
        b = np.array([row[key] for row in ddp])
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5, err_msg=key)
    record = read_run(tmp_path / "ddp")
    assert record.protocol["world_size"] == 2
    assert record.details["test"]["metrics"] == pytest.approx(single.test_metrics, abs=1e-4)
