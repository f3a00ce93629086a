"""``medimeta episodes sample``, ``show`` and ``import-medfm``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from medimeta.cli.options import (
    log_to_stderr,
    make_app,
    quiet_option,
    resolve,
    root_option,
    verbose_option,
)
from medimeta.errors import EpisodeError
from medimeta.logs import plural

if TYPE_CHECKING:  # torch and numpy load only when a command runs
    from medimeta.episodes import Episode, EpisodeSet

console = Console()
app = make_app("episodes", "Few-shot episodes: draw reproducible episode sets and inspect them.")


@app.command("sample")
def sample_command(
    task: str = typer.Option(
        ...,
        "--task",
        help="Task as 'dataset_id:task name', e.g. 'bus:case category', or 'dataset_id' (its "
        "first task).",
    ),
    out: Path = typer.Option(..., "--out", help="Episode file to write (JSON)."),
    root: Path | None = root_option(),
    split: str = typer.Option(
        "all", help="train, val, test, several joined with '+' (train+val), or all."
    ),
    original_split: bool = typer.Option(False, "--original-split", help="Use the original splits."),
    shots: int = typer.Option(
        5, help="Support units per class (multi-label: positives and negatives per label)."
    ),
    query: int = typer.Option(10, "--query", help="Query units per class."),
    episodes: int = typer.Option(100, help="Number of episodes."),
    seed: int = typer.Option(
        0, help="Seed; episode i depends only on seed, i, task, split and settings."
    ),
    ways: int | None = typer.Option(None, help="Classes per episode [default: all eligible]."),
    per_subject: bool = typer.Option(
        False,
        "--per-subject",
        help="A shot is a subject with all its images of that class (MedFM).",
    ),
    subject_column: str = typer.Option(
        "patient_id", help="annotations.csv column naming the subject."
    ),
    min_class_units: int | None = typer.Option(
        None, help="Least samples/subjects a class needs [default: shots + query]."
    ),
    on_small_class: str = typer.Option("exclude", help="exclude (with a warning) or error."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Draw N episodes of one task and write them, with settings and a data fingerprint."""
    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose):
        if out.exists() and not force:
            raise EpisodeError(f"{out} exists; pass --force to overwrite it")
        from medimeta.episodes import EpisodeSampler

        sampler = EpisodeSampler.from_root(
            resolve(root),
            task,
            split,
            shots=shots,
            queries=query,
            ways=ways,
            seed=seed,
            num_episodes=episodes,
            shot_unit="subject" if per_subject else "sample",
            subject_column=subject_column,
            min_class_units=min_class_units,
            on_small_class=on_small_class,
            original_split=original_split,
        )
        path = sampler.sample().save(out)
        console.print(
            f"wrote {plural(episodes, 'episode')} of {sampler.pool.identifier} "
            f"({sampler.n_way}-way, {shots}-shot, {query} query, split "
            f"{sampler.pool.split_label}, seed {seed}) to {path}"
        )
        console.print(f"data fingerprint: {sampler.pool.fingerprint}")


def _stats(values: list[int]) -> str:
    if not values:
        return "-"
    import numpy as np

    arr = np.asarray(values)
    return f"{arr.min()} / {float(np.median(arr)):g} / {arr.max()}"


