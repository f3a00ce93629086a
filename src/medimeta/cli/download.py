"""``medimeta download``: fetch, check and install release datasets or MedMNIST files."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from medimeta.cli.interrupt import on_interrupt, partial_files
from medimeta.cli.options import log_to_stderr, quiet_option, resolve, root_option, verbose_option
from medimeta.errors import MedIMetaError
from medimeta.logs import plural

if TYPE_CHECKING:  # the fetch machinery loads when the command runs, not for --help
    from medimeta.fetch import FetchOptions, PlanItem


def human_bytes(n: int | None) -> str:
    """``1.5 MB`` style sizes (decimal units, as Zenodo shows them)."""
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # unreachable; keeps type checkers content


def _print_plan(items: list[PlanItem]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="medimeta download --dry-run")
    for col in ("dataset", "action", "to fetch", "file size", "source"):
        table.add_column(col, overflow="fold")
    for item in items:
        fetch = {"unreachable": "?", "missing": "-"}.get(item.action) or human_bytes(item.nbytes)
        table.add_row(item.name, item.action, fetch, human_bytes(item.size), item.source)
    Console().print(table)
    total = sum(i.nbytes for i in items)
    known = sum(1 for i in items if i.nbytes)
    unknown = [i.name for i in items if i.action == "unreachable"]
    if unknown:  # nothing is known about their sizes: no "0 B"
        sized = f" and {plural(known, 'file')} of {human_bytes(total)}" if known else ""
        typer.echo(
            f"would download {plural(len(unknown), 'file')} of unknown size ("
            f"{', '.join(unknown)}; planned from the catalog: the record could not be "
            f"reached){sized}"
        )
    else:
        typer.echo(
            f"would download {plural(known, 'file')}, {human_bytes(total)} ({total:,} bytes) "
            "in total"
        )
    missing = [i.name for i in items if i.action == "missing"]
    if missing:
        typer.echo(f"not available offline: {', '.join(missing)}")


def _install_all(
    wanted: list[str],
    data_root: Path,
    size: int,
    options: FetchOptions,
    deadline: float | None,
) -> list[str]:
    """Install every requested name; return those that failed (each reported on one line)."""
    from medimeta.fetch import ensure_dataset, install_medmnist, is_medmnist_spec

    failed = []
    end = None if deadline is None else time.monotonic() + deadline
    for name in wanted:
        if end is not None:  # one budget for the whole command
            options = dataclasses.replace(options, deadline=max(0.0, end - time.monotonic()))
        try:
            if is_medmnist_spec(name):
                path = install_medmnist(name, data_root, size=size, options=options)
            else:
                path = ensure_dataset(data_root, name, options=options)
        except (MedIMetaError, OSError) as exc:
            failed.append(name)
            typer.echo(f"error: {name}: {exc}", err=True)  # unwrapped: URLs stay whole
            continue
        typer.echo(f"{name}: ready at {path}")  # where the data went: printed even when quiet
    return failed


def _download_saved(data_root: Path) -> str | None:
    """What an interrupted download keeps: the partial files (resumed with HTTP Range)."""
    from medimeta.fetch.options import FetchPaths

    return partial_files(FetchPaths(data_root).downloads)


def _dry_run(wanted: list[str], data_root: Path, size: int, options: FetchOptions) -> None:
    from medimeta.fetch import is_medmnist_spec, plan, plan_medmnist

    release = [i for i in wanted if not is_medmnist_spec(i)]
    medmnist = [i for i in wanted if is_medmnist_spec(i)]
    items = plan(release, data_root, options=options) if release else []
    items += [plan_medmnist(m, data_root, size=size, options=options) for m in medmnist]
    _print_plan(items)


def download_command(
    ids: list[str] = typer.Argument(
        None, help="Dataset ids (e.g. bus organs_axial) or medmnist:<flag> (medmnist:breastmnist)."
    ),
    all_datasets: bool = typer.Option(False, "--all", help="Every dataset in the release."),
    root: Path | None = root_option(),
    mirror: str | None = typer.Option(
        None,
        "--mirror",
        help="Base URL replacing https://zenodo.org in every request [default: $MEDIMETA_MIRROR].",
        show_default=False,
    ),
    offline: bool = typer.Option(False, "--offline", help="Never use the network."),
    from_dir: Path | None = typer.Option(
        None, "--from", help="Folder of already downloaded <id>.zip / MedMNIST .npz files."
    ),
    size: int = typer.Option(224, "--size", help="MedMNIST image size: 28, 64, 128 or 224."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be fetched."),
    quiet: bool = quiet_option(
        "No progress bars; print only warnings, errors and where each dataset went."
    ),
    verbose: bool = verbose_option(),
    force: bool = typer.Option(False, "--force", help="Reinstall / replace an existing folder."),
    keep_zip: bool = typer.Option(False, "--keep-zip", help="Keep downloaded archives."),
    retries: int = typer.Option(5, help="Retries of a request that brought no new bytes."),
    timeout: float = typer.Option(60.0, help="Seconds without data before a retry."),
    deadline: float | None = typer.Option(
        None,
        "--deadline",
        min=0,
        help="Seconds the whole command may spend downloading; past it the partial file is "
        "kept and a re-run resumes [default: no limit].",
        show_default=False,
    ),
    refresh_manifest: bool = typer.Option(
        False, "--refresh-manifest", help="Fetch the record's file list again."
    ),
) -> None:
    """Download, check (size + MD5) and install datasets; resumes interrupted downloads."""
    data_root = resolve(root)
    from medimeta.fetch import FetchOptions

    options = FetchOptions(
        mirror=mirror,
        offline=offline,
        from_dir=from_dir,
        retries=retries,
        timeout=timeout,
        deadline=deadline,
        quiet=quiet,
        force=force,
        keep_archive=keep_zip,
        refresh_manifest=refresh_manifest,
    )
    wanted = list(ids or [])
    if all_datasets == bool(wanted):
        typer.echo("error: give dataset ids or --all (not both)", err=True)
        raise typer.Exit(2)
    with log_to_stderr("medimeta.fetch", quiet=quiet, verbose=verbose):
        try:
            if all_datasets:
                from medimeta.fetch import available_datasets

                wanted = available_datasets(data_root, options=options, write_cache=not dry_run)
            if dry_run:
                _dry_run(wanted, data_root, size, options)
                return
        except (MedIMetaError, OSError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
        with on_interrupt(lambda: _download_saved(data_root)):
            failed = _install_all(wanted, data_root, size, options, deadline)
    if failed:
        if len(wanted) > 1:  # one dataset: its own error line says it all
            typer.echo(f"{len(failed)} of {len(wanted)} failed: {', '.join(failed)}", err=True)
        raise typer.Exit(1)
