"""Every exception the toolkit raises.

Each class subclasses the built-in it resembles, so ``except FileNotFoundError`` and friends
keep working. Messages name the file, the key, the expected and the actual value, and the fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


class MedIMetaError(Exception):
    """Base class of every error raised on purpose by the toolkit."""


class DatasetNotFoundError(MedIMetaError, FileNotFoundError):
    """A dataset folder (or one of its required files) is not where it should be."""


class FormatError(MedIMetaError, ValueError):
    """A file exists but does not follow the MedIMeta on-disk format."""

    def __init__(
        self,
        path: str | Path,
        problem: str,
        *,
        key: str | None = None,
        expected: object = None,
        actual: object = None,
        fix: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.key = key
        self.expected = expected
        self.actual = actual
        parts = [f"{self.path}: {problem}"]
        if key is not None:
            parts.append(f"key: {key}")
        if expected is not None or actual is not None:
            parts.append(f"expected: {expected!r}; actual: {actual!r}")
        if fix:
            parts.append(f"fix: {fix}")
        super().__init__(" | ".join(parts))


class UnknownNameError(MedIMetaError, KeyError):
    """A dataset id, task name, option value or registry key does not exist."""

    def __init__(self, kind: str, name: str, choices: Iterable[str], where: str = "") -> None:
        self.kind = kind
        self.name = name
        self.choices = sorted(choices)
        close = difflib.get_close_matches(name, self.choices, n=3, cutoff=0.5)
        lowered = [c for c in self.choices if c.lower() == name.lower()]
        suggestion = lowered or close
        msg = f"unknown {kind} {name!r}"
        if where:
            msg += f" in {where}"
        if suggestion:
            msg += f"; did you mean {' or '.join(repr(s) for s in suggestion)}?"
        msg += (
            f"{'' if suggestion else '.'} Valid values: {', '.join(repr(c) for c in self.choices)}"
        )
        self.message = msg
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.message


class DuplicateRegistrationError(MedIMetaError, ValueError):
    """A name was registered twice in one registry."""


class LabelError(MedIMetaError, ValueError):
    """A label does not fit its task (wrong key, wrong shape, wrong values)."""


class SplitError(MedIMetaError, ValueError):
    """A split request or split file is inconsistent."""


class ChecksumMismatchError(MedIMetaError, OSError):
    """A file's checksum or size differs from the recorded one."""


class DownloadError(MedIMetaError, OSError):
    """A download failed after all retries."""


class DownloadDeadlineError(DownloadError, TimeoutError):
    """A download ran past its overall deadline; the partial file is kept for resuming."""


class UnsafeArchiveError(MedIMetaError, ValueError):
    """An archive member would be written outside the extraction folder."""


class OutsidePathError(MedIMetaError, ValueError):
    """A path named by a source (a CSV cell, a list line) leads outside its declared folder."""


class OptionError(MedIMetaError, ValueError):
    """An option value is out of its range (a negative deadline, a non-number)."""


class SourceTreeError(MedIMetaError, FileNotFoundError):
    """A raw source tree given to a builder is missing files or is laid out differently."""


class EpisodeError(MedIMetaError, ValueError):
    """Episodes cannot be drawn as requested, or an episode file does not match the data."""


def check_choice(kind: str, value: str, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise UnknownNameError."""
    options = list(choices)
    if value not in options:
        raise UnknownNameError(kind, value, options)
    return value


class PreprocessError(MedIMetaError, ValueError):
    """An image or array cannot be preprocessed as requested (shape, mode, size or box)."""


class ShapeError(MedIMetaError, ValueError):
    """An array or tensor has a shape (or non-finite values) its consumer cannot use."""


class WeightsNotFoundError(MedIMetaError, FileNotFoundError):
    """Pretrained weights were requested but no weights file was found."""


class MissingDependencyError(MedIMetaError, ImportError):
    """An optional dependency (a package extra) needed for this feature is not installed."""


class BuildError(MedIMetaError, RuntimeError):
    """Writing a dataset folder failed (a record, its image or the processing function)."""


class DatasetExistsError(MedIMetaError, FileExistsError):
    """A dataset folder already exists where a build would put its output."""


class BenchmarkError(MedIMetaError, RuntimeError):
    """Benchmark cells failed, or a benchmark's jobs cannot be submitted or followed."""
