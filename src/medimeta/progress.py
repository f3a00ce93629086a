"""A progress bar for loops over batches or episodes, with the time left (ETA), on stderr.

On a terminal it is a rich bar (elapsed and remaining time); otherwise (a log file, a
pipe, torchrun's captured output) one plain line every tenth of the way and at least every
30 s: ``label: 40/100 (40 %), 1 min 02 s elapsed, ETA 1 min 33 s, auroc 0.7512``. Silent
when disabled.
"""

from __future__ import annotations

import sys
import time
from typing import Any

PLAIN_EVERY_S = 30.0


def _clock(seconds: float) -> str:
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{seconds:.0f} s"


class Progress:
    """``with Progress(enabled, total, label) as bar: bar.advance(loss)``."""

    def __init__(self, enabled: bool, total: int, label: str, *, plain: bool | None = None):
        self.enabled = enabled
        self.total = total
        self.label = label
        self.plain = (not sys.stderr.isatty()) if plain is None else plain
        self.done = 0
        self._bar: Any = None
        self._task: Any = None
        self._start = 0.0
        self._last = 0.0
        self._next = 0

    def __enter__(self) -> Progress:
        self._start = self._last = time.perf_counter()
        if self.enabled and not self.plain:
            self._open_rich()
        return self

    def _open_rich(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._bar.__enter__()
        self._task = self._bar.add_task(self.label, total=self.total, status="")

    def eta(self) -> float | None:
        """Seconds left at the mean rate so far (None before the first step)."""
        if self.done == 0 or self.total <= 0:
            return None
        rate = (time.perf_counter() - self._start) / self.done
        return rate * max(self.total - self.done, 0)

    def line(self, value: float | None = None, name: str = "loss") -> str:
        elapsed = time.perf_counter() - self._start
        pct = 100 * self.done / self.total if self.total else 100.0
        eta = self.eta()
        text = (
            f"{self.label}: {self.done}/{self.total} ({pct:.0f} %), {_clock(elapsed)} elapsed, "
            f"ETA {_clock(eta) if eta is not None else '?'}"
        )
        return text + ("" if value is None else f", {name} {value:.4f}")

    def advance(self, value: float | None = None, name: str = "loss") -> None:
        self.done += 1
        if not self.enabled:
            return
        if self._bar is not None:
            status = "" if value is None else f"{name} {value:.4f}"
            self._bar.update(self._task, advance=1, status=status)
            return
        now = time.perf_counter()
        step = max(1, self.total // 10)
        if self.done >= self._next or now - self._last >= PLAIN_EVERY_S or self.done == self.total:
            self._next = self.done + step
            self._last = now
            print(self.line(value, name), file=sys.stderr, flush=True)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
