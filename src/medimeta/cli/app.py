"""Entry point of the ``medimeta`` command."""

from __future__ import annotations

import os
import signal
import sys
import traceback
import warnings

import typer

from medimeta.cli import audit as audit_cli
from medimeta.cli import backbones as backbones_cli
from medimeta.cli import bench as bench_cli
from medimeta.cli import build as build_cli
from medimeta.cli import convert, core, episodes
from medimeta.cli import evaluate as evaluate_cli
from medimeta.cli import medfm as medfm_cli
from medimeta.cli import plots as plots_cli
from medimeta.cli import train as train_cli
from medimeta.cli import weights as weights_cli
from medimeta.cli.download import download_command
from medimeta.cli.interrupt import (
    ATTRIBUTE,
    NOTHING_KEPT,
    command_args,
    interrupted_message,
    reported,
)
from medimeta.cli.options import help_from, make_app, methods_help, one_line_warning
from medimeta.errors import MedIMetaError

app = make_app(
    "medimeta",
    "MedIMeta toolkit: catalog, verification and data tools for the MedIMeta meta-dataset.",
)
app.command("list")(core.list_command)
app.command("info")(core.info_command)
app.command("verify")(core.verify_command)
app.command("download")(download_command)
app.add_typer(episodes.app, name="episodes")
app.command("build")(build_cli.build_command)
app.add_typer(convert.app, name="convert")
app.command("train")(train_cli.train_command)
app.command("fewshot", cls=help_from(method=methods_help))(train_cli.fewshot_command)
app.command("evaluate")(evaluate_cli.evaluate_command)
app.command("score")(evaluate_cli.score_command)
app.command("montage")(plots_cli.montage_command)
app.command("report")(plots_cli.report_command)
app.add_typer(plots_cli.app, name="plot")
app.add_typer(bench_cli.benchmark_app, name="benchmark")
app.command("embed")(bench_cli.embed_command)
app.add_typer(bench_cli.results_app, name="results")
bench_cli.results_app.command("medfm")(medfm_cli.results_medfm_command)
app.command("audit")(audit_cli.audit_command)
app.add_typer(weights_cli.app, name="weights")
app.add_typer(backbones_cli.app, name="backbones")


@app.callback()
def _options(
    debug: bool = typer.Option(
        False, "--debug", help="Show the full traceback of an error (also after the command)."
    ),
) -> None:
    """MedIMeta toolkit: catalog, verification and data tools for the MedIMeta meta-dataset."""


def main(argv: list[str] | None = None) -> None:
    """Run the CLI. Errors become one line naming what failed and exit code 2 (``--debug``,
    anywhere on the line, shows the traceback); warnings are one line each. Ctrl-C prints what
    the command saved and the command that resumes it, and exits with 130."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or bool(os.environ.get("MEDIMETA_DEBUG"))
    args = [a for a in args if a != "--debug"]
    if not debug:
        warnings.showwarning = one_line_warning
    try:
        with command_args(args):
            app(args, prog_name="medimeta")
    except MedIMetaError as exc:
        if debug:
            if getattr(exc, "worker_traceback", None):  # a build worker's own traceback
                print(f"in the worker process:\n{exc.worker_traceback}", file=sys.stderr)  # type: ignore[attr-defined]
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except SystemExit as exc:  # typer's answer to Ctrl-C inside a command is exit 130 too
        if exc.code == 130 and not reported():  # before the command's work began
            typer.echo(NOTHING_KEPT, err=True)
        raise
    except KeyboardInterrupt as exc:  # outside a command (typer handles those: exit 130)
        # a second Ctrl-C while this is printed must not end in a traceback
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if debug:
            traceback.print_exc()
        if getattr(exc, ATTRIBUTE, None) is None:
            typer.echo(interrupted_message(exc, args), err=True)
        sys.exit(130)
    except Exception as exc:  # a raw third-party error that slipped through: still one line
        if debug:
            raise
        typer.echo(
            f"error: {type(exc).__name__}: {exc}\n(not one of the toolkit's own errors: rerun "
            "with --debug for the traceback and report it)",
            err=True,
        )
        sys.exit(2)
