"""What the file converters check before anything is written: image paths and image files.

Image paths (CSV cells, MedFMC list lines, files found in class folders) must stay inside the
declared image folder: an absolute path, a ``..`` part, or a path that resolves (through a
symbolic link) outside the folder is an :class:`~medimeta.errors.OutsidePathError`, unless the
caller opts in with ``allow_outside_paths`` (recorded in info.yaml). Every listed file must
exist, be listed once, and open as an image (its header is read; a file Pillow cannot identify
is a :class:`~medimeta.errors.SourceTreeError` naming the row).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

from PIL import Image

from medimeta.errors import OutsidePathError, SourceTreeError
from medimeta.logs import plural

#: Errors Pillow raises for files it cannot read as images.
IMAGE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    Image.DecompressionBombError,
)
_COLOUR_MODES = {"RGB", "RGBA", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"}
_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
_OPT_IN = "allow_outside_paths=True (--allow-outside-paths, recorded in info.yaml)"

Where = Callable[[int], str]


def outside_problem(base: Path, rel: str) -> str | None:
    """Why image path ``rel`` leaves the folder ``base``, or None when it stays inside."""
    if PurePosixPath(rel).is_absolute() or _DRIVE.match(rel):
        return "is an absolute path"
    if ".." in PurePosixPath(rel).parts:
        return "contains '..'"
    real_base = os.path.realpath(base)
    real = os.path.realpath(base / rel)
    if real != real_base and not real.startswith(real_base.rstrip(os.sep) + os.sep):
        return f"resolves (through a symbolic link) to {real}"
    return None


def check_paths(
    base: Path, paths: Sequence[str], where: Where, *, allow_outside: bool = False
) -> None:
    """Every path is non-empty, inside ``base`` (unless ``allow_outside``), listed once and an
    existing file. ``where(i)`` names row ``i`` in errors (file and line)."""
    seen: dict[str, int] = {}
    for i, rel in enumerate(paths):
        if not rel:
            raise SourceTreeError(
                f"{where(i)}: the image path is empty; expected a path relative to {base}; "
                "fix: fill in the cell or drop the row"
            )
        problem = None if allow_outside else outside_problem(base, rel)
        if problem is not None:
            raise OutsidePathError(
                f"{where(i)}: image path {rel!r} {problem}, outside the image folder {base}; "
                f"expected a path inside it; nothing was written. Fix: move the image into "
                f"the folder (or point --images at a folder holding it), or pass {_OPT_IN}"
            )
        if rel in seen:
            raise SourceTreeError(
                f"{where(i)}: image {rel!r} is listed twice (also at {where(seen[rel])}); "
                "each image may appear once; fix: drop one of the rows"
            )
        seen[rel] = i
    for i, rel in enumerate(paths):
        if not (base / rel).is_file():
            missing = sum(1 for p in paths if not (base / p).is_file())
            raise SourceTreeError(
                f"{where(i)}: image {rel!r} does not exist in {base} "
                f"({plural(missing, 'listed image')} missing); paths are relative to the image "
                "folder (--images DIR); "
                "fix: correct the path or drop the row"
            )


def check_images(base: Path, paths: Sequence[str], where: Where) -> int:
    """Open every image's header; return 3 if any has a colour mode, else 1.

    SourceTreeError names the first file Pillow cannot read (nothing has been written yet).
    """
    channels = 1
    for i, rel in enumerate(paths):
        path = base / rel
        try:
            with Image.open(path) as img:
                if img.mode in _COLOUR_MODES:
                    channels = 3
        except IMAGE_ERRORS as exc:
            raise SourceTreeError(
                f"{where(i)}: {path} is not a readable image ({type(exc).__name__}: {exc}); "
                "expected a png, jpg, tif or bmp file; fix: replace the file or drop the row"
            ) from None
    return channels
