"""``medimeta benchmark``, ``medimeta embed`` and ``medimeta results merge``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from medimeta.cli.options import resolve, root_option

results_app = typer.Typer(
    help="Merge result records into the paper's tables.", no_args_is_help=True
)

METHODS_HELP = (
    "Comma-separated: supervised, im-pt, linear-probe, protonet, knn, mm-pt, mm-maml [all]."
)


def _fewshot_overrides(
    steps: int | None,
    lr: float | None,
    pretrain_steps: int | None,
    meta_steps: int | None,
    first_order: bool,
    distance: str | None,
    k: int | None,
) -> dict[str, Any]:
    values = {
        "finetune_steps": steps,
        "probe_steps": steps,
        "finetune_lr": lr,
        "probe_lr": lr,
        "pretrain_steps": pretrain_steps,
        "meta_steps": meta_steps,
        "first_order": first_order or None,
        "distance": distance,
        "knn_k": k,
    }
    return {key: v for key, v in values.items() if v is not None}


def benchmark_command(
    root: Path | None = root_option(),
    targets: list[str] = typer.Option(
        [],
        help='Targets "ID:TASK" or "ID" (its first task), comma-separated or repeated '
        "[every dataset present].",
    ),
    domain: str | None = typer.Option(None, help="Only the datasets of this domain."),
    all_tasks: bool = typer.Option(False, help="Every task of each dataset, not the first."),
    methods: str = typer.Option(
        ",".join(("supervised", "im-pt", "linear-probe", "protonet", "knn", "mm-pt", "mm-maml")),
        help=METHODS_HELP,
    ),
    backbones: str = typer.Option("resnet18", help="Comma-separated backbone names."),
    shots: str = typer.Option("5", help="Support samples per class, e.g. 1,5,10."),
    query: int = typer.Option(10, help="Query samples per class."),
    episodes: int = typer.Option(100, help="Episodes per target and shots."),
    seeds: str = typer.Option("0", help="Seeds (episodes and methods), e.g. 0,1,2."),
    split: str = typer.Option("all", help="Split the episodes come from (all, test, ...)."),
    image_size: int | None = typer.Option(None, help="Image size [stored size]."),
    pretrained: str = typer.Option("auto", help="auto, imagenet, none or a weights file."),
    steps: int | None = typer.Option(None, help="Fine-tuning / probe steps per episode [100]."),
    lr: float | None = typer.Option(None, help="Fine-tuning / probe learning rate [1e-2]."),
    pretrain_steps: int | None = typer.Option(None, help="mm-pt pre-training steps [1000]."),
    meta_steps: int | None = typer.Option(None, help="mm-maml meta-training steps [1000]."),
    first_order: bool = typer.Option(False, help="First-order MAML."),
    distance: str | None = typer.Option(None, help="ProtoNet distance [squared_euclidean]."),
    k: int | None = typer.Option(None, "--k", help="kNN neighbours [10]."),
    preset: str = typer.Option("paper", help="Supervised protocol preset: paper or medmnist."),
    epochs: int | None = typer.Option(None, help="Supervised: maximum epochs [preset]."),
    batch_size: int | None = typer.Option(None, help="Supervised: batch size [preset]."),
    train_lr: float | None = typer.Option(None, help="Supervised: learning rate [preset]."),
    patience: int | None = typer.Option(None, help="Supervised: patience, 0 = off [preset]."),
    sources: list[str] = typer.Option([], help="mm-pt/mm-maml: only these sources (ID[:TASK])."),
    exclude_sources: list[str] = typer.Option([], help="mm-pt/mm-maml: not these sources."),
    out: Path = typer.Option(Path("runs/benchmark"), help="Output folder."),
    budget: str | None = typer.Option(None, help="Refuse a plan estimated over this (2h, 90m)."),
    dry_run: bool = typer.Option(False, help="Calibrate, print the plan and stop."),
    cache: Path | None = typer.Option(
        None, help="Embedding cache folder [$MEDIMETA_CACHE, else ROOT/.cache]."
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Frozen features per episode."),
    device: str | None = typer.Option(None, help="cpu, cuda, ... [auto]."),
    progress: bool = typer.Option(True, "--progress/--quiet", help="Progress and log."),
) -> None:
    """The paper's validation (Table 3 supervised, Table 4 few-shot) as one resumable plan."""
    from medimeta.bench.runner import run_benchmark
    from medimeta.bench.settings import BenchSettings, int_list, parse_duration, split_list

    train = {"epochs": epochs, "batch_size": batch_size, "lr": train_lr, "patience": patience}
    settings = BenchSettings(
        methods=tuple(split_list(methods)),
        backbones=tuple(split_list(backbones)),
        shots=tuple(int_list(shots, "--shots")),
        queries=query,
        episodes=episodes,
        seeds=tuple(int_list(seeds, "--seeds")),
        split=split,
        image_size=image_size,
        pretrained=pretrained,
        fewshot=_fewshot_overrides(steps, lr, pretrain_steps, meta_steps, first_order, distance, k),
        train_preset=preset,
        train={key: v for key, v in train.items() if v is not None},
        sources=tuple(split_list(sources)),
        exclude_sources=tuple(split_list(exclude_sources)),
        cache=not no_cache,
    )
    summary = run_benchmark(
        resolve(root),
        settings,
        out=out,
        targets=split_list(targets),
        domain=domain,
        all_tasks=all_tasks,
        budget_s=parse_duration(budget) if budget else None,
        dry_run=dry_run,
        cache=cache,
        device=device,
        log=typer.echo,
        progress=progress,
    )
    if dry_run:
        typer.echo(f"dry run: plan written to {summary['plan']}")
        return
    if (out / "results.md").is_file() and summary.get("merged"):
        typer.echo((out / "results.md").read_text(encoding="utf-8"))
    if summary.get("failed"):
        typer.echo(
            f"error: {len(summary['failed'])} cell(s) failed (see failed.txt in their folders): "
            + "; ".join(summary["failed"]),
            err=True,
        )
        raise typer.Exit(1)


