"""The few-shot method registry: a method is one module, registered in one place.

A method is a subclass of :class:`FewShotMethod` decorated with :func:`register_method`. The
class declares everything the toolkit needs to know about it: its name and the name of its row
in the paper's tables, its kind, the stages it runs, its options (a frozen dataclass of
:class:`~medimeta.train.fewshot.options.MethodOptions`), its learner, its cost model and the
calibration parts that model reads. The command line's choices, the benchmark's plans, cost
estimates and calibration, the merged tables' row order, the report and the plots all read
this registry, so adding a method touches no other file.

Built-in methods are the modules of :mod:`medimeta.train.fewshot.methods`, imported on the
first look-up. Methods of your own come from a module named in ``$MEDIMETA_PLUGINS``
(comma-separated module names or ``.py`` files) or from a ``medimeta.plugins`` entry point of
an installed package; they are imported at the same moment.
"""

from __future__ import annotations

import abc
import enum
import importlib
import importlib.util
import os
import pkgutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import numpy as np
import torch

from medimeta.errors import DuplicateRegistrationError, OptionError, UnknownNameError
from medimeta.features.reader import EpisodeReader, EpisodeTensors
from medimeta.features.table import FeatureBatch, FeatureTable
from medimeta.logs import Log
from medimeta.models.backbone import Backbone
from medimeta.train.fewshot.calibration import Measure
from medimeta.train.fewshot.learners import Scored, eval_features
from medimeta.train.fewshot.options import MethodOptions, MethodSettings, SourceOptions

if TYPE_CHECKING:
    from medimeta.episodes import Episode

PLUGINS_ENV = "MEDIMETA_PLUGINS"
ENTRY_POINT_GROUP = "medimeta.plugins"
Scorer = Callable[["Episode", int], Scored]


class MethodKind(str, enum.Enum):
    """What a method does with the backbone."""

    FROZEN = "frozen features"  # reads eval-mode features of the given backbone
    ADAPTED = "adapted backbone"  # trains a copy of the backbone on each support set
    META_TRAINED = "meta-trained"  # a training stage on source tasks before the episodes


@dataclass(frozen=True)
class StageContext:
    """What a method's training stage gets (rank 0 runs it; the backbone is trained in place)."""

    root: Path
    target: str
    cfg: MethodSettings
    backbone: Backbone
    reader: EpisodeReader
    out: Path
    sources: dict[str, Any]
    resume: bool
    log: Log
    progress: bool


class CostContext(Protocol):
    """What a method's cost model reads (the benchmark's estimator implements it).

    Times are seconds measured by the calibration on this machine: :meth:`forward_s` per image
    (read, prepare, eval-mode forward), :meth:`train_s` one full-batch training step on ``n``
    images, :meth:`part` any other calibration part the method declared."""

    @property
    def cfg(self) -> MethodSettings: ...

    episodes: int  # episodes of the cell still to run
    support: float  # mean support images per episode
    query: float  # mean query images per episode
    bookkeeping_s: float  # per episode: metrics and its result file
    folder: Path  # the cell's run folder (where stage files are kept)
    sources: list[str]  # source tasks ``ID:TASK`` (methods that use them)

    def part(self, name: str) -> dict[str, Any]: ...

    def forward_s(self) -> float: ...

    def train_s(self, n: float) -> float: ...

    def images_to_embed(self) -> int: ...

    def trained_images(self) -> int: ...

    def stage_done(self) -> bool: ...

    def source_ways(self) -> float: ...


