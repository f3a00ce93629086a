"""Result files as plain data: JSON (no NaN tokens, numpy and tensor values converted) and CSV,
written atomically, and :func:`environment`, the versions every result records."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import medimeta.safeio as safeio
from medimeta.escape import csv_cell


def jsonable(value: Any) -> Any:
    """Plain JSON data: NaN/inf become null, numpy and tensor scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "iub" or (value.dtype.kind == "f" and np.isfinite(value).all()):
            return value.tolist()  # plain ints, bools and finite floats: nothing to replace
        return jsonable(value.tolist())
    torch = sys.modules.get("torch")  # a tensor can only exist once torch is imported
    if torch is not None and isinstance(value, torch.Tensor):
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
    return "" if value is None else csv_cell(value)  # text never runs as a formula


def environment() -> dict[str, Any]:
    """Toolkit, Python and torch versions, platform and thread count."""
    import torch

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


def read_json_object(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A JSON file that must hold an object; FormatError (naming the file) otherwise."""
    from medimeta.errors import FormatError

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(path, f"cannot be read as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise FormatError(path, "must hold a JSON object", actual=type(data).__name__)
    return data
