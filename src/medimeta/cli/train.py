"""``medimeta train``, ``medimeta fewshot``, ``medimeta evaluate`` and ``medimeta score``."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import typer

import medimeta.cli.bench as bench_cli
from medimeta.cli.evaluate import evaluate_command, score_command
from medimeta.cli.interrupt import count_files, on_interrupt
from medimeta.cli.options import (
    BACKBONE_HELP,
    check_hub_backbones,
    log_to_stderr,
    pool_option,
    pooled,
    quiet_option,
    resolve,
    root_option,
    verbose_option,
)


def _pretrained(value: str | None) -> bool | str | None:
    """ "imagenet"/"default" -> True, "none"/"random" -> False, else a weights path (or the
    name of one registered with ``medimeta weights add``)."""
    if value is None:
        return None
    low = value.lower()
    if low in ("imagenet", "default", "true", "yes"):
        return True
    if low in ("none", "random", "false", "no"):
        return False
    from medimeta.models.user_weights import resolve_pretrained

    return resolve_pretrained(value)


def _train_config(
    preset: str, changes: dict[str, object], augment: bool | None, patience: int | None
) -> Any:
    """The preset with the options the user gave (None: keep the preset's value)."""
    from medimeta.train import preset as get_preset
    from medimeta.train.augment import NO_AUGMENT, PAPER_AUGMENT

    if augment is not None:
        changes = {**changes, "augment": PAPER_AUGMENT if augment else NO_AUGMENT}
    config = get_preset(preset).with_overrides(**changes)
    if patience is not None:
        config = dataclasses.replace(config, patience=patience or None)
    return config


def _train_seeds(
    root: Path,
    dataset_id: str,
    task: str,
    backbone: str,
    config: Any,
    seeds: list[int],
    runs: dict[str, Any],
) -> list[Any]:
    """One training run per seed (``seed_<s>/`` below the output folder when several)."""
    from medimeta.runs.record import RUN_FILE
    from medimeta.train import train_supervised
    from medimeta.train.settings import RunSettings

    base: Path = runs["out_dir"]
    main_rank = os.environ.get("RANK", "0") == "0"
    results = []
    for s in seeds:
        folder = base if len(seeds) == 1 else base / f"seed_{s}"
        result = train_supervised(
            root,
            dataset_id,
            task,
            backbone=backbone,
            config=config,
            seed=s,
            run=RunSettings(**{**runs, "out_dir": folder}),
            log=typer.echo if runs["progress"] else None,
        )
        results.append(result)
        if main_rank:
            typer.echo(f"seed {s}: {folder / RUN_FILE}")
    return results


def train_command(
    dataset_id: str = typer.Argument(..., help="Dataset id, e.g. bus"),
    task: str | None = typer.Argument(
        None, help='Task name, e.g. "case category" [default: the dataset\'s first task]'
    ),
    root: Path | None = root_option(),
    backbone: str = typer.Option("resnet18", help=BACKBONE_HELP),
    pool: str | None = pool_option(),
    image_size: int | None = typer.Option(
        None, help="Train/evaluate at this size [default: the stored size]."
    ),
    preset: str = typer.Option("paper", help="Protocol preset: paper or medmnist."),
    out: Path | None = typer.Option(None, help="Output folder [default: runs/ID/TASK/BACKBONE]."),
    seed: list[int] = typer.Option([0], help="Seed; repeat for several runs (seed_<s>/)."),
    epochs: int | None = typer.Option(None, help="Maximum epochs [default: from --preset]."),
    batch_size: int | None = typer.Option(None, help="Batch size [default: from --preset]."),
    lr: float | None = typer.Option(None, help="Learning rate [default: from --preset]."),
    patience: int | None = typer.Option(
        None, help="Early-stopping patience in epochs; 0 turns it off [default: from --preset]."
    ),
    select: str | None = typer.Option(
        None, help="Test checkpoint: best or last [default: from --preset]."
    ),
    pretrained: str | None = typer.Option(
        None, help="imagenet, none, or a weights file (.pth/.safetensors) [default: from --preset]."
    ),
    augment: bool | None = typer.Option(
        None,
        "--augment/--no-augment",
        help="Random flips, crops and intensity changes while training [default: from --preset].",
    ),
    metrics_mode: str | None = typer.Option(
        None, help="Metric definitions: default, medmnist or medfm [default: from --preset]."
    ),
    resume: bool = typer.Option(False, help="Continue from OUT/last.safetensors."),
    device: str | None = typer.Option(
        None, help="cpu, cuda, cuda:1 [default: cuda if available, else cpu]."
    ),
    quiet: bool = quiet_option(
        "No progress bar or epoch log; print only warnings, errors and where the results went."
    ),
    verbose: bool = verbose_option(),
) -> None:
    """Supervised training with early stopping; writes logs, checkpoints, predictions, result."""
    check_hub_backbones(backbone := pooled(backbone, pool))
    from medimeta.runs.files import write_json
    from medimeta.train import summarize_seeds

    changes: dict[str, object] = {
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "select": select,
        "image_size": image_size,
        "pretrained": _pretrained(pretrained),
        "metrics_mode": metrics_mode,
    }
    config = _train_config(preset, changes, augment, patience)
    from medimeta.format.locate import resolve_task_ref

    dataset_id, task = resolve_task_ref(
        resolve(root), dataset_id if task is None else (dataset_id, task)
    )
    slug = backbone.replace("/", "_").replace(":", "_").replace("@", "_")
    base = out or Path("runs") / dataset_id / task.replace(" ", "_") / slug
    # under torchrun every rank returns the record; one of them reports
    main_rank = os.environ.get("RANK", "0") == "0"
    kept = on_interrupt(lambda: _train_saved(base, seed), add=("--resume",), drop=("--no-resume",))
    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose), kept:
        runs = dict(out_dir=base, resume=resume, device=device, progress=not quiet)
        results = _train_seeds(resolve(root), dataset_id, task, backbone, config, seed, runs)
    if len(results) > 1 and main_rank:
        summary = summarize_seeds(results)
        write_json(base / "summary.json", summary)
        for name in ("auroc", "accuracy"):
            if name in summary:
                m = summary[name]
                typer.echo(f"{name}: {m['mean']:.4f} ± {m['std'] or 0:.4f} (sd over seeds)")


