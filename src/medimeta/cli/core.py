"""``medimeta list``, ``medimeta info`` and ``medimeta verify``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from medimeta.catalog import get_catalog
from medimeta.cli.options import resolve, root_option
from medimeta.format.reader import find_datasets
from medimeta.format.verify import verify_dataset

console = Console()


def list_command(
    root: Path | None = root_option(),
    domain: str | None = typer.Option(None, help="Only datasets of this domain."),
    task_type: str | None = typer.Option(
        None,
        "--task-type",
        help="Only datasets with a task of this type (multiclass, binary, ...).",
    ),
) -> None:
    """List the catalog's datasets, marking those present under --root."""
    data_root = resolve(root)
    present = find_datasets(data_root)
    table = Table(title=f"MedIMeta datasets (root: {data_root})")
    for col in ("present", "id", "name", "domain", "samples", "tasks", "licence"):
        table.add_column(col)
    catalog = get_catalog()
    for ds in catalog.datasets(domain=domain, task_type=task_type):
        table.add_row(
            "yes" if ds.id in present else "-",
            ds.id,
            ds.name,
            ds.domain,
            f"{ds.num_samples:,}",
            "; ".join(t.name for t in ds.tasks),
            ds.license_short,
        )
    console.print(table)
    others = sorted(set(present) - {d.id for d in catalog})
    if others:
        console.print(f"Other datasets in the root (not in the release): {', '.join(others)}")


def info_command(dataset_id: str = typer.Argument(..., help="Dataset id, e.g. bus")) -> None:
    """Show one dataset: domain, counts, tasks with their labels, licence and sources."""
    ds = get_catalog().get(dataset_id)
    console.print(f"[bold]{ds.id}[/bold]: {ds.name} ({ds.domain})")
    console.print(ds.summary)
    console.print(f"input size {list(ds.input_size)}, {ds.num_samples:,} samples")
    console.print(f"splits {dict(ds.splits)}; original splits {dict(ds.original_splits)}")
    for task in ds.tasks:
        labels = ", ".join(f"{k}: {v}" for k, v in task.labels.items())
        console.print(f"  task [bold]{task.name}[/bold] ({task.target.short}): {labels}")
    console.print(f"licence: {ds.license}")
    if ds.domain_overlaps or ds.subject_overlaps:
        console.print(
            f"domain overlaps: {list(ds.domain_overlaps)}; "
            f"subject overlaps: {list(ds.subject_overlaps)}"
        )
    for src in ds.sources:
        console.print(f"source: {src.name}: {src.title} ({src.license}) {src.url}")
    console.print(f"release: {ds.download_url} (DOI {ds.doi})")


def verify_command(
    ids: list[str] = typer.Argument(None, help="Dataset ids to verify [default: all present]"),
    root: Path | None = root_option(),
    deep: bool = typer.Option(False, help="Compare every TIFF with its HDF5 row (slow)."),
) -> None:
    """Check datasets against info.yaml and the format; exit 1 on any problem."""
    data_root = resolve(root)
    present = find_datasets(data_root)
    wanted = list(ids) if ids else sorted(present)
    if not wanted:
        console.print(f"no datasets found under {data_root}")
        raise typer.Exit(1)
    failed = 0
    for ds_id in wanted:
        if ds_id not in present:
            console.print(f"{ds_id}: not present under {data_root}", style="red")
            failed += 1
            continue
        report = verify_dataset(present[ds_id], deep=deep)
        console.print(
            report.format(), style=None if report.ok else "red", highlight=False, soft_wrap=True
        )
        failed += not report.ok
    console.print(f"{len(wanted) - failed} of {len(wanted)} datasets OK")
    if failed:
        raise typer.Exit(1)
