"""``medimeta list``, ``medimeta info`` and ``medimeta verify``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from medimeta.cli.options import log_to_stderr, quiet_option, resolve, root_option, verbose_option
from medimeta.errors import UnknownNameError
from medimeta.logs import plural

# The library (numpy, YAML, the catalog) loads inside the commands, so `--help` stays fast.

console = Console()


def _present_info(path: Path) -> dict[str, Any]:
    """Name, domain, counts and partial flag of a dataset folder, from its info.yaml."""
    from medimeta.format.reader import DatasetFolder

    folder = DatasetFolder(path, check=False)  # listing must not fail on one broken folder
    spec = folder.spec
    return {
        "id": spec.id,
        "name": spec.name,
        "domain": spec.domain,
        "samples": spec.num_samples,
        "tasks": [t.name for t in spec.tasks],
        "license": spec.license_short,
        "partial": bool(folder.info.get("partial")),
    }


def _list_rows(data_root: Path, domain: str | None, task_type: str | None) -> list[dict[str, Any]]:
    """One row per catalog dataset (filtered), then the other datasets present in the root."""
    from medimeta.catalog import get_catalog
    from medimeta.format.locate import find_datasets

    present = find_datasets(data_root)
    catalog = get_catalog()
    rows = []
    for ds in catalog.datasets(domain=domain, task_type=task_type):
        here = ds.id in present
        row = {
            "id": ds.id,
            "name": ds.name,
            "domain": ds.domain,
            "samples": ds.num_samples,
            "tasks": [t.name for t in ds.tasks],
            "license": ds.license_short,
            "in_catalog": True,
            "present": here,
            "partial": here and _present_info(present[ds.id])["partial"],
            "path": str(present[ds.id]) if here else None,
        }
        rows.append(row)
    if domain is None and task_type is None:
        for ds_id in sorted(set(present) - {d.id for d in catalog}):
            info = _present_info(present[ds_id])
            rows.append({**info, "in_catalog": False, "present": True, "path": str(present[ds_id])})
    return rows


def list_command(
    root: Path | None = root_option(),
    domain: str | None = typer.Option(None, help="Only datasets of this domain."),
    task_type: str | None = typer.Option(
        None,
        "--task-type",
        help="Only datasets with a task of this type (multiclass, binary, ...).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """List the catalog's datasets and the other datasets (converted, partial) under --root."""
    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose):
        data_root = resolve(root)
        rows = _list_rows(data_root, domain, task_type)
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        wide = console.width >= 140
        table = Table(title=f"MedIMeta datasets (root: {data_root})", title_justify="left")
        table.add_column("here", no_wrap=True)
        table.add_column("id", no_wrap=True)
        if wide:
            table.add_column("name", overflow="fold")
        table.add_column("domain", overflow="fold")
        table.add_column("samples", justify="right", no_wrap=True)
        table.add_column("tasks", overflow="fold")
        table.add_column("licence", no_wrap=True)
        for row in rows:
            here = "partial" if row["partial"] else ("yes" if row["present"] else "-")
            tasks = "; ".join(row["tasks"]) if wide else str(len(row["tasks"]))
            cells = [here, row["id"] + ("" if row["in_catalog"] else " *")]
            cells += [row["name"]] if wide else []
            cells += [row["domain"], f"{row['samples']:,}", tasks, row["license"]]
            table.add_row(*cells)
        console.print(table)
        others = [r["id"] for r in rows if not r["in_catalog"]]
        if others:
            console.print(f"Other datasets in the root (not in the release): {', '.join(others)}")
        if not wide:
            console.print("names and tasks: `medimeta info ID`; everything: `medimeta list --json`")


