"""Result records merged into the paper's tables: methods x targets, mean ± 95 % interval.

Records are the ``results.json`` of few-shot runs and the ``result.json`` of supervised runs
(``medimeta fewshot``, ``medimeta train`` or the cells of ``medimeta benchmark``), found
anywhere below the given folders. Tables:

* Table 3 (supervised): rows = backbone, cells = test AUROC (%); over several seeds the mean
  ± Student-t 95 % half-width over the seeds, ``n`` = seeds;
* Table 4 (few-shot, one table per number of shots): rows = (training type, backbone), cells =
  query AUROC (%) mean ± Student-t 95 % half-width over the episodes (the episodes of every
  seed pooled), ``n`` = episodes.

Output by suffix: ``.md`` (Markdown), ``.tex`` (LaTeX ``tabular``), ``.csv`` (one row per
cell) or ``.json`` (tables, cells and the records' sources).
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

import medimeta.safeio as safeio
from medimeta.errors import FormatError
from medimeta.evaluate.ci import mean_ci
from medimeta.evaluate.metrics import UndefinedMetricWarning
from medimeta.train.records import jsonable, read_json

ROW_ORDER = (
    "Supervised",
    "ImageNet",
    "ImageNet (linear probe)",
    "ProtoNet",
    "ImageNet (kNN)",
    "MM-PFT",
    "MM-MAML",
)
SUFFIXES = (".md", ".tex", ".csv", ".json")


def find_records(folders: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Few-shot and supervised result records below ``folders`` (each file once)."""
    seen: set[Path] = set()
    out: list[dict[str, Any]] = []
    for folder in folders:
        base = Path(folder)
        if not base.exists():
            raise FormatError(base, "no such file or folder", fix="pass result folders")
        files = [base] if base.is_file() else sorted(base.rglob("result*.json"))
        for path in files:
            real = path.resolve()
            if path.name not in ("results.json", "result.json") or real in seen:
                continue
            seen.add(real)
            try:
                record = read_json(path)
            except ValueError:
                continue
            if record.get("kind") in ("fewshot", "supervised"):
                record["_file"] = str(path)
                out.append(record)
    return out


def _entries(records: list[dict[str, Any]], metric: str) -> dict[tuple[Any, ...], list[Any]]:
    """(table, row, backbone, column) -> values (per episode, or per seed for Table 3)."""
    groups: dict[tuple[Any, ...], list[Any]] = {}
    runs: set[tuple[Any, ...]] = set()
    for rec in records:
        if rec["kind"] == "fewshot":
            t = rec["target"]
            shots = rec["episodes"]["settings"]["shots"]
            ident = (rec.get("run"), t["dataset_id"], t["task"], rec["episodes"]["file_sha256"])
            if ident in runs:  # the same run found twice (e.g. a copy)
                continue
            runs.add(ident)
            key = (f"{shots}-shot", rec["paper_name"], rec["config"]["backbone"], _col(t))
            values = [e["metrics"].get(metric) for e in rec["per_episode"]]
        else:
            d = rec["data"]
            key = ("supervised", "Supervised", rec["backbone"]["name"], _col(d))
            values = [rec.get("test", {}).get("metrics", {}).get(metric)]
        groups.setdefault(key, []).extend(np.nan if v is None else float(v) for v in values)
    return groups


def _col(t: dict[str, Any]) -> tuple[str, str]:
    return (t["dataset_id"], t["task"])