@app.command("show")
def show_command(
    file: Path = typer.Argument(..., help="Episode file written by `medimeta episodes sample`."),
    root: Path | None = typer.Option(
        None, "--root", help="Check the file against the data under this root."
    ),
    episode: int | None = typer.Option(
        None, "--episode", help="Also list this episode's samples [with --image: default 0]."
    ),
    image: Path | None = typer.Option(
        None,
        "--image",
        help="Write a PNG of the episode's support and query images, a row per class "
        "(reads the data under --root, else $MEDIMETA_ROOT).",
    ),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Summarise an episode file (and, with --root, check it against the data)."""
    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose):
        from medimeta.episodes import EpisodeSet

        eps = EpisodeSet.load(file)
        _print_summary(file, eps)
        if root is not None or image is not None:
            eps = eps.verify(resolve(root))
            console.print(f"[green]matches the data under {resolve(root)}[/green]")
        if episode is not None or image is not None:
            ep = _find_episode(file, eps, 0 if episode is None else episode)
            if episode is not None:
                _print_episode(ep)
            if image is not None:
                from medimeta.plots import episode_grid, save_figure

                console.print(f"wrote {save_figure(episode_grid(ep), image)}")


def _print_summary(file: Path, eps: EpisodeSet) -> None:
    h = eps.header
    console.print(
        f"[bold]{file}[/bold]: {plural(len(eps), 'episode')} of {h['task']['identifier']} "
        f"({h['task']['target']}) from {h['dataset']['name']} ({h['dataset']['domain']})"
    )
    console.print(f"split {h['split_label']}; seed {h['seed']}; settings {h['settings']}")
    console.print(f"fingerprint {eps.fingerprint}")
    if h["excluded_classes"]:
        console.print(f"excluded classes (too few units): {h['excluded_classes']}")
    names = h["task"]["labels"]
    used = Counter(k for ep in eps for k in ep.class_keys)
    table = Table(title="classes")
    for col in ("key", "name", "episodes using it"):
        table.add_column(col)
    for key in h["eligible_classes"]:
        table.add_row(str(key), names[str(key)], str(used.get(key, 0)))
    console.print(table)
    console.print(
        "support size min / median / max: " + _stats([e.support_indices.size for e in eps])
    )
    console.print("query size min / median / max:   " + _stats([e.query_indices.size for e in eps]))


def _find_episode(file: Path, eps: EpisodeSet, index: int) -> Episode:
    matches = [e for e in eps if e.index == index]
    if not matches:
        raise EpisodeError(
            f"{file} has no episode {index}; indices {eps[0].index}..{eps[-1].index}"
        )
    return matches[0]


def _print_episode(ep: Episode) -> None:
    for part, rows, labels in (
        ("support", ep.support_indices, ep.support_labels),
        ("query", ep.query_indices, ep.query_labels),
    ):
        console.print(
            f"{part}: "
            + ", ".join(
                f"{r}->{lab}" for r, lab in zip(rows.tolist(), labels.tolist(), strict=True)
            )
        )
    console.print("classes: " + ", ".join(f"{c.index}={c.key} ({c.name})" for c in ep.classes))


def _numbers(text: str | None, option: str) -> list[int] | None:
    """``"1,5,10"`` or ``"1..5"`` -> [1, 5, 10] / [1, 2, 3, 4, 5]; None for None."""
    if text is None:
        return None
    out: list[int] = []
    try:
        for part in (p.strip() for p in text.split(",") if p.strip()):
            lo, sep, hi = part.partition("..")
            out += list(range(int(lo), int(hi) + 1)) if sep else [int(part)]
    except ValueError:
        raise typer.BadParameter(
            f"{option} takes numbers such as 1,5,10 or 1..5; got {text!r}"
        ) from None
    return sorted(set(out))


@app.command("import-medfm")
def import_medfm_command(
    lists_dir: Path = typer.Argument(
        ..., help="Folder of MedFM's lists (<ds>_<N>-shot_train_exp<K>.txt, test list)."
    ),
    dataset: str = typer.Option(
        ..., "--dataset", help="Converted MedFMC dataset id, e.g. medfmc_chest."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Folder for <ds>_<N>-shot_exp<K>.json (or FILE.json for one list)."
    ),
    root: Path | None = root_option(),
    shots: str | None = typer.Option(
        None, "--shots", help="Shot counts to import, e.g. 1,5,10 [default: all present]."
    ),
    exp: str | None = typer.Option(
        None, "--exp", help="Experiments to import, e.g. 1..5 or 1,3 [default: all present]."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite existing files."),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Turn MedFM's official few-shot lists into episode files (one per N and K)."""
    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose):
        from medimeta.episodes.medfm import import_medfm

        done = import_medfm(
            lists_dir,
            resolve(root),
            dataset,
            out,
            shots=_numbers(shots, "--shots"),
            experiments=_numbers(exp, "--exp"),
            force=force,
        )
        table = Table(title=f"MedFM lists of {dataset} (support = train list, query = test list)")
        columns = ("shots", "exp", "lines", "unique", "duplicates", "val", "val∩support", "test")
        table.add_column("file", overflow="fold")
        for col in columns:
            table.add_column(col, no_wrap=True)
        for d in done:
            val = "none" if d.val is None else str(d.val)
            values = [d.shots, d.experiment, d.lines, d.unique, d.duplicates, val, d.overlap]
            values.append(d.test)
            table.add_row(str(d.path), *map(str, values))
        if not quiet:
            console.print(table)
        from medimeta.train.fewshot.medfm import import_record

        record = import_record(lists_dir, resolve(root), dataset, out, done)
        console.print(f"wrote {len(done)} episode files to {out} (record: {record})")
