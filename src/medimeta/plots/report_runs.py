"""The report page of one run folder: metrics table, curves, ROC, few-shot episode spread."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from medimeta.plots.grids import reliability_diagram
from medimeta.plots.html import Html, join, number, page, table, tag
from medimeta.plots.report_pages import PageWriter, facts, section
from medimeta.plots.results import fewshot_episodes, roc_curves, training_curves
from medimeta.plots.rundirs import RunFolder
from medimeta.runs.model import RunRecord
from medimeta.runs.record import TRAINING_LOG
from medimeta.safeio import write_text


@dataclass
class RunEntry:
    """What the index shows of one run page."""

    name: str
    kind: str
    title: str
    target: str
    model: str
    headline: str  # the main metric, as text
    page: str
    record: RunRecord


def _pct(entry: dict[str, Any] | None) -> str:
    if not entry or entry.get("mean") is None or not math.isfinite(entry["mean"]):
        return "–"
    ci = entry.get("ci")
    tail = "" if ci is None or not math.isfinite(ci) else f" ± {100 * ci:.1f}"
    return f"{100 * entry['mean']:.1f}{tail}"


def _supervised(run: RunFolder, writer: PageWriter) -> tuple[Html, str]:
    r = run.record.details
    splits = [s for s in ("val", "test") if isinstance(r.get(s), dict)]
    names = sorted({k for s in splits for k in r[s].get("metrics", {})})
    rows = [
        [
            s,
            number(r[s].get("n")),
            number(r[s].get("loss")),
            *(number(r[s]["metrics"].get(k)) for k in names),
        ]
        for s in splits
    ]
    metrics = table(["split", "n", "loss", *names], rows, numeric=tuple(range(1, len(names) + 3)))
    cfg = run.record.settings
    about = facts(
        [
            ("backbone", run.record.backbone or "–"),
            ("seed", "–" if run.record.seed is None else run.record.seed),
            ("epochs run", f"{r.get('epochs_run', '–')} of {cfg.get('epochs', '–')}"),
            (
                "selected",
                f"{r.get('selected_checkpoint', '–')} checkpoint, "
                f"epoch {r.get('selected_epoch', '–')}",
            ),
            ("monitor", f"{cfg.get('monitor', '–')} (best {number(r.get('best_val'))})"),
            ("batch size, lr", f"{cfg.get('batch_size', '–')}, {cfg.get('lr', '–')}"),
            ("training time", f"{number(r.get('timings', {}).get('train_s'), 1)} s"),
        ]
    )
    parts: list[object] = [section("Metrics", metrics), section("Protocol", about)]
    if (run.path / TRAINING_LOG).is_file():
        parts.append(
            section(
                "Training curves",
                writer.picture("curves.png", lambda: training_curves(run.path), "training curves"),
            )
        )
    rocs = [
        writer.picture(f"roc_{split}.png", partial(roc_curves, path), f"ROC curves ({split})")
        for split, path in run.predictions()
    ]
    if rocs:
        parts.append(section("ROC curves per class", tag("div", join(rocs), class_="row")))
    for split, path in run.predictions()[-1:]:
        diagram = writer.picture(
            f"reliability_{split}.png", partial(reliability_diagram, path), "reliability"
        )
        parts.append(section(f"Calibration ({split} predictions)", diagram))
    test = r.get("test", {}).get("metrics", {})
    headline = f"test AUROC {number(test.get('auroc'))}" if "auroc" in test else "–"
    return join(parts), headline


def _fewshot(run: RunFolder, writer: PageWriter) -> tuple[Html, str]:
    r = run.record
    rows = [
        [k, number(v.get("mean")), number(v.get("ci")), number(v.get("n"))]
        for k, v in r.summary.items()
    ]
    metrics = table(["metric", "mean", "95 % CI half-width", "episodes"], rows, numeric=(1, 2, 3))
    e = r.protocol.get("episodes") or {}
    settings = e.get("settings", {})
    about = facts(
        [
            ("method", f"{r.method} ({r.paper_name or ''})"),
            ("backbone", r.backbone or "–"),
            (
                "episodes",
                f"{e.get('evaluated', '–')} of {e.get('in_file', '–')}, "
                f"split {e.get('split', '–')}, seed {e.get('seed', '–')}",
            ),
            ("shots / queries", f"{settings.get('shots', '–')} / {settings.get('queries', '–')}"),
            ("episode file", e.get("file", "–")),
            ("wall time", f"{number(r.details.get('timings', {}).get('total_s'), 1)} s"),
        ]
    )
    chart = writer.picture("episodes.png", lambda: fewshot_episodes(r), "AUROC per episode")
    headline = f"AUROC {_pct(r.summary.get('auroc'))} %"
    parts = [section("Metrics", metrics), section("Protocol", about), section("Per episode", chart)]
    for _, path in run.predictions():
        diagram = writer.picture(
            "reliability.png", partial(reliability_diagram, path), "reliability diagram"
        )
        parts.append(section("Calibration (query predictions of every episode)", diagram))
    return join(parts), headline


def _other(run: RunFolder) -> Html:
    """A record of another kind (an embedding export, a MedFM import, a MedFM average)."""
    r = run.record
    rows: list[tuple[str, object]] = [
        (key, _short(value)) for key, value in {**r.protocol, **r.details}.items()
    ]
    return section("Record", facts(rows))


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 300 else text[:300] + " …"


def write_run_page(out: Path, run: RunFolder, name: str) -> tuple[RunEntry, PageWriter]:
    """Pictures of the run in ``out/runs/<name>/``, then ``out/runs/<name>.html``."""
    writer = PageWriter(out, f"runs/{name}", page_dir="runs")
    r = run.record
    shots = f", {r.shots}-shot" if r.shots is not None else ""
    model = f"{r.method or r.kind} / {r.backbone or '–'}{shots}"
    if run.kind == "fewshot":
        body, headline = _fewshot(run, writer)
    elif run.kind == "supervised":
        body, headline = _supervised(run, writer)
    else:
        body, headline = _other(run), run.kind
    intro = tag("p", f"{run.kind} run in {run.path}")
    file = out / "runs" / f"{name}.html"
    write_text(file, page(run.title, join([intro, body]), home="../index.html"))
    writer.written.append(file)
    return RunEntry(
        name, run.kind, run.title, r.target_id, model, headline, f"runs/{name}.html", r
    ), writer
