"""Static HTML building blocks of the report: every string escaped, nothing remote.

Pages have no scripts, no web fonts and no remote ``src``; the only remote ``href`` is a
licence link (``<a class="licence">``) to the licence's public text. Text is escaped with
:func:`html.escape` unless it is already :class:`Html` built by these helpers. Small pictures
can be embedded as ``data:`` URIs (:func:`inline_image`), so a page needs no files beside it.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath
from urllib.parse import quote

from medimeta._version import __version__

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
       margin: 0 auto; max-width: 1100px; padding: 1em 1.5em 3em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.6em; font-size: 1.25em;
     border-bottom: 1px solid #ddd; } h3 { font-size: 1.05em; margin-bottom: 0.3em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
.row { display: flex; flex-wrap: wrap; gap: 0 1.5em; }
figure { margin: 0.5em 0 1.2em; } figcaption { font-size: 0.88em; color: #555; }
.ok { color: #116b2a; font-weight: 600; } .failed { color: #a4161a; font-weight: 600; }
.note { color: #666; font-size: 0.9em; } nav { font-size: 0.9em; margin-bottom: 1em; }
pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
.gallery { display: flex; flex-wrap: wrap; gap: 0.6em; margin: 0.4em 0 1.2em; }
.gallery figure { margin: 0; padding: 0.3em; border: 1px solid #ddd; background: #fafafa; }
.gallery figure.leak { border: 2px solid #D55E00; }
.gallery .pics { display: flex; gap: 0.3em; }
.thumb { display: flex; flex-direction: column; width: 96px; font-size: 0.72em; color: #333;
         overflow-wrap: anywhere; line-height: 1.25; }
.thumb img { width: 96px; height: 96px; object-fit: contain; background: #000; border: 0; }
.thumb.suspect img { outline: 3px solid #E69F00; outline-offset: -3px; }
.gallery figcaption { font-size: 0.78em; max-width: 32em; }
"""


class Html(str):
    """Markup that is already safe (built here); :func:`esc` leaves it as it is."""


def esc(value: object) -> Html:
    """``value`` as text safe inside elements and quoted attributes."""
    if isinstance(value, Html):
        return value
    return Html(html.escape(str(value), quote=True))


def join(parts: Iterable[object], sep: str = "\n") -> Html:
    return Html(sep.join(esc(p) for p in parts))


def tag(name: str, content: object = "", **attrs: object) -> Html:
    """``<name attrs>content</name>`` (``class_`` for ``class``); attribute values escaped."""
    text = "".join(
        f' {k.rstrip("_").replace("_", "-")}="{esc(v)}"' for k, v in attrs.items() if v is not None
    )
    return Html(f"<{name}{text}>{esc(content)}</{name}>")


def rel_url(path: str) -> str:
    """A relative link to ``path`` (``/``-separated, inside the report), percent-encoded."""
    parts = PurePosixPath(path).parts
    if not parts or path.startswith("/") or ".." in parts[1:] or re.match(r"^[a-z]+:", path):
        raise ValueError(f"not a relative report path: {path!r}")
    return "/".join(quote(p) for p in parts)


def link(path: str, text: object) -> Html:
    return tag("a", text, href=rel_url(path))


def image(path: str, alt: str, caption: str = "") -> Html:
    img = Html(f'<img src="{esc(rel_url(path))}" alt="{esc(alt)}">')
    return tag("figure", Html(img + (tag("figcaption", caption) if caption else "")))


PICTURE_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


def picture_type(data: bytes) -> str | None:
    """``image/png`` or ``image/jpeg`` from the first bytes of ``data``, else None."""
    for magic, mime in PICTURE_TYPES.items():
        if data.startswith(magic):
            return mime
    return None


def inline_image(data: bytes, alt: str, *, width: int | None = None) -> Html:
    """``<img>`` holding PNG or JPEG ``data`` as a ``data:`` URI (ValueError for other bytes)."""
    mime = picture_type(data)
    if mime is None:
        raise ValueError("an embedded picture must be PNG or JPEG")
    src = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    size = f' width="{int(width)}"' if width else ""
    return Html(f'<img src="{src}" alt="{esc(alt)}"{size}>')


CC_URL = "https://creativecommons.org/licenses/{kind}/{version}/"


def licence_url(short: str) -> str | None:
    """The public text of a Creative Commons licence named like ``CC BY-SA 4.0``."""
    found = re.fullmatch(r"CC (BY(?:-NC)?(?:-SA|-ND)?) (\d\.\d)", short.strip())
    if not found:
        return None
    return CC_URL.format(kind=found.group(1).lower(), version=found.group(2))


def licence(short: str, full: str = "") -> Html:
    """Licence name, linked to its public text when it is a known Creative Commons licence."""
    url = licence_url(short)
    text = full or short
    if url is None:
        return esc(text)
    return tag("a", text, href=url, class_="licence", rel="license noopener")


def table(
    header: Sequence[object], rows: Iterable[Sequence[object]], numeric: Sequence[int] = ()
) -> Html:
    """A table; columns whose position is in ``numeric`` are right-aligned."""
    head = tag("tr", join((tag("th", h) for h in header), ""))
    body = [
        tag(
            "tr",
            join(
                (tag("td", c, class_="num" if i in numeric else None) for i, c in enumerate(row)),
                "",
            ),
        )
        for row in rows
    ]
    return tag("table", Html(head + "\n" + join(body)))


def number(value: object, digits: int = 4) -> str:
    """A number for a table: ints with separators, floats rounded, missing as a dash."""
    if value is None or isinstance(value, bool):
        return "–" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return "–" if value != value else f"{value:.{digits}f}"
    return str(value)


def page(title: str, body: object, *, home: str | None = None) -> str:
    """A whole HTML document; ``home`` is the relative link back to the index."""
    nav = tag("nav", link(home, "← report index")) if home else Html("")
    foot = tag("p", f"Written by medimeta {__version__}; no network needed to view.", class_="note")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"{nav}\n{tag('h1', title)}\n{esc(body)}\n{foot}\n</body>\n</html>\n"
    )
