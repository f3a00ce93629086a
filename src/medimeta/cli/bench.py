"""``medimeta benchmark`` (with ``status`` and ``collect``), ``medimeta embed`` and
``medimeta results merge``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from medimeta.cli.interrupt import bench_saved, cache_saved, on_interrupt
from medimeta.cli.options import (
    check_hub_backbones,
    group_help_from,
    log_to_stderr,
    make_app,
    pool_option,
    pooled,
    pooled_list,
    quiet_option,
    resolve,
    root_option,
    verbose_option,
)
from medimeta.logs import plural

results_app = make_app("results", "Merge result records into the paper's tables.")


def benchmark_methods_help() -> str:
    """``--methods``: supervised and the registered few-shot methods (read when shown)."""
    from medimeta.bench.settings import benchmark_methods

    default = ", ".join(benchmark_methods(default=True))
    return f"Comma-separated, of: {', '.join(benchmark_methods())} [default: {default}]."


def fewshot_overrides(
    steps: int | None,
    lr: float | None,
    pretrain_steps: int | None,
    meta_steps: int | None,
    first_order: bool,
    distance: str | None,
    k: int | None,
) -> dict[str, Any]:
    """FewShotConfig overrides of the command-line options that were given."""
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


def bench_settings(o: dict[str, Any]) -> Any:
    """The BenchSettings of the ``benchmark`` command's options."""
    from medimeta.bench.settings import BenchSettings, int_list, parse_duration, split_list

    train = {"epochs": o["epochs"], "batch_size": o["batch_size"], "lr": o["train_lr"]}
    train["patience"] = o["patience"]
    fewshot = fewshot_overrides(
        o["steps"],
        o["lr"],
        o["pretrain_steps"],
        o["meta_steps"],
        o["first_order"],
        o["distance"],
        o["k"],
    )
    from medimeta.train.fewshot.config import parse_options

    fewshot.update(parse_options(o["option"]))
    if o["prompts"] is not None:
        fewshot["zs_prompts"] = str(o["prompts"])
    return BenchSettings.from_preset(
        o["preset"],
        methods=tuple(split_list(o["methods"])),
        backbones=tuple(split_list(pooled_list(o["backbones"], o.get("pool")))),
        shots=tuple(int_list(o["shots"], "--shots")),
        queries=o["query"],
        episodes=o["episodes"],
        seeds=tuple(int_list(o["seeds"], "--seeds")),
        split=o["split"],
        image_size=o["image_size"],
        pretrained=o["pretrained"],
        fewshot=fewshot,
        train={key: v for key, v in train.items() if v is not None},
        sources=tuple(split_list(o["sources"])),
        exclude_sources=tuple(split_list(o["exclude_sources"])),
        allow_shared=o["allow_shared"],
        cache=not o["no_cache"],
        targets=tuple(split_list(o["targets"])),
        domain=o["domain"],
        all_tasks=o["all_tasks"],
        budget_s=parse_duration(o["budget"]) if o["budget"] else None,
    )


BACKBONES_HELP = (
    "Comma-separated backbone names (registered, hf:MODEL, or a named hub model: "
    "medimeta backbones list)."
)
TARGETS_HELP = (
    'Targets "ID:TASK" or "ID" (its first task), comma-separated or repeated '
    "[default: every dataset present]."
)
CACHE_HELP = "Embedding cache folder [default: $MEDIMETA_CACHE, else ROOT/.cache]."
PROMPTS_HELP = "zero-shot: a prompts file (YAML; docs/methods.md) instead of the templates."
OPTION_HELP = (
    "Any method option as KEY=VALUE, repeatable (e.g. lora_rank=16, vpt_deep=false, "
    "zs_templates=domain-task; docs/methods.md lists them)."
)
SUPERVISED_HELP = "Supervised: {} [default: from --preset]."
PRESET_HELP = (
    "paper or medmnist (the supervised protocol), or fm-grid: the authors' foundation-model "
    "grid (shots 1,2,3,5,7,10,15,20,25,30, 10 query, 100 episodes; linear-probe, knn, "
    "simpleshot, zero-shot, finetune)."
)
SHOTS_HELP = "Support samples per class, e.g. 1,5,10 [default: 5; fm-grid: 1 to 30]."
SOURCES_HELP = "mm-pt/mm-maml/meta-baseline: only these sources (ID[:TASK],...)."
EXCLUDE_SOURCES_HELP = "mm-pt/mm-maml/meta-baseline: not these sources."
PRETRAIN_STEPS_HELP = "mm-pt / meta-baseline pre-training steps [default: 1000]."
META_STEPS_HELP = "mm-maml / meta-baseline meta-training steps [default: 1000]."
ALLOW_SHARED_HELP = (
    "mm-pt/mm-maml/meta-baseline: keep sources the audit finds sharing images with the "
    "target (recorded)."
)


