"""Few-shot results as Markdown, in the layout of the MedIMeta paper's Table 4.

Rows are (training type, backbone), columns target datasets, cells "mean ± 95 % CI" of
the query AUROC in percent over the evaluated episodes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from medimeta.train.fewshot.medfm import protocol_line


def _cell(summary: dict[str, Any], metric: str, scale: float) -> str:
    entry = summary.get(metric)
    if not entry or entry.get("mean") is None or not math.isfinite(entry["mean"]):
        return "–"
    mean = scale * entry["mean"]
    ci = entry.get("ci")
    if ci is None or not math.isfinite(ci):
        return f"{mean:.1f}"
    return f"{mean:.1f} ± {scale * ci:.1f}"


def fewshot_table(
    records: Sequence[dict[str, Any]], metric: str = "auroc", scale: float = 100.0
) -> str:
    """One Markdown table for several result records (``results.json`` contents)."""
    columns: list[str] = []
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for rec in records:
        col = rec["target"]["dataset_id"]
        if col not in columns:
            columns.append(col)
        key = (rec["paper_name"], rec["config"]["backbone"])
        rows.setdefault(key, {})[col] = (
            _cell(rec["summary"], metric, scale) + f" (n={rec['episodes']['evaluated']})"
        )
    lines = [
        "| Training Type | Backbone | " + " | ".join(columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for (kind, backbone), cells in rows.items():
        lines.append(
            f"| {kind} | {backbone} | " + " | ".join(cells.get(c, "–") for c in columns) + " |"
        )
    return "\n".join(lines) + "\n"


def result_markdown(record: dict[str, Any]) -> str:
    """Markdown for one run: the table, the protocol and a per-metric summary."""
    t, e, c = record["target"], record["episodes"], record["config"]
    lines = [
        f"# Few-shot: {record['method']} on {t['dataset_id']}:{t['task']}",
        "",
        fewshot_table([record]),
        f"AUROC (%) on the query sets: mean ± {int(100 * record['confidence'])} % Student-t "
        f"interval over {e['evaluated']} episodes.",
        "",
        "## Protocol",
        "",
        f"- target: `{t['dataset_id']}:{t['task']}` ({t['target']}), split {e['split']}",
        f"- episodes: {e['evaluated']} of {e['in_file']} in `{e['file']}` "
        f"(sha256 {e['file_sha256'][:16]}…), data fingerprint {e['fingerprint'][:16]}…, "
        f"seed {e['seed']}, {e['settings']['shots']}-shot / {e['settings']['queries']}-query",
        f"- backbone: {c['backbone']}, weights: {record['backbone'].get('weights') or 'random'}",
        "- settings: " + ", ".join(f"{k}={v}" for k, v in c.items()),
        f"- wall time: {record['timings']['total_s']:.0f} s "
        f"({record['timings']['episode_mean_s']:.1f} s per episode)",
        *protocol_line(record),
        "",
        "## All metrics",
        "",
        "| metric | mean | CI half-width | episodes |",
        "|---|---:|---:|---:|",
    ]
    for name, entry in record["summary"].items():
        mean, ci = entry.get("mean"), entry.get("ci")
        lines.append(f"| {name} | {_num(mean)} | {_num(ci)} | {entry.get('n')} |")
    return "\n".join(lines) + "\n"


def _num(value: Any) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.4f}"
