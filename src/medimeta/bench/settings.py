"""What a benchmark runs: its settings and presets, target resolution, lists and durations.

Methods: ``supervised`` (Table 3: train on the training split, early stopping on validation,
test AUROC) and every registered few-shot method (:mod:`medimeta.train.fewshot.registry`; by
default those the registry marks for the benchmark: the paper's Table 4 and Meta-Baseline).

Presets (``--preset``): ``paper`` and ``medmnist`` choose the supervised protocol
(:func:`medimeta.train.preset`); ``fm-grid`` is the foundation-model protocol of the MedIMeta
authors' follow-up benchmark (Woerner et al., arXiv:2408.08058): shots 1, 2, 3, 5, 7, 10, 15,
20, 25 and 30, 10 query images per class, 100 episodes per task and shot level, the methods
linear-probe, knn, simpleshot, zero-shot and finetune. Options given explicitly win.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medimeta.errors import OptionError, UnknownNameError
from medimeta.format.reader import DatasetFolder, find_datasets
from medimeta.train.fewshot.registry import method_names

SUPERVISED = "supervised"


def benchmark_methods(*, default: bool = False) -> tuple[str, ...]:
    """``supervised`` and the registered few-shot methods (only the default set when asked)."""
    return (SUPERVISED, *method_names(default_benchmark=default))


def _default_methods() -> tuple[str, ...]:
    return benchmark_methods(default=True)


@dataclass(frozen=True)
class GridPreset:
    """A few-shot protocol preset: shot levels, queries, episodes and methods."""

    name: str
    summary: str
    reference: str
    shots: tuple[int, ...]
    queries: int
    episodes: int
    methods: tuple[str, ...]


GRID_PRESETS: dict[str, GridPreset] = {
    "fm-grid": GridPreset(
        "fm-grid",
        "the MedIMeta authors' foundation-model grid",
        "Woerner et al., arXiv:2408.08058",
        shots=(1, 2, 3, 5, 7, 10, 15, 20, 25, 30),
        queries=10,
        episodes=100,
        methods=("linear-probe", "knn", "simpleshot", "zero-shot", "finetune"),
    )
}
SUPERVISED_PRESETS = ("paper", "medmnist")


def preset_names() -> tuple[str, ...]:
    """Every ``--preset`` value: the supervised protocols, then the few-shot grids."""
    return (*SUPERVISED_PRESETS, *GRID_PRESETS)


@dataclass(frozen=True)
class BenchSettings:
    """Everything that selects and configures the cells.

    ``targets``: ``"ID:TASK"`` or ``"ID"`` (its first task); empty: the datasets of ``domain``,
    else every dataset present (``all_tasks``: every task of each, not the first);
    ``budget_s``: refuse a plan estimated over this many seconds.

    ``fewshot``: :class:`~medimeta.train.fewshot.FewShotConfig` overrides (e.g.
    ``finetune_steps``); ``train``: :class:`~medimeta.train.TrainConfig` overrides of
    ``train_preset``; ``pretrained``: ``auto`` (ImageNet weights where the backbone has
    them, else random initialisation), ``imagenet``, ``none`` or a weights file.
    """

    methods: tuple[str, ...] = field(default_factory=_default_methods)
    backbones: tuple[str, ...] = ("resnet18",)
    shots: tuple[int, ...] = (5,)
    queries: int = 10
    episodes: int = 100
    seeds: tuple[int, ...] = (0,)
    split: str = "all"
    image_size: int | None = None
    pretrained: str = "auto"
    fewshot: dict[str, Any] = field(default_factory=dict)
    train_preset: str = "paper"
    train: dict[str, Any] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    exclude_sources: tuple[str, ...] = ()
    allow_shared: bool = False
    cache: bool = True
    targets: tuple[str, ...] = ()
    domain: str | None = None
    all_tasks: bool = False
    budget_s: float | None = None

    def __post_init__(self) -> None:
        for name in (
            "methods",
            "backbones",
            "shots",
            "seeds",
            "sources",
            "exclude_sources",
            "targets",
        ):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        known = benchmark_methods()
        for method in self.methods:
            if method not in known:
                raise UnknownNameError("benchmark method", method, known)
        if not self.methods or not self.backbones or not self.seeds:
            raise OptionError("a benchmark needs at least one method, backbone and seed")
        if any(k < 1 for k in self.shots) or self.queries < 1 or self.episodes < 1:
            raise OptionError("shots, queries and episodes must be >= 1")

    @classmethod
    def from_preset(cls, name: str, **given: Any) -> BenchSettings:
        """The settings of preset ``name`` with the ``given`` fields (None: the preset's).

        A supervised preset (``paper``, ``medmnist``) sets ``train_preset``; a grid preset
        (``fm-grid``) sets methods, shots, queries and episodes."""
        chosen = {k: v for k, v in given.items() if v is not None and v != ()}
        if name in SUPERVISED_PRESETS:
            return cls(**{"train_preset": name, **chosen})
        if name not in GRID_PRESETS:
            raise UnknownNameError("benchmark preset", name, preset_names())
        grid = GRID_PRESETS[name]
        defaults = {
            "methods": grid.methods,
            "shots": grid.shots,
            "queries": grid.queries,
            "episodes": grid.episodes,
        }
        return cls(**{**defaults, **chosen})


def split_list(values: str | Iterable[str] | None) -> list[str]:
    """``"a,b"`` or ``["a", "b,c"]`` -> ``["a", "b", "c"]`` (blanks dropped)."""
    if values is None:
        return []
    items = [values] if isinstance(values, str) else list(values)
    return [p.strip() for item in items for p in str(item).split(",") if p.strip()]


def int_list(values: str | Iterable[str] | None, what: str) -> list[int]:
    try:
        return [int(v) for v in split_list(values)]
    except ValueError:
        raise OptionError(f"{what} takes integers separated by commas; got {values!r}") from None


def resolve_targets(
    root: str | Path,
    targets: Sequence[str] = (),
    *,
    domain: str | None = None,
    all_tasks: bool = False,
) -> list[str]:
    """``"ID:TASK"`` targets: the given ones (``ID`` alone: its first task), those of the
    datasets of ``domain``, or every dataset present under ``root``; the first task of each
    dataset (the paper's primary task) unless ``all_tasks``."""
    present = find_datasets(root)
    if not present:
        raise OptionError(f"no datasets under {root}; pass --root DIR")
    specs = {ds: DatasetFolder(path, check=False).spec for ds, path in present.items()}
    out: list[str] = []
    if targets:
        for ref in targets:
            ds, sep, task = ref.partition(":")
            ds = ds.strip()
            if ds not in specs:
                raise UnknownNameError("target dataset", ds, sorted(specs), where=str(root))
            spec = specs[ds]
            names = [task.strip()] if sep and task.strip() else _tasks(spec, all_tasks)
            out += [f"{ds}:{spec.task(n).name}" for n in names]
    else:
        chosen = [s for s in specs.values() if domain is None or _same(s.domain, domain)]
        if not chosen:
            domains = sorted({s.domain for s in specs.values()})
            raise UnknownNameError("domain", str(domain), domains, where=str(root))
        out = [f"{s.id}:{n}" for s in chosen for n in _tasks(s, all_tasks)]
    return list(dict.fromkeys(out))


def _tasks(spec: Any, all_tasks: bool) -> list[str]:
    return [t.name for t in (spec.tasks if all_tasks else spec.tasks[:1])]


def _same(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``"2h"``, ``"90m"``, ``"1h30m"``, ``"45s"`` or plain seconds -> seconds."""
    value = text.strip().lower().replace(" ", "")
    try:
        return float(value)
    except ValueError:
        pass
    parts = re.findall(r"(\d+(?:\.\d+)?)(d|h|min|m|sec|s)", value)
    if not parts or "".join(a + b for a, b in parts) != value:
        raise OptionError(f"a duration is like 2h, 90m, 1h30m or 3600 (seconds); got {text!r}")
    return sum(float(a) * _UNITS[b] for a, b in parts)


def format_duration(seconds: float | None) -> str:
    """Seconds as ``1 h 05 min``, ``4 min 10 s`` or ``12 s``."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"


def slug(text: str) -> str:
    """A file-name-safe version of ``text``."""
    return re.sub(r"[^0-9A-Za-z_.-]+", "_", text).strip("_")[:60]