SLURM_ONLY = ("partition", "account", "qos", "time", "mem", "gpus_per_task", "cpus_per_task")
EXECUTOR_HELP = "local (this machine; torchrun works) or slurm (job arrays through submitit)."
TASK_MINUTES_HELP = "Slurm: the cost plan's cells in tasks of about this many minutes each."
TIME_HELP = (
    "Slurm: time limit per task (90, 1:30:00, 2h) [default: 1.5 x the longest task's "
    "estimate + 10 min]."
)
PARALLELISM_HELP = "Slurm: most tasks of one array running at once."
SLURM_OPT_HELP = "Slurm: any sbatch option KEY=VALUE, repeatable (e.g. constraint=a100)."


def slurm_settings(o: dict[str, Any]) -> Any:
    """The SlurmSettings of the ``benchmark`` command's options (None: run locally)."""
    from medimeta.errors import OptionError, check_choice

    check_choice("executor", o["executor"], ("local", "slurm"))
    if o["executor"] == "local":
        given = [n for n in SLURM_ONLY if o[n] is not None] + ["slurm_opt"] * bool(o["slurm_opt"])
        if o["wait"]:
            given.append("wait")
        if given:
            names = ", ".join("--" + n.replace("_", "-") for n in given)
            raise OptionError(f"{names}: Slurm options; add --executor slurm")
        return None
    from medimeta.bench.slurm import SlurmSettings, parse_options, parse_time

    return SlurmSettings(
        partition=o["partition"],
        account=o["account"],
        qos=o["qos"],
        time_min=parse_time(o["time"]) if o["time"] else None,
        mem=o["mem"],
        gpus_per_task=o["gpus_per_task"],
        cpus_per_task=o["cpus_per_task"],
        array_parallelism=o["array_parallelism"],
        task_minutes=o["task_minutes"],
        options=parse_options(o["slurm_opt"]),
        wait=o["wait"],
    )


benchmark_app = typer.Typer(
    name="benchmark",
    invoke_without_command=True,
    no_args_is_help=False,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
    cls=group_help_from(methods=benchmark_methods_help),
)


