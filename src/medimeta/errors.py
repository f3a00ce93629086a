"""Every exception the toolkit raises.

Each class subclasses the built-in it resembles, so ``except FileNotFoundError`` and friends
keep working. Messages name the file, the key, the expected and the actual value, and the fix.
"""

from __future__ import annotations

import difflib
import re
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
    """A dataset id, task name, option value or registry key does not exist.

    The message suggests the closest ``choices`` and lists them; ``expected`` says in words
    what a valid value looks like (shown when there is no list to choose from, e.g. "a task
    reference is DATASET or DATASET:TASK"), so no message ends in an empty list.
    """

    def __init__(
        self,
        kind: str,
        name: str,
        choices: Iterable[str],
        where: str = "",
        *,
        expected: str | None = None,
    ) -> None:
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
        if self.choices:
            listed = ", ".join(repr(c) for c in self.choices)
            msg += f"{'' if suggestion else '.'} Valid values: {listed}"
            if expected:
                msg += f" ({expected})"
        else:
            msg += f"; {expected or f'there is no {kind} to choose from here'}"
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


class NetworkUnavailableError(DownloadError):
    """No network (or offline mode): the host could not be reached, so nothing was fetched."""


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

    @classmethod
    def for_extra(cls, extra: str, what: str) -> MissingDependencyError:
        """``what`` (what is missing and why) with the command that installs ``extra``."""
        return cls(f"{what}; fix: {install_hint(extra)}")


#: The distribution's name (pyproject.toml's [project] name): what ``pip install`` takes.
DISTRIBUTION = "medimeta-toolkit"


def source_checkout() -> Path | None:
    """The source checkout the package runs from (``src/medimeta`` beside a pyproject.toml of
    this distribution), or None (an installed wheel)."""
    repo = Path(__file__).resolve().parents[2]
    pyproject = repo / "pyproject.toml"
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return None
    return repo if f'name = "{DISTRIBUTION}"' in text else None


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\s;<>=!~\[(]", requirement.strip(), maxsplit=1)[0].lower()


def package_extras() -> dict[str, tuple[str, ...]]:
    """Every extra and its requirements, from the one place they are written: pyproject.toml's
    ``[project.optional-dependencies]`` (the checkout's file, else the installed
    distribution's metadata, which pip wrote from it)."""
    checkout = source_checkout()
    if checkout is not None:
        try:
            import tomllib

            with open(checkout / "pyproject.toml", "rb") as fh:
                table = tomllib.load(fh)["project"]["optional-dependencies"]
            return {k: tuple(v) for k, v in table.items()}
        except (ImportError, OSError, KeyError, ValueError):  # Python 3.10: no tomllib
            pass
    from importlib import metadata

    try:
        requires = metadata.requires(DISTRIBUTION) or []
        provided = metadata.metadata(DISTRIBUTION).get_all("Provides-Extra") or []
    except metadata.PackageNotFoundError:
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for extra in provided:
        marker = re.compile(rf"extra\s*==\s*[\"']{re.escape(extra)}[\"']")
        out[extra] = tuple(r.split(";")[0].strip() for r in requires if marker.search(r))
    return out


def install_hint(extra: str) -> str:
    """The command that installs the extra ``extra`` here: in a source checkout
    ``cd CHECKOUT && pip install -e '.[EXTRA]'`` (or ``make setup``, where the dev extra
    covers it), else ``pip install 'medimeta-toolkit[EXTRA]'``; with the packages it brings."""
    extras = package_extras()
    packages = [_requirement_name(r) for r in extras.get(extra, ())]
    brings = f" (installs {', '.join(packages)})" if packages else ""
    checkout = source_checkout()
    if checkout is None:
        return f"pip install '{DISTRIBUTION}[{extra}]'{brings}"
    dev = {_requirement_name(r) for r in extras.get("dev", ())}
    make = f" (or: make -C {checkout} setup)" if packages and set(packages) <= dev else ""
    return f"cd {checkout} && pip install -e '.[{extra}]'{brings}{make}"


class Note(UserWarning):
    """Not an error: what the toolkit chose on the user's behalf (e.g. the first task of a
    dataset given by its id alone). The command line prints it as one ``note:`` line."""


class BuildError(MedIMetaError, RuntimeError):
    """Writing a dataset folder failed (a record, its image or the processing function)."""


class DatasetExistsError(MedIMetaError, FileExistsError):
    """A dataset folder already exists where a build would put its output."""


class BenchmarkError(MedIMetaError, RuntimeError):
    """Benchmark cells failed, or a benchmark's jobs cannot be submitted or followed."""
