"""``medimeta weights list | get NAME | verify [NAME...] | add PATH --name NAME``.

``get`` also fetches hub models (a name of ``medimeta backbones list``, ``hf:ORG/NAME``) into
the Hugging Face cache at their pinned revision (:mod:`medimeta.models.hf.download`).
"""

from __future__ import annotations

from pathlib import Path

import typer

from medimeta.cli.interrupt import on_interrupt, partial_files
from medimeta.cli.options import log_to_stderr, make_app, quiet_option, verbose_option

app = make_app(
    "weights",
    "Pretrained weights: list them, fetch them into $MEDIMETA_WEIGHTS, verify them, "
    "register your own files.",
)

_FOLDER = (
    "The weights folder is $MEDIMETA_WEIGHTS, else $XDG_CACHE_HOME/medimeta/weights, else "
    "~/.cache/medimeta/weights."
)


@app.command("list")
def list_command(
    quiet: bool = quiet_option("Print one line per entry: name, state, path."),
    verbose: bool = verbose_option(),
) -> None:
    """Show every weights entry: installed, missing or damaged (re-hashed)."""
    from medimeta.models.hub import weights_states
    from medimeta.paths import weights_dir

    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose):
        states = weights_states()
    if quiet:
        for s in states:
            typer.echo(f"{s.name}\t{s.state}\t{s.path or '-'}")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"weights folder: {weights_dir()}")
    for col in ("name", "backbone", "state", "path", "sha256"):
        table.add_column(col, overflow="fold")
    for s in states:
        table.add_row(s.name, s.backbone or "-", s.state, str(s.path or "-"), s.sha256)
    Console().print(table)
    for s in states:
        if s.problem and s.installed:
            typer.echo(f"{s.name}: {s.problem}", err=True)


_HUB = (
    "Hub models (medimeta backbones list, or hf:ORG/NAME) go to the Hugging Face cache "
    "($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub) from $HF_ENDPOINT."
)


@app.command("get", help=f"Fetch, check (sha256) and install weights. {_FOLDER} {_HUB}")
def get_command(
    name: str = typer.Argument(
        ...,
        help="Weights name, e.g. resnet18 (medimeta weights list), or a hub model, e.g. "
        "dinov2_vitb14 (medimeta backbones list).",
    ),
    mirror: str | None = typer.Option(
        None,
        "--mirror",
        help="Base URL to fetch <mirror>/<file name> from "
        "[default: $MEDIMETA_WEIGHTS_MIRROR, else the published URL].",
        show_default=False,
    ),
    offline: bool = typer.Option(False, "--offline", help="Never use the network."),
    from_dir: Path | None = typer.Option(
        None, "--from", help="Folder holding the weights file (its name: `medimeta weights list`)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an installed copy."),
    text: bool = typer.Option(
        False, "--text", help="Hub models: also the tokenizer files (for text towers)."
    ),
    retries: int = typer.Option(5, help="Retries of a request that brought no new bytes."),
    timeout: float = typer.Option(60.0, help="Seconds without data before a retry."),
    deadline: float | None = typer.Option(
        None,
        "--deadline",
        min=0,
        help="Seconds the download may take; past it the .part file is kept and a re-run "
        "resumes [default: no limit].",
        show_default=False,
    ),
    quiet: bool = quiet_option("No progress bar; print only errors and where the file is."),
    verbose: bool = verbose_option(),
) -> None:
    from medimeta.models.hf.download import is_hub_name

    if is_hub_name(name):  # no weights-table name is a hub model name (tested); torch-free
        _get_hub(name, offline, force, text, timeout, quiet, bool(mirror or from_dir))
        return
    from medimeta.fetch.options import FetchOptions
    from medimeta.models.hub import install_weights

    options = FetchOptions(
        mirror=mirror,
        offline=offline,
        from_dir=from_dir,
        retries=retries,
        timeout=timeout,
        deadline=deadline,
        quiet=quiet,
    )
    from medimeta.paths import weights_dir

    kept = on_interrupt(lambda: partial_files(weights_dir()))
    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose), kept:
        done = install_weights(name, options, force=force)
    typer.echo(f"{done.name}: ready at {done.path}")  # where it went: printed even when quiet
    if not quiet:
        typer.echo(f"{done.name}: {done.how}")


def _get_hub(
    name: str, offline: bool, force: bool, text: bool, timeout: float, quiet: bool, files: bool
) -> None:
    from medimeta.errors import OptionError
    from medimeta.models.hf.download import fetch_hub_model, hub_model

    if files:
        raise OptionError(
            f"--mirror and --from apply to weights files; {name} is a hub model: set HF_ENDPOINT "
            "to a mirror, or copy its cache folder"
        )
    from medimeta.models.hf.source import repo_folder

    def saved() -> str:
        return f"the files fetched so far stay in {repo_folder(hub_model(name).hub_id)}"

    with on_interrupt(saved):
        done = fetch_hub_model(
            name, offline=offline, force=force, text=text, timeout=timeout, quiet=quiet
        )
    typer.echo(f"{done.name}: ready at {done.path}")
    if not quiet:
        typer.echo(f"{done.name}: {done.how}")


@app.command("verify")
def verify_command(
    names: list[str] = typer.Argument(
        None, help="Weights names [default: every installed or registered file]."
    ),
    quiet: bool = quiet_option("Print only the files that fail."),
    verbose: bool = verbose_option(),
) -> None:
    """Re-hash weights files; exit 1 if one is missing or differs."""
    from medimeta.models.hub import verify_weights

    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose):
        states = verify_weights(list(names or []))
    bad = [s for s in states if not s.ok]
    for s in states:
        if s.ok and not quiet:
            typer.echo(f"{s.name}: ok ({s.state}, {s.path})")
        elif not s.ok:
            typer.echo(f"error: {s.name}: {s.path or '-'}: {s.problem}", err=True)
    if not states and not quiet:
        typer.echo("nothing installed or registered yet (see: medimeta weights list)")
    if bad:
        typer.echo(
            f"{len(bad)} of {len(states)} failed: {', '.join(s.name for s in bad)}", err=True
        )
        raise typer.Exit(1)


@app.command("add", help=f"Register a weights file by path (records its sha256). {_FOLDER}")
def add_command(
    path: Path = typer.Argument(..., help="The weights file (.pth/.pt/.safetensors)."),
    name: str = typer.Option(..., "--name", help="Name to pass as --pretrained NAME."),
    backbone: str | None = typer.Option(
        None, "--backbone", help="Check that the file loads into this backbone."
    ),
    force: bool = typer.Option(False, "--force", help="Replace a record of the same name."),
    quiet: bool = quiet_option("Print only where the record went."),
    verbose: bool = verbose_option(),
) -> None:
    from medimeta.models.user_weights import register_weights, registry_path

    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose):
        record = register_weights(path, name, backbone=backbone, replace=force)
    typer.echo(f"{record.name}: registered in {registry_path()}")
    if not quiet:
        fits = f", loads into {record.backbone}" if record.backbone else ""
        typer.echo(f"{record.name}: {record.path} (sha256 {record.sha256}{fits})")
