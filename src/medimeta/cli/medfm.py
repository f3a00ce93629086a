"""``medimeta results medfm``: MedFM's numbers averaged over its experiments."""

from __future__ import annotations

from pathlib import Path

import typer

from medimeta.cli.options import log_to_stderr, quiet_option, verbose_option


def results_medfm_command(
    run_dirs: list[Path] = typer.Argument(
        ..., help="Output folders of `medimeta fewshot` runs on imported MedFM lists."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Write the table to FILE.md and the protocol to FILE.json."
    ),
    quiet: bool = quiet_option("Print only where the table went."),
    verbose: bool = verbose_option(),
) -> None:
    """Mean ± sd over MedFM's experiments per shot count (mAP/AUC or Acc/AUC)."""
    from medimeta.runs.record import read_run, write_record_file
    from medimeta.safeio import write_text
    from medimeta.train.fewshot.medfm import average_experiments, medfm_markdown

    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose):
        runs = [(folder, read_run(folder)) for folder in run_dirs]
        summary = average_experiments(runs)
        table = medfm_markdown(summary)
        if out is not None:
            md = out if out.suffix == ".md" else out.with_name(out.name + ".md")
            write_text(md, table)
            data = write_record_file(md.with_suffix(".json"), summary)
            typer.echo(f"wrote {md} and {data}")
        if not quiet:
            typer.echo(table)
