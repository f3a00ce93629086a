"""Weights files of the user's own, registered by name: ``medimeta weights add PATH --name N``.

A record keeps the file's absolute path, sha256 and size in ``<weights folder>/registry.json``
(written atomically). A registered name can be passed where a weights file is accepted
(``--pretrained NAME``); the file is re-hashed before it is used, so a file that changed
since it was registered is refused instead of silently loaded. Names resolve only to
registered entries and files only to explicit paths (:func:`resolve_pretrained`).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medimeta.errors import (
    ChecksumMismatchError,
    DuplicateRegistrationError,
    FormatError,
    OptionError,
    UnknownNameError,
    WeightsNotFoundError,
)
from medimeta.fetch.files import file_problem
from medimeta.fetch.obtain import install_lock
from medimeta.fetch.options import FetchOptions
from medimeta.models.weights import default_weights_path, read_state_dict, sha256_of
from medimeta.models.weights_table import REGISTRY_FILE, WEIGHTS
from medimeta.paths import weights_dir
from medimeta.safeio import write_json

REGISTRY_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
# What the CLI's --pretrained reads as a keyword rather than a file or a registered name.
RESERVED: frozenset[str] = frozenset(
    {"imagenet", "default", "true", "yes", "none", "random", "false", "no", "auto"}
)


@dataclass(frozen=True)
class UserWeights:
    """A registered file: name, absolute path, sha256, size in bytes and the backbone it fits."""

    name: str
    path: Path
    sha256: str
    size: int
    backbone: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "size": self.size,
            "backbone": self.backbone,
        }

    def problem(self) -> str | None:
        """Why the file no longer is what was registered (None: it still is)."""
        return file_problem(self.path, size=self.size, md5=None, sha256=self.sha256)


def registry_path(directory: Path | None = None) -> Path:
    """``<weights folder>/registry.json``."""
    return (directory or weights_dir()) / REGISTRY_FILE


def read_registry(directory: Path | None = None) -> dict[str, UserWeights]:
    """The registered files by name (empty when nothing was registered)."""
    path = registry_path(directory)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        records = data["weights"]
        return {
            name: UserWeights(
                name,
                Path(r["path"]),
                str(r["sha256"]),
                int(r["size"]),
                r.get("backbone"),
            )
            for name, r in records.items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FormatError(
            path,
            "not a weights registry",
            expected='{"version": 1, "weights": {NAME: {"path", "sha256", "size"}}}',
            actual=f"{type(exc).__name__}: {exc}",
            fix="repair or delete the file, then register the files again (medimeta weights add)",
        ) from exc


def _check_name(name: str) -> None:
    if not _NAME.match(name) or name.lower() in RESERVED:
        raise OptionError(
            f"weights name {name!r} is not usable: use letters, digits and _.+- (starting with "
            f"a letter or digit), and none of {sorted(RESERVED)}"
        )
    if name in WEIGHTS:
        raise DuplicateRegistrationError(
            f"weights name {name!r} is a published entry of the weights table; choose another name"
        )


def register_weights(
    path: str | Path,
    name: str,
    *,
    backbone: str | None = None,
    directory: Path | None = None,
    replace: bool = False,
) -> UserWeights:
    """Record ``path`` as weights ``name`` (its sha256 and size) in the registry.

    The file must be a readable state dict; with ``backbone`` it must also load into that
    backbone. A name already registered raises DuplicateRegistrationError unless ``replace``.
    """
    from medimeta.models.registry import create_backbone

    _check_name(name)
    file = Path(path).expanduser().resolve()
    read_state_dict(file)  # a missing or foreign file fails here, naming the problem
    if backbone is not None:
        create_backbone(backbone, pretrained=file)  # FormatError when it does not fit
    record = UserWeights(name, file, sha256_of(file), file.stat().st_size, backbone)
    folder = directory or weights_dir()
    with install_lock(folder, "registry", FetchOptions()):
        records = read_registry(folder)
        if name in records and not replace:
            raise DuplicateRegistrationError(
                f"weights name {name!r} is already registered for {records[name].path}; "
                "fix: choose another name, or --force to replace the record"
            )
        records[name] = record
        write_json(
            registry_path(folder),
            {"version": REGISTRY_VERSION, "weights": {n: r.to_dict() for n, r in records.items()}},
        )
    return record


def _explicit_path(value: str) -> bool:
    """Whether ``value`` is written as a path: ``./f``, ``../f``, ``~/f``, absolute, or with a
    folder in it. A bare word is a name, never a file of the working directory."""
    return value.startswith(("./", "../", "~", "/", ".\\")) or "/" in value or os.sep in value


def resolve_pretrained(value: str, directory: Path | None = None) -> str:
    """The checked weights file that ``--pretrained VALUE`` names.

    An explicit path (``./file.pth``, ``/abs/file.pth``, ``dir/file.pth``, ``~/f.pth``) is
    that file. A bare name resolves only to a registered entry: a file registered with
    ``medimeta weights add`` (re-hashed against its record) or an entry of the weights table
    (its installed copy, re-hashed). A bare name that is also a file in the working directory
    is ambiguous, and a bare name that is neither is unknown: both are errors that say how to
    write the one that is meant, so a stray file can never stand in for registered weights.
    """
    if _explicit_path(value):
        path = Path(value).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(f"{value}: weights file not found (--pretrained PATH)")
        return str(path)
    records = read_registry(directory)
    here = Path(value)
    if value in records or value in WEIGHTS:
        if here.exists():
            what = "a registered weights file" if value in records else "a weights table entry"
            raise OptionError(
                f"--pretrained {value!r} is ambiguous: it is {what} and a file {value} in the "
                f"working directory ({here.resolve()}); fix: pass ./{value} for the file, or "
                "rename one of them"
            )
        return _registered(value, records) if value in records else _table_file(value)
    if here.is_file():
        raise OptionError(
            f"--pretrained {value!r} is not a registered weights name; fix: pass ./{value} to "
            f"use the file in the working directory, or register it: medimeta weights add "
            f"./{value} --name NAME"
        )
    raise UnknownNameError(
        "weights name",
        value,
        [*records, *WEIGHTS],
        "--pretrained (or a path: ./FILE, /abs/FILE; keywords: imagenet, none)",
    )


def _registered(value: str, records: dict[str, UserWeights]) -> str:
    record = records[value]
    if not record.path.is_file():
        raise WeightsNotFoundError(
            f"registered weights {value!r}: {record.path} does not exist any more; fix: put the "
            f"file back, or register it again: medimeta weights add PATH --name {value} --force"
        )
    problem = record.problem()
    if problem is not None:
        raise ChecksumMismatchError(
            f"registered weights {value!r} ({record.path}): {problem}; the file changed since it "
            f"was registered; fix: medimeta weights add {record.path} --name {value} --force "
            "records its new content"
        )
    return str(record.path)


def _table_file(value: str) -> str:
    """The installed, re-hashed file of weights table entry ``value``."""
    entry = WEIGHTS[value]
    path = default_weights_path(entry.pretrained_cfg(), entry.backbone)
    problem = file_problem(path, size=entry.size, md5=None, sha256=entry.sha256)
    if problem is not None:
        raise ChecksumMismatchError(
            f"{path}: {problem}; it is not {entry.source}; fix: medimeta weights get {value} "
            "--force"
        )
    return str(path)
