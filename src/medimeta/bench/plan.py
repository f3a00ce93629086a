"""The plan of a benchmark: its cells (with protocols, episode files and sources), the printed
table of estimates and the budget check.

Order: per target, per backbone, the methods in the order given, shots, seeds. Episode files
(one per target, shots and seed, shared by every method and backbone) are drawn on rank 0 into
``OUT/episodes/`` and checked against the data when they exist.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import medimeta.data.distributed as D
from medimeta.bench.cells import CELLS_DIR, Cell, cell_folder, finished, supervised_data
from medimeta.bench.settings import SUPERVISED, BenchSettings, format_duration, slug
from medimeta.data.pixels import Normalizer
from medimeta.episodes import EpisodeSampler, EpisodeSet
from medimeta.errors import EpisodeError, OptionError
from medimeta.format.reader import DatasetFolder, locate_dataset
from medimeta.logs import Log, plural
from medimeta.models.build import build_backbone, make_normalizer, pretrained_choice
from medimeta.safeio import wait_for
from medimeta.train.config import preset
from medimeta.train.fewshot.config import FewShotConfig
from medimeta.train.fewshot.registry import get_method
from medimeta.train.fewshot.setup import sha256_file


@dataclass(frozen=True)
class BackboneFacts:
    """What the protocol records of a backbone: name, weights choice and sha256, normaliser;
    for a backbone with its own preprocessing (``hf:``) also the model (hub id, revision,
    commit), its pooling and that preprocessing."""

    name: str
    pretrained: bool | str
    weights_sha256: str | None
    normalizer: Normalizer
    num_features: int
    model: dict[str, Any] | None = None
    unsupported: dict[str, str] = dataclasses.field(default_factory=dict)  # method -> why


def backbone_facts(name: str, pretrained: str, methods: tuple[str, ...] = ()) -> BackboneFacts:
    """Build ``name`` once to read its weights record, normalisation and which of the few-shot
    ``methods`` cannot run on it (and why)."""
    choice = pretrained_choice(name, pretrained)
    backbone = build_backbone(name, pretrained=choice)
    norm = make_normalizer(FewShotConfig(), backbone)  # "auto": the weights' statistics
    sha = (backbone.weights or {}).get("sha256")
    model = None
    if backbone.preprocessing is not None:
        described = backbone.describe()
        model = {
            "model": described.get("hf"),
            "pooling": backbone.pooling,
            "preprocessing": described["preprocessing"],
        }
    unsupported = {}
    for method in methods:
        why = None if method == SUPERVISED else get_method(method).unsupported(backbone)
        if why is not None:
            unsupported[method] = why
    return BackboneFacts(name, choice, sha, norm, int(backbone.num_features), model, unsupported)


@dataclass
class Plan:
    """The cells of a benchmark and one note per (method, backbone) pair left out."""

    cells: list[Cell]
    notes: list[str] = dataclasses.field(default_factory=list)


def episodes_file(
    root: Path,
    out: Path,
    target: str,
    shots: int,
    settings: BenchSettings,
    seed: int,
    env: D.DistEnv,
) -> Path:
    """The target's episode file for ``shots`` and ``seed`` (drawn on rank 0 if absent)."""
    ds, _, task = target.partition(":")
    name = (
        f"{ds}_{slug(task)}_{shots}shot_{settings.queries}query_{settings.episodes}ep_"
        f"seed{seed}_{slug(settings.split)}.json"
    )
    path = out / "episodes" / name
    if env.is_main and not path.is_file():
        split = None if settings.split == "all" else settings.split
        sampler = EpisodeSampler.from_root(
            root,
            target,
            split,
            shots=shots,
            queries=settings.queries,
            seed=seed,
            num_episodes=settings.episodes,
        )
        sampler.sample().save(path)
    wait_for(path, path.is_file, f"episode file {path.name}")
    return path


def _base(target: str, folder: DatasetFolder, facts: BackboneFacts, size: int) -> dict[str, Any]:
    ds, _, task = target.partition(":")
    spec = folder.task(task)
    return {
        "target": {"dataset_id": ds, "task": task, "target": spec.target.value},
        "backbone": {
            "name": facts.name,
            "pretrained": str(facts.pretrained)
            if not isinstance(facts.pretrained, bool)
            else facts.pretrained,
            "weights_sha256": facts.weights_sha256,
            **(facts.model or {}),
        },
        "image_size": size,
        "normalization": {"mean": list(facts.normalizer.mean), "std": list(facts.normalizer.std)},
    }


