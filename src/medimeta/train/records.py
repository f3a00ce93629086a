"""Result files: JSON and CSV written atomically, the protocol facts every result records,
and :class:`TrainResult`, what a supervised run hands back."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import medimeta.safeio as safeio
from medimeta.catalog.tasks import TaskSpec
from medimeta.format.reader import DatasetFolder

Log = Callable[[str], None]


@dataclass
class TrainResult:
    """What a run produced; ``record`` is the content of ``result.json``."""

    out_dir: Path
    record: dict[str, Any]
    history: list[dict[str, Any]]

    @property
    def test_metrics(self) -> dict[str, float]:
        return dict(self.record["test"]["metrics"])


def jsonable(value: Any) -> Any:
    """Plain JSON data: NaN/inf become null, numpy and tensor scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, torch.Tensor):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Pretty, standard JSON (no NaN tokens), written atomically."""
    return safeio.write_json(path, jsonable(data), allow_nan=False)


def read_json(path: str | os.PathLike[str]) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_csv(path: str | os.PathLike[str], rows: Sequence[dict[str, Any]]) -> Path:
    """Rows with the union of their keys as columns (first-seen order), atomically."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return safeio.write_text(path, buf.getvalue())


def _cell(value: Any) -> Any:
    value = jsonable(value)
    return "" if value is None else value


def environment() -> dict[str, Any]:
    """Toolkit, Python and torch versions, platform and thread count."""
    from medimeta._version import __version__

    return {
        "toolkit": "medimeta-toolkit",
        "version": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }


def dataset_record(folder: DatasetFolder, task: TaskSpec, **extra: Any) -> dict[str, Any]:
    """Which data: dataset id, name, folder, task, target, classes and split sizes."""
    spec = folder.spec
    return {
        "dataset_id": spec.id,
        "dataset_name": spec.name,
        "domain": spec.domain,
        "folder": str(folder.path),
        "num_samples": spec.num_samples,
        "splits": dict(spec.splits),
        "task": task.name,
        "target": task.target.value,
        "classes": {int(k): v for k, v in task.labels.items()},
        **extra,
    }
