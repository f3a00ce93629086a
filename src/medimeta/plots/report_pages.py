"""Shared parts of the report pages: where files go, and drawing a picture safely.

A picture that cannot be drawn (a damaged folder, a missing log) becomes a note on its page
instead of a link to a file that does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medimeta.errors import MedIMetaError
from medimeta.plots._figure import save_figure, save_image
from medimeta.plots.html import Html, esc, image, tag

ERRORS = (MedIMetaError, OSError, ValueError, KeyError, IndexError, TypeError)


def slug(text: str, taken: set[str] | None = None) -> str:
    """A file-name-safe form of ``text`` (letters, digits, ``.``, ``_``, ``-``), unique in
    ``taken`` (which it is added to)."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "item"
    name, k = base, 2
    while taken is not None and name in taken:
        name, k = f"{base}-{k}", k + 1
    if taken is not None:
        taken.add(name)
    return name


@dataclass
class PageWriter:
    """Writes the pictures of one page into ``out / folder`` and keeps the page's links
    relative to ``out / page_dir``."""

    out: Path
    folder: str  # pictures folder, relative to out, "/"-separated
    page_dir: str = ""  # folder of the page, relative to out ("" for the index)
    written: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def _link(self, name: str) -> str:
        rel = f"{self.folder}/{name}"
        prefix = f"{self.page_dir}/" if self.page_dir else ""
        return rel[len(prefix) :] if rel.startswith(prefix) else rel

    def picture(self, name: str, draw: Callable[[], Any], alt: str, caption: str = "") -> Html:
        """Draw (a Figure or a PIL image), write ``name`` and return its ``<figure>``; on an
        error a note instead (and the problem is recorded)."""
        target = self.out / self.folder / name
        try:
            made = draw()
            if hasattr(made, "savefig"):
                save_figure(made, target)
            else:
                save_image(made, target)
        except ERRORS as exc:
            self.problems.append(f"{alt}: {exc}")
            return tag("p", f"Could not draw {alt}: {exc}", class_="note")
        self.written.append(target)
        return image(self._link(name), alt, caption)


def section(title: str, *parts: object) -> Html:
    return Html(tag("h2", title) + "\n" + "\n".join(esc(p) for p in parts))


def facts(items: list[tuple[str, object]]) -> Html:
    """A two-column table of names and values."""
    rows = "".join(tag("tr", Html(tag("th", k) + tag("td", v))) for k, v in items)
    return tag("table", Html(rows))
