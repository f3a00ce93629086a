"""``medimeta convert medmnist|medfmc|folder|csv``: other data -> MedIMeta format."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from medimeta.cli.options import (
    log_to_stderr,
    make_app,
    quiet_option,
    resolve,
    root_option,
    verbose_option,
)
from medimeta.errors import MedIMetaError
from medimeta.logs import plural

app = make_app(
    "convert", "Convert MedMNIST, MedFMC, an image folder or a CSV into the MedIMeta format."
)


def _workers_option() -> Any:
    return typer.Option(1, "--workers", "-j", min=1, help="Processes for image work.")


def _overwrite_option() -> Any:
    return typer.Option(False, "--overwrite", help="Replace an existing <root>/<id> folder.")


def _restart_option() -> Any:
    return typer.Option(
        False, "--restart", help="Start clean instead of resuming an interrupted build."
    )


def _quiet_option() -> Any:
    return quiet_option("No progress bar; print only warnings, errors and the dataset's path.")


_DERIVED = typer.Option(
    None,
    "--derived-from",
    help="Ids of the datasets these images come from (comma separated), e.g. bus for a copy "
    "of BUSI; recorded in info.yaml; such a dataset is never a few-shot source for them.",
)
_OUTSIDE = typer.Option(
    False,
    "--allow-outside-paths",
    help="Read image paths that lead outside the image folder (absolute, '..', links); "
    "recorded in info.yaml.",
)


@contextmanager
def _running(quiet: bool, verbose: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress callback drawing a bar on stderr; errors become one line and exit 1."""
    try:
        with log_to_stderr("medimeta", quiet=quiet, verbose=verbose):
            yield from _bar(quiet)
    except MedIMetaError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