def supervised_cell(
    root: Path, out: Path, target: str, facts: BackboneFacts, seed: int, s: BenchSettings
) -> Cell:
    ds, _, task = target.partition(":")
    folder = DatasetFolder(locate_dataset(root, ds), check=False)
    overrides = dict(s.train)
    patience = overrides.pop("patience", -1)
    cfg = preset(s.train_preset).with_overrides(
        image_size=s.image_size, pretrained=facts.pretrained, **overrides
    )
    if patience != -1:  # 0 or None: no early stopping
        cfg = dataclasses.replace(cfg, patience=patience or None)
    size = cfg.image_size or folder.spec.input_size[-1]
    protocol = {
        "kind": SUPERVISED,
        "table": "Table 3",
        "method": SUPERVISED,
        **_base(target, folder, facts, size),
        "data": supervised_data(folder, task),
        "seed": seed,
        "config": cfg.to_dict(),
    }
    readable = f"{ds}_{slug(task)}_supervised_{slug(facts.name)}_seed{seed}"
    return Cell(
        SUPERVISED,
        target,
        SUPERVISED,
        facts.name,
        seed,
        None,
        cfg,
        protocol,
        cell_folder(out, protocol, readable),
    )


def fewshot_cell(
    root: Path,
    out: Path,
    target: str,
    method: str,
    facts: BackboneFacts,
    shots: int,
    seed: int,
    file: Path,
    s: BenchSettings,
) -> Cell:
    from medimeta.train.fewshot.pretrain import choose_sources

    ds, _, task = target.partition(":")
    folder = DatasetFolder(locate_dataset(root, ds), check=False)
    cfg = FewShotConfig(
        method=method,
        backbone=facts.name,
        pretrained=facts.pretrained,
        image_size=s.image_size,
        seed=seed,
    ).with_overrides(
        sources=s.sources or None,
        exclude_sources=s.exclude_sources or None,
        allow_shared=s.allow_shared or None,
        **s.fewshot,
    )
    header = EpisodeSet.load(file).header
    protocol: dict[str, Any] = {
        "kind": "fewshot",
        "table": "Table 4",
        "method": method,
        "paper_name": cfg.spec.paper_name,
        **_base(target, folder, facts, cfg.image_size or folder.spec.input_size[-1]),
        "episodes": {
            "file": file.name,
            "sha256": sha256_file(file),
            "fingerprint": header["fingerprint"]["value"],
            "shots": shots,
            "queries": s.queries,
            "episodes": header["num_episodes"],
            "seed": header["seed"],
            "split": header["split_label"],
        },
        "seed": seed,
        "config": cfg.relevant(),
    }
    cell_status, reason = "todo", ""
    if cfg.spec.uses_sources:
        try:
            chosen = choose_sources(root, target, cfg)
            protocol["sources"], protocol["excluded"] = chosen["tasks"], chosen["excluded"]
        except EpisodeError as exc:
            cell_status, reason = "skipped", str(exc)
    readable = f"{ds}_{slug(task)}_{method}_{slug(facts.name)}_{shots}shot_seed{seed}"
    return Cell(
        "fewshot",
        target,
        method,
        facts.name,
        seed,
        shots,
        cfg,
        protocol,
        cell_folder(out, protocol, readable),
        file,
        cell_status,
        reason,
    )


def build_plan(
    root: Path, out: Path, targets: list[str], s: BenchSettings, env: D.DistEnv, log: Log
) -> Plan:
    """Every cell of the benchmark, with ``status`` done (record found), skipped or todo; the
    cells of a method a backbone cannot run are left out with a note."""
    facts = {b: backbone_facts(b, s.pretrained, s.methods) for b in s.backbones}
    notes = [
        f"left out: {method} on {name}: {why}"
        for name in s.backbones
        for method, why in facts[name].unsupported.items()
    ]
    files: dict[tuple[str, int, int], Path | str] = {}
    cells: list[Cell] = []
    fewshot = [m for m in s.methods if m != SUPERVISED]
    for target in targets:
        for shots in s.shots if fewshot else ():
            for seed in s.seeds:
                try:
                    files[target, shots, seed] = episodes_file(
                        root, out, target, shots, s, seed, env
                    )
                except EpisodeError as exc:
                    files[target, shots, seed] = str(exc)
        for name in s.backbones:
            for method in s.methods:
                if method in facts[name].unsupported:
                    continue
                if method == SUPERVISED:  # Table 3: not a few-shot method, no episodes
                    cells += [
                        supervised_cell(root, out, target, facts[name], x, s) for x in s.seeds
                    ]
                    continue
                for shots in s.shots:
                    for seed in s.seeds:
                        cells.append(
                            _fewshot_or_skip(
                                root,
                                out,
                                target,
                                method,
                                facts[name],
                                shots,
                                seed,
                                files[target, shots, seed],
                                s,
                            )
                        )
    for cell in cells:
        if cell.status == "todo" and finished(cell) is not None:
            cell.status = "done"
    return Plan(cells, notes)


