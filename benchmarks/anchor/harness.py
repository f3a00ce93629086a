"""What the loader and episode benchmarks share: round-robin timing, the three limits measured
in the same run, the peer subprocess, and the machine record.

The limits, for a list of batches of global row indices of one image store:

* ``raw_read``: the same rows copied raw out of the file by the store's fastest way (the
  memory-mapped HDF5 dataset, rows in file order) into one reused uint8 buffer;
* ``write_float_new`` / ``write_float_new_torch`` / ``write_float_reused``: writing the float32
  output once (``fill``), into a newly allocated buffer per batch (numpy's allocator, which
  asks for huge pages, and torch's) or into two alternating reused buffers;
* ``convert_hot``: converting a cache-resident uint8 row (the same one, again and again) into
  every row of a reused float32 buffer with the kernel's arithmetic.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medimeta.data import kernel
from medimeta.format.images import ImageStore

PEER = Path(__file__).resolve().parent / "peer.py"
DEFAULT_ANCHOR = Path("/work/anchor-venv/bin/python")


def timed(fns: dict[str, Callable[[], int]], repeats: int) -> dict[str, list[float]]:
    """Rates (items/s; each function returns how many items it processed) of every repeat:
    one warm-up each, then the repeats round-robin, so load from other processes hits every
    variant alike."""
    for fn in fns.values():
        fn()
    out: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            n = fn()
            out[name].append(n / (time.perf_counter() - t0))
    return out


def medians(rates: dict[str, list[float]]) -> dict[str, float]:
    return {k: round(statistics.median(v), 1) for k, v in rates.items()}


def limits(store: ImageStore, batches: Sequence[np.ndarray]) -> dict[str, Callable[[], int]]:
    """The three limits (see the module docstring) as timing functions, rows/s."""
    b = max(len(x) for x in batches)
    shape = (b, *store.sample_shape)
    raw = np.empty(shape, dtype=np.uint8)
    reused = [np.empty(shape, dtype=np.float32) for _ in range(2)]
    hot = store.read(int(batches[0][0])).reshape(-1)
    scale, shift = np.float32(1 / 127.5), np.float32(-1.0)
    count = sum(len(x) for x in batches)

    def raw_read() -> int:
        for x in batches:
            store.read_batch(x, out=raw[: len(x)])
        return count

    def write_new() -> int:
        for x in batches:
            np.empty((len(x), *shape[1:]), dtype=np.float32).fill(1.0)
        return count

    def write_new_torch() -> int:
        for x in batches:
            torch.empty((len(x), *shape[1:]), dtype=torch.float32).fill_(1.0)
        return count

    def write_reused() -> int:
        for k, x in enumerate(batches):
            reused[k % 2][: len(x)].fill(1.0)
        return count

    def convert_hot() -> int:
        for k, x in enumerate(batches):
            flat = reused[k % 2].reshape(b, -1)
            for pos in range(len(x)):
                kernel.affine_into(hot, flat[pos], scale, shift)
        return count

    return {
        "limit_raw_read": raw_read,
        "limit_write_float_new": write_new,
        "limit_write_float_new_torch": write_new_torch,
        "limit_write_float_reused": write_reused,
        "limit_convert_hot": convert_hot,
    }


def anchor_python(path: Path | None) -> Path | None:
    """The peer interpreter: ``path``, else the default venv if it exists."""
    if path is not None:
        return path
    return DEFAULT_ANCHOR if DEFAULT_ANCHOR.exists() else None


def run_peer(python: Path | None, mode: str, **options: Any) -> dict[str, Any]:
    """Run ``peer.py MODE`` in the anchor interpreter; its JSON record, or why there is none."""
    if python is None:
        return {"available": False, "why": "no --anchor-python (see benchmarks/anchor/setup.sh)"}
    cmd = [str(python), "-I", str(PEER), mode]
    for key, value in options.items():
        cmd += [f"--{key}", str(value)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd="/", check=False)
    if proc.returncode != 0:
        return {"available": False, "why": proc.stderr.strip().splitlines()[-1:]}
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    record["available"] = True
    return record


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def machine() -> dict[str, Any]:
    import h5py

    from medimeta._version import __version__

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "medimeta_toolkit": __version__,
        "numpy": np.__version__,
        "torch": torch.__version__,
        "h5py": h5py.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    try:
        import psutil

        info["memory_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    return info


def show(values: dict[str, float], unit: str, peer_key: str) -> None:
    """Print every figure; beside each of ours, its ratio to the peer and to the limits of the
    same run (raw read, float write new/reused, hot conversion)."""
    beside = [
        (peer_key, "peer"),
        ("limit_raw_read", "raw"),
        ("limit_write_float_new", "new"),
        ("limit_write_float_reused", "reused"),
        ("limit_convert_hot", "hot"),
    ]
    for key, value in values.items():
        line = f"  {key:40s} {value:11.1f} {unit}"
        if key.startswith("ours"):
            parts = [f"{value / values[k]:6.2f}x {label}" for k, label in beside if values.get(k)]
            line += "   " + "  ".join(parts)
        print(line)
    sys.stdout.flush()
