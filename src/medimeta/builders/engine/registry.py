"""Builder registry: one :class:`Builder` per dataset id, found by id.

Builds are run by :func:`medimeta.builders.engine.driver.build_dataset` (or
:func:`~medimeta.builders.engine.driver.run_build` with a builder), which this module does not
import.

Adding a builder (one module, or one sub-package for a multi-file source, per raw source in
``medimeta/builders/sources/``)::

    @register_builder
    class BusBuilder(Builder):
        dataset_id = "bus"
        source_title = "BUSI (Al-Dhabyani et al., 2020)"
        source_help = "Dataset_BUSI.zip, the folder holding it, or Dataset_BUSI_with_GT/"

        def parts(self) -> tuple[Part, ...]: ...          # what the raw tree looks like
        def plan(self, tree, *, partial) -> BuildPlan: ... # records, labels, splits, process

Every module and sub-package of :mod:`medimeta.builders.sources` is imported on first use of
the registry, so a new module only needs the decorator (a sub-package's ``__init__`` imports
its own helper modules). One module may register several builders (Kermany's CellData gives
``oct`` and ``pneumonia``).

The contract of :meth:`Builder.plan`: locate and validate the raw tree (filling the plan's
:class:`~medimeta.builders.engine.source.SourceReport`), read label files, enumerate the samples
in a deterministic order and assign splits, without decoding any image. It must not write
anything. :func:`~medimeta.builders.engine.driver.build_dataset` raises the report's errors
(every missing file at once) before any output exists, checks the counts against the catalog
(unless ``partial``), then hands the records and the picklable ``process`` function to the
dataset writer.
"""

from __future__ import annotations

import abc
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from medimeta.builders.engine.source import Part, SourceReport, SourceTree
from medimeta.catalog import DatasetSpec, get_dataset
from medimeta.errors import DuplicateRegistrationError, MissingDependencyError, UnknownNameError
from medimeta.format.record import SampleRecord


@dataclass
class BuildPlan:
    """Everything needed to write one dataset, decided before any image is read.

    ``records`` are in global index order. ``process(record)`` returns the image (224x224,
    mode of the dataset), optionally with extra annotations and auxiliary images (see the
    writer). ``notes`` are deviations from the original pipeline, written to info.yaml
    ``notes`` and shown to the user. ``split_manifest`` is the dict from
    :func:`medimeta.splitting.build_split_manifest`, written as ``split_manifest.json``.
    """

    dataset_id: str
    records: list[SampleRecord]
    process: Callable[[SampleRecord], Any]
    report: SourceReport
    split_manifest: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    partial: bool = False
    aux_columns: dict[str, str] = field(default_factory=dict)

    @property
    def num_samples(self) -> int:
        return len(self.records)

    def counts(self, *, original: bool = False) -> dict[str, int]:
        """Samples per split (``original=True``: per source split)."""
        out = {"train": 0, "val": 0, "test": 0}
        for rec in self.records:
            out[rec.original_split if original else rec.split] += 1
        return out


class Builder(abc.ABC):
    """Turns one raw source tree into one MedIMeta dataset (module docstring: the contract)."""

    dataset_id: ClassVar[str]
    source_title: ClassVar[str] = ""
    source_help: ClassVar[str] = ""

    @property
    def spec(self) -> DatasetSpec:
        """The catalog entry this builder reproduces (tasks, labels, counts, input size)."""
        return get_dataset(self.dataset_id)

    def new_report(self, tree: SourceTree) -> SourceReport:
        """An empty report for ``tree``, with the tree's own notes as warnings."""
        return SourceReport(self.dataset_id, tree.describe(), warnings=list(tree.notes))

    @abc.abstractmethod
    def parts(self) -> tuple[Part, ...]:
        """The pieces of the raw source (folders, CSVs) and how to recognise them."""

    @abc.abstractmethod
    def plan(self, tree: SourceTree, *, partial: bool = False) -> BuildPlan:
        """Validate ``tree`` and describe the build (no image decoding, no writing)."""


_REGISTRY: dict[str, Builder] = {}
_BROKEN: dict[str, str] = {}  # module name -> import error (e.g. a missing optional package)
_LOADED = False


def register_builder(cls: type[Builder]) -> type[Builder]:
    """Class decorator: register one instance of ``cls`` under its ``dataset_id``."""
    dataset_id = cls.dataset_id
    old = _REGISTRY.get(dataset_id)
    if old is not None and type(old).__qualname__ != cls.__qualname__:
        raise DuplicateRegistrationError(
            f"a builder for {dataset_id!r} is already registered ({type(old).__qualname__})"
        )
    _REGISTRY[dataset_id] = cls()
    return cls


def _load_all() -> None:
    """Import every module and sub-package of the sources package once (they register)."""
    global _LOADED
    if _LOADED:
        return
    import medimeta.builders.sources as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        try:
            importlib.import_module(f"{package.__name__}.{info.name}")
        except ImportError as exc:  # one builder's missing extra must not disable the others
            _BROKEN[info.name] = str(exc)
    _LOADED = True


def available_builders() -> list[str]:
    """Dataset ids that have a builder, sorted."""
    _load_all()
    return sorted(_REGISTRY)


def get_builder(dataset_id: str) -> Builder:
    """The builder of ``dataset_id`` (UnknownNameError listing the available ids)."""
    _load_all()
    try:
        return _REGISTRY[dataset_id]
    except KeyError:
        from medimeta.catalog import get_catalog

        if _BROKEN and dataset_id in get_catalog():
            broken = "; ".join(f"{m}: {e}" for m, e in sorted(_BROKEN.items()))
            raise MissingDependencyError.for_extra(
                "sources",
                f"no builder {dataset_id!r} is loaded; builder modules that failed to import: "
                f"{broken}",
            ) from None
        raise UnknownNameError("dataset builder", dataset_id, _REGISTRY) from None


def builders_table() -> list[Mapping[str, str]]:
    """One row per builder: id, source title and what to pass as ``--source``."""
    return [
        {
            "id": i,
            "source": _REGISTRY[i].source_title,
            "pass": _REGISTRY[i].source_help,
        }
        for i in available_builders()
    ]
