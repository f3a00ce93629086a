"""``medimeta backbones list``: the named hub models (and which are in the local cache), the
registered backbones and the prefixes."""

from __future__ import annotations

import json

import typer

from medimeta.cli.options import log_to_stderr, make_app, quiet_option, verbose_option

app = make_app("backbones", "Backbones: the named hub models, registered names and prefixes.")


def _rows() -> list[dict[str, object]]:
    from medimeta.models.hf import named_models
    from medimeta.models.hf.download import HubModel, installed

    rows = []
    for e in named_models().values():
        model = HubModel(e.name, e.hub_id, e.revision, e.format, e)
        folder = installed(model)
        rows.append(
            {
                "name": e.name,
                "hub_id": e.hub_id,
                "revision": e.revision,
                "revision_verified": e.revision_verified,
                "family": e.family,
                "format": e.format,
                "pool": e.pool,
                "embed_dim": e.embed_dim,
                "params": e.params,
                "license": e.license,
                "citation": e.citation,
                "authors_benchmark": e.authors,
                "local": str(folder) if folder else None,
            }
        )
    return rows


@app.command("list")
def list_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    quiet: bool = quiet_option("One line per hub model: name, hub id, local folder or -."),
    verbose: bool = verbose_option(),
) -> None:
    """Named hub models for --backbone NAME / hf:NAME (fetch one: medimeta weights get NAME)."""
    from medimeta.models import list_backbones
    from medimeta.models.hf.source import hub_cache_dir

    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose):
        rows = _rows()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if quiet:
        for r in rows:
            typer.echo(f"{r['name']}\t{r['hub_id']}\t{r['local'] or '-'}")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"named hub models (Hugging Face cache: {hub_cache_dir()})")
    for col in ("name", "hub id", "family", "pool", "dim", "params", "licence", "revision"):
        table.add_column(col, overflow="fold")
    table.add_column("local", no_wrap=True)
    for r in rows:
        rev = str(r["revision"])[:8] + ("" if r["revision_verified"] else "?")
        table.add_row(
            str(r["name"]) + (" *" if r["authors_benchmark"] else ""),
            str(r["hub_id"]),
            str(r["family"]),
            str(r["pool"]),
            str(r["embed_dim"]),
            f"{int(r['params']) / 1e6:.1f}M",  # type: ignore[call-overload]
            str(r["license"]).split(" (")[0],
            rev,
            "yes" if r["local"] else "-",
        )
    import sys

    # piped or captured: one line per model (rich would fold every cell at 80 columns)
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    present = sum(1 for r in rows if r["local"])
    typer.echo(
        f"{len(rows)} hub models, {present} in the local cache; * = one of the MedIMeta "
        "authors' 16 benchmark backbones; ? = revision not verified against the hub. Fetch: "
        "medimeta weights get NAME. Use: --backbone NAME or hf:NAME[@pool=POOL]; any "
        "transformers folder or hub id: hf:FOLDER, hf:ORG/NAME."
    )
    typer.echo(f"registered: {', '.join(list_backbones(include_prefixes=True))}")
