"""``medimeta evaluate`` (subgroup report) and ``medimeta score`` (re-scoring) of prediction
files, read through the one validated reader (:mod:`medimeta.evaluate.prediction_reader`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from medimeta.cli.options import log_to_stderr, quiet_option, resolve, verbose_option
from medimeta.errors import UnknownNameError
from medimeta.logs import plural


def _parse_bins(values: list[str]) -> dict[str, list[float]]:
    """``--bins COLUMN=e1,e2,...`` values; OptionError naming the value that is wrong."""
    import math

    from medimeta.errors import OptionError

    out: dict[str, list[float]] = {}
    for item in values:
        column, sep, edges = item.partition("=")
        if not sep or not column.strip():
            raise OptionError(f"--bins takes COLUMN=e1,e2,...; got {item!r}")
        parsed = []
        for edge in (e.strip() for e in edges.split(",") if e.strip()):
            try:
                value = float(edge)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise OptionError(
                    f"--bins {item!r}: edge {edge!r} is not a finite number; expected "
                    "COLUMN=e1,e2,... with numbers, e.g. age=0,40,60,80,120"
                )
            parsed.append(value)
        if len(parsed) < 2 or sorted(set(parsed)) != parsed:
            raise OptionError(
                f"--bins {item!r}: expected at least two increasing edges; got {parsed}"
            )
        out[column.strip()] = parsed
    return out


def _annotations(path: Path) -> Any:
    """``--annotations FILE`` as a frame; FormatError naming the file when it is no CSV."""
    import pandas as pd

    from medimeta.errors import FormatError

    try:
        return pd.read_csv(path, low_memory=False)
    except FileNotFoundError:
        raise FormatError(path, "annotations file not found", fix="pass annotations.csv") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:  # pandas' ParserError is one
        raise FormatError(path, f"cannot be read as CSV ({exc})".replace("\n", " ")) from None


DEDUPE_HELP = (
    "Drop rows that repeat an earlier row verbatim (said on stderr) instead of refusing the "
    "file; a sample listed twice with other values is refused either way."
)


def recorded_folder(predictions: Path, dataset_id: str) -> Path | None:
    """The dataset folder the run beside a prediction file recorded, if it still holds
    ``dataset_id``."""
    from medimeta.errors import MedIMetaError
    from medimeta.format.reader import read_info_file
    from medimeta.runs.record import is_run_folder, read_run

    if not is_run_folder(predictions.parent):
        return None
    try:
        record = read_run(predictions.parent)
    except MedIMetaError:
        return None
    if record.target is None or not record.target.folder:
        return None
    folder = Path(record.target.folder)
    info = folder / "info.yaml"
    if info.is_file() and read_info_file(info).get("id") == dataset_id:
        return folder
    return None


def evaluate_command(
    predictions: Path = typer.Option(
        ..., help="Prediction file of a run (predictions_<split>.csv)."
    ),
    by: list[str] = typer.Option(..., help='Annotation column(s); "a+b" for intersections.'),
    root: Path | None = typer.Option(
        None,
        "--root",
        help="Data root [default: the dataset folder the run recorded, else $MEDIMETA_ROOT, "
        "else ./data/MedIMeta]",
        show_default=False,
    ),
    annotations: Path | None = typer.Option(None, help="annotations.csv to use [ROOT/ID/]."),
    bins: list[str] = typer.Option([], help='Bin edges, e.g. "age=0,40,60,80,120".'),
    metric: str = typer.Option("auroc", help="Metric to rank groups by."),
    mode: str = typer.Option("default", help="Metric definitions: default, medmnist, medfm."),
    n_boot: int = typer.Option(1000, help="Bootstrap resamples for the CIs (0: none)."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
    min_count: int = typer.Option(10, help="Smallest group that is ranked."),
    out: Path | None = typer.Option(None, help="Output prefix [PREDICTIONS stem + _subgroups]."),
    dedupe: bool = typer.Option(False, "--dedupe", help=DEDUPE_HELP),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Subgroup (hidden stratification) report: metrics, counts, CIs and worst-group gap."""
    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose):
        from medimeta.evaluate.predictions import read_predictions
        from medimeta.evaluate.subgroups import report_markdown, subgroup_report
        from medimeta.format.reader import DatasetFolder
        from medimeta.runs.files import write_json
        from medimeta.safeio import write_text

        bins_by_column = _parse_bins(bins)  # before anything is read
        preds = read_predictions(predictions, dedupe=dedupe)
        if annotations is not None:
            frame = _annotations(annotations)
        else:
            if not preds.dataset_id:
                raise UnknownNameError(
                    "dataset of the predictions",
                    "",
                    [],
                    where=str(predictions),
                    expected="the file names no dataset; fix: pass --annotations FILE",
                )
            recorded = None if root is not None else recorded_folder(predictions, preds.dataset_id)
            folder = DatasetFolder(recorded) if recorded else None
            frame = (folder or DatasetFolder.from_root(resolve(root), preds.dataset_id)).annotations
        report = subgroup_report(
            preds,
            frame,
            by,
            bins=bins_by_column,
            metric=metric,
            mode=mode,
            n_boot=n_boot,
            seed=seed,
            min_count=min_count,
        )
        prefix = out or predictions.with_name(predictions.stem + "_subgroups")
        write_json(prefix.with_suffix(".json"), report)
        text = report_markdown(report)
        write_text(prefix.with_suffix(".md"), text)
        typer.echo(text)
        typer.echo(f"wrote {prefix.with_suffix('.json')} and {prefix.with_suffix('.md')}")


def score_command(
    predictions: list[Path] = typer.Argument(..., help="Prediction file(s) to re-score."),
    mode: str = typer.Option("default", help="Metric definitions: default, medmnist, medfm."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    dedupe: bool = typer.Option(False, "--dedupe", help=DEDUPE_HELP),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Recompute metrics from prediction files (few-shot files: per episode and mean ± CI)."""
    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose):
        from medimeta.evaluate.predictions import read_predictions, score_predictions
        from medimeta.runs.files import jsonable

        for path in predictions:
            result = score_predictions(read_predictions(path, dedupe=dedupe), mode=mode)
            if as_json:
                typer.echo(json.dumps(jsonable({"file": str(path), **result}), indent=2))
                continue
            typer.echo(f"{path}:")
            if "metrics" in result:
                for name, value in result["metrics"].items():
                    typer.echo(f"  {name}: {value:.6f}")
            else:
                for name, entry in result["summary"].items():
                    typer.echo(
                        f"  {name}: {entry['mean']:.6f} ± {entry['ci']:.6f} "
                        f"({entry['n']} of {plural(result['n_episodes'], 'episode')})"
                    )