FINETUNE_BN_HELP = "im-pt/mm-pt BatchNorm while fine-tuning: train, frozen [train]."


def fewshot_command(
    root: Path | None = root_option(),
    target: str | None = typer.Option(
        None,
        help='Target task "ID:TASK", e.g. "bus:case category", or "ID" (its first task).',
    ),
    method: str = typer.Option("im-pt", help="A registered few-shot method."),
    episodes_file: Path | None = typer.Option(
        None, help="Saved episode file (same episodes for every method)."
    ),
    shots: int = typer.Option(5, help="Support samples per class (when sampling)."),
    query: int = typer.Option(10, help="Query samples per class (when sampling)."),
    episodes: int = typer.Option(100, help="Episodes to sample."),
    seed: int = typer.Option(0, help="Episode seed (when sampling) and method seed."),
    split: str = typer.Option("all", help="Split the target episodes come from (all, test, ...)."),
    limit: int | None = typer.Option(None, help="Evaluate only the first N episodes."),
    backbone: str = typer.Option("resnet18", help=BACKBONE_HELP),
    pool: str | None = pool_option(),
    pretrained: str = typer.Option("imagenet", help="imagenet, none or a weights file."),
    image_size: int | None = typer.Option(
        None, help="Train/evaluate at this size [default: the stored size]."
    ),
    steps: int | None = typer.Option(None, help="Fine-tuning / probe steps per episode [100]."),
    lr: float | None = typer.Option(None, help="Fine-tuning / probe learning rate [1e-2]."),
    finetune_bn: str | None = typer.Option(None, "--finetune-bn", help=FINETUNE_BN_HELP),
    pretrain_steps: int | None = typer.Option(None, help=bench_cli.PRETRAIN_STEPS_HELP),
    meta_steps: int | None = typer.Option(None, help=bench_cli.META_STEPS_HELP),
    first_order: bool = typer.Option(False, help="First-order MAML."),
    distance: str | None = typer.Option(None, help="ProtoNet distance [squared_euclidean]."),
    k: int | None = typer.Option(None, "--k", help="kNN neighbours [10]."),
    prompts: Path | None = typer.Option(None, help=bench_cli.PROMPTS_HELP),
    option: list[str] = typer.Option([], help=bench_cli.OPTION_HELP),
    sources: list[str] = typer.Option([], help=bench_cli.SOURCES_HELP),
    exclude_sources: list[str] = typer.Option([], help=bench_cli.EXCLUDE_SOURCES_HELP),
    allow_shared: bool = typer.Option(False, "--allow-shared", help=bench_cli.ALLOW_SHARED_HELP),
    cache: Path | None = typer.Option(None, help="Embedding cache [$MEDIMETA_CACHE|ROOT/.cache]."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Frozen features per episode."),
    per_episode: bool = typer.Option(
        False,
        "--per-episode",
        help="Score cached features episode by episode, not all at once (a check: the "
        "numbers agree within 1e-4).",
    ),
    backbone_checkpoint: Path | None = typer.Option(
        None, help="Use this trained backbone (skips the mm-pt/mm-maml/meta-baseline stage)."
    ),
    out: Path | None = typer.Option(None, help="Output folder [runs/fewshot/TARGET/METHOD]."),
    resume: bool = typer.Option(True, "--resume/--fresh", help="Reuse finished episodes."),
    device: str | None = typer.Option(
        None, help="cpu, cuda, cuda:1 [default: cuda if available, else cpu]."
    ),
    quiet: bool = quiet_option(
        "No progress bar or episode log; print only warnings, errors and where the results went."
    ),
    verbose: bool = verbose_option(),
) -> None:
    """Cross-domain few-shot evaluation; per-episode metrics and mean ± 95 % CI."""
    check_hub_backbones(backbone := pooled(backbone, pool))
    from medimeta.features.cache import feature_source
    from medimeta.runs.record import RUN_FILE, SUMMARY_FILE
    from medimeta.train.fewshot import EpisodePlan, RunSettings, run_fewshot

    config = _fewshot_config(dict(locals()))
    target = _full_target(resolve(root), target)
    features = None if no_cache else feature_source(cache, resolve(root))
    name = (target or (episodes_file.stem if episodes_file else "episodes")).replace(":", "_")
    folder = out or Path("runs") / "fewshot" / name.replace(" ", "_") / method
    plan = EpisodePlan(episodes_file, shots, query, episodes, seed, split, limit)
    run = RunSettings(folder, resume, device, not quiet, backbone_checkpoint, not per_episode)
    kept = on_interrupt(lambda: _fewshot_saved(folder), drop=("--fresh",))
    with log_to_stderr("medimeta", quiet=quiet, verbose=verbose), kept:
        log = None if quiet else typer.echo
        record = run_fewshot(
            resolve(root), target, config, episodes=plan, run=run, log=log, features=features
        )
    if record is not None:
        # the result table is the output asked for: printed even when quiet, with its file
        typer.echo((folder / SUMMARY_FILE).read_text(encoding="utf-8"))
        typer.echo(f"results: {folder / RUN_FILE}")


def _full_target(root: Path, target: str | None) -> str | None:
    """``"bus"`` -> ``"bus:case category"`` (with a note), so that the run folder is the same
    either way."""
    if target is None:
        return None
    from medimeta.format.locate import resolve_task_ref

    return ":".join(resolve_task_ref(root, target))


def _train_saved(base: Path, seeds: list[int]) -> str | None:
    """What an interrupted ``train`` keeps: each seed's checkpoint of its last epoch."""
    folders = [base] if len(seeds) == 1 else [base / f"seed_{s}" for s in seeds]
    found = [str(f / "last.safetensors") for f in folders if (f / "last.safetensors").is_file()]
    if not found:
        return None
    return f"the checkpoint of the last finished epoch: {', '.join(found)}"


def _fewshot_saved(folder: Path) -> str | None:
    """What an interrupted ``fewshot`` keeps: the result file of every finished episode."""
    from medimeta.runs.record import EPISODE_DIR

    return count_files(
        folder / EPISODE_DIR,
        "episode_*.json",
        "finished episode",
        " (the next run with the same settings skips them)",
    )


def _fewshot_config(o: dict[str, Any]) -> Any:
    """The FewShotConfig of the ``fewshot`` command's options."""
    from medimeta.bench.settings import split_list
    from medimeta.cli.bench import fewshot_overrides
    from medimeta.train.fewshot import FewShotConfig
    from medimeta.train.fewshot.config import parse_options

    overrides = fewshot_overrides(
        o["steps"], o["lr"], o["pretrain_steps"], o["meta_steps"], o["first_order"],
        o["distance"], o["k"],
    )  # fmt: skip
    return FewShotConfig(method=o["method"], backbone=o["backbone"], seed=o["seed"]).with_overrides(
        pretrained=_pretrained(o["pretrained"]),
        image_size=o["image_size"],
        sources=tuple(split_list(o["sources"])) or None,
        exclude_sources=tuple(split_list(o["exclude_sources"])) or None,
        allow_shared=o["allow_shared"] or None,
        finetune_bn=o["finetune_bn"],
        zs_prompts=str(o["prompts"]) if o["prompts"] is not None else None,
        **{**overrides, **parse_options(o["option"])},
    )


__all__ = ["evaluate_command", "fewshot_command", "score_command", "train_command"]
