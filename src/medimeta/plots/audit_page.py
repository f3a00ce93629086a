"""The audit as HTML: :func:`audit_fragment` (sections to put into a report page) and
:func:`audit_page` (a whole static page). Every value is escaped; no scripts, no remote
resources (the helpers of :mod:`medimeta.plots.html`). Given the audit's output folder, each
section shows the thumbnails of its examples, embedded (:mod:`medimeta.plots.audit_gallery`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medimeta.plots.audit_gallery import gallery_html, gallery_note
from medimeta.plots.html import Html, join, page, table, tag
from medimeta.safeio import write_text

PAGE_FILE = "audit.html"


def _section(title: str, *parts: object) -> Html:
    return tag("section", join([tag("h2", title), *parts]))


def _n(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _across(report: dict[str, Any], pics: Html) -> Html:
    rows = [
        [
            s["a"],
            s["b"],
            _n(s["pairs"]),
            f"{_n(s['a_paired'])} / {_n(s['a_images'])} ({_n(s['a_paired_pct'])} %)",
            f"{_n(s['b_paired'])} / {_n(s['b_images'])} ({_n(s['b_paired_pct'])} %)",
            _n(s["mutual_best_pct"]),
            _n(s["label_agreement_pct"]),
        ]
        for s in report["across"]
    ]
    head = ["a", "b", "pairs", "a paired", "b paired", "mutual best %", "labels agree %"]
    parts: list[object] = [table(head, rows, numeric=(2, 5, 6))]
    for s in report["across"]:
        if not s["a_paired"]:
            continue
        cols = sorted({c for row in s["label_table"].values() for c in row})
        body = [[r, *[_n(s["label_table"][r].get(c, 0)) for c in cols]] for r in s["label_table"]]
        ta, tb = s["label_tasks"]
        parts += [
            tag("h3", f"{s['a']} × {s['b']}: labels of best partners ({ta} × {tb})"),
            table([f"{s['a']} \\ {s['b']}", *cols], body, numeric=tuple(range(1, len(cols) + 1))),
        ]
    return _section("Images shared across datasets", *parts, pics)


def _within(report: dict[str, Any], pics: Html) -> Html:
    rows = [
        [
            s["dataset"],
            _n(s["pairs"]),
            _n(s["exact_pairs"]),
            _n(s["near_pairs"]),
            f"{_n(s['images_in_pairs'])} ({_n(s['images_in_pairs_pct'])} %)",
            _n(s["cross_split_pairs"]),
            ", ".join(f"{k}: {v}" for k, v in s["by_split_pair"].items()),
            _n(s["label_conflicts"]),
        ]
        for s in report["within"]
    ]
    head = ["dataset", "pairs", "exact", "near", "images in pairs", "cross-split", "by split",
            "label conflicts"]  # fmt: skip
    return _section("Duplicates within datasets", table(head, rows, numeric=(1, 2, 3, 5, 7)), pics)


def _subjects(report: dict[str, Any], pics: Html) -> Html:
    rows = [
        [
            ds,
            s["column"],
            _n(s["subjects"]),
            _n(s["leaking_subjects"]),
            _n(s["images_of_leaking_subjects"]),
            ", ".join(f"{k}: {v}" for k, v in s["by_split_pair"].items()),
        ]
        for ds, sec in report["datasets"].items()
        for s in sec["subjects"]
    ]
    head = ["dataset", "column", "subjects", "in 2+ splits", "their images", "by split pair"]
    body = table(head, rows, numeric=(2, 3, 4)) if rows else tag("p", "No subject columns.")
    return _section("Subject leakage across splits", body, pics)


def _labels(report: dict[str, Any], pics: Html) -> Html:
    rows = []
    for ds, sec in report["datasets"].items():
        for t in sec.get("suspect_labels", []):
            per = ", ".join(
                f"{k}: {v}/{t['checked_by_class'].get(k, 0)}"
                for k, v in t["issues_by_class"].items()
            )
            acc = None if t["cv_accuracy"] is None else 100 * t["cv_accuracy"]
            rows.append([ds, t["task"], _n(t["checked"]), _n(acc), _n(t["issues"]), per])
    head = ["dataset", "task", "checked", "cv accuracy %", "suspect", "by given class"]
    body = table(head, rows, numeric=(2, 3, 4)) if rows else tag("p", "Not run.")
    return _section("Suspect labels (confident learning)", body, pics)


def _balance(report: dict[str, Any]) -> Html:
    parts: list[object] = []
    for ds, sec in report["datasets"].items():
        for b in sec["balance"]:
            splits = list(b["counts"])
            body = [
                [c, *[_n(b["counts"][s].get(c, 0)) for s in splits]] for c in b["counts"]["all"]
            ]
            parts += [
                tag("h3", f"{ds}: {b['task']} ({b['target']})"),
                tag(
                    "p",
                    f"largest / smallest class {_n(b['imbalance'])}; largest split shift "
                    f"{b['split_shift_pp']} percentage points",
                    class_="note",
                ),
                table(["class", *splits], body, numeric=tuple(range(1, len(splits) + 1))),
            ]
    return _section("Class and split balance", *parts)


def audit_fragment(report: dict[str, Any], folder: str | Path | None = None) -> Html:
    """The report's sections as escaped HTML (no ``<html>``/``<body>``); with ``folder`` (the
    audit's output folder) the thumbnails of its ``pictures/`` embedded in each section."""
    audit = report["audit"]
    intro = tag(
        "p",
        f"Data root {audit['root']}; datasets {', '.join(audit['datasets'])}; pairs score at "
        f"least {audit['options']['threshold']} (exact = identical pixels).",
    )
    where = Path(folder) if folder is not None else None

    def pics(kind: str) -> Html:
        return gallery_html(report, kind, where) if where is not None else Html("")

    parts = [intro, gallery_note(report, where), _across(report, pics("across"))]
    parts += [_within(report, pics("within")), _subjects(report, pics("subjects"))]
    parts += [_labels(report, pics("labels")), _balance(report)]
    return join(parts)


def audit_page(
    report: dict[str, Any], *, home: str | None = None, folder: str | Path | None = None
) -> str:
    """A whole page (``home``: relative link back to a report index; ``folder``: the audit's
    output folder, whose thumbnails are embedded)."""
    return page("MedIMeta audit", audit_fragment(report, folder), home=home)


def write_audit_page(out: str | Path, report: dict[str, Any]) -> Path:
    """Write ``audit.html`` of an audit's ``report`` into its output folder ``out`` (the
    thumbnails of ``out/pictures`` embedded)."""
    return write_text(Path(out) / PAGE_FILE, audit_page(report, folder=out))
