"""Locate a raw source inside the merged tree and validate it before any work starts.

Terms (see :mod:`medimeta.builders.engine.scan` for how paths become one virtual tree):

* A :class:`Part` is one piece of a source that sits in one folder, e.g. BUSI's class folders,
  NCT-CRC-HE-100K, or an ISIC ground-truth CSV. It is found by its ``anchors``: literal relative
  paths (files or folders, e.g. ``"benign"`` or ``"meta/meta.csv"``). Every folder of the tree
  where at least one anchor exists is a candidate root; the candidate with the most anchors
  wins, then the shallowest, then the first in sorted order (other complete candidates are
  reported as warnings). So the user may give the archive, the folder holding it, the extracted
  tree or any folder above it.
* ``requires`` (:class:`Require`) are glob patterns below the part's root that must match at
  least ``min_count`` files; a miss is a *missing* entry (an error; with ``partial=True`` only
  ``essential`` requirements stay errors, the rest become warnings).
* ``expected`` patterns name every file that belongs to the part. Files inside the part's
  ``scope`` folders (default: its whole root) that match none of the patterns of any part
  located at the same root are *unexpected* (a warning), e.g. a README someone added.

Patterns use :func:`~medimeta.builders.engine.tree.match_path`: ``*`` stays within a folder,
``**`` spans levels, case-insensitive. Builders add their own findings (unreadable CSV headers,
labels without images, counts that differ from the catalog) to the :class:`SourceReport`, which
:meth:`SourceReport.raise_for_errors` turns into one :class:`~medimeta.errors.SourceTreeError`
listing every problem.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from medimeta.builders.engine.archives import ARCHIVE_SUFFIXES, archive_kind
from medimeta.builders.engine.scan import scan_sources
from medimeta.builders.engine.staging import stage_files
from medimeta.builders.engine.tree import SourceFile, SourceTree, match_path
from medimeta.errors import SourceTreeError

__all__ = [
    "ARCHIVE_SUFFIXES",
    "IMAGE_PATTERNS",
    "LocatedPart",
    "Part",
    "Require",
    "SourceFile",
    "SourceReport",
    "SourceTree",
    "archive_kind",
    "locate",
    "locate_parts",
    "match_path",
    "scan_sources",
    "stage_files",
]

log = logging.getLogger("medimeta.builders")

#: Extensions the original pipelines accept as images (``paths.folder_paths``).
IMAGE_PATTERNS = ("*.png", "*.jpg", "*.jpeg", "*.tif", "*.tiff")
_SHOW = 20  # entries per list in a formatted report


@dataclass(frozen=True)
class Require:
    """At least ``min_count`` files below a part's root match ``pattern``."""

    pattern: str
    what: str = ""
    min_count: int = 1
    essential: bool = False

    def describe(self) -> str:
        text = self.what or self.pattern
        return text if self.min_count == 1 else f"{text} (at least {self.min_count} files)"


@dataclass(frozen=True)
class Part:
    """One piece of a raw source that lives in one folder (module docstring)."""

    name: str
    anchors: tuple[str, ...]
    requires: tuple[Require, ...] = ()
    expected: tuple[str, ...] = ("**",)
    scope: tuple[str, ...] | None = None
    optional: bool = False
    hint: str = ""


@dataclass(frozen=True)
class LocatedPart:
    """Where a part was found: ``prefix`` is its root folder (``""`` or ``a/b/``)."""

    part: Part
    prefix: str | None
    anchors_found: tuple[str, ...] = ()

    @property
    def found(self) -> bool:
        return self.prefix is not None

    @property
    def root(self) -> str:
        """The root folder for messages (``<top>`` for the tree's top)."""
        return (self.prefix or "").rstrip("/") or "<top>"


@dataclass
class SourceReport:
    """Findings of a source check: errors (missing, problems) and warnings (unexpected...)."""

    dataset_id: str
    source: str
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.problems

    def miss(self, text: str, *, partial: bool = False, essential: bool = False) -> None:
        """Record a missing item: an error, or a warning in a partial build."""
        if partial and not essential:
            self.warnings.append(f"missing (partial build): {text}")
        else:
            self.missing.append(text)

    def format(self, limit: int = _SHOW) -> str:
        """A readable multi-line summary (long lists cut after ``limit`` entries)."""
        head = f"source check for {self.dataset_id!r} in {self.source}: "
        head += "OK" if self.ok else "FAILED"
        lines = [head]
        for title, items in (
            ("missing", self.missing),
            ("problem", self.problems),
            ("unexpected", self.unexpected),
            ("warning", self.warnings),
        ):
            for text in items[:limit]:
                lines.append(f"  {title}: {text}")
            if len(items) > limit:
                lines.append(f"  ... and {len(items) - limit} more {title} entries")
        return "\n".join(lines)

    def log_warnings(self) -> None:
        """Send unexpected files and warnings to the ``medimeta.builders`` logger."""
        for text in self.unexpected[:_SHOW]:
            log.warning("unexpected file (ignored): %s", text)
        if len(self.unexpected) > _SHOW:
            log.warning("... and %d more unexpected files", len(self.unexpected) - _SHOW)
        for text in self.warnings:
            log.warning("%s", text)

    def raise_for_errors(self) -> None:
        """Raise one SourceTreeError listing every missing file and problem, if any."""
        if self.ok:
            return
        raise SourceTreeError(
            self.format()
            + "\nfix: pass the publisher's files as distributed (see `medimeta build --help` and "
            "docs/datasets), or add --partial to build from an incomplete tree"
        )


