"""Text escaped for the formats the toolkit writes: Markdown, LaTeX, CSV (HTML: see
:mod:`medimeta.plots.html`). Labels, names and paths from data files are untrusted: a class
name may hold ``|``, ``<img onerror=...>`` or a spreadsheet formula.
"""

from __future__ import annotations

import html
import re

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters (``& % $ # _ { } ~ ^ \\``) escaped."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


# ``_`` between two letters or digits never starts emphasis (CommonMark): tiny_cnn stays as is
_MD_SPECIAL = re.compile(r"([\\`*\[\]|~]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z]))")
_MD_LINE_START = re.compile(r"^([#+>-])")
_MD_ORDERED = re.compile(r"^(\d+)([.)])")


def markdown_escape(text: object) -> str:
    """``text`` as literal Markdown inline text (also inside a table cell): HTML is escaped,
    the characters that start emphasis, code, links, tables and strike-through are
    backslash-escaped, and line breaks become spaces (so nothing can start a heading or a
    list)."""
    flat = " ".join(str(text).split())
    out = _MD_SPECIAL.sub(r"\\\1", html.escape(flat, quote=False))
    return _MD_ORDERED.sub(r"\1\\\2", _MD_LINE_START.sub(r"\\\1", out))


def markdown_code(text: object) -> str:
    """``text`` as a Markdown code span (backticks inside it kept literal)."""
    flat = " ".join(str(text).split())
    fence = "`" * (max((len(r) for r in re.findall(r"`+", flat)), default=0) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A CSV cell that no spreadsheet runs as a formula: text starting with ``= + - @``, a tab
    or a carriage return gets a leading apostrophe; numbers are kept."""
    if isinstance(value, str) and value.startswith(_FORMULA):
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value