def _bar(quiet: bool) -> Iterator[Callable[[int, int], None] | None]:
    if quiet:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = (BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress("writing", *columns, transient=True) as bar:
        job = bar.add_task("writing", total=None)

        def update(done: int, total: int) -> None:
            bar.update(job, completed=done, total=total)

        yield update


def _done(path: Path, quiet: bool) -> None:
    from medimeta.format.reader import DatasetFolder

    folder = DatasetFolder(path)
    if not quiet:
        counts = dict(folder.spec.splits)
        tasks = ", ".join(f"{t.name} ({t.target.short})" for t in folder.spec.tasks)
        typer.echo(f"{folder.id}: {plural(folder.num_samples, 'sample')} {counts}, tasks: {tasks}")
    typer.echo(str(path))


def _split_list(text: str | None) -> tuple[str, ...] | None:
    return tuple(p.strip() for p in text.split(",") if p.strip()) if text else None


def _ratios(text: str) -> tuple[float, float, float]:
    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 3:
        raise typer.BadParameter(
            f"--ratios {text!r}: give three numbers train,val,test, e.g. 0.7,0.1,0.2"
        )
    return (parts[0], parts[1], parts[2])


def _channels(text: str) -> int | None:
    if text not in ("auto", "1", "3"):
        raise typer.BadParameter("use 1, 3 or auto")
    return None if text == "auto" else int(text)


@app.command("medmnist")
def medmnist_command(
    npz: Path = typer.Argument(..., exists=True, dir_okay=False, help="MedMNIST 2D .npz file."),
    root: Path | None = root_option(),
    dataset_id: str | None = typer.Option(None, "--id", help="[default: flag, flag_<size>]"),
    flag: str | None = typer.Option(None, help="MedMNIST flag if the file name lacks it."),
    resample: str = typer.Option("nearest", help="Enlarging to 224: nearest or bicubic."),
    md5_check: bool = typer.Option(True, "--md5-check/--no-md5-check", help="Check MD5."),
    derived_from: str | None = _DERIVED,
    workers: int = _workers_option(),
    overwrite: bool = _overwrite_option(),
    restart: bool = _restart_option(),
    quiet: bool = _quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """MedMNIST .npz -> MedIMeta (official splits, MedMNIST's task and label names)."""
    from medimeta.convert.medmnist import convert_medmnist

    with _running(quiet, verbose) as progress:
        path = convert_medmnist(
            npz,
            resolve(root),
            dataset_id=dataset_id,
            flag=flag,
            resample=resample,
            check_md5=md5_check,
            workers=workers,
            overwrite=overwrite,
            resume=not restart,
            progress=progress,
            derived_from=_split_list(derived_from) or (),
        )
    _done(path, quiet)


def _common(**kw: Any) -> dict[str, Any]:
    """write_table options shared by medfmc, folder and csv."""
    return {k: v for k, v in kw.items() if v is not None}


@app.command("medfmc")
def medfmc_command(
    src: Path = typer.Argument(..., exists=True, file_okay=False, help="MedFMC dataset folder."),
    root: Path | None = root_option(),
    dataset: str | None = typer.Option(None, help="chest, endo or colon [default: folder name]"),
    dataset_id: str | None = typer.Option(None, "--id", help="[default: medfmc_<dataset>]"),
    images: str = typer.Option("images", help="Image folder inside SRC."),
    holdout: float = typer.Option(0.15, help="Share of training studies moved to val."),
    seed: int = typer.Option(42, help="Split seed."),
    fit: str = typer.Option("pad", help="Make square by pad, crop or stretch."),
    license: str | None = typer.Option(None, help="Licence text for info.yaml and LICENSE."),
    allow_outside_paths: bool = _OUTSIDE,
    derived_from: str | None = _DERIVED,
    workers: int = _workers_option(),
    overwrite: bool = _overwrite_option(),
    restart: bool = _restart_option(),
    quiet: bool = _quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """MedFMC ChestDR / Endo / ColonPath -> MedIMeta (study id kept as patient_id)."""
    from medimeta.convert.medfmc import convert_medfmc

    with _running(quiet, verbose) as progress:
        path = convert_medfmc(
            src,
            resolve(root),
            dataset=dataset,
            dataset_id=dataset_id,
            image_dir=images,
            holdout=holdout,
            seed=seed,
            **_common(
                fit=fit,
                license=license,
                allow_outside_paths=allow_outside_paths,
                workers=workers,
                overwrite=overwrite,
                resume=not restart,
                progress=progress,
                derived_from=_split_list(derived_from),
            ),
        )
    _done(path, quiet)


def _table_options(
    channels: str,
    fit: str,
    ratios: str,
    holdout: float,
    seed: int,
    stratify: bool,
    name: str | None,
    domain: str,
    license: str,
    workers: int,
    overwrite: bool,
    restart: bool,
    progress: Any,
    allow_outside_paths: bool = False,
) -> dict[str, Any]:
    from medimeta.convert.table import SplitOptions

    return {
        "allow_outside_paths": allow_outside_paths,
        "channels": _channels(channels),
        "fit": fit,
        "name": name,
        "domain": domain,
        "license": license,
        "workers": workers,
        "overwrite": overwrite,
        "resume": not restart,
        "progress": progress,
        "split_options": SplitOptions(_ratios(ratios), holdout, seed, stratify),
    }


_CHANNELS = typer.Option("auto", help="1 (grey), 3 (RGB) or auto (from the files' modes).")
_FIT = typer.Option("pad", help="Make square by pad, crop or stretch.")
_RATIOS = typer.Option("0.7,0.1,0.2", help="train,val,test shares when the source has no split.")
_HOLDOUT = typer.Option(0.15, help="Share of train subjects for a split the source lacks.")
_SEED = typer.Option(42, help="Split seed.")
_STRATIFY = typer.Option(True, "--stratify/--no-stratify", help="Balance labels across splits.")
_NAME = typer.Option(None, help="Display name [default: the id].")
_DOMAIN = typer.Option("Unspecified", help="Imaging domain, e.g. 'Breast ultrasound'.")
_LICENSE = typer.Option("unspecified", help="Licence, e.g. 'CC BY 4.0'.")
_TARGET = typer.Option("multiclass", help="multiclass, binary, multilabel or ordinal.")
_CLASSES = typer.Option(None, help="Class names in key order, comma separated.")


@app.command("folder")
def folder_command(
    src: Path = typer.Argument(..., exists=True, file_okay=False, help="One subfolder per class."),
    root: Path | None = root_option(),
    dataset_id: str = typer.Option(..., "--id", help="Dataset id (output folder name)."),
    task: str = typer.Option(..., "--task", help="Task name, e.g. 'case category'."),
    target: str = _TARGET,
    classes: str | None = _CLASSES,
    exclude: list[str] = typer.Option([], help="Glob of relative paths to skip (repeatable)."),
    subject_pattern: str | None = typer.Option(None, help="Regex: group 1 = subject id."),
    channels: str = _CHANNELS,
    fit: str = _FIT,
    ratios: str = _RATIOS,
    holdout: float = _HOLDOUT,
    seed: int = _SEED,
    stratify: bool = _STRATIFY,
    name: str | None = _NAME,
    domain: str = _DOMAIN,
    license: str = _LICENSE,
    allow_outside_paths: bool = _OUTSIDE,
    derived_from: str | None = _DERIVED,
    workers: int = _workers_option(),
    overwrite: bool = _overwrite_option(),
    restart: bool = _restart_option(),
    quiet: bool = _quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """A folder with one subfolder per class -> MedIMeta (one task)."""
    from medimeta.convert.generic import convert_folder

    with _running(quiet, verbose) as progress:
        options = _table_options(
            channels,
            fit,
            ratios,
            holdout,
            seed,
            stratify,
            name,
            domain,
            license,
            workers,
            overwrite,
            restart,
            progress,
            allow_outside_paths,
        )
        path = convert_folder(
            src,
            resolve(root),
            dataset_id,
            task,
            target=target,
            classes=_split_list(classes),
            exclude=exclude,
            subject_pattern=subject_pattern,
            derived_from=_split_list(derived_from) or (),
            **options,
        )
    _done(path, quiet)


@app.command("csv")
def csv_command(
    csv_file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV of images."),
    root: Path | None = root_option(),
    dataset_id: str = typer.Option(..., "--id", help="Dataset id (output folder name)."),
    path_column: str = typer.Option("path", help="Column with image paths."),
    label: list[str] = typer.Option(
        ["label"], help="Label column (repeat for a multi-label task with 0/1 columns)."
    ),
    task: str | None = typer.Option(None, help="Task name [default: the label column]."),
    target: str = _TARGET,
    classes: str | None = _CLASSES,
    separator: str = typer.Option("|", help="Multi-label names in one cell: separator."),
    subject_column: str | None = typer.Option(None, help="Patient/study id column."),
    split_column: str | None = typer.Option(None, help="The source's own split column."),
    images: Path | None = typer.Option(None, help="Image folder [default: the CSV's folder]."),
    keep_columns: bool = typer.Option(
        True,
        "--keep-columns/--drop-columns",
        help="Keep the CSV's other columns as annotations.csv columns.",
    ),
    channels: str = _CHANNELS,
    fit: str = _FIT,
    ratios: str = _RATIOS,
    holdout: float = _HOLDOUT,
    seed: int = _SEED,
    stratify: bool = _STRATIFY,
    name: str | None = _NAME,
    domain: str = _DOMAIN,
    license: str = _LICENSE,
    allow_outside_paths: bool = _OUTSIDE,
    derived_from: str | None = _DERIVED,
    workers: int = _workers_option(),
    overwrite: bool = _overwrite_option(),
    restart: bool = _restart_option(),
    quiet: bool = _quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """A CSV of image paths and labels -> MedIMeta (one task; splits by subject)."""
    from medimeta.convert.generic import convert_csv
    from medimeta.convert.labels import TaskColumns

    columns = tuple(label)
    spec = TaskColumns(task or columns[0], target, columns, _split_list(classes), separator)
    with _running(quiet, verbose) as progress:
        options = _table_options(
            channels,
            fit,
            ratios,
            holdout,
            seed,
            stratify,
            name,
            domain,
            license,
            workers,
            overwrite,
            restart,
            progress,
            allow_outside_paths,
        )
        path = convert_csv(
            csv_file,
            resolve(root),
            dataset_id,
            [spec],
            path_column=path_column,
            subject_column=subject_column,
            split_column=split_column,
            image_dir=images,
            keep_columns=keep_columns,
            derived_from=_split_list(derived_from) or (),
            **options,
        )
    _done(path, quiet)
