"""Entry point of the ``medimeta`` command."""

from __future__ import annotations

import sys

import typer

from medimeta.cli import build as build_cli
from medimeta.cli import convert, core, episodes
from medimeta.cli import train as train_cli
from medimeta.cli.download import download_command
from medimeta.errors import MedIMetaError

app = typer.Typer(
    name="medimeta",
    help="MedIMeta toolkit: catalog, verification and data tools for the MedIMeta meta-dataset.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("list")(core.list_command)
app.command("info")(core.info_command)
app.command("verify")(core.verify_command)
app.command("download")(download_command)
app.add_typer(episodes.app, name="episodes")
app.command("build")(build_cli.build_command)
app.add_typer(convert.app, name="convert")
app.command("train")(train_cli.train_command)
app.command("fewshot")(train_cli.fewshot_command)
app.command("evaluate")(train_cli.evaluate_command)
app.command("score")(train_cli.score_command)


def main() -> None:
    """Run the CLI; library errors become one clear line and exit code 2."""
    try:
        app()
    except MedIMetaError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
