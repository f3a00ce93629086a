"""Safe file-system primitives: atomic writes and archive-member paths.

Every file the toolkit persists is written through a temporary file in the target's folder,
flushed to disk, then renamed over the target, so a crash leaves either the old file or the
new one, never half of one. :func:`replace` is the toolkit's one ``os.replace``; folders that
are swapped into place (a finished dataset, an installed release) go through it too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from medimeta.errors import UnsafeArchiveError

_DRIVE = re.compile(r"^[A-Za-z]:")


def _umask() -> int:
    # reading the umask means setting it; set it straight back
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Rename ``src`` over ``dst`` in one step (files or folders on the same file system)."""
    os.replace(src, dst)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``path``; renamed onto ``path`` when the block succeeds.

    For writers that take a file name (safetensors, h5py). The temporary file is removed if the
    block raises.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    # mkstemp creates 0600 files; a written file gets the usual mode (0666 less the umask)
    os.chmod(fd, 0o666 & ~_umask())
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """An open temporary file beside ``path`` (``"w"`` text UTF-8, ``"wb"`` bytes), fsynced
    and renamed onto ``path`` when the block succeeds."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open mode must be 'w' or 'wb'; got {mode!r}")
    with atomic_path(path) as tmp:
        fh: IO[Any]
        if mode == "w":
            fh = open(tmp, "w", encoding="utf-8", newline="\n")  # noqa: SIM115 - closed below
        else:
            fh = open(tmp, "wb")  # noqa: SIM115 - closed below
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (``\\n`` line ends)."""
    with atomic_open(path, "w") as fh:
        fh.write(text)
    return Path(path)


def write_json(path: str | os.PathLike[str], data: Any, **dumps: Any) -> Path:
    """Write ``data`` as JSON (``indent=2`` unless given, then a newline) atomically.

    ``dumps`` are :func:`json.dumps` options (``sort_keys``, ``allow_nan``, ``ensure_ascii``).
    """
    dumps.setdefault("indent", 2)
    return write_text(path, json.dumps(data, **dumps) + "\n")


def archive_member_parts(
    archive: str | os.PathLike[str], name: str, *, windows_separators: bool = False
) -> tuple[str, ...]:
    """The path parts of archive member ``name``; UnsafeArchiveError if it could leave the
    folder it is extracted or read into.

    Absolute paths, drive letters, NUL bytes and ``..`` parts are refused. A backslash is a
    path separator when ``windows_separators`` (raw public sources zipped on Windows), else it
    is refused (a MedIMeta release never contains one).
    """
    problem = None
    if "\x00" in name:
        problem = "contains a NUL byte"
    elif "\\" in name and not windows_separators:
        problem = "contains a backslash (a Windows path separator)"
    elif name.startswith(("/", "\\")) or _DRIVE.match(name):
        problem = "is an absolute path"
    text = name.replace("\\", "/") if windows_separators else name
    parts = tuple(p for p in text.split("/") if p not in ("", "."))
    if problem is None and ".." in parts:
        problem = "contains '..'"
    if problem is None and not parts:
        problem = "is empty"
    if problem is not None:
        raise UnsafeArchiveError(
            f"{archive}: member {name!r} {problem}; refusing to use this archive (nothing was "
            "written from it). Get the file from its publisher or the official record again."
        )
    return parts


def writable_cache(directory: Path, what: str) -> bool:
    """Whether cache folder ``directory`` can be written (made if absent); warns once and
    returns False when not, so that the caller computes for this run only."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        write_text(directory / ".writable", "ok\n")
        return True
    except OSError as exc:
        import warnings

        warnings.warn(
            f"{what} {directory} cannot be written ({exc}); results are computed for this run "
            "only; pass --cache DIR or set $MEDIMETA_CACHE",
            RuntimeWarning,
            stacklevel=3,
        )
        return False


def wait_for(
    path: Path, check: Callable[[], bool], what: str, timeout: float = 7 * 24 * 3600
) -> None:
    """Poll for a file another rank writes (no collective, so no process-group timeout)."""
    start = time.monotonic()
    while not (path.is_file() and check()):
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"waited {timeout:.0f} s for {what} at {path}")
        time.sleep(2.0)
