"""``medimeta montage``, ``medimeta report`` and ``medimeta plot ...``: pictures of the data
and the results.

``medimeta plot`` commands write PNG (300 dpi unless ``--dpi``), SVG or PDF: ``--format`` or the
suffix of ``--out`` decides (:mod:`medimeta.plots.outputs`). matplotlib is imported inside the
commands (through :mod:`medimeta.plots`), so the other commands start as fast as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from medimeta.cli.options import (
    log_to_stderr,
    make_app,
    quiet_option,
    resolve,
    root_option,
    verbose_option,
)
from medimeta.errors import MedIMetaError, UnknownNameError
from medimeta.logs import plural

app = make_app("plot", "Charts of a dataset or of run folders, and the task table, as files.")


def _written(path: Path) -> None:
    typer.echo(f"wrote {path}")


def format_option() -> Any:
    return typer.Option(
        None,
        "--format",
        help="png, svg or pdf [default: the suffix of --out, else png].",
        show_default=False,
    )


def dpi_option() -> Any:
    return typer.Option(
        300, "--dpi", min=20, max=2400, help="Pixels per inch of PNG (and of images in SVG/PDF)."
    )


def out_option() -> Any:
    return typer.Option(..., "--out", help="File to write: .png, .svg or .pdf.")


def runs_argument() -> Any:
    return typer.Argument(
        ..., help="Few-shot run folders or benchmark folders (every few-shot run below them)."
    )


def metric_option() -> Any:
    return typer.Option("auroc", help="Metric of the summary to show.")


def _fewshot_records(results: list[Path]) -> list[Any]:
    """The few-shot run records in (or below) ``results``."""
    from medimeta.runs.record import read_runs

    return [r for r in read_runs(results) if r.kind == "fewshot"]


def _target(out: Path, fmt: str | None) -> tuple[Path, str]:
    """The file and format to write (checked before anything is drawn)."""
    from medimeta.plots.outputs import output_file

    return output_file(out, fmt)


def _save(fig: Any, target: tuple[Path, str], dpi: int) -> None:
    from medimeta.plots import save_figure

    path, kind = target
    _written(save_figure(fig, path, dpi=dpi, fmt=kind))


def montage_command(
    ids: list[str] = typer.Argument(None, help="Dataset ids [default: all in the root]."),
    out: Path = typer.Option(..., "--out", help="PNG file to write."),
    root: Path | None = root_option(),
    seed: int = typer.Option(0, help="Seed of the random choice of images."),
    per_class: int | None = typer.Option(
        None, "--per-class", help="N images per class of --task of one dataset, a row per class."
    ),
    task: str | None = typer.Option(None, "--task", help="Task of --per-class [default: first]."),
    length: int | None = typer.Option(
        None, "--length", help="A plain LENGTH x LENGTH grid of one dataset (MedMNIST's montage)."
    ),
    split: str | None = typer.Option(
        None, help="Split(s) to draw from, e.g. test or train+val [default: all samples]."
    ),
    columns: int = typer.Option(5, help="Tiles per row of the overview."),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """One tile per dataset (domain and id as captions), or examples per class of one task
    (--per-class N [--task NAME]), or a plain image grid (--length N); same seed, same file."""
    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose):
        from medimeta.format.reader import DatasetFolder, locate_dataset
        from medimeta.plots import class_grid, dataset_overview, montage, save_figure, save_image
        from medimeta.plots.source import select

        base = resolve(root)
        if per_class is None and length is None:
            if split is not None or task is not None:
                raise MedIMetaError(
                    "--split and --task apply to --per-class or --length grids only"
                )
            _written(
                save_figure(dataset_overview(base, ids or (), seed=seed, columns=columns), out)
            )
            return
        if per_class is not None and length is not None:
            raise MedIMetaError("pass either --per-class or --length, not both")
        if not ids or len(ids) != 1:
            raise MedIMetaError("--per-class and --length draw one dataset: pass exactly one id")
        parts = split.split("+") if split is not None else None
        sel = select(DatasetFolder(locate_dataset(base, ids[0])), parts)
        if per_class is not None:
            _written(save_figure(class_grid(sel, per_class, task=task, seed=seed), out))
        else:
            _written(save_image(montage(sel, length or 1, seed=seed), out))


def report_command(
    ids: list[str] = typer.Argument(None, help="Dataset ids [default: all in the root]."),
    out: Path = typer.Option(..., "--out", help="Folder to write the report into."),
    root: Path | None = root_option(),
    runs: list[Path] = typer.Option(
        [], "--runs", help="Run folder of `medimeta train`/`fewshot`, or a folder of them."
    ),
    seed: int = typer.Option(0, help="Seed of the example images."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Run `verify` per dataset."),
    audit: list[Path] = typer.Option(
        [], "--audit", help="Output folder of `medimeta audit`, linked as a page (repeatable)."
    ),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """A static HTML report (no network needed): per dataset its montage, counts, charts,
    verify status and licence; per run its metrics, curves, ROC and few-shot results."""
    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose):
        from medimeta.plots import write_report

        rep = write_report(
            resolve(root), out, runs=runs, ids=ids or (), seed=seed, verify=verify, audits=audit
        )
        typer.echo(
            f"wrote {rep.index} ({plural(len(rep.datasets), 'dataset')}, "
            f"{plural(len(rep.runs), 'run')}, {plural(len(rep.audits), 'audit')}, "
            f"{plural(len(rep.files), 'file')})"
        )
        for problem in rep.problems:
            typer.echo(f"note: {problem}", err=True)


@app.command("labels")
def labels_command(
    dataset_id: str = typer.Argument(..., help="Dataset id."),
    out: Path = out_option(),
    root: Path | None = root_option(),
    task: list[str] = typer.Option([], "--task", help="Tasks to chart [default: all]."),
    original: bool = typer.Option(False, "--original-split", help="Count the original splits."),
    splits: bool = typer.Option(False, "--splits", help="Chart the split sizes instead."),
    fmt: str | None = format_option(),
    dpi: int = dpi_option(),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Samples per class of each task (multi-label: positives per label) per split."""
    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose):
        from medimeta.format.reader import DatasetFolder, locate_dataset
        from medimeta.plots import label_distribution, split_distribution

        target = _target(out, fmt)
        folder = DatasetFolder(locate_dataset(resolve(root), dataset_id))
        if splits:
            fig = split_distribution(folder)
        else:
            fig = label_distribution(folder, task or None, original=original)
        _save(fig, target, dpi)


