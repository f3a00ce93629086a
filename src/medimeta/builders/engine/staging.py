"""Copy raw files out of tar and nested archives once, before many are read.

Reading a member of a ``.tar.gz`` means decompressing everything before it, so the driver
copies every file a build needs from such archives (and from archives inside archives) to a
work folder in one streaming pass per archive. Zip members of an archive on disk are read in
place and are not copied.
"""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import IO

from medimeta.builders.engine.archives import archive_kind, open_chain, seekable
from medimeta.builders.engine.tree import SourceFile


def stage_files(files: Sequence[SourceFile], workdir: Path) -> list[SourceFile]:
    """Copy files that live in tar or nested archives to ``workdir``; return readable files.

    Each archive is streamed once. Files that can be read directly are returned unchanged;
    the order of ``files`` is kept.
    """
    groups: dict[tuple[Path, tuple[str, ...]], list[int]] = {}
    for i, f in enumerate(files):
        if f.needs_staging:
            groups.setdefault((f.origin, f.members[:-1]), []).append(i)
    out = list(files)
    for (origin, chain), indices in groups.items():
        wanted = {files[i].members[-1]: i for i in indices}
        with open_chain(origin, chain) if chain else open(origin, "rb") as fh:
            container = chain[-1] if chain else origin.name
            for member, data in _iter_members(fh, container, set(wanted)):
                i = wanted[member]
                target = workdir / files[i].path
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "wb") as dst:
                    shutil.copyfileobj(data, dst)
                out[i] = replace(files[i], origin=target, members=())
    return out


def _iter_members(
    fh: IO[bytes], container: str, wanted: set[str]
) -> Iterator[tuple[str, IO[bytes]]]:
    with ExitStack() as stack:
        if archive_kind(container) == "zip":
            zf = stack.enter_context(zipfile.ZipFile(seekable(stack, fh)))
            for name in sorted(wanted):
                with zf.open(name) as data:
                    yield name, data
            return
        tf = stack.enter_context(tarfile.open(fileobj=fh, mode="r|*"))
        for info in tf:
            extracted = tf.extractfile(info) if info.name in wanted else None
            if extracted is not None:
                yield info.name, extracted