def info_command(
    dataset_id: str = typer.Argument(..., help="Dataset id, e.g. bus"),
    root: Path | None = root_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the information as JSON."),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """One dataset: tasks, labels, licence, sources, and its counts when it is in --root.

    Works for release datasets and for any dataset present in the root (built, converted or
    partial); counts are per split and per class of every task.
    """
    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose):
        from medimeta.catalog import get_catalog
        from medimeta.format.locate import find_datasets

        data_root = resolve(root)
        present = find_datasets(data_root)
        counted = None
        if dataset_id in present:
            from medimeta.format.summary import folder_summary

            counted = folder_summary(present[dataset_id])
        catalog = get_catalog()
        if dataset_id not in catalog and counted is None:
            # did-you-mean over the catalog and the datasets of this root
            raise UnknownNameError(
                "dataset id",
                dataset_id,
                sorted({d.id for d in catalog} | set(present)),
                where=str(data_root),
            )
        ds = catalog.get(dataset_id) if dataset_id in catalog else None
        if as_json:
            out: dict[str, Any] = ds.to_info_dict() if ds is not None else {}
            if counted is not None:
                out["present"] = counted
            typer.echo(json.dumps(out, indent=2, default=str))
            return
        if ds is not None:
            _print_catalog_entry(ds)
        if counted is not None:
            _print_counts(counted)
        elif ds is not None:
            console.print(
                f"not present under {data_root}: `medimeta download {ds.id} --root {data_root}`",
                highlight=False,
            )


def _print_catalog_entry(ds: Any) -> None:
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


def _print_counts(counted: dict[str, Any]) -> None:
    state = "partial build" if counted["partial"] else "present"
    console.print(
        f"\n[bold]{counted['id']}[/bold] {state} at {counted['path']}: "
        f"{counted['samples']:,} samples ({counted['name']}, {counted['domain']})",
        highlight=False,
    )
    splits = counted["splits"]
    console.print("  splits: " + ", ".join(f"{s} {n:,}" for s, n in splits.items()))
    for task in counted["tasks"]:
        table = Table(title=f"task {task['name']} ({task['target']})", title_justify="left")
        for col in ("key", "class", "all", *splits):
            table.add_column(col, justify="left" if col == "class" else "right", overflow="fold")
        for c in task["classes"]:
            table.add_row(str(c["key"]), c["name"], *(f"{c[k]:,}" for k in ("all", *splits)))
        console.print(table)


def verify_command(
    ids: list[str] = typer.Argument(None, help="Dataset ids to verify [default: all present]"),
    root: Path | None = root_option(),
    deep: bool = typer.Option(False, help="Compare every TIFF with its HDF5 row (slow)."),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Check datasets against info.yaml and the format; exit 1 on any problem."""
    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose):
        from medimeta.format.locate import find_datasets
        from medimeta.format.verify import verify_dataset

        data_root = resolve(root)
        present = find_datasets(data_root)
        wanted = list(ids) if ids else sorted(present)
        if not wanted:
            console.print(f"no datasets found under {data_root}")
            raise typer.Exit(1)
        _check_ids(wanted, present, data_root)
        failed = 0
        for ds_id in wanted:
            if ds_id not in present:
                console.print(
                    f"{ds_id}: not present under {data_root}; get it: medimeta download {ds_id} "
                    f"--root {data_root}",
                    style="red",
                    highlight=False,
                    soft_wrap=True,
                )
                failed += 1
                continue
            report = verify_dataset(present[ds_id], deep=deep)
            console.print(
                report.format(), style=None if report.ok else "red", highlight=False, soft_wrap=True
            )
            failed += not report.ok
        console.print(f"{len(wanted) - failed} of {plural(len(wanted), 'dataset')} OK")
        if failed:
            raise typer.Exit(1)


def _check_ids(wanted: list[str], present: dict[str, Path], data_root: Path) -> None:
    """Ids that are neither in the root nor in the catalog fail at once, with the closest."""
    from medimeta.catalog import get_catalog

    known = sorted({d.id for d in get_catalog()} | set(present))
    for ds_id in wanted:
        if ds_id not in known:
            raise UnknownNameError("dataset id", ds_id, known, where=str(data_root))
