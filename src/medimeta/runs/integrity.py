"""Digests that make run folders heal instead of trusting what they find.

* Every JSON result a run writes (its record, each few-shot episode's result) carries
  ``"sha256"``: the sha256 of its own canonical JSON without that key (:func:`seal`). A file
  whose content no longer matches (truncated, edited by hand) is damaged
  (:func:`seal_problem`).
* A run record lists the other files of its folder with their sha256 (``RunRecord.files``,
  :func:`file_digests`); :func:`changed_files` says which of them changed since.

Readers that can recompute (a benchmark cell, a resumed few-shot run) do so with one
:class:`DamagedResultWarning` line per file; readers that cannot (``results merge``) skip the
run with that warning. These digests find damage and careless edits; a forger who rewrites
a file and its digest consistently is not stopped by them, but the checks of the content
behind them (each episode's metrics are recomputed from its predictions) still hold.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

DIGEST_KEY = "sha256"


class DamagedResultWarning(UserWarning):
    """A result file is damaged or was edited: it is recomputed (or left out), never used."""


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def content_sha256(data: Mapping[str, Any]) -> str:
    """sha256 of ``data`` as canonical JSON (sorted keys, no NaN), without its own digest.

    ``data`` is plain JSON data (string keys), as :func:`seal`'s callers pass it and JSON
    files read back give it: the encoder then writes the canonical text itself, and the
    element-wise walk (a third of a warm few-shot run's bookkeeping) is needed only for
    values it refuses (non-finite floats, other mappings)."""
    body = {k: v for k, v in data.items() if k != DIGEST_KEY}
    try:
        text = json.dumps(body, sort_keys=True, allow_nan=False, ensure_ascii=True)
    except (TypeError, ValueError):
        text = json.dumps(_canonical(body), sort_keys=True, allow_nan=False, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def seal(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with its digest added (call on plain JSON data: see ``runs.files.jsonable``)."""
    return {**data, DIGEST_KEY: content_sha256(data)}


def seal_problem(data: Mapping[str, Any], *, required: bool = True) -> str | None:
    """Why ``data`` does not match its digest (None: it does; a missing digest is a problem
    when ``required``)."""
    recorded = data.get(DIGEST_KEY)
    if recorded is None:
        return "it carries no sha256 (written by an earlier version)" if required else None
    actual = content_sha256(data)
    if recorded != actual:
        return f"its content does not match its sha256 (recorded {str(recorded)[:12]}…, " \
            f"content {actual[:12]}…): edited or damaged after it was written"  # fmt: skip
    return None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digests(folder: Path, names: Iterable[str]) -> dict[str, str]:
    """``{name: sha256}`` of the files ``names`` (relative to ``folder``) that exist."""
    return {n: file_sha256(folder / n) for n in sorted(set(names)) if (folder / n).is_file()}


def changed_files(folder: Path, files: Mapping[str, str]) -> list[str]:
    """The files of ``files`` (name -> sha256) that are missing or differ, with the reason."""
    out = []
    for name, digest in sorted(files.items()):
        path = folder / name
        if not path.is_file():
            out.append(f"{name} (missing)")
        elif file_sha256(path) != digest:
            out.append(f"{name} (changed)")
    return out