@benchmark_app.callback()
def benchmark_command(
    ctx: typer.Context,
    root: Path | None = root_option(),
    targets: list[str] = typer.Option([], help=TARGETS_HELP),
    domain: str | None = typer.Option(None, help="Only the datasets of this domain."),
    all_tasks: bool = typer.Option(False, help="Every task of each dataset, not the first."),
    methods: str = typer.Option("", help="Comma-separated methods.", show_default=False),
    backbones: str = typer.Option("resnet18", help=BACKBONES_HELP),
    pool: str | None = pool_option(),
    shots: str = typer.Option("", help=SHOTS_HELP, show_default=False),
    query: int | None = typer.Option(None, help="Query samples per class [default: 10]."),
    episodes: int | None = typer.Option(None, help="Episodes per target and shot [100]."),
    seeds: str = typer.Option("0", help="Seeds (episodes and methods), e.g. 0,1,2."),
    split: str = typer.Option("all", help="Split the episodes come from (all, test, ...)."),
    image_size: int | None = typer.Option(None, help="Image size [default: the stored size]."),
    pretrained: str = typer.Option("auto", help="auto, imagenet, none or a weights file."),
    steps: int | None = typer.Option(None, help="Fine-tuning / probe steps per episode."),
    lr: float | None = typer.Option(None, help="Fine-tuning / probe lr [default: 1e-2]."),
    pretrain_steps: int | None = typer.Option(None, help=PRETRAIN_STEPS_HELP),
    meta_steps: int | None = typer.Option(None, help=META_STEPS_HELP),
    first_order: bool = typer.Option(False, help="First-order MAML."),
    distance: str | None = typer.Option(None, help="ProtoNet distance [squared_euclidean]."),
    k: int | None = typer.Option(None, "--k", help="kNN neighbours [default: 10]."),
    prompts: Path | None = typer.Option(None, help=PROMPTS_HELP),
    option: list[str] = typer.Option([], help=OPTION_HELP),
    preset: str = typer.Option("paper", help=PRESET_HELP),
    epochs: int | None = typer.Option(None, help=SUPERVISED_HELP.format("maximum epochs")),
    batch_size: int | None = typer.Option(None, help=SUPERVISED_HELP.format("batch size")),
    train_lr: float | None = typer.Option(None, help=SUPERVISED_HELP.format("learning rate")),
    patience: int | None = typer.Option(None, help=SUPERVISED_HELP.format("patience, 0 = off")),
    sources: list[str] = typer.Option([], help=SOURCES_HELP),
    exclude_sources: list[str] = typer.Option([], help=EXCLUDE_SOURCES_HELP),
    allow_shared: bool = typer.Option(False, help=ALLOW_SHARED_HELP),
    out: Path = typer.Option(Path("runs/benchmark"), help="Output folder."),
    budget: str | None = typer.Option(None, help="Refuse a plan estimated over this (2h, 90m)."),
    dry_run: bool = typer.Option(False, help="Calibrate, print the plan and stop."),
    cache: Path | None = typer.Option(None, help=CACHE_HELP),
    no_cache: bool = typer.Option(False, "--no-cache", help="Frozen features per episode."),
    device: str | None = typer.Option(None, help="cpu, cuda, ... [default: cuda if available]."),
    executor: str = typer.Option("local", help=EXECUTOR_HELP),
    task_minutes: float = typer.Option(60.0, help=TASK_MINUTES_HELP),
    partition: str | None = typer.Option(None, help="Slurm: partition."),
    account: str | None = typer.Option(None, help="Slurm: account."),
    qos: str | None = typer.Option(None, help="Slurm: quality of service."),
    time: str | None = typer.Option(None, "--time", help=TIME_HELP),
    mem: str | None = typer.Option(None, help="Slurm: memory per task (16G)."),
    gpus_per_task: int | None = typer.Option(None, help="Slurm: GPUs per task."),
    cpus_per_task: int | None = typer.Option(None, help="Slurm: CPUs per task."),
    array_parallelism: int = typer.Option(100, help=PARALLELISM_HELP),
    slurm_opt: list[str] = typer.Option([], help=SLURM_OPT_HELP),
    wait: bool = typer.Option(False, help="Slurm: wait for the jobs, then merge the tables."),
    quiet: bool = quiet_option("Print only the plan's refusal, warnings, errors and the table."),
    verbose: bool = verbose_option(),
) -> None:
    """The paper's validation (Table 3 supervised, Table 4 few-shot) as one resumable plan,
    run here or submitted to Slurm; `status` and `collect` follow a benchmark folder."""
    if ctx.invoked_subcommand is not None:
        return
    check_hub_backbones(pooled_list(backbones, pool))
    options = dict(locals())
    _report(_run(options), options)


def _report(summary: dict[str, Any], o: dict[str, Any]) -> None:
    """What ``benchmark`` prints at the end: the plan's file, the submission or the table."""
    out = o["out"]
    if o["dry_run"]:
        typer.echo(f"dry run: plan written to {summary['plan']}")
        return
    if "submission" in summary and "merged" not in summary:
        tasks = summary["submission"]["tasks"]
        jobs = sorted({t["job"].split("_")[0] for t in tasks})
        if tasks:
            typer.echo(f"submitted {len(tasks)} Slurm tasks (job arrays {', '.join(jobs)})")
            typer.echo(f"follow: medimeta benchmark status {out}")
            typer.echo(f"tables: medimeta benchmark collect {out} (when they are done)")
        return
    from medimeta.runs.record import merged_file

    if merged_file(out, ".md").is_file() and summary.get("merged"):
        typer.echo(merged_file(out, ".md").read_text(encoding="utf-8"))
    if summary.get("failed"):
        typer.echo(
            f"error: {plural(len(summary['failed']), 'cell')} failed (see failed.txt in their "
            "folders): " + "; ".join(summary["failed"]),
            err=True,
        )
        raise typer.Exit(1)


def _run(o: dict[str, Any]) -> dict[str, Any]:
    from medimeta.bench.runner import run_benchmark

    kept = on_interrupt(lambda: bench_saved(o["out"]))
    with log_to_stderr("medimeta", quiet=o["quiet"], verbose=o["verbose"]), kept:
        return run_benchmark(
            resolve(o["root"]),
            bench_settings(o),
            out=o["out"],
            dry_run=o["dry_run"],
            cache=o["cache"],
            device=o["device"],
            log=None if o["quiet"] else typer.echo,
            progress=not o["quiet"],
            slurm=slurm_settings(o),
        )


