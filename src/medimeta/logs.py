"""The toolkit's one logging helper: progress messages are plain callables ``log(text)``.

Library functions take ``log: Log | None``; :func:`emit` turns that into something always
callable, and :func:`main_only` silences every process but the main one of a distributed run
(so a message is printed once, not once per rank).
"""

from __future__ import annotations

from collections.abc import Callable

Log = Callable[[str], None]


def silent(_message: str) -> None:
    """A log that drops every message."""


def emit(log: Log | None) -> Log:
    """``log``, or :func:`silent` when it is None."""
    return log if log is not None else silent


def main_only(log: Log | None, is_main: bool) -> Log:
    """``log`` on the main process, :func:`silent` on the others."""
    return log if (log is not None and is_main) else silent


_PLURALS = {"class": "classes", "entry": "entries", "match": "matches", "index": "indices"}


def plural(n: int, singular: str, plural: str | None = None, *, thousands: bool = False) -> str:
    """``"1 dataset"``, ``"2 datasets"``, ``"0 classes"``: a count with its noun in the right
    number (``thousands``: ``1,000``)."""
    word = singular if n == 1 else (plural or _PLURALS.get(singular, singular + "s"))
    return f"{n:,} {word}" if thousands else f"{n} {word}"
