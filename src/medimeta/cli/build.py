"""``medimeta build``: build a dataset from its raw public source (see medimeta.builders)."""

from __future__ import annotations

from pathlib import Path

import typer

from medimeta.cli.interrupt import on_interrupt
from medimeta.cli.options import log_to_stderr, quiet_option, resolve, root_option, verbose_option
from medimeta.logs import plural

SOURCE_HELP = (
    "The publisher's archive, the folder holding it, or the extracted tree (any level). "
    "Repeat for sources in several places."
)


def _print_builders() -> None:
    from medimeta.builders import builders_table

    for row in builders_table():
        typer.echo(f"{row['id']:<12} {row['source']}")
        typer.echo(f"{'':<12}   --source: {row['pass']}")


def build_command(
    dataset_id: str = typer.Argument(
        None, help="Dataset id to build (e.g. bus); omit with --list", show_default=False
    ),
    source: list[Path] = typer.Option(None, "--source", "-s", help=SOURCE_HELP),
    root: Path | None = root_option(),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Processes for image work"),
    partial: bool = typer.Option(
        False, "--partial", help="Build from an incomplete tree; info.yaml records partial: true"
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing dataset"),
    check: bool = typer.Option(
        False,
        "--check",
        help="Only validate the source tree; list every finding; write nothing (exit 1 on errors)",
    ),
    list_builders: bool = typer.Option(False, "--list", help="List the available builders"),
    quiet: bool = quiet_option("Print only warnings and the summary."),
    verbose: bool = verbose_option(),
) -> None:
    """Build a dataset from the raw files as their publishers distribute them.

    The source is validated first: every missing file is an error, every unexpected file a
    warning, and nothing is written unless the tree is complete (or --partial is given).
    """
    from medimeta.builders import get_builder, plan_build, run_build

    if list_builders:
        _print_builders()
        return
    if not dataset_id or not source:
        raise typer.BadParameter("give a dataset id and --source (or --list)")
    builder = get_builder(dataset_id)
    fmt = "%(levelname)s: %(message)s"
    with log_to_stderr("medimeta.builders", quiet=quiet, verbose=verbose, fmt=fmt):
        if check:
            plan = plan_build(builder, source, partial=partial, raise_errors=False)
            report = plan.report
            entries = len(report.missing) + len(report.problems) + len(report.unexpected)
            typer.echo(report.format(limit=entries + len(report.warnings)))
            typer.echo(f"{plan.num_samples} samples; splits {plan.counts()}")
            if not report.ok:
                raise typer.Exit(code=1)
            return
        with on_interrupt(lambda: _build_saved(resolve(root), dataset_id)):
            result = run_build(
                builder,
                source,
                root=resolve(root),
                workers=workers,
                partial=partial,
                overwrite=overwrite,
                progress=not quiet,
            )
    kind = "partial build" if result.partial else "build"
    typer.echo(
        f"{result.dataset_id}: {kind} of {plural(result.num_samples, 'image')} in {result.path} "
        f"({result.seconds:.1f} s, {result.images_per_second:.1f} images/s)"
    )
    typer.echo(f"  splits {result.splits}; source splits {result.original_splits}")
    warnings = len(result.report.warnings) + len(result.report.unexpected)
    if warnings:
        typer.echo(f"  {plural(warnings, 'warning')} about the source, see above")
    for note in result.notes:
        typer.echo(f"  note: {note}")


def _build_saved(root: Path, dataset_id: str) -> str | None:
    """What an interrupted build keeps: its staging folder with the samples written so far."""
    from medimeta.format.writer.stage import JOURNAL_FILE

    for staging in sorted(root.glob(f".{dataset_id}.partial-*")):
        journal = staging / JOURNAL_FILE
        if journal.is_file():
            with open(journal, "rb") as fh:
                done = sum(1 for line in fh if line.strip())
            return (
                f"{plural(done, 'finished sample')} in {staging} (the next run with the same "
                "source resumes after them)"
            )
    return None
