"""The audit's files, each written atomically (:mod:`medimeta.safeio`):

* ``report.json``: everything (the structure of :func:`medimeta.audit.run.run_audit`);
* ``report.md``: the same for people, section by section;
* ``pairs.csv``: every image pair found, one row each (:data:`~medimeta.audit.summary.CSV_COLUMNS`:
  ``dataset_a,index_a,dataset_b,index_b,score,kind,...``; index = row of images.hdf5, kind =
  ``exact`` or ``near``; within a dataset ``index_a < index_b``);
* ``pictures/``: thumbnails of the pairs and suspect labels shown (:mod:`medimeta.audit.gallery`;
  listed in ``report.json``'s ``gallery``, linked from ``report.md``);
* ``audit.html`` (written by ``medimeta audit`` unless ``--no-html``, see
  :func:`medimeta.plots.audit_page.write_audit_page`): a static page, the thumbnails embedded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import medimeta.safeio as safeio
from medimeta.audit.context import DatasetFacts
from medimeta.audit.descriptors import Descriptors
from medimeta.audit.duplicates import PairTable
from medimeta.audit.gallery import CAP, write_gallery
from medimeta.audit.gallery_md import markdown_gallery
from medimeta.audit.summary import CSV_COLUMNS, csv_frame
from medimeta.escape import csv_cell, markdown_code, markdown_escape


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers and non-finite floats as None."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_pairs_csv(
    path: Path,
    tables: Sequence[PairTable],
    facts: Mapping[str, DatasetFacts],
    desc: Mapping[str, Descriptors],
) -> int:
    """Write every pair of ``tables`` to ``path``; returns the number of rows."""
    rows = 0
    with safeio.atomic_open(path, "w") as fh:
        fh.write(",".join(CSV_COLUMNS) + "\n")
        for t in tables:
            if not len(t):
                continue
            frame = csv_frame(
                t, facts[t.dataset_a], facts[t.dataset_b], desc[t.dataset_a], desc[t.dataset_b]
            )
            for column in ("dataset_a", "dataset_b", "label_a", "label_b"):  # untrusted text
                frame[column] = frame[column].map(csv_cell)
            frame.to_csv(fh, header=False, index=False, lineterminator="\n")
            rows += len(frame)
    return rows


def _fmt(value: Any) -> str:
    """A table cell: numbers formatted, text (names and labels from the data) escaped."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return markdown_escape(value)


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    if not rows:
        return ["(none)", ""]
    out = ["| " + " | ".join(_fmt(h) for h in header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return [*out, ""]


def _md_across(report: dict[str, Any]) -> list[str]:
    lines = ["## Images shared across datasets", ""]
    rows = [
        [
            s["a"],
            s["b"],
            s["pairs"],
            f"{s['a_paired']:,} / {s['a_images']:,} ({_fmt(s['a_paired_pct'])} %)",
            f"{s['b_paired']:,} / {s['b_images']:,} ({_fmt(s['b_paired_pct'])} %)",
            s["mutual_best_pct"],
            s["label_agreement_pct"],
        ]
        for s in report["across"]
    ]
    header = ["a", "b", "pairs", "a paired", "b paired", "mutual best %", "labels agree %"]
    lines += md_table(header, rows)
    for s in report["across"]:
        if not s["a_paired"]:
            continue
        ta, tb = s["label_tasks"]
        a, b = markdown_escape(s["a"]), markdown_escape(s["b"])
        combos = markdown_escape(", ".join(map(str, s["combinations"][:6])))
        lines += [
            f"### {a} x {b}",
            "",
            f"Best partner of each paired {a} image; labels of {markdown_code(ta)} (rows) and "
            f"{markdown_code(tb)} (columns). Combinations: {combos}"
            + (" …" if len(s["combinations"]) > 6 else "")
            + f"; splits of the pairs: {markdown_escape(s['best_pair_splits'])}.",
            "",
        ]
        cols = sorted({c for row in s["label_table"].values() for c in row})
        body = [[r, *[s["label_table"][r].get(c, 0) for c in cols]] for r in s["label_table"]]
        lines += md_table([f"{s['a']} \\ {s['b']}", *cols], body)
    return lines


def _md_within(report: dict[str, Any]) -> list[str]:
    rows = [
        [
            s["dataset"],
            s["pairs"],
            s["exact_pairs"],
            s["near_pairs"],
            f"{s['images_in_pairs']:,} ({_fmt(s['images_in_pairs_pct'])} %)",
            s["cross_split_pairs"],
            ", ".join(f"{k}: {v}" for k, v in s["by_split_pair"].items()),
            s["label_conflicts"],
        ]
        for s in report["within"]
    ]
    header = ["dataset", "pairs", "exact", "near", "images in pairs", "cross-split",
              "by split", "label conflicts"]  # fmt: skip
    return ["## Duplicates within datasets", "", *md_table(header, rows)]


def _md_subjects(report: dict[str, Any]) -> list[str]:
    rows = [
        [
            ds,
            s["column"],
            s["subjects"],
            s["leaking_subjects"],
            s["images_of_leaking_subjects"],
            ", ".join(f"{k}: {v}" for k, v in s["by_split_pair"].items()),
        ]
        for ds, sec in report["datasets"].items()
        for s in sec["subjects"]
    ]
    header = ["dataset", "column", "subjects", "in 2+ splits", "their images", "by split pair"]
    note = "Subject columns: patient_id, subject_id, lesion_id (and --subject-column)."
    return ["## Subject leakage across splits", "", note, "", *md_table(header, rows)]


def _md_labels(report: dict[str, Any]) -> list[str]:
    rows = []
    for ds, sec in report["datasets"].items():
        for t in sec.get("suspect_labels", []):
            per = ", ".join(
                f"{k}: {v}/{t['checked_by_class'].get(k, 0)}"
                for k, v in t["issues_by_class"].items()
            )
            acc = None if t["cv_accuracy"] is None else 100 * t["cv_accuracy"]
            rows.append([ds, t["task"], t["checked"], acc, t["issues"], per])
    if not any("suspect_labels" in s for s in report["datasets"].values()):
        return ["## Suspect labels", "", "(not run: --no-labels)", ""]
    header = ["dataset", "task", "checked", "cv accuracy %", "suspect", "by given class"]
    return ["## Suspect labels (cleanlab, confident learning)", "", *md_table(header, rows)]


def _md_balance(report: dict[str, Any]) -> list[str]:
    lines = ["## Class and split balance", ""]
    for ds, sec in report["datasets"].items():
        for b in sec["balance"]:
            splits = list(b["counts"])
            classes = list(b["counts"]["all"])
            body = [[c, *[b["counts"][s].get(c, 0) for s in splits]] for c in classes]
            empty = markdown_escape(b["empty_classes"]) if b["empty_classes"] else ""
            lines += [
                f"### {_fmt(ds)}: {_fmt(b['task'])} ({_fmt(b['target'])})",
                "",
                f"largest / smallest class: {_fmt(b['imbalance'])}; largest gap between a "
                f"class's share in a split and overall: {_fmt(b['split_shift_pp'])} points"
                + (f"; empty classes: {empty}" if empty else ""),
                "",
                *md_table(["class", *splits], body),
            ]
    return lines


def markdown(report: dict[str, Any]) -> str:
    """``report.md``."""
    audit = report["audit"]
    opts = audit["options"]
    head = [
        "# MedIMeta audit",
        "",
        f"Data root {markdown_code(audit['root'])}; datasets "
        f"{markdown_escape(', '.join(map(str, audit['datasets'])))}. Pairs score "
        f"at least {markdown_escape(opts['threshold'])} (Pearson correlation of 16 x 16 grey "
        f"views of the content box; exact = identical pixels). Total "
        f"{audit['timings']['total_s']:.1f} s.",
        "",
    ]
    parts = [head, _md_across(report), _md_within(report), _md_subjects(report)]
    parts += [_md_labels(report), _md_balance(report)]
    page = "audit.html" if opts.get("html_page", True) else None
    parts.insert(1, [f"Pictures: [{page}]({page}) and below." if page else "Pictures: below.", ""])
    parts.append(markdown_gallery(report, page))
    return "\n".join(line for part in parts for line in part) + "\n"


def write_outputs(
    out: Path,
    report: dict[str, Any],
    tables: Sequence[PairTable],
    facts: Mapping[str, DatasetFacts],
    desc: Mapping[str, Descriptors],
    pictures: int = CAP,
) -> dict[str, Path]:
    """Write the files of the module docstring into ``out`` (at most ``pictures`` examples
    pictured per section); returns them by kind."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"pairs": out / "pairs.csv", "json": out / "report.json", "markdown": out / "report.md"}
    report["audit"]["pairs_csv_rows"] = write_pairs_csv(files["pairs"], tables, facts, desc)
    report["gallery"] = write_gallery(out, report, tables, facts, pictures)
    if report["gallery"]["files"]:
        files["pictures"] = out / report["gallery"]["folder"]
    report["audit"]["files"] = {k: str(v) for k, v in files.items()}
    safeio.write_json(files["json"], jsonable(report), allow_nan=False)
    safeio.write_text(files["markdown"], markdown(report))
    return files
