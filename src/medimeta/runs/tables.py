"""Run records merged into the paper's tables: training types x targets, mean ± 95 % interval.

* Table 3 (supervised): rows = backbone, cells = test AUROC (%); over several seeds the mean
  ± Student-t 95 % half-width over the seeds, ``n`` = seeds;
* Table 4 (few-shot, one table per number of shots): rows = (training type, backbone), cells =
  query AUROC (%) mean ± Student-t 95 % half-width over the episodes (the episodes of every
  seed pooled), ``n`` = episodes.

Runs that share row and column but differ in their settings (other than the seed) are never
pooled: each settings variant gets its own row, labelled with the settings that differ. The
output is a function of the set of records alone (sorted rows and columns, no time stamps),
so merging the same runs again gives the same bytes.

Formats by suffix: ``.md`` (Markdown), ``.tex`` (LaTeX ``tabular``), ``.csv`` (one row per
cell) or ``.json`` (tables, cells and the records' sources); every text is escaped for its
format.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import medimeta.safeio as safeio
from medimeta.errors import FormatError
from medimeta.escape import csv_cell, latex_escape, markdown_escape
from medimeta.evaluate.ci import mean_ci
from medimeta.evaluate.metrics import UndefinedMetricWarning
from medimeta.runs.files import jsonable
from medimeta.runs.model import RunRecord

SUFFIXES = (".md", ".tex", ".csv", ".json")
_NOT_SETTINGS = ("seed", "method", "backbone")


def _variant(record: RunRecord) -> str:
    """What must agree for runs to be pooled: the settings without the seed and, for few-shot
    runs, the episodes' protocol (queries, ways, split, number of episodes) but not their
    seed."""
    settings = {k: v for k, v in record.settings.items() if k not in _NOT_SETTINGS}
    episodes = record.protocol.get("episodes") or {}
    drawn = {k: v for k, v in (episodes.get("settings") or {}).items() if k != "shots"}
    if episodes:
        drawn.update(split=episodes.get("split"), episodes=episodes.get("evaluated"))
    settings.update(drawn)
    return json.dumps(settings, sort_keys=True, default=str)


def _entries(records: Sequence[RunRecord], metric: str) -> dict[tuple[str, ...], list[float]]:
    """(table, row, backbone, variant, dataset, task) -> values (per episode, or per seed)."""
    groups: dict[tuple[str, ...], list[float]] = {}
    runs: set[tuple[Any, ...]] = set()
    for rec in records:
        if rec.target is None or rec.kind not in ("fewshot", "supervised"):
            continue
        if rec.kind == "fewshot":
            episodes = rec.protocol.get("episodes") or {}
            ident = (rec.protocol.get("run"), rec.target.id, episodes.get("file_sha256"))
            if ident in runs:  # the same run found twice (e.g. a copy)
                continue
            runs.add(ident)
            table = f"{rec.shots}-shot"
            values: list[Any] = [(e.get("metrics") or {}).get(metric) for e in rec.per_episode]
        else:
            table = "supervised"
            values = [(rec.summary.get(metric) or {}).get("mean")]
        key = (table, rec.row_name, str(rec.backbone), _variant(rec), *_col(rec))
        groups.setdefault(key, []).extend(math.nan if v is None else float(v) for v in values)
    return groups


def _col(rec: RunRecord) -> tuple[str, str]:
    if rec.target is None:
        raise FormatError(rec.source or "run record", "a result without a target")
    return (rec.target.dataset_id, rec.target.task)


def _variant_labels(keys: list[tuple[str, ...]]) -> dict[tuple[str, ...], str]:
    """A short label for each settings variant of a (table, row, backbone): empty when there
    is one, else the settings in which the variants differ."""
    by_row: dict[tuple[str, ...], set[str]] = {}
    for k in keys:
        by_row.setdefault(k[:3], set()).add(k[3])
    labels: dict[tuple[str, ...], str] = {}
    for row, variants in by_row.items():
        if len(variants) == 1:
            labels[(*row, next(iter(variants)))] = ""
            continue
        parsed = {v: json.loads(v) for v in variants}
        names = sorted({n for p in parsed.values() for n in p})
        differ = [n for n in names if len({json.dumps(p.get(n)) for p in parsed.values()}) > 1]
        for v, p in parsed.items():
            text = ", ".join(f"{n}={p.get(n)}" for n in differ)
            digest = hashlib.sha256(v.encode()).hexdigest()[:6]
            labels[(*row, v)] = text or digest
    return labels


def merge_tables(
    records: Sequence[RunRecord], metric: str = "auroc", row_order: Sequence[str] = ()
) -> dict[str, Any]:
    """The tables as data: ``{"tables": [{"title", "columns", "rows": [...]}], ...}``; rows
    follow ``row_order`` (training types; others after them, by name)."""
    groups = _entries(records, metric)
    labels = _variant_labels(list(groups))
    tables: dict[str, dict[str, Any]] = {}
    for (table, row, backbone, variant, ds, task), values in groups.items():
        entry = tables.setdefault(table, {"columns": set(), "rows": {}})
        entry["columns"].add((ds, task))
        arr = np.asarray(values, dtype=np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            mean, ci = mean_ci(arr) if np.isfinite(arr).any() else (math.nan, math.nan)
        cell = {"mean": mean, "ci": ci, "n": int(np.isfinite(arr).sum())}
        row_key = (row, backbone, labels[(table, row, backbone, variant)])
        entry["rows"].setdefault(row_key, {})[(ds, task)] = cell
    order = list(row_order)

    def rank(key: tuple[str, str, str]) -> tuple[int, str, str, str]:
        return (order.index(key[0]) if key[0] in order else len(order), key[0], key[1], key[2])

    out = []
    for name in sorted(tables, key=_table_order):
        entry = tables[name]
        columns = sorted(entry["columns"])
        ids = [c[0] for c in columns]
        col_labels = [c[0] if ids.count(c[0]) == 1 else f"{c[0]}:{c[1]}" for c in columns]
        rows = []
        for key in sorted(entry["rows"], key=rank):
            cells = entry["rows"][key]
            rows.append(
                {
                    "training_type": key[0],
                    "backbone": key[1],
                    "variant": key[2],
                    "cells": {
                        lab: cells.get(c) for c, lab in zip(columns, col_labels, strict=True)
                    },
                }
            )
        out.append(
            {
                "title": _title(name, metric),
                "table": name,
                "columns": [
                    {"dataset_id": c[0], "task": c[1], "label": lab}
                    for c, lab in zip(columns, col_labels, strict=True)
                ],
                "rows": rows,
            }
        )
    return {"metric": metric, "scale": 100, "confidence": 0.95, "tables": out}


def _table_order(name: str) -> tuple[int, int]:
    return (0, 0) if name == "supervised" else (1, int(name.split("-")[0]))


def _title(name: str, metric: str) -> str:
    what = metric.upper() if metric == "auroc" else metric
    if name == "supervised":
        return f"Table 3 layout: {what} (%) on the test set, fully supervised"
    return f"Table 4 layout: {what} (%) on the query sets, {name} episodes"


def row_label(row: dict[str, Any]) -> str:
    """The training type, with its settings variant when there are several."""
    return row["training_type"] + (f" [{row['variant']}]" if row.get("variant") else "")


def cell_text(cell: dict[str, Any] | None, latex: bool = False) -> str:
    if not cell or cell.get("mean") is None or not math.isfinite(cell["mean"]):
        return "–"
    mean, ci, n = 100 * cell["mean"], cell.get("ci"), cell.get("n")
    pm = r"$\pm$" if latex else "±"
    body = (
        f"{mean:.1f}" if ci is None or not math.isfinite(ci) else f"{mean:.1f} {pm} {100 * ci:.1f}"
    )
    return f"{body} (n={n})"


def to_markdown(merged: dict[str, Any]) -> str:
    lines: list[str] = []
    for table in merged["tables"]:
        labels = [c["label"] for c in table["columns"]]
        lines += [f"### {markdown_escape(table['title'])}", ""]
        lines.append(
            "| Training Type | Backbone | " + " | ".join(map(markdown_escape, labels)) + " |"
        )
        lines.append("|---|---|" + "---|" * len(labels))
        for row in table["rows"]:
            cells = " | ".join(cell_text(row["cells"].get(lab)) for lab in labels)
            lines.append(
                f"| {markdown_escape(row_label(row))} | {markdown_escape(row['backbone'])} | "
                f"{cells} |"
            )
        lines.append("")
    note = "mean ± half-width of the Student-t 95 % interval; n = episodes (Table 3: seeds)"
    return "\n".join([*lines, note, ""])


def to_latex(merged: dict[str, Any]) -> str:
    parts = []
    for table in merged["tables"]:
        labels = [c["label"] for c in table["columns"]]
        head = " & ".join(["Training Type", "Backbone", *[latex_escape(x) for x in labels]])
        body = [
            " & ".join(
                [latex_escape(row_label(r)), latex_escape(r["backbone"])]
                + [cell_text(r["cells"].get(lab), latex=True) for lab in labels]
            )
            + r" \\"
            for r in table["rows"]
        ]
        parts.append(
            "\n".join(
                [
                    f"% {latex_escape(table['title'])}",
                    r"\begin{tabular}{ll" + "r" * len(labels) + "}",
                    r"\toprule",
                    head + r" \\",
                    r"\midrule",
                    *body,
                    r"\bottomrule",
                    r"\end{tabular}",
                ]
            )
        )
    return "\n\n".join(parts) + "\n"


def to_csv(merged: dict[str, Any]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header = ["table", "training_type", "variant", "backbone", "target", "mean", "ci", "n"]
    writer.writerow([*header, "metric"])
    for table in merged["tables"]:
        for row in table["rows"]:
            for col in table["columns"]:
                cell = row["cells"].get(col["label"]) or {}
                values = [
                    table["table"],
                    row["training_type"],
                    row.get("variant", ""),
                    row["backbone"],
                    f"{col['dataset_id']}:{col['task']}",
                    _num(cell.get("mean")),
                    _num(cell.get("ci")),
                    cell.get("n", 0),
                    merged["metric"],
                ]
                writer.writerow([csv_cell(v) for v in values])
    return buf.getvalue()


def _num(value: Any) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.6f}"


def write_merged(merged: dict[str, Any], path: str | Path, records: Sequence[RunRecord]) -> Path:
    """Write the tables to ``path`` in the format its suffix names."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".md":
        return safeio.write_text(path, to_markdown(merged))
    if suffix == ".tex":
        return safeio.write_text(path, to_latex(merged))
    if suffix == ".csv":
        return safeio.write_text(path, to_csv(merged))
    if suffix == ".json":
        sources = sorted(str(r.source) for r in records if r.source)
        data = {**merged, "sources": sources}
        return safeio.write_text(path, json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n")
    raise FormatError(path, "unknown output format", expected=list(SUFFIXES), actual=suffix)
