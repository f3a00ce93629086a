"""``medimeta report``: one static HTML report of a data root and of run folders.

Layout of the report folder::

    index.html                      datasets, runs, few-shot results, tasks (written last)
    overview.png                    one tile per dataset (the paper's Fig. 1)
    fewshot.png                     few-shot means ± 95 % CI per method and target
    datasets/<id>.html              montage, verify status, counts, charts, class examples
    datasets/<id>/montage.png, classes_<k>.png, labels.png, splits.png
    runs/<name>.html                metrics, protocol, curves, ROC / per-episode spread
    runs/<name>/curves.png, roc_val.png, roc_test.png, episodes.png
    audit.html (audit_<n>.html)     the pages of ``medimeta audit`` folders passed as ``audits``

Pictures are PNG files beside the pages (relative links); pages have no scripts and load
nothing remote. Each file is written atomically and every page after its pictures, the index
last, so an interrupted run never leaves a page that links a missing picture.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from medimeta.errors import DatasetNotFoundError, FormatError
from medimeta.format.reader import find_datasets
from medimeta.plots.audit_page import audit_page
from medimeta.plots.audit_schema import check_audit
from medimeta.plots.grids import shots_curves, task_heatmap
from medimeta.plots.html import Html, join, link, page, table, tag
from medimeta.plots.overview import dataset_overview, present_datasets
from medimeta.plots.report_datasets import DatasetEntry, write_dataset_page
from medimeta.plots.report_pages import PageWriter, section, slug
from medimeta.plots.report_runs import RunEntry, write_run_page
from medimeta.plots.results import fewshot_intervals
from medimeta.plots.rundirs import find_runs, read_run
from medimeta.safeio import write_text


@dataclass
class Report:
    """The written report: its index page, every file written and what could not be drawn."""

    index: Path
    files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    datasets: list[DatasetEntry] = field(default_factory=list)
    runs: list[RunEntry] = field(default_factory=list)
    audits: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (page, report)


def _datasets_table(entries: list[DatasetEntry]) -> Html:
    rows = [
        [
            link(e.page, e.id),
            e.name,
            e.domain,
            f"{e.samples:,}",
            " / ".join(f"{e.splits.get(s, 0):,}" for s in ("train", "val", "test")),
            "; ".join(e.tasks),
            tag("span", e.status, class_={"OK": "ok", "FAILED": "failed"}.get(e.status, "note")),
            e.licence,
        ]
        for e in entries
    ]
    header = ["id", "name", "domain", "samples", "train / val / test", "tasks", "verify", "licence"]
    return table(header, rows, numeric=(3,))


def _runs_table(entries: list[RunEntry]) -> Html:
    rows = [[link(e.page, e.name), e.kind, e.target, e.model, e.headline] for e in entries]
    return table(["run", "kind", "target", "model", "result"], rows)


def _fewshot_table(entries: list[RunEntry]) -> Html:
    """The paper's Table 4 layout: rows training type / backbone / shots, columns targets,
    AUROC % ± CI."""
    columns: list[str] = []
    cells: dict[tuple[str, str, str], dict[str, str]] = {}
    for e in entries:
        rec = e.record
        if rec.target_id not in columns:
            columns.append(rec.target_id)
        mean, ci, _ = rec.metric("auroc")
        text = "–"
        if math.isfinite(mean):
            text = f"{100 * mean:.1f}" + (f" ± {100 * ci:.1f}" if ci else "")
        shots = "–" if rec.shots is None else str(rec.shots)
        cells.setdefault((rec.row_name, str(rec.backbone), shots), {})[rec.target_id] = text
    rows = [[k, b, n, *(c.get(t, "–") for t in columns)] for (k, b, n), c in cells.items()]
    return table(
        ["training type", "backbone", "shots", *columns],
        rows,
        numeric=tuple(range(2, len(columns) + 3)),
    )


def _tasks_table(entries: list[DatasetEntry], root: Path) -> Html:
    from medimeta.format.reader import DatasetFolder

    found = find_datasets(root)
    rows = []
    for e in entries:
        spec = DatasetFolder(found[e.id]).spec
        rows += [
            [e.id, spec.domain, t.name, t.target.short, str(t.num_classes)] for t in spec.tasks
        ]
    return table(["dataset", "domain", "task", "type", "classes"], rows, numeric=(4,))


def _write_datasets(
    root: Path, out: Path, ids: Sequence[str], seed: int, verify: bool, rep: Report
) -> None:
    try:
        folders = present_datasets(root, ids)
    except DatasetNotFoundError:
        folders = {}
    taken: set[str] = set()
    for ds_id, path in folders.items():
        entry, writer = write_dataset_page(out, path, slug(ds_id, taken), seed=seed, verify=verify)
        rep.datasets.append(entry)
        rep.files += writer.written
        rep.problems += writer.problems


def _write_runs(runs: Sequence[str | Path], out: Path, rep: Report) -> None:
    taken: set[str] = set()
    for item in runs:
        base = Path(item) if Path(item).is_dir() else Path(item).parent
        for folder in find_runs([item]):
            rel = folder.relative_to(base)
            name = slug("__".join((base.name, *rel.parts)), taken)
            entry, writer = write_run_page(out, read_run(folder), name)
            rep.runs.append(entry)
            rep.files += writer.written
            rep.problems += writer.problems


def read_audit(item: str | Path) -> dict[str, Any]:
    """The ``report.json`` of a ``medimeta audit`` output folder (or that file itself)."""
    path = Path(item)
    path = path / "report.json" if path.is_dir() else path
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetNotFoundError(
            f"{path}: no audit report; pass the --out folder of `medimeta audit`"
        ) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormatError(path, "is not a JSON audit report", actual=str(exc)[:200]) from None
    return check_audit(report, path)


def _write_audits(audits: Sequence[str | Path], out: Path, rep: Report) -> None:

    for n, item in enumerate(audits):
        report = read_audit(item)
        name = "audit.html" if len(audits) == 1 else f"audit_{n + 1}.html"
        folder = Path(item) if Path(item).is_dir() else Path(item).parent
        write_text(out / name, audit_page(report, home="index.html", folder=folder))
        rep.files.append(out / name)
        rep.audits.append((name, report))


def _audits_table(audits: list[tuple[str, dict[str, Any]]]) -> Html:
    rows = []
    for name, report in audits:
        shared = [
            f"{s['a']} × {s['b']}: {s['pairs']:,} pairs" for s in report["across"] if s["pairs"]
        ]
        rows.append(
            [
                link(name, name),
                ", ".join(report["audit"].get("datasets", [])),
                "; ".join(shared) or "none",
            ]
        )
    return table(["audit", "datasets", "images shared across datasets"], rows)


def _grid_pictures(index: PageWriter, records: list[Any]) -> list[object]:
    """Against shots when there are several shot levels; targets x backbones (or methods)
    when there are several targets and columns."""
    out: list[object] = []
    if len({r.shots for r in records}) > 1:
        curve = index.picture("shots.png", lambda: shots_curves(records), "AUROC against shots")
        out.append(section("Few-shot results against the number of shots", curve))
    targets = {r.target_id for r in records}
    for column, values in (("backbone", {r.backbone for r in records}),
                           ("method", {r.row_name for r in records})):  # fmt: skip
        if len(targets) > 1 and len(values) > 1:
            draw = partial(task_heatmap, records, columns=column)
            heat = index.picture(f"heatmap_{column}.png", draw, f"targets x {column}s")
            out.append(section(f"Targets x {column}s (AUROC %, largest shot level)", heat))
    return out


def write_report(
    root: str | Path,
    out: str | Path,
    *,
    runs: Sequence[str | Path] = (),
    ids: Sequence[str] = (),
    seed: int = 0,
    verify: bool = True,
    audits: Sequence[str | Path] = (),
) -> Report:
    """Write the report of the datasets in ``root`` (all, or ``ids``) and of the run folders at
    or below each of ``runs`` into the folder ``out``; see the module docstring for the
    files; ``audits`` are ``medimeta audit`` output folders, each linked as its own page.
    Returns the written :class:`Report`."""
    root, out = Path(root), Path(out)
    if not find_datasets(root) and not runs and not audits:
        raise DatasetNotFoundError(f"nothing to report: no dataset folders in {root} and no --runs")
    rep = Report(out / "index.html")
    _write_audits(audits, out, rep)
    _write_datasets(root, out, ids, seed, verify, rep)
    _write_runs(runs, out, rep)
    index = PageWriter(out, ".")
    parts: list[object] = [tag("p", f"Data root: {root}")]
    if rep.datasets:
        overview = index.picture(
            "overview.png",
            lambda: dataset_overview(root, [e.id for e in rep.datasets], seed=seed),
            "one example image per dataset",
        )
        parts += [
            section("Datasets", overview, _datasets_table(rep.datasets)),
            section("Tasks", _tasks_table(rep.datasets, root)),
        ]
    fewshot = [e for e in rep.runs if e.kind == "fewshot"]
    if rep.runs:
        parts.append(section("Runs", _runs_table(rep.runs)))
    if fewshot:
        chart = index.picture(
            "fewshot.png",
            lambda: fewshot_intervals([e.record for e in fewshot]),
            "few-shot results",
        )
        parts.append(
            section("Few-shot results (AUROC %, mean ± 95 % CI)", chart, _fewshot_table(fewshot))
        )
        parts += _grid_pictures(index, [e.record for e in fewshot])
    if rep.audits:
        parts.append(section("Audit", _audits_table(rep.audits)))
    rep.files += index.written
    rep.problems += index.problems
    if rep.problems:
        parts.append(section("Problems", tag("ul", join(tag("li", p) for p in rep.problems))))
    write_text(rep.index, page("MedIMeta report", join(parts)))
    rep.files.append(rep.index)
    return rep