@app.command("run")
def run_command(
    run: Path = typer.Argument(..., help="Run folder of `medimeta train` or `medimeta fewshot`."),
    out: Path = typer.Option(..., "--out", help="Folder to write the pictures into."),
    fmt: str | None = typer.Option(
        None, "--format", help="png, svg or pdf [default: png].", show_default=False
    ),
    dpi: int = dpi_option(),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Training curves and ROC per split (supervised), or AUROC per episode (few-shot)."""
    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose):
        from medimeta.plots import fewshot_episodes, roc_curves, training_curves
        from medimeta.plots.rundirs import read_run
        from medimeta.runs.record import TRAINING_LOG

        kind = _target(Path("picture"), fmt)[1]
        folder = read_run(run)

        def target(name: str) -> tuple[Path, str]:
            return out / f"{name}.{kind}", kind

        if folder.kind == "fewshot":
            _save(fewshot_episodes(folder.record), target("episodes"), dpi)
            return
        if (folder.path / TRAINING_LOG).is_file():
            _save(training_curves(folder.path), target("curves"), dpi)
        for split, path in folder.predictions():
            _save(roc_curves(path), target(f"roc_{split}"), dpi)


@app.command("fewshot")
def fewshot_command(
    results: list[Path] = runs_argument(),
    out: Path = out_option(),
    metric: str = metric_option(),
    fmt: str | None = format_option(),
    dpi: int = dpi_option(),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Means with 95 % intervals per method and target (the paper's Table 4 as a figure)."""
    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose):
        from medimeta.plots import fewshot_intervals

        target = _target(out, fmt)
        records = _fewshot_records(results)
        _save(fewshot_intervals(records, metric=metric), target, dpi)


