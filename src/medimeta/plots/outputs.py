"""Which format a written file gets: ``--format`` or the file's suffix, never a contradiction.

``medimeta plot ... --out x.png`` writes a PNG and ``--out x.svg`` an SVG; ``--format`` says it
outright. A suffix that names another format than ``--format`` (``--out x.png --format svg``)
or a suffix no format has (``--out x.jpg``, without ``--format``) is one clear error line; a
file name without a suffix gets the format's suffix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from medimeta.errors import OptionError, UnknownNameError

PICTURES: dict[str, tuple[str, ...]] = {"png": (".png",), "svg": (".svg",), "pdf": (".pdf",)}


def _suffixes(formats: Mapping[str, Sequence[str]]) -> str:
    return ", ".join(s for kind in formats.values() for s in kind)


def output_file(
    path: Path,
    fmt: str | None,
    formats: Mapping[str, Sequence[str]] = PICTURES,
    *,
    default: str = "png",
    add_suffix: bool = True,
) -> tuple[Path, str]:
    """``(file to write, format)`` of ``path`` and the ``--format`` value ``fmt`` (None: not
    given) among ``formats`` (format -> its suffixes, the first the usual one)."""
    if fmt is not None and fmt not in formats:
        raise UnknownNameError("--format", fmt, formats)
    by_suffix = {s: kind for kind, suffixes in formats.items() for s in suffixes}
    suffix = path.suffix.lower()
    if suffix in by_suffix:
        kind = by_suffix[suffix]
        if fmt is not None and fmt != kind:
            wanted = formats[fmt][0]
            raise OptionError(
                f"{path}: --format {fmt} contradicts the file's suffix | key: --format | "
                f"expected: a name ending in {wanted!r}; actual: {path.suffix!r} | fix: write "
                f"to {path.with_suffix(wanted).name} or leave out --format (the suffix decides)"
            )
        return path, kind
    if suffix and fmt is None:
        raise OptionError(
            f"{path}: cannot tell the format from the suffix {path.suffix!r} | key: --out | "
            f"expected: one of {_suffixes(formats)}; actual: {path.suffix!r} | fix: name the "
            f"file {path.with_suffix(formats[default][0]).name} or pass --format "
            f"({' | '.join(formats)})"
        )
    kind = fmt if fmt is not None else default
    if not suffix and add_suffix:
        path = path.with_name(path.name + formats[kind][0])
    return path, kind
