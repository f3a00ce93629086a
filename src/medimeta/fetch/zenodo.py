"""Zenodo record manifests: the file list, sizes and MD5s of a record, fetched once and cached.

The records API (``GET {base}/api/records/<id>``) lists each file as ``{key, size,
checksum: "md5:<hex>", links: {self: URL}}``. The cache keeps every link as a path relative to
the base it came from, so a mirror given later (``--mirror``/``MEDIMETA_MIRROR``) applies to it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from medimeta.errors import DownloadError, FormatError, UnknownNameError
from medimeta.fetch.http import fetch_json
from medimeta.fetch.options import MIRROR_ENV, ZENODO_BASE, FetchOptions, FetchPaths, rewrite_url
from medimeta.safeio import write_json

logger = logging.getLogger(__name__)

MANIFEST_SCHEMA = 1


@dataclass(frozen=True)
class RemoteFile:
    """One file of a record: name, size in bytes, MD5 and where to get it."""

    key: str
    size: int
    md5: str
    link: str  # a path such as "/api/records/7884735/files/bus.zip/content", or an absolute URL

    def url(self, base: str) -> str:
        """The download URL under ``base`` (the mirror rule applied)."""
        if self.link.startswith("/"):
            return base.rstrip("/") + self.link
        return rewrite_url(self.link, base.rstrip("/"))


def public_url(record: str, key: str, base: str) -> str:
    """The record file's public download address under ``base`` (Zenodo's ``/records/<id>/
    files/<name>?download=1``), for hints when the record's file list is not at hand."""
    return f"{base.rstrip('/')}/records/{record}/files/{key}?download=1"


@dataclass(frozen=True)
class Manifest:
    """The files of one Zenodo record."""

    record: str
    files: dict[str, RemoteFile]
    fetched_from: str
    fetched_at: str

    def get(self, key: str, *, kind: str = "file") -> RemoteFile:
        """The file named ``key``; UnknownNameError listing the record's files otherwise."""
        if key not in self.files:
            raise UnknownNameError(kind, key, self.files, where=f"Zenodo record {self.record}")
        return self.files[key]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": MANIFEST_SCHEMA,
            "record": self.record,
            "fetched_from": self.fetched_from,
            "fetched_at": self.fetched_at,
            "files": [
                {"key": f.key, "size": f.size, "md5": f.md5, "link": f.link}
                for f in sorted(self.files.values(), key=lambda f: f.key)
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], path: Path) -> Manifest:
        if data.get("schema") != MANIFEST_SCHEMA:
            raise FormatError(
                path,
                "unknown manifest schema",
                key="schema",
                expected=MANIFEST_SCHEMA,
                actual=data.get("schema"),
                fix="delete the file; it is fetched again",
            )
        files = {
            f["key"]: RemoteFile(str(f["key"]), int(f["size"]), str(f["md5"]), str(f["link"]))
            for f in data["files"]
        }
        return cls(str(data["record"]), files, str(data["fetched_from"]), str(data["fetched_at"]))


def _relative_link(link: str, base: str) -> str:
    """Store links relative to the base they were served from (or to Zenodo)."""
    for prefix in (base.rstrip("/"), ZENODO_BASE, "http://zenodo.org"):
        if link.startswith(prefix + "/"):
            return link[len(prefix) :]
    return link


def parse_record(record: str, data: Any, base: str, url: str) -> Manifest:
    """Build a manifest from a records-API JSON answer; FormatError names what is missing."""
    source = Path(url)
    entries = data.get("files") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise FormatError(source, "records API answer has no 'files' list", key="files")
    files: dict[str, RemoteFile] = {}
    for entry in entries:
        try:
            key = str(entry["key"])
            size = int(entry["size"])
            algorithm, _, digest = str(entry["checksum"]).partition(":")
        except (KeyError, TypeError, ValueError) as err:
            raise FormatError(
                source, f"file entry lacks key/size/checksum: {entry!r}", key="files"
            ) from err
        if algorithm != "md5" or len(digest) != 32:
            raise FormatError(
                source,
                "unsupported checksum",
                key=f"files[{key}].checksum",
                expected="md5:<32 hex digits>",
                actual=entry["checksum"],
            )
        links = entry.get("links") or {}
        link = links.get("self") or links.get("download") or f"/records/{record}/files/{key}"
        files[key] = RemoteFile(key, size, digest.lower(), _relative_link(str(link), base))
    fetched_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return Manifest(record, files, base, fetched_at)


def load_manifest(
    root: Path,
    record: str,
    options: FetchOptions,
    *,
    write_cache: bool = True,
) -> Manifest | None:
    """The record's manifest: from the cache, else from the records API (then cached).

    Returns None only in offline mode when nothing is cached. ``options.refresh_manifest``
    forces a new fetch (ignored offline); ``write_cache=False`` leaves the disk untouched.
    """
    path = FetchPaths(root).manifest(record)
    use_cache = path.is_file() and (options.offline or not options.refresh_manifest)
    if use_cache:
        try:
            return Manifest.from_json(json.loads(path.read_text(encoding="utf-8")), path)
        except (ValueError, KeyError, TypeError) as err:
            if options.offline:
                raise FormatError(
                    path,
                    f"cached manifest is unreadable: {err}",
                    fix="delete it and run once without --offline to fetch it again",
                ) from err
            logger.warning("ignoring unreadable manifest %s: %s", path, err)
    if options.offline:
        return None
    url = f"{options.base}/api/records/{record}"
    try:
        data = fetch_json(url, options)
    except DownloadError as err:
        downloads = FetchPaths(root).downloads
        raise type(err)(
            f"{err}; the file list of Zenodo record {record} is needed to download; fix: "
            f"--mirror URL (or ${MIRROR_ENV}), or put the files in a folder DIR and run with "
            f"--offline --from DIR, or copy them into {downloads} and run with --offline"
        ) from err
    manifest = parse_record(record, data, options.base, url)
    if write_cache:
        write_json(path, manifest.to_json(), sort_keys=True)
    return manifest
