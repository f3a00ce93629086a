"""The named hub models (``backbones.yaml``) as data: :class:`NamedModel` and their lookup.

A model is found by its short name (``dinov2_vitb14``) or its hub id
(``facebook/dinov2-base``, any case). Each entry names the revision it loads, whether that
revision was verified against the hub, its family, format, default pooling, parameter count,
embedding size, licence and citation.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from medimeta.errors import FormatError, UnknownNameError
from medimeta.models.hf.families import BY_NAME

TABLE_FILE = "backbones.yaml"
FORMATS = ("transformers", "open_clip")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_REQUIRED = (
    "name",
    "hub_id",
    "revision",
    "revision_verified",
    "revision_source",
    "family",
    "format",
    "pool",
    "params",
    "embed_dim",
    "license",
    "citation",
    "authors",
    "arch",
)


@dataclass(frozen=True)
class NamedModel:
    """One named hub model (see ``backbones.yaml`` for the fields)."""

    name: str
    hub_id: str
    revision: str
    revision_verified: bool
    revision_source: str
    family: str
    format: str
    pool: str
    params: int
    embed_dim: int
    license: str
    citation: str
    authors: bool
    arch: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    notes: str = ""

    @property
    def pinned(self) -> bool:
        """Whether the revision is a commit (not a branch such as ``main``)."""
        return bool(_COMMIT.match(self.revision))


def _entry(raw: dict[str, Any], where: str) -> NamedModel:
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise FormatError(where, "named model entry lacks fields", key=", ".join(missing))
    entry = NamedModel(**{k: raw[k] for k in (*_REQUIRED, "notes") if k in raw})
    family = BY_NAME.get(entry.family)
    if family is None or entry.pool not in family.pools or entry.format not in FORMATS:
        raise FormatError(
            where,
            f"entry {entry.name!r}: family, pool or format not known",
            expected={"family": sorted(BY_NAME), "format": FORMATS},
            actual={"family": entry.family, "pool": entry.pool, "format": entry.format},
        )
    if not (entry.pinned or entry.revision == "main"):
        raise FormatError(where, f"entry {entry.name!r}: revision is neither a commit nor main")
    return entry


@functools.cache
def named_models() -> dict[str, NamedModel]:
    """Every named model by short name, in the table's order."""
    text = resources.files("medimeta.models.hf").joinpath(TABLE_FILE).read_text(encoding="utf-8")
    where = f"medimeta/models/hf/{TABLE_FILE}"
    entries = [_entry(raw, where) for raw in yaml.safe_load(text)]
    out = {e.name: e for e in entries}
    if len(out) != len(entries) or len({e.hub_id.lower() for e in entries}) != len(entries):
        raise FormatError(where, "a short name or hub id appears twice")
    return out


def find_named(name: str) -> NamedModel | None:
    """The entry with short name or hub id ``name`` (hub ids compared in lower case)."""
    models = named_models()
    if name in models:
        return models[name]
    low = name.lower()
    return next((e for e in models.values() if e.hub_id.lower() == low), None)


def get_named(name: str) -> NamedModel:
    found = find_named(name)
    if found is None:
        raise UnknownNameError("named hub model", name, named_models())
    return found
