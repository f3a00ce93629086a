"""Settings of one fetch run, the mirror rule and where fetched files live under a root."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from medimeta._version import __version__
from medimeta.catalog import get_catalog
from medimeta.fetch.network import offline_reason

ZENODO_BASE = "https://zenodo.org"
MIRROR_ENV = "MEDIMETA_MIRROR"


def record_id(name: str = "medimeta") -> str:
    """Zenodo record id from the catalog: the MedIMeta release, or a related record by name."""
    return get_catalog().zenodo_record(name)


def resolve_base(mirror: str | None = None) -> str:
    """The base URL of every request: ``mirror``, else ``$MEDIMETA_MIRROR``, else Zenodo."""
    base = mirror or os.environ.get(MIRROR_ENV) or ZENODO_BASE
    return base.rstrip("/")


def rewrite_url(url: str, base: str) -> str:
    """Replace the ``https://zenodo.org`` prefix of ``url`` with ``base`` (other URLs unchanged)."""
    for prefix in (ZENODO_BASE, "http://zenodo.org"):
        if url == prefix or url.startswith(prefix + "/"):
            return base + url[len(prefix) :]
    return url


@dataclass(frozen=True)
class FetchOptions:
    """How files are fetched: mirror, offline mode, local zips, retries, timeouts, output.

    ``offline`` is also on when ``$MEDIMETA_OFFLINE`` or ``$HF_HUB_OFFLINE`` is set (``1``).

    ``retries`` counts failed attempts that brought no new bytes; an attempt that made progress
    resets the count, so a flaky link still finishes a large file. ``timeout`` bounds each wait
    for data; ``deadline`` (seconds, None: no limit) bounds a whole file transfer, retries and
    waits included: past it the transfer stops with DownloadDeadlineError and the partial file
    is kept, so running again resumes it.
    """

    mirror: str | None = None
    offline: bool = False
    from_dir: Path | None = None
    retries: int = 5
    backoff: float = 1.0
    max_backoff: float = 30.0
    timeout: float = 60.0
    deadline: float | None = None
    lock_timeout: float = 6 * 3600.0
    quiet: bool = False
    keep_archive: bool = False
    refresh_manifest: bool = False
    force: bool = False
    user_agent: str = field(default=f"medimeta-toolkit/{__version__} (python urllib)")

    def __post_init__(self) -> None:
        if not self.offline and offline_reason() is not None:  # MEDIMETA_OFFLINE=1 and friends
            object.__setattr__(self, "offline", True)
        for name in ("timeout", "deadline", "backoff", "max_backoff", "lock_timeout"):
            value = getattr(self, name)
            if value is None and name == "deadline":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                from medimeta.errors import OptionError

                raise OptionError(
                    f"fetch option {name} must be a number of seconds >= 0; got {value!r}"
                    + (" (or None for no deadline)" if name == "deadline" else "")
                )

    @property
    def base(self) -> str:
        return resolve_base(self.mirror)

    @classmethod
    def from_kwargs(cls, options: FetchOptions | None = None, **kwargs: Any) -> FetchOptions:
        """Build options from keyword arguments, starting from ``options`` when given."""
        if "from_dir" in kwargs and kwargs["from_dir"] is not None:
            kwargs["from_dir"] = Path(kwargs["from_dir"])
        unknown = sorted(set(kwargs) - set(cls.__dataclass_fields__))
        if unknown:
            from medimeta.errors import UnknownNameError

            raise UnknownNameError("fetch option", unknown[0], cls.__dataclass_fields__)
        return replace(options or cls(), **kwargs)


@dataclass(frozen=True)
class FetchPaths:
    """The bookkeeping folders under a root (all inside ``<root>/.medimeta``, never scanned)."""

    root: Path

    @property
    def meta(self) -> Path:
        return self.root / ".medimeta"

    @property
    def manifests(self) -> Path:
        return self.meta / "manifests"

    @property
    def downloads(self) -> Path:
        return self.meta / "downloads"

    @property
    def locks(self) -> Path:
        return self.meta / "locks"

    @property
    def staging(self) -> Path:
        return self.meta / "staging"

    def manifest(self, record: str) -> Path:
        return self.manifests / f"zenodo-{record}.json"

    def archive(self, key: str) -> Path:
        return self.downloads / key

    def part(self, key: str) -> Path:
        return self.downloads / (key + ".part")

    def lock(self, name: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return self.locks / f"{safe}.lock"
