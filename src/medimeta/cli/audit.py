"""``medimeta audit``: shared images, duplicates, subject leakage, suspect labels and balance.

The audit modules (numpy, h5py; torch and scikit-learn only for the labels) are imported
inside the command, so the other commands start as fast as before.
"""

from __future__ import annotations

from pathlib import Path

import typer

from medimeta.cli.interrupt import on_interrupt
from medimeta.cli.options import log_to_stderr, quiet_option, resolve, root_option, verbose_option
from medimeta.logs import plural

PICTURES_HELP = "Most examples pictured per section (pairs, leaks, suspect labels); 0: none."


def audit_command(
    ids: list[str] = typer.Argument(None, help="Dataset ids [default: all in the root]."),
    out: Path = typer.Option(
        ..., "--out", help="Folder for report.json/.md, pairs.csv, pictures/, audit.html."
    ),
    root: Path | None = root_option(),
    cache: Path | None = typer.Option(
        None,
        "--cache",
        help="Cache folder [default: $MEDIMETA_CACHE, else ROOT/.cache].",
        show_default=False,
    ),
    threshold: float = typer.Option(
        0.95, "--threshold", min=0.0, max=1.0, help="Least pair score (correlation) kept."
    ),
    variants: str = typer.Option(
        "auto", "--variants", help="Crop views across datasets: auto, all or none."
    ),
    within: bool = typer.Option(True, "--within/--no-within", help="Pairs inside each dataset."),
    across: bool = typer.Option(True, "--across/--no-across", help="Pairs between the datasets."),
    labels: bool = typer.Option(
        True, "--labels/--no-labels", help="Suspect labels (cleanlab; embeds the images)."
    ),
    task: list[str] = typer.Option(
        [], "--task", help="Task for suspect labels (repeatable) [default: all]."
    ),
    folds: int = typer.Option(5, "--folds", min=2, help="Cross-validation folds for labels."),
    feature_size: int | None = typer.Option(
        None,
        "--feature-size",
        min=32,
        help="Image side for the features [default: the dataset's, 224].",
        show_default=False,
    ),
    subject_column: list[str] = typer.Option(
        [], "--subject-column", help="More annotations.csv subject columns (repeatable)."
    ),
    max_pairs: int = typer.Option(
        2_000_000, "--max-pairs", min=1, help="Most near pairs kept per comparison."
    ),
    pictures: int = typer.Option(24, "--pictures", min=0, help=PICTURES_HELP),
    html: bool = typer.Option(True, "--html/--no-html", help="Also write audit.html."),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Find exact and near-duplicate images within and across datasets (robust to
    resolution, padding, cropping, grey vs RGB and JPEG), subjects in two splits, suspect
    labels and class/split balance; writes report.json, report.md, pairs.csv, thumbnails of the
    examples (pictures/) and audit.html."""
    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose):
        from medimeta.audit.run import AuditOptions, run_audit

        opts = AuditOptions(
            threshold=threshold,
            variants=variants,
            within=within,
            across=across,
            labels=labels,
            tasks=tuple(task),
            folds=folds,
            feature_size=feature_size,
            subject_columns=tuple(subject_column),
            max_pairs=max_pairs,
            cache=cache,
            pictures=pictures,
            html_page=html,
        )
        log = (lambda _msg: None) if quiet else typer.echo
        with on_interrupt(lambda: _audit_saved(cache, resolve(root))):
            run = run_audit(resolve(root), ids or (), out, opts, log=log)
        if html:
            from medimeta.plots.audit_page import write_audit_page

            run.files["html"] = write_audit_page(out, run.report)
        rows = run.report["audit"]["pairs_csv_rows"]
        names = ", ".join(p.name for p in run.files.values())
        typer.echo(f"wrote {Path(out)}: {names} ({plural(rows, 'pair', thousands=True)})")


def _audit_saved(cache: Path | None, root: Path) -> str:
    """What an interrupted audit keeps: image descriptors and features in the cache."""
    from medimeta.paths import cache_dir

    return (
        f"the image descriptors of the datasets finished so far and the features, in "
        f"{cache_dir(cache, root)} "
        "(reused next time)"
    )
