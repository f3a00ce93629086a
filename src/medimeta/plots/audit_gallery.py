"""The audit's pictures on its page: per gallery section of ``report.json`` (see
:mod:`medimeta.audit.gallery`) the thumbnails side by side, each with its dataset, sample index,
split and label, embedded as ``data:`` URIs so that the page opens offline and can be moved.

Thumbnails are read from the audit's output folder; a name in ``report.json`` that is not a
thumbnail of the audit (``pictures/<dataset>-<index>.jpg``), a file that is missing, too big or
not a PNG/JPEG is shown as a note, never as a broken image. Every text is escaped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medimeta.plots.html import Html, inline_image, join, picture_type, tag

THUMB = 96
MAX_BYTES = 256 * 1024
SAFE_NAME = re.compile(r"pictures/[A-Za-z0-9_-]+-\d+\.(?:jpg|png)")
WHAT = {"across": "pairs", "within": "pairs", "subjects": "leaking subjects",
        "labels": "suspect labels"}  # fmt: skip
WHERE = {"across": "pairs.csv", "within": "pairs.csv", "subjects": "report.json",
         "labels": "report.json"}  # fmt: skip


def _num(value: object) -> float:
    """A number of report.json (0 for anything else: the page never fails on an edited file)."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0


def _dicts(value: object) -> list[dict[str, Any]]:
    """The dicts of a list of report.json (nothing for anything else)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def read_picture(folder: Path | None, name: object) -> bytes | None:
    """The bytes of thumbnail ``name`` of the audit folder ``folder``, or None (see above)."""
    if folder is None or not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        return None
    path = Path(folder) / name
    try:
        if path.stat().st_size > MAX_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    return data if picture_type(data) else None


def _thumb(ref: Mapping[str, Any], folder: Path | None, first: bool = False) -> Html:
    name = f"{ref.get('dataset')} #{ref.get('index')}"
    lines = [name, f"{ref.get('split', '–')} · {ref.get('label') or '–'}"]
    if ref.get("similarity") is not None:
        lines.append(f"similarity {_num(ref['similarity']):.3f}")
    data = read_picture(folder, ref.get("file"))
    alt = f"{name} ({ref.get('split', '–')}, {ref.get('label') or '–'})"
    picture = (
        inline_image(data, alt, width=THUMB)
        if data is not None
        else tag("span", "picture missing", class_="note")
    )
    body = Html(picture + join((tag("span", t) for t in lines), ""))
    return tag("span", body, class_="thumb suspect" if first else "thumb")


def _caption(kind: str, item: Mapping[str, Any]) -> str:
    images = _dicts(item.get("images"))
    if kind == "labels":
        first = images[0] if images else {}
        return (
            f"given {first.get('label', '–')}, predicted {first.get('predicted', '–')} "
            f"(probability of the given label {_num(item.get('p_given')):.3f}); then its "
            f"{max(len(images) - 1, 0)} nearest neighbours in feature space"
        )
    if kind == "subjects":
        splits = " and ".join(str(r.get("split")) for r in images)
        return f"subject {item.get('subject')}: images in {splits}"
    text = f"score {_num(item.get('score')):.3f} ({item.get('kind')})"
    if item.get("crosses_splits"):
        text += f"; crosses splits: {' / '.join(str(r.get('split')) for r in images)}"
    if item.get("labels_differ"):
        text += "; labels differ"
    return text


def _item(kind: str, item: Mapping[str, Any], folder: Path | None) -> Html:
    marked = kind == "labels"  # the suspect image first, then its neighbours
    refs = _dicts(item.get("images"))
    thumbs = (_thumb(r, folder, first=marked and k == 0) for k, r in enumerate(refs))
    pics = tag("div", join(thumbs, ""), class_="pics")
    leak = "leak" if item.get("crosses_splits") else None
    return tag("figure", Html(pics + tag("figcaption", _caption(kind, item))), class_=leak)


def _counts(sec: Mapping[str, Any]) -> str:
    kind = str(sec.get("kind"))
    text = (
        f"{_num(sec.get('shown')):,.0f} of {_num(sec.get('total')):,.0f} "
        f"{WHAT.get(kind, 'examples')} shown ({sec.get('order', '')})"
    )
    if sec.get("left_out"):
        text += f"; {_num(sec['left_out']):,.0f} left out (all in {WHERE.get(kind, 'report.json')})"
    return text + "."


def gallery_html(report: Mapping[str, Any], kind: str, folder: Path | None) -> Html:
    """The gallery sections of ``kind`` (``across``, ``within``, ``subjects``, ``labels``)."""
    gallery = report.get("gallery")
    found = _dicts(gallery.get("sections") if isinstance(gallery, dict) else None)
    parts: list[object] = []
    for sec in (s for s in found if s.get("kind") == kind):
        items = [_item(kind, item, folder) for item in _dicts(sec.get("items"))]
        parts += [
            tag("h3", str(sec.get("title")), id=sec.get("anchor")),
            tag("p", _counts(sec), class_="note"),
            tag("div", join(items), class_="gallery"),
        ]
    return join(parts)


def gallery_note(report: Mapping[str, Any], folder: Path | None) -> Html:
    """A line saying why there are no pictures, when there are none."""
    gallery = report.get("gallery")
    if not isinstance(gallery, dict):
        return tag(
            "p", "No pictures: this report was written before the audit drew them.", class_="note"
        )
    if not _dicts(gallery.get("sections")):
        return tag("p", "No pictures: nothing to show, or --pictures 0.", class_="note")
    if folder is None:
        return tag(
            "p", "Pictures left out: no audit folder to read them from was given.", class_="note"
        )
    return Html("")
