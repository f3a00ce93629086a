"""File helpers for fetching: MD5/SHA-256 in chunks, size+checksum checks."""

from __future__ import annotations

import hashlib
from pathlib import Path

from medimeta.errors import ChecksumMismatchError

CHUNK = 1024 * 1024


def md5_file(path: Path) -> str:
    """Hex MD5 of a file, read in 1 MiB chunks."""
    # usedforsecurity=False: MD5 is an integrity check here, and FIPS builds refuse it otherwise.
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_problem(
    path: Path, *, size: int | None, md5: str | None, sha256: str | None = None
) -> str | None:
    """Why ``path`` does not match the expected size/MD5/SHA-256, or None when it matches.

    ``sha256`` may be a prefix of the hex digest (torchvision names its files by one): the file
    matches when its digest starts with it.
    """
    if not path.is_file():
        return f"{path} does not exist"
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        return f"size is {actual_size} bytes, expected {size} bytes"
    if md5 is not None:
        actual = md5_file(path)
        if actual != md5.lower():
            return f"md5 is {actual}, expected {md5.lower()}"
    if sha256 is not None:
        actual = sha256_file(path)
        if not actual.startswith(sha256.lower()):
            what = "sha256" if len(sha256) == len(actual) else "sha256 starting with"
            return f"sha256 is {actual}, expected {what} {sha256.lower()}"
    return None


def check_file(path: Path, *, size: int | None, md5: str | None, url: str = "") -> None:
    """Raise ChecksumMismatchError unless ``path`` has the expected size and MD5."""
    problem = file_problem(path, size=size, md5=md5)
    if problem is not None:
        source = f" (from {url})" if url else ""
        raise ChecksumMismatchError(
            f"{path}{source}: {problem}. The file is damaged or incomplete: delete it and "
            "download it again."
        )
