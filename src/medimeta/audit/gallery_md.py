"""The pictures section of ``report.md``: a table per gallery section whose cells show the
thumbnails (relative links into ``pictures/``), and links to the sections of ``audit.html``.
Every name and label from the data is escaped (:mod:`medimeta.escape`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from medimeta.escape import markdown_escape

WHAT = {"across": "pairs", "within": "pairs", "subjects": "leaking subjects",
        "labels": "suspect labels"}  # fmt: skip
WHERE = {"across": "pairs.csv", "within": "pairs.csv", "subjects": "report.json",
         "labels": "report.json"}  # fmt: skip


def _link(path: str) -> str:
    return "/".join(quote(part) for part in path.split("/"))


def image_cell(ref: Mapping[str, Any]) -> str:
    """A thumbnail and what it is: ``![ds #i](pictures/ds-i.jpg) ds #i · split · label``."""
    name = f"{ref['dataset']} #{ref['index']}"
    text = [name, ref["split"], ref["label"] or "–"]
    if ref.get("similarity") is not None:
        text.append(f"similarity {ref['similarity']:.3f}")
    picture = f"![{markdown_escape(name)}]({_link(ref['file'])}) " if ref.get("file") else ""
    return picture + markdown_escape(" · ".join(map(str, text)))


def _first_cell(sec: Mapping[str, Any], item: Mapping[str, Any]) -> str:
    if sec["kind"] == "labels":
        suspect = item["images"][0]
        return markdown_escape(
            f"given {suspect['label']}, predicted {suspect.get('predicted', '–')} "
            f"(p {item['p_given']:.3f})"
        )
    if sec["kind"] == "subjects":
        return markdown_escape(f"subject {item['subject']}")
    notes = [f"{item['score']:.3f} {item['kind']}"]
    notes += ["crosses splits"] if item.get("crosses_splits") else []
    notes += ["labels differ"] if item.get("labels_differ") else []
    return " · ".join(notes)


def _header(sec: Mapping[str, Any]) -> list[str]:
    if sec["kind"] == "labels":
        width = max(len(item["images"]) for item in sec["items"])
        return ["label", "image", *[f"neighbour {k}" for k in range(1, width)]]
    if sec["kind"] == "subjects":
        return ["subject", "image in one split", "image in another"]
    if sec["kind"] == "across":
        return ["score", markdown_escape(sec["a"]), markdown_escape(sec["b"])]
    return ["score", "image a", "image b"]


def section_lines(sec: Mapping[str, Any], page: str | None) -> list[str]:
    """One gallery section: heading, counts, a link to the page's section, the table."""
    title = markdown_escape(sec["title"])
    counts = (
        f"{sec['shown']:,} of {sec['total']:,} {WHAT[sec['kind']]} shown "
        f"({markdown_escape(sec['order'])})"
    )
    if sec["left_out"]:
        counts += f"; {sec['left_out']:,} left out (all in {WHERE[sec['kind']]})"
    if page:
        counts += f"; [on the page]({page}#{sec['anchor']})"
    header = _header(sec)
    rows = [
        "| " + " | ".join([_first_cell(sec, item), *map(image_cell, item["images"])]) + " |"
        for item in sec["items"]
    ]
    table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *rows]
    return [f"### {title}", "", counts + ".", "", *table, ""]


def markdown_gallery(report: Mapping[str, Any], page: str | None = "audit.html") -> list[str]:
    """``## Pictures`` of ``report.md`` (``page``: the audit page beside it, or None)."""
    gallery = report.get("gallery") or {}
    sections = gallery.get("sections") or []
    lines = ["## Pictures", ""]
    if not sections:
        lines += ["(none: nothing to show, or --pictures 0)", ""]
        return lines
    where = (
        f"[{page}]({page}) shows them with embedded thumbnails (it opens offline); " if page else ""
    )
    lines += [
        f"{where}the {gallery['files']:,} thumbnails ({gallery['thumb_px']} px JPEG) are files in "
        f"[{gallery['folder']}/]({_link(gallery['folder'])}/). At most {gallery['cap']} examples "
        "per section.",
        "",
    ]
    for sec in sections:
        lines += section_lines(sec, page)
    return lines
