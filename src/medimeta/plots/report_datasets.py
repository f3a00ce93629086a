"""The report page of one dataset: montage, class grids, counts, charts, verify, licence."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

from medimeta.catalog import SPLIT_NAMES
from medimeta.format.reader import DatasetFolder
from medimeta.format.verify import verify_dataset
from medimeta.logs import plural
from medimeta.plots.charts import label_distribution, split_distribution
from medimeta.plots.html import Html, esc, join, licence, number, page, table, tag
from medimeta.plots.overview import class_grid
from medimeta.plots.report_pages import ERRORS, PageWriter, facts, section
from medimeta.plots.samples import montage
from medimeta.plots.stats import class_counts
from medimeta.safeio import write_text


@dataclass
class DatasetEntry:
    """What the index shows of one dataset page."""

    id: str
    name: str
    domain: str
    samples: int
    splits: dict[str, int]
    tasks: list[str]
    status: str  # "OK", "FAILED" or "not checked"
    licence: Html
    page: str  # relative to the report folder


def _verify_section(path: Path, run: bool) -> tuple[str, Html]:
    if not run:
        return "not checked", section(
            "Verify", tag("p", "Not checked (--no-verify).", class_="note")
        )
    report = verify_dataset(path)
    status = "OK" if report.ok else "FAILED"
    items = [tag("li", f"ERROR {p}") for p in report.problems]
    items += [tag("li", f"WARN {w}") for w in report.warnings]
    details = tag(
        "details",
        Html(
            tag("summary", f"{plural(len(report.checks), 'check')} passed")
            + tag("ul", join(tag("li", c) for c in report.checks))
        ),
    )
    head = tag(
        "p",
        Html(
            tag("span", status, class_="ok" if report.ok else "failed")
            + esc(
                f" ({plural(len(report.problems), 'problem')}, "
                f"{plural(len(report.warnings), 'warning')})"
            )
        ),
    )
    return status, section("Verify", head, tag("ul", join(items)) if items else "", details)


def _counts_section(folder: DatasetFolder) -> Html:
    spec = folder.spec
    split_rows = [
        [kind] + [number(counts.get(s, 0)) for s in SPLIT_NAMES] + [number(sum(counts.values()))]
        for kind, counts in (("splits", spec.splits), ("original splits", spec.original_splits))
    ]
    parts: list[object] = [
        tag(
            "p",
            f"{spec.num_samples:,} images, {plural(spec.num_channels, 'channel')}, "
            f"{spec.input_size[1]}x{spec.input_size[2]} pixels.",
        ),
        table(["", *SPLIT_NAMES, "total"], split_rows, numeric=(1, 2, 3, 4)),
    ]
    for task in spec.tasks:
        try:
            cc = class_counts(folder, task)
        except ERRORS as exc:
            parts.append(tag("p", f"{task.name}: cannot count labels ({exc})", class_="note"))
            continue
        rows = [[name, *map(number, values), number(sum(values))] for name, values in cc.rows()]
        what = "positives per label" if task.target.short == "multilabel" else "samples per class"
        parts.append(
            tag("h3", f"{task.name} ({task.target.short}, {task.num_classes} classes): {what}")
        )
        parts.append(
            table(["class", *cc.splits, "all"], rows, numeric=tuple(range(1, len(cc.splits) + 2)))
        )
    return section("Counts", *parts)


def _pictures(folder: DatasetFolder, writer: PageWriter, seed: int) -> list[Html]:
    spec = folder.spec
    side = max(1, min(6, int(folder.num_samples**0.5)))
    out = [
        writer.picture(
            "montage.png",
            lambda: montage(folder, side, seed=seed, tile_size=112),
            f"montage of {spec.id}",
            f"{side * side} random images (seed {seed}).",
        )
    ]
    for i, task in enumerate(spec.tasks):
        out.append(
            writer.picture(
                f"classes_{i}.png",
                partial(class_grid, folder, 4, task=task.name, seed=seed, tile=0.9),
                f"examples per class of {task.name}",
            )
        )
    return out


def write_dataset_page(
    out: Path, path: Path, name: str, *, seed: int, verify: bool
) -> tuple[DatasetEntry, PageWriter]:
    """Pictures of the dataset in ``out/datasets/<name>/``, then ``out/datasets/<name>.html``."""
    folder = DatasetFolder(path)
    spec = folder.spec
    writer = PageWriter(out, f"datasets/{name}", page_dir="datasets")
    pictures = _pictures(folder, writer, seed)
    charts = [
        writer.picture(
            "labels.png", lambda: label_distribution(folder), f"label distribution of {spec.id}"
        ),
        writer.picture(
            "splits.png", lambda: split_distribution(folder), f"split sizes of {spec.id}"
        ),
    ]
    status, verify_html = _verify_section(path, verify)
    lic = licence(spec.license_short, spec.license)
    about = facts(
        [
            ("id", spec.id),
            ("domain", spec.domain),
            ("folder", str(path)),
            ("tasks", ", ".join(f"{t.name} ({t.target.short})" for t in spec.tasks)),
            ("licence", lic),
            ("sources", "; ".join(f"{s.name} ({s.license})" for s in spec.sources) or "–"),
        ]
    )
    body = join(
        [
            tag("p", spec.summary),
            about,
            section("Images", pictures[0]),
            verify_html,
            _counts_section(folder),
            section("Label and split distributions", *charts),
            section("Examples per class", *pictures[1:]),
        ]
    )
    file = out / "datasets" / f"{name}.html"
    write_text(file, page(f"{spec.name} ({spec.id})", body, home="../index.html"))
    writer.written.append(file)
    entry = DatasetEntry(
        spec.id,
        spec.name,
        spec.domain,
        spec.num_samples,
        dict(spec.splits),
        list(spec.task_names),
        status,
        licence(spec.license_short),
        f"datasets/{name}.html",
    )
    return entry, writer
