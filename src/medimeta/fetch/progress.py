"""Progress reporting for downloads: a rich bar (bytes, rate, ETA) or nothing in quiet mode."""

from __future__ import annotations

from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


class ProgressReporter(Protocol):
    """What the downloader calls while bytes arrive."""

    def start(self, description: str, total: int | None, completed: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...

    def reset(self, completed: int) -> None: ...

    def close(self) -> None: ...


class NullProgress:
    """Reports nothing (quiet mode, libraries, tests)."""

    def start(self, description: str, total: int | None, completed: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def reset(self, completed: int) -> None:
        pass

    def close(self) -> None:
        pass


class RichProgress:
    """One rich progress bar per file, drawn on stderr so stdout stays clean for scripts. The
    bar appears with the first bytes: a transfer that fails before any data arrives (no
    network, HTTP 404) leaves only its one error line."""

    def __init__(self, console: Console | None = None) -> None:
        self._console = console or Console(stderr=True)
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._pending: tuple[str, int | None, int] | None = None

    def start(self, description: str, total: int | None, completed: int) -> None:
        self.close()
        self._pending = (description, total, completed)

    def _show(self) -> None:
        if self._progress is not None or self._pending is None:
            return
        description, total, completed = self._pending
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self._console,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(description, total=total, completed=completed)

    def advance(self, nbytes: int) -> None:
        self._show()
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, nbytes)

    def reset(self, completed: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=completed)
        elif self._pending is not None:
            self._pending = (self._pending[0], self._pending[1], completed)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        self._progress = None
        self._task = None
        self._pending = None


def make_progress(quiet: bool) -> ProgressReporter:
    """A rich bar unless ``quiet``."""
    return NullProgress() if quiet else RichProgress()