@benchmark_app.command("status")
def benchmark_status_command(
    folder: Path = typer.Argument(..., help="A benchmark folder (its --out)."),
    as_json: bool = typer.Option(False, "--json", help="Print the cells as JSON."),
    quiet: bool = quiet_option("Print only the counts."),
    verbose: bool = verbose_option(),
) -> None:
    """Cells done, running, pending and failed, with their Slurm jobs and last error lines."""
    import json

    from medimeta.bench.status import counts_line, folder_status, queue_states, status_table

    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose):
        statuses = folder_status(folder, queue=queue_states())
    if as_json:
        typer.echo(json.dumps([s.to_dict() for s in statuses], indent=2))
    elif quiet:
        typer.echo(counts_line(statuses))
    else:
        typer.echo(status_table(folder, statuses))


@benchmark_app.command("collect")
def benchmark_collect_command(
    folder: Path = typer.Argument(..., help="A benchmark folder (its --out)."),
    quiet: bool = quiet_option("Print only where the tables went."),
    verbose: bool = verbose_option(),
) -> None:
    """Merge the records of every finished cell into the folder's tables again."""
    from medimeta.bench.status import collect
    from medimeta.runs.tables import to_markdown

    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose):
        merged = collect(folder, typer.echo)
    if not quiet:
        typer.echo(to_markdown(merged))


def embed_command(
    dataset: str = typer.Argument(..., help='Dataset "ID" or "ID:TASK" (TASK: labels too).'),
    root: Path | None = root_option(),
    backbone: str = typer.Option(
        "efficientnet_lite0",
        help="Registered backbone, hf:FOLDER|HUB_ID|NAME[@pool=POOL], or a named hub model "
        "(medimeta backbones list).",
    ),
    pool: str | None = pool_option(),
    split: str = typer.Option("all", help="all, train, val, test or train+val."),
    module: str | None = typer.Option(None, help="Your model: FILE.py:factory."),
    weights: Path | None = typer.Option(None, help="Weights file (.pth/.safetensors)."),
    image_size: int | None = typer.Option(None, help="Image size [default: the stored size]."),
    normalize: str = typer.Option("auto", help="auto (the weights'), half or imagenet."),
    cache: Path | None = typer.Option(
        None, help="Embedding cache folder [default: $MEDIMETA_CACHE, else ROOT/.cache]."
    ),
    out: Path | None = typer.Option(None, help="Also export to FILE.safetensors or FILE.h5."),
    device: str | None = typer.Option(None, help="cpu, cuda, ... [default: cpu]."),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Frozen features of a dataset's samples, computed once into the embedding cache."""
    if module is None:
        check_hub_backbones(pooled(backbone, pool))
    from medimeta.features.embed import EmbedSpec, embed_dataset, export

    spec = EmbedSpec(backbone, module, weights, split, image_size, normalize, pool)
    with on_interrupt(lambda: cache_saved(cache, resolve(root), "features")):
        table, record = embed_dataset(
            resolve(root), dataset, spec, cache=cache, device=device, progress=not quiet
        )
    typer.echo(
        f"{record['dataset']} ({record['split']}): {record['samples']} samples x "
        f"{record['features']} features of {record['backbone']}: {record['from_cache']} from "
        f"the cache, {record['computed']} computed in {record['seconds']:.1f} s"
    )
    typer.echo(f"cache file: {record['file'] or '(not written)'}")
    if out is not None:
        export(out, table, record)
        typer.echo(f"exported to {out}")


@results_app.command("merge")
def merge_command(
    folders: list[Path] = typer.Argument(..., help="Benchmark, fewshot or train folders."),
    out: list[Path] = typer.Option([], help="Write FILE.md, .tex, .csv or .json (repeatable)."),
    metric: str = typer.Option("auroc", help="Metric of the tables."),
    quiet: bool = quiet_option("Print only where the tables went."),
    verbose: bool = verbose_option(),
) -> None:
    """Methods x targets with mean ± 95 % interval and counts (the paper's Table 3/4 layout)."""
    from medimeta.bench.merge import merge_results
    from medimeta.runs.tables import to_markdown

    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose):
        merged = merge_results(folders, out, metric=metric)
        for path in out:
            typer.echo(f"wrote {path}")
    if not quiet:
        typer.echo(to_markdown(merged))