def _fewshot_or_skip(
    root: Path,
    out: Path,
    target: str,
    method: str,
    facts: BackboneFacts,
    shots: int,
    seed: int,
    file: Path | str,
    s: BenchSettings,
) -> Cell:
    if isinstance(file, Path):
        return fewshot_cell(root, out, target, method, facts, shots, seed, file, s)
    cfg = FewShotConfig(method=method, backbone=facts.name, seed=seed)
    protocol = {"kind": "fewshot", "target": target, "method": method, "shots": shots}
    return Cell(
        "fewshot",
        target,
        method,
        facts.name,
        seed,
        shots,
        cfg,
        protocol,
        out / CELLS_DIR / "skipped",
        None,
        "skipped",
        f"no episodes: {file}",
    )


def plan_table(cells: list[Cell], notes: list[str] | None = None) -> str:
    """The printed plan: one line per cell (status, estimate, sources), the notes of cells
    left out, one line per shot level (cells and estimate) and the totals."""
    todo = [c for c in cells if c.status == "todo"]
    total = sum(c.estimate_s or 0.0 for c in todo)
    lines = [
        f"benchmark plan: {plural(len(cells), 'cell')}, {len(todo)} to run, "
        f"{sum(c.status == 'done' for c in cells)} done, "
        f"{sum(c.status == 'skipped' for c in cells)} skipped; "
        f"estimated {format_duration(total)}",
        f"{'#':>3}  {'status':<7} {'estimate':>12}  cell",
    ]
    for i, cell in enumerate(cells, 1):
        est = format_duration(cell.estimate_s) if cell.status == "todo" else "-"
        line = f"{i:>3}  {cell.status:<7} {est:>12}  {cell.label}"
        if cell.reason:
            line += f"  ({cell.reason})"
        uses_sources = not cell.is_supervised and get_method(cell.method).uses_sources
        if uses_sources and cell.status != "skipped":
            excluded = cell.protocol.get("excluded") or {}
            line += "\n" + " " * 27 + "sources: " + (", ".join(cell.sources) or "none")
            others = {k: v for k, v in excluded.items() if v != "target"}
            if others:
                line += "; excluded: " + ", ".join(f"{k} ({v})" for k, v in others.items())
        lines.append(line)
    lines += list(notes or [])
    lines += shot_levels(cells)
    lines.append(f"total to run: {format_duration(total)}")
    return "\n".join(lines)


def shot_levels(cells: list[Cell]) -> list[str]:
    """One line per shot level of the few-shot cells: cells, to run, and their estimate."""
    levels = sorted({c.shots for c in cells if c.shots is not None})
    out = []
    for shots in levels:
        level = [c for c in cells if c.shots == shots]
        todo = [c for c in level if c.status == "todo"]
        estimate = sum(c.estimate_s or 0.0 for c in todo)
        out.append(
            f"{shots:>3}-shot: {plural(len(level), 'cell')}, {len(todo)} to run, "
            f"estimated {format_duration(estimate)}"
        )
    return out


def _cost_knobs(cell: Cell) -> tuple[str, ...]:
    return ("--epochs",) if cell.is_supervised else get_method(cell.method).cost_knobs


def check_budget(cells: list[Cell], budget_s: float | None) -> None:
    """OptionError (one line) when the cells to run are estimated over ``budget_s``."""
    todo = [c for c in cells if c.status == "todo"]
    total = sum(c.estimate_s or 0.0 for c in todo)
    if budget_s is None or total <= budget_s:
        return
    top = sorted(todo, key=lambda c: -(c.estimate_s or 0.0))[:3]
    worst = "; ".join(f"{c.label} ~{format_duration(c.estimate_s)}" for c in top)
    knobs = sorted({k for c in top for k in _cost_knobs(c)})
    how = ", ".join(
        ["drop them with --methods/--targets/--backbones", *knobs, "--episodes, --shots, --seeds"]
    )
    raise OptionError(
        f"the plan needs ~{format_duration(total)} for {plural(len(todo), 'cell')}, over the "
        f"budget of {format_duration(budget_s)}; most expensive: {worst}; cut it: {how}, or "
        "raise --budget"
    )
