"""Dry runs: what fetching a record file would transfer, without touching the disk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medimeta.fetch.obtain import local_candidates
from medimeta.fetch.options import FetchOptions, FetchPaths
from medimeta.fetch.zenodo import RemoteFile


@dataclass(frozen=True)
class PlanItem:
    """What a run would do for one dataset (``--dry-run``).

    ``action`` is ``installed``, ``local`` (a copy is already on disk), ``download``, ``resume``,
    ``missing`` (offline and no copy) or ``unreachable`` (the record could not be reached: the
    file would be downloaded from ``source``, size unknown); ``nbytes`` is what would be
    transferred, ``size`` the file's full size when known, ``source`` the URL or local path.
    """

    name: str
    action: str
    nbytes: int
    size: int | None
    source: str


def plan_file(
    name: str,
    root: Path,
    key: str,
    remote: RemoteFile | None,
    options: FetchOptions,
    *,
    unreachable_url: str | None = None,
) -> PlanItem:
    """The plan for record file ``key``. Local copies are matched by name and size only
    (hashing gigabytes is left to the real run). ``unreachable_url``: the record could not be
    reached; the file would come from there (action ``unreachable``, size unknown)."""
    size = remote.size if remote is not None else None
    local = [p for p in local_candidates(root, key, options) if p.is_file()]
    local = [p for p in local if size is None or p.stat().st_size == size]
    if local:
        return PlanItem(name, "local", 0, size, str(local[0]))
    if unreachable_url is not None and not options.offline:
        return PlanItem(name, "unreachable", 0, None, unreachable_url)
    if options.offline or remote is None:
        return PlanItem(name, "missing", 0, size, "")
    part = FetchPaths(root).part(key)
    have = part.stat().st_size if part.is_file() else 0
    have = have if have < remote.size else 0
    action = "resume" if have else "download"
    return PlanItem(name, action, remote.size - have, size, remote.url(options.base))