class FewShotMethod(abc.ABC):
    """One few-shot method; subclass it, set the class attributes and register it.

    Override :meth:`score_episode` (a learner on one episode's images), and for methods that
    only read eval-mode features (``reads_features``) :meth:`score_features` too, so that the
    embedding cache can feed them; methods with a stage (kind ``META_TRAINED``) override
    :meth:`train_stage`. :meth:`estimate` is the cost model the benchmark's plan prints.
    """

    name: ClassVar[str]
    #: The row of the paper's Table 4 (and of merged tables).
    paper_name: ClassVar[str]
    kind: ClassVar[MethodKind]
    #: One line for ``--help`` and docs/methods.md.
    summary: ClassVar[str]
    #: The paper or code the method follows.
    reference: ClassVar[str] = ""
    options: ClassVar[type[MethodOptions]] = MethodOptions
    #: The stages of a run, in order (docs and plans).
    stages: ClassVar[tuple[str, ...]] = ("episodes",)
    #: The calibration parts :meth:`estimate` reads (see :mod:`medimeta.bench.calibrate`).
    calibration: ClassVar[tuple[str, ...]] = ("forward",)
    #: Calibration parts of its own, by name (the shared ones are ``forward`` and ``train``).
    measures: ClassVar[dict[str, Measure]] = {}
    #: Whether its episodes read only eval-mode features (the embedding cache serves them).
    reads_features: ClassVar[bool] = False
    #: Row order in merged tables (smaller first; ties by name).
    order: ClassVar[int] = 100
    #: Part of ``medimeta benchmark``'s default method set.
    in_default_benchmark: ClassVar[bool] = True
    #: Command-line options that cut its time (the budget refusal names them).
    cost_knobs: ClassVar[tuple[str, ...]] = ()

    @property
    def uses_sources(self) -> bool:
        """Whether it trains on source tasks (chosen leave-one-out, recorded in the plan)."""
        return issubclass(self.options, SourceOptions)

    @property
    def has_stage(self) -> bool:
        return self.kind is MethodKind.META_TRAINED

    def unsupported(self, backbone: Backbone) -> str | None:
        """Why this method cannot run on ``backbone`` (one line, e.g. "needs a text tower"), or
        None when it can. The benchmark leaves such cells out with this note; a single run
        refuses with it."""
        return None

    # -- the stage ------------------------------------------------------------------------
    def train_stage(self, ctx: StageContext) -> dict[str, Any]:
        """Train ``ctx.backbone`` in place on the sources; returns the stage record."""
        raise OptionError(f"few-shot method {self.name!r} has no training stage")

    def stage_extras(
        self, checkpoint_record: dict[str, Any], cfg: MethodSettings
    ) -> dict[str, Any]:
        """What the episodes need from a stage checkpoint besides the weights (default: none)."""
        return {}

    # -- the learner ----------------------------------------------------------------------
    def score_episode(
        self,
        backbone: Backbone,
        ep: EpisodeTensors,
        cfg: MethodSettings,
        seed: int,
        stage: dict[str, Any],
    ) -> Scored:
        """Query scores of one episode from its images. The default runs :meth:`score_features`
        on eval-mode features (the frozen-feature methods)."""
        support, query = eval_features(backbone, ep.support_x), eval_features(backbone, ep.query_x)
        return self.score_features(
            support, ep.support_y, query, ep.target, ep.n_way, cfg, seed, stage
        )

    def score_features(
        self,
        support: torch.Tensor,
        support_y: torch.Tensor,
        query: torch.Tensor,
        target: str,
        n_way: int,
        cfg: MethodSettings,
        seed: int,
        stage: dict[str, Any],
    ) -> Scored:
        """Query scores from support and query features of an episode of ``n_way`` classes of
        a task with target ``target`` (a TaskTarget value)."""
        raise OptionError(f"few-shot method {self.name!r} does not work on cached features")

    def score_batch(
        self, batch: FeatureBatch, cfg: MethodSettings, stage: dict[str, Any]
    ) -> list[Scored] | None:
        """Every episode of ``batch`` at once (the frozen-feature methods; the same numbers as
        :meth:`score_features` per episode); None when this method or these settings have no
        batched path, and the runner scores episode by episode."""
        return None

    def scorer(
        self,
        backbone: Backbone,
        reader: EpisodeReader,
        cfg: MethodSettings,
        stage: dict[str, Any],
        table: FeatureTable | None,
    ) -> Scorer:
        """``score(episode, seed)``: features from ``table`` when there is one, else images."""
        if table is not None and self.reads_features:
            device = reader.device

            def from_table(ep: Episode, seed: int) -> Scored:
                support = table.take(ep.support_indices).to(device)
                query = table.take(ep.query_indices).to(device)
                labels = torch.from_numpy(np.ascontiguousarray(ep.support_labels)).to(device)
                return self.score_features(
                    support, labels, query, ep.task_target.value, ep.n_way, cfg, seed, stage
                )

            return from_table
        return lambda ep, seed: self.score_episode(backbone, reader.load(ep), cfg, seed, stage)

    def run_details(
        self, backbone: Backbone, cfg: MethodSettings, episodes: Sequence[Episode]
    ) -> dict[str, Any]:
        """What the run record keeps about how the method ran, beyond its settings (e.g. the
        parameters it trains, the prompts it used); default: nothing."""
        return {}

    # -- the cost model -------------------------------------------------------------------
    @abc.abstractmethod
    def estimate(self, ctx: CostContext) -> tuple[float, dict[str, Any]]:
        """Seconds the cell's episodes (and its stage) take, and what the estimate assumed."""

    def describe(self) -> dict[str, Any]:
        """The declaration as data (docs, ``--help``, plans)."""
        return {
            "name": self.name,
            "paper_name": self.paper_name,
            "kind": self.kind.value,
            "summary": self.summary,
            "reference": self.reference,
            "stages": list(self.stages),
            "options": self.options().recorded(),
        }


