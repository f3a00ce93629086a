"""A few-shot run as Markdown: its row of the paper's Table 4, the protocol and every metric."""

from __future__ import annotations

import math
from typing import Any

from medimeta.escape import markdown_code, markdown_escape
from medimeta.runs.model import RunRecord
from medimeta.runs.tables import merge_tables, to_markdown
from medimeta.train.fewshot.medfm import protocol_line
from medimeta.train.fewshot.registry import all_methods


def result_markdown(record: RunRecord) -> str:
    """Markdown for one run: the table, the protocol and a per-metric summary."""
    e, c = record.protocol["episodes"], record.settings
    weights = (record.protocol.get("backbone") or {}).get("weights") or "random"
    timings = record.details.get("timings") or {}
    target = record.target
    lines = [
        f"# Few-shot: {markdown_escape(record.method)} on {markdown_escape(record.target_id)}",
        "",
        to_markdown(merge_tables([record])),
        f"AUROC (%) on the query sets: mean ± {int(100 * (record.confidence or 0.95))} % "
        f"Student-t interval over {e['evaluated']} episodes.",
        "",
        "## Protocol",
        "",
        f"- target: {markdown_code(record.target_id)} "
        f"({markdown_escape(target.target if target else '–')}), split "
        f"{markdown_escape(e['split'])}",
        f"- episodes: {e['evaluated']} of {e['in_file']} in {markdown_code(e['file'])} "
        f"(sha256 {e['file_sha256'][:16]}…), data fingerprint {e['fingerprint'][:16]}…, "
        f"seed {e['seed']}, {e['settings']['shots']}-shot / {e['settings']['queries']}-query",
        f"- backbone: {markdown_escape(c.get('backbone'))}, weights: {markdown_escape(weights)}",
        "- settings: " + markdown_escape(", ".join(f"{k}={v}" for k, v in c.items())),
        f"- wall time: {timings.get('total_s', math.nan):.0f} s "
        f"({timings.get('episode_mean_s', math.nan):.1f} s per episode)",
        *protocol_line(record),
        "",
        "## All metrics",
        "",
        "| metric | mean | CI half-width | episodes |",
        "|---|---:|---:|---:|",
    ]
    for name, entry in record.summary.items():
        mean, ci = entry.get("mean"), entry.get("ci")
        lines.append(f"| {markdown_escape(name)} | {_num(mean)} | {_num(ci)} | {entry.get('n')} |")
    return "\n".join(lines) + "\n"


def _num(value: Any) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.4f}"


def methods_markdown() -> str:
    """The registered methods as a Markdown table (docs/methods.md holds this table)."""
    lines = [
        "| method | row in the tables | kind | stages | options (defaults) | follows |",
        "|---|---|---|---|---|---|",
    ]
    for m in all_methods():
        options = ", ".join(f"`{k}={v}`" for k, v in m.options().recorded().items()) or "–"
        cells = [
            f"`{m.name}`",
            markdown_escape(m.paper_name),
            m.kind.value,
            " → ".join(m.stages),
            options,
            markdown_escape(m.reference or "–"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