@app.command("shots")
def shots_command(
    results: list[Path] = runs_argument(),
    out: Path = out_option(),
    metric: str = metric_option(),
    fmt: str | None = format_option(),
    dpi: int = dpi_option(),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """The metric against the number of shots, per target, method and backbone (95 % bands)."""
    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose):
        from medimeta.plots import shots_curves

        target = _target(out, fmt)
        records = _fewshot_records(results)
        _save(shots_curves(records, metric=metric), target, dpi)


@app.command("heatmap")
def heatmap_command(
    results: list[Path] = runs_argument(),
    out: Path = out_option(),
    metric: str = metric_option(),
    shots: int | None = typer.Option(None, help="Shot level [default: the largest]."),
    columns: str = typer.Option("backbone", help="Columns: backbone or method."),
    fmt: str | None = format_option(),
    dpi: int = dpi_option(),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Targets x backbones (or methods) of one shot level, the mean of the metric per cell."""
    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose):
        from medimeta.plots import task_heatmap

        if columns not in ("backbone", "method"):
            raise UnknownNameError("heatmap columns", columns, ["backbone", "method"])
        target = _target(out, fmt)
        records = _fewshot_records(results)
        fig = task_heatmap(records, metric=metric, shots=shots, columns=columns)
        _save(fig, target, dpi)


@app.command("reliability")
def reliability_command(
    predictions: Path = typer.Argument(
        ..., help="A prediction file, or a run folder (its query or test predictions)."
    ),
    out: Path = out_option(),
    fmt: str | None = format_option(),
    dpi: int = dpi_option(),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Accuracy against confidence in the ECE's 15 bins (a run's calibration)."""
    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose):
        from medimeta.plots import reliability_diagram
        from medimeta.plots.rundirs import read_run

        target = _target(out, fmt)
        path = predictions
        if predictions.is_dir():
            found = read_run(predictions).predictions()
            if not found:
                raise MedIMetaError(f"{predictions}: the run has no prediction file")
            path = found[-1][1]  # query (few-shot) or test (supervised)
        _save(reliability_diagram(path), target, dpi)


@app.command("tasks")
def tasks_command(
    fmt: str | None = typer.Option(
        None,
        "--format",
        help="markdown, latex, png, svg or pdf [default: the suffix of --out, else markdown].",
        show_default=False,
    ),
    out: Path | None = typer.Option(
        None, "--out", help="File to write: .md, .tex, .png, .svg or .pdf [default: print]."
    ),
    dpi: int = dpi_option(),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """The table of all tasks from the catalog (the paper's Table 2), as text or a picture."""
    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose):
        from medimeta.catalog.render import task_table_latex, task_table_markdown
        from medimeta.plots.outputs import PICTURES, output_file
        from medimeta.safeio import write_text

        makers = {"markdown": task_table_markdown, "latex": task_table_latex}
        formats = {"markdown": (".md", ".markdown"), "latex": (".tex",), **PICTURES}
        path, kind = output_file(out or Path("-"), fmt, formats, default="markdown")
        if kind in PICTURES:
            if out is None:
                raise MedIMetaError(f"--format {kind} draws a picture: pass --out FILE.{kind}")
            from medimeta.plots.tables import task_table_figure

            _save(task_table_figure(), (path, kind), dpi)
        elif out is None:
            typer.echo(makers[kind](), nl=False)
        else:
            _written(write_text(path, makers[kind]()))