def merge_tables(records: list[dict[str, Any]], metric: str = "auroc") -> dict[str, Any]:
    """The tables as data: ``{"tables": [{"title", "columns", "rows": [...]}], ...}``."""
    groups = _entries(records, metric)
    tables: dict[str, dict[str, Any]] = {}
    for (table, row, backbone, col), values in groups.items():
        entry = tables.setdefault(table, {"columns": [], "rows": {}})
        if col not in entry["columns"]:
            entry["columns"].append(col)
        arr = np.asarray(values, dtype=np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            mean, ci = mean_ci(arr) if np.isfinite(arr).any() else (math.nan, math.nan)
        cell = {"mean": mean, "ci": ci, "n": int(np.isfinite(arr).sum())}
        entry["rows"].setdefault((row, backbone), {})[col] = cell
    out = []
    for name in sorted(tables, key=_table_order):
        entry = tables[name]
        columns = sorted(entry["columns"])
        ids = [c[0] for c in columns]
        labels = [c[0] if ids.count(c[0]) == 1 else f"{c[0]}:{c[1]}" for c in columns]
        rows = sorted(entry["rows"].items(), key=lambda kv: (_row_order(kv[0][0]), kv[0][1]))
        out.append(
            {
                "title": _title(name, metric),
                "table": name,
                "columns": [
                    {"dataset_id": c[0], "task": c[1], "label": lab}
                    for c, lab in zip(columns, labels, strict=True)
                ],
                "rows": [
                    {
                        "training_type": row,
                        "backbone": backbone,
                        "cells": {
                            lab: cells.get(c) for c, lab in zip(columns, labels, strict=True)
                        },
                    }
                    for (row, backbone), cells in rows
                ],
            }
        )
    return {"metric": metric, "scale": 100, "confidence": 0.95, "tables": out}


def _table_order(name: str) -> tuple[int, int]:
    return (0, 0) if name == "supervised" else (1, int(name.split("-")[0]))


def _row_order(name: str) -> int:
    return ROW_ORDER.index(name) if name in ROW_ORDER else len(ROW_ORDER)


def _title(name: str, metric: str) -> str:
    what = metric.upper() if metric == "auroc" else metric
    if name == "supervised":
        return f"Table 3 layout: {what} (%) on the test set, fully supervised"
    return f"Table 4 layout: {what} (%) on the query sets, {name} episodes"


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
        lines += [f"### {table['title']}", ""]
        lines.append("| Training Type | Backbone | " + " | ".join(labels) + " |")
        lines.append("|---|---|" + "---|" * len(labels))
        for row in table["rows"]:
            cells = " | ".join(cell_text(row["cells"].get(lab)) for lab in labels)
            lines.append(f"| {row['training_type']} | {row['backbone']} | {cells} |")
        lines.append("")
    note = "mean ± half-width of the Student-t 95 % interval; n = episodes (Table 3: seeds)"
    return "\n".join([*lines, note, ""])


def to_latex(merged: dict[str, Any]) -> str:
    def esc(text: str) -> str:
        return text.replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")

    parts = []
    for table in merged["tables"]:
        labels = [c["label"] for c in table["columns"]]
        head = " & ".join(["Training Type", "Backbone", *[esc(x) for x in labels]])
        body = [
            " & ".join(
                [esc(r["training_type"]), esc(r["backbone"])]
                + [cell_text(r["cells"].get(lab), latex=True) for lab in labels]
            )
            + r" \\"
            for r in table["rows"]
        ]
        parts.append(
            "\n".join(
                [
                    f"% {esc(table['title'])}",
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
    writer.writerow(["table", "training_type", "backbone", "target", "mean", "ci", "n", "metric"])
    for table in merged["tables"]:
        for row in table["rows"]:
            for col in table["columns"]:
                cell = row["cells"].get(col["label"]) or {}
                writer.writerow(
                    [
                        table["table"],
                        row["training_type"],
                        row["backbone"],
                        f"{col['dataset_id']}:{col['task']}",
                        _num(cell.get("mean")),
                        _num(cell.get("ci")),
                        cell.get("n", 0),
                        merged["metric"],
                    ]
                )
    return buf.getvalue()


def _num(value: Any) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.6f}"


def write_merged(merged: dict[str, Any], path: str | Path, records: list[dict[str, Any]]) -> Path:
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
        data = {**merged, "sources": [r["_file"] for r in records]}
        return safeio.write_text(path, json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n")
    raise FormatError(path, "unknown output format", expected=list(SUFFIXES), actual=suffix)


def merge_results(
    folders: Iterable[str | Path], out: str | Path | None = None, *, metric: str = "auroc"
) -> dict[str, Any]:
    """Find the records below ``folders``, merge them and (with ``out``) write the tables."""
    records = find_records(folders)
    if not records:
        raise FormatError(
            ", ".join(str(f) for f in folders),
            "no result records (results.json of few-shot runs, result.json of supervised runs)",
            fix="pass benchmark, fewshot or train output folders",
        )
    merged = merge_tables(records, metric)
    if out is not None:
        write_merged(merged, out, records)
    merged["records"] = len(records)
    return merged


def save_figure(records: list[dict[str, Any]], path: Path) -> Path | None:
    """The few-shot intervals figure of :mod:`medimeta.plots` when that module offers one."""
    fewshot = [r for r in records if r.get("kind") == "fewshot"]
    try:
        import medimeta.plots as plots
    except ImportError:
        return None
    draw, save = getattr(plots, "fewshot_intervals", None), getattr(plots, "save_figure", None)
    if draw is None or save is None or not fewshot:
        return None
    return Path(save(draw(fewshot), path))
