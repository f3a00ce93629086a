"""What a long command says when it is interrupted (Ctrl-C): what it saved and the exact
command that resumes it.

A long command runs inside :func:`on_interrupt`, naming a function that describes what is on
disk (called only when the interrupt arrives) and how the resuming command differs from the
one typed (``train`` adds ``--resume``, ``fewshot`` drops ``--fresh``). The block prints
:func:`interrupted_message` to stderr; typer then exits with 130, the shell's code for SIGINT,
without a traceback. The entry point (:func:`medimeta.cli.app.main`) records the arguments
(:func:`command_args`) and says :data:`NOTHING_KEPT` for an interrupt outside such a block
(while the command starts, before its work).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from medimeta.logs import plural

#: What the interrupt exception carries (an attribute, so that any KeyboardInterrupt works).
ATTRIBUTE = "medimeta_resume"
_ARGS: list[list[str]] = []
_REPORTED: list[bool] = []
NOTHING_KEPT = "interrupted before its work began: nothing new was saved (run it again)"


@contextmanager
def command_args(args: Sequence[str]) -> Iterator[None]:
    """The arguments of the command running now (what a resume line repeats)."""
    _ARGS.append(list(args))
    try:
        yield
    finally:
        _ARGS.pop()


def current_args() -> list[str]:
    """The arguments :func:`command_args` recorded, else those of this process."""
    return list(_ARGS[-1]) if _ARGS else [a for a in sys.argv[1:] if a != "--debug"]


@dataclass(frozen=True)
class Resume:
    """How an interrupted command resumes: ``saved()`` says what is kept (None: nothing yet);
    ``add`` are options the resuming command needs, ``drop`` options it must leave out."""

    saved: Callable[[], str | None]
    add: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()


@contextmanager
def on_interrupt(
    saved: Callable[[], str | None], *, add: Sequence[str] = (), drop: Sequence[str] = ()
) -> Iterator[None]:
    """Run a long command's work; a KeyboardInterrupt leaving the block prints what was saved
    and how to resume (once), then goes on (typer turns it into exit code 130)."""
    try:
        yield
    except KeyboardInterrupt as exc:
        if getattr(exc, ATTRIBUTE, None) is None:
            setattr(exc, ATTRIBUTE, Resume(saved, tuple(add), tuple(drop)))
            print(interrupted_message(exc, current_args()), file=sys.stderr, flush=True)
            _REPORTED.append(True)
        raise


def reported() -> bool:
    """Whether an interrupt of this process was already described (by :func:`on_interrupt`)."""
    return bool(_REPORTED)


def resume_command(args: Sequence[str], resume: Resume) -> str:
    """``medimeta ARGS`` with the resume's options added and dropped, quoted for a shell."""
    kept = [a for a in args if a not in resume.drop]
    kept += [a for a in resume.add if a not in kept]
    return "medimeta " + shlex.join(kept)


def interrupted_message(exc: BaseException, args: Sequence[str]) -> str:
    """The lines printed for an interrupted command: what was saved, then how to resume."""
    resume: Resume | None = getattr(exc, ATTRIBUTE, None)
    if resume is None:
        return NOTHING_KEPT
    try:
        saved = resume.saved()
    except Exception as err:  # describing must never hide the interrupt itself
        saved = f"(could not tell what was saved: {type(err).__name__}: {err})"
    lines = ["interrupted"]
    lines.append(f"saved: {saved}" if saved else "saved: nothing yet")
    lines.append(f"resume with: {resume_command(args, resume)}")
    return "\n".join(lines)


# -- what the long commands keep ----------------------------------------------------------------
def count_files(folder: Path, pattern: str, what: str, rest: str = "") -> str | None:
    """``"3 episode results in FOLDER"`` (None when there are none)."""
    found = sorted(folder.glob(pattern)) if folder.is_dir() else []
    if not found:
        return None
    return f"{plural(len(found), what)} in {folder}{rest}"


def partial_files(folder: Path, pattern: str = "*.part") -> str | None:
    """Partial downloads in ``folder`` with their sizes (None when there are none)."""
    parts = sorted(folder.glob(pattern)) if folder.is_dir() else []
    if not parts:
        return None
    sizes = ", ".join(f"{p.name} ({p.stat().st_size:,} bytes)" for p in parts)
    return f"partial downloads in {folder}: {sizes}; the next run continues them"


def bench_saved(out: Path) -> str | None:
    """What an interrupted benchmark keeps: the record of every finished cell."""
    from medimeta.runs.record import RUN_FILE

    return count_files(
        out,
        f"**/{RUN_FILE}",
        "run record",
        f" (the next run skips those cells; `medimeta benchmark status {out}` lists them)",
    )


def cache_saved(cache: Path | None, root: Path, what: str) -> str:
    """What an interrupted embedding keeps: the chunks it wrote to the feature cache."""
    from medimeta.paths import cache_dir

    return f"the {what} computed so far, in {cache_dir(cache, root) / what} (reused next time)"