def embed_command(
    dataset: str = typer.Argument(..., help='Dataset "ID" or "ID:TASK" (TASK: labels too).'),
    root: Path | None = root_option(),
    backbone: str = typer.Option("efficientnet_lite0", help="Registered backbone name."),
    split: str = typer.Option("all", help="all, train, val, test or train+val."),
    module: str | None = typer.Option(None, help="Your model: FILE.py:factory."),
    weights: Path | None = typer.Option(None, help="Weights file (.pth/.safetensors)."),
    image_size: int | None = typer.Option(None, help="Image size [stored size]."),
    normalize: str = typer.Option("auto", help="auto (the weights'), half or imagenet."),
    cache: Path | None = typer.Option(
        None, help="Embedding cache folder [$MEDIMETA_CACHE, else ROOT/.cache]."
    ),
    out: Path | None = typer.Option(None, help="Also export to FILE.safetensors or FILE.h5."),
    device: str | None = typer.Option(None, help="cpu, cuda, ... [cpu]."),
    progress: bool = typer.Option(True, "--progress/--quiet"),
) -> None:
    """Frozen features of a dataset's samples, computed once into the embedding cache."""
    from medimeta.bench.embed import embed_dataset, export

    table, record = embed_dataset(
        resolve(root),
        dataset,
        backbone=backbone,
        module=module,
        weights=weights,
        split=split,
        image_size=image_size,
        normalize=normalize,
        cache=cache,
        device=device,
        progress=progress,
    )
    typer.echo(
        f"{record['dataset']} ({record['split']}): {record['samples']} samples x "
        f"{record['features']} features of {record['backbone']}: {record['from_cache']} from "
        f"the cache, {record['computed']} computed in {record['seconds']:.1f} s"
    )
    typer.echo(f"cache file: {record['file'] or '(not written)'}")
    if out is not None:
        export(out, table, record["rows"], record.get("labels"))
        typer.echo(f"exported to {out}")


@results_app.command("merge")
def merge_command(
    folders: list[Path] = typer.Argument(..., help="Benchmark, fewshot or train folders."),
    out: list[Path] = typer.Option([], help="Write FILE.md, .tex, .csv or .json (repeatable)."),
    metric: str = typer.Option("auroc", help="Metric of the tables."),
) -> None:
    """Methods x targets with mean ± 95 % interval and counts (the paper's Table 3/4 layout)."""
    from medimeta.bench.merge import find_records, merge_tables, to_markdown, write_merged

    records = find_records(folders)
    if not records:
        from medimeta.errors import FormatError

        raise FormatError(
            ", ".join(map(str, folders)),
            "no result records (results.json / result.json) found",
            fix="pass benchmark, fewshot or train output folders",
        )
    merged = merge_tables(records, metric)
    for path in out:
        write_merged(merged, path, records)
        typer.echo(f"wrote {path}")
    typer.echo(to_markdown(merged))