def frozen_features_cost(ctx: CostContext, head_s: float) -> tuple[float, dict[str, Any]]:
    """The cost model of the frozen-feature methods: the images not yet embedded x the forward
    time, plus per episode the learner on features (``head_s``) and the bookkeeping."""
    images = ctx.images_to_embed() if ctx.episodes else 0
    per_episode = head_s + ctx.bookkeeping_s
    seconds = images * ctx.forward_s() + ctx.episodes * per_episode
    return seconds, {"embed_images": images, "per_episode_s": per_episode}


M = TypeVar("M", bound=type[FewShotMethod])
_METHODS: dict[str, FewShotMethod] = {}
_LOADED = False


def register_method(cls: M) -> M:
    """Class decorator: register one instance of the method under ``cls.name``."""
    for attr in ("name", "paper_name", "kind", "summary"):
        if not hasattr(cls, attr):
            raise TypeError(f"{cls.__qualname__} must set the class attribute {attr!r}")
    if not (is_dataclass(cls.options) and issubclass(cls.options, MethodOptions)):
        raise TypeError(f"{cls.__qualname__}.options must be a MethodOptions dataclass")
    if cls.name in _METHODS:
        other = type(_METHODS[cls.name])
        raise DuplicateRegistrationError(
            f"few-shot method {cls.name!r} is already registered by "
            f"{other.__module__}.{other.__qualname__}; {cls.__module__}.{cls.__qualname__} "
            "cannot register it again"
        )
    _METHODS[cls.name] = cls()
    return cls


def unregister_method(name: str) -> None:
    """Remove a method (tests register toy methods and take them away again)."""
    _METHODS.pop(name, None)


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import medimeta.train.fewshot.methods as builtin

    for info in sorted(pkgutil.iter_modules(builtin.__path__), key=lambda m: m.name):
        importlib.import_module(f"{builtin.__name__}.{info.name}")
    load_plugins()


def load_plugins(spec: str | None = None) -> list[str]:
    """Import the plugin modules of ``spec`` (default ``$MEDIMETA_PLUGINS``) and of the
    ``medimeta.plugins`` entry points; returns the names imported."""
    from importlib.metadata import entry_points

    names = [s.strip() for s in (spec or os.environ.get(PLUGINS_ENV, "")).split(",") if s.strip()]
    done = []
    for name in names:
        _import_plugin(name)
        done.append(name)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        entry.load()
        done.append(entry.value)
    return done


def _import_plugin(name: str) -> None:
    if not name.endswith(".py"):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise OptionError(
                f"${PLUGINS_ENV} names {name!r}, which cannot be imported ({exc}); fix: name an "
                "importable module or a .py file"
            ) from exc
        return
    path = Path(name).expanduser().resolve()
    module_name = f"medimeta_plugin_{path.stem}"
    if module_name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None or not path.is_file():
        raise OptionError(f"${PLUGINS_ENV} names {name!r}, which is not a readable .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)


def get_method(name: str) -> FewShotMethod:
    """The registered method ``name``; UnknownNameError (with the closest names) otherwise."""
    _load()
    if name not in _METHODS:
        raise UnknownNameError("few-shot method", name, method_names())
    return _METHODS[name]


def all_methods() -> list[FewShotMethod]:
    """Every registered method in table order."""
    _load()
    return sorted(_METHODS.values(), key=lambda m: (m.order, m.name))


def method_names(*, default_benchmark: bool = False) -> list[str]:
    """Registered names in table order (only the benchmark's default set when asked)."""
    return [m.name for m in all_methods() if m.in_default_benchmark or not default_benchmark]


def option_fields() -> set[str]:
    """Every option name of every registered method."""
    return {name for m in all_methods() for name in m.options.field_names()}


def methods_help() -> str:
    """The ``--method`` choices as one help line, read from the registry when shown."""
    return "; ".join(f"{m.name} ({m.summary})" for m in all_methods())