def _candidates(tree: SourceTree, anchors: Sequence[str]) -> dict[str, set[str]]:
    """Candidate root prefix -> anchors present there."""
    found: dict[str, set[str]] = {}
    names = list(tree.dirs) + list(tree.files)
    for anchor in anchors:
        tail = "/" + anchor
        for name in names:
            if name == anchor:
                found.setdefault("", set()).add(anchor)
            elif name.endswith(tail):
                found.setdefault(name[: -len(anchor)], set()).add(anchor)
    return found


def locate(tree: SourceTree, part: Part, report: SourceReport | None = None) -> LocatedPart:
    """Find ``part``'s root (module docstring: ranking of candidates)."""
    cands = _candidates(tree, part.anchors)
    if not cands:
        return LocatedPart(part, None)
    ranked = sorted(cands, key=lambda p: (-len(cands[p]), p.count("/"), p))
    best = ranked[0]
    if report is not None:
        for other in ranked[1:]:
            if len(cands[other]) == len(part.anchors) and other.count("/") >= best.count("/"):
                report.warnings.append(
                    f"{part.name}: another copy at {other.rstrip('/') or '<top>'} is ignored; "
                    f"using {best.rstrip('/') or '<top>'}"
                )
    return LocatedPart(part, best, tuple(a for a in part.anchors if a in cands[best]))


def locate_parts(
    tree: SourceTree, parts: Iterable[Part], report: SourceReport, *, partial: bool = False
) -> dict[str, LocatedPart]:
    """Locate every part, check its requirements and collect unexpected files into ``report``.

    A part that is not found is reported once (as missing, or as a warning when it is optional
    or the build is partial); its requirements are then not listed one by one.
    """
    located: dict[str, LocatedPart] = {}
    for part in parts:
        loc = locate(tree, part, report)
        located[part.name] = loc
        if not loc.found:
            where = part.hint or " or ".join(part.anchors)
            text = f"{part.name}: not found (looked for {where})"
            if part.optional:
                report.warnings.append(f"optional {text}")
                continue
            essential = any(r.essential for r in part.requires)
            report.miss(text, partial=partial, essential=essential)
            for req in part.requires:
                if req.pattern not in part.anchors:  # already named by the line above
                    report.miss(
                        f"{part.name}: {req.pattern}: {req.describe()}",
                        partial=partial,
                        essential=req.essential,
                    )
            continue
        for req in part.requires:
            n = len(tree.glob(req.pattern, loc.prefix or ""))
            if n < req.min_count:
                text = f"{loc.root}/{req.pattern}: {req.describe()}; found {n}"
                report.miss(text, partial=partial, essential=req.essential)
        missing_anchors = [a for a in part.anchors if a not in loc.anchors_found]
        if missing_anchors and not part.requires:
            for anchor in missing_anchors:
                report.miss(f"{loc.root}/{anchor}", partial=partial)
    _collect_unexpected(tree, list(located.values()), report)
    return located


def _collect_unexpected(tree: SourceTree, located: list[LocatedPart], report: SourceReport) -> None:
    by_root: dict[str, list[Part]] = {}
    for loc in located:
        if loc.prefix is not None:
            by_root.setdefault(loc.prefix, []).append(loc.part)
    seen: set[str] = set()
    # Deeper roots first, so that files of a part nested in another part's root are claimed.
    for prefix, parts in sorted(by_root.items(), key=lambda kv: (-kv[0].count("/"), kv[0])):
        patterns = [p for part in parts for p in part.expected]
        scopes: list[str] | None = []
        for part in parts:
            if part.scope is None or scopes is None:
                scopes = None
            else:
                scopes.extend(part.scope)
        for f in tree.under(prefix):
            rel = f.relative_to(prefix)
            if f.path in seen:
                continue
            if scopes is not None and not any(
                rel == s or rel.startswith(s.rstrip("/") + "/") for s in scopes
            ):
                continue
            seen.add(f.path)
            if not any(match_path(rel, p) for p in patterns):
                report.unexpected.append(f.path)
