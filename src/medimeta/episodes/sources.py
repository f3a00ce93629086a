"""Source tasks for leave-one-out cross-domain experiments.

The paper's experiments pre-trained on every dataset except the target, the datasets listed
in the target's ``domain_overlaps`` and ``subject_overlaps``, and used the first task of each
remaining dataset. Overlaps are taken in both directions (a dataset that lists the target is
excluded too); the release's lists are symmetric, so this equals the paper's selection.

Datasets made from the images of another one are never its sources. Their *origins* are the
dataset itself, the ids in its info.yaml ``derived_from`` (written by a user's conversion),
the ``subject_overlaps`` of a dataset outside the release catalog (written by the MedMNIST
converter, e.g. BreastMNIST lists ``bus``) and, for a MedMNIST conversion whose info lacks
them, the MedIMeta datasets built from the same source
(:data:`medimeta.catalog.medmnist.MEDMNIST_2D`). Two datasets that share an origin share
subjects; a dataset whose origin is in the target's ``domain_overlaps`` shares its domain.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medimeta.catalog import DatasetSpec, TaskSpec, get_catalog
from medimeta.errors import EpisodeError, UnknownNameError, check_choice
from medimeta.format.reader import DatasetFolder, find_datasets

TASK_SELECTIONS = ("first", "all")


@dataclass(frozen=True)
class Candidate:
    """A dataset of the pool with the origins its info.yaml names besides the catalog facts."""

    spec: DatasetSpec
    derived_from: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def origins(self) -> frozenset[str]:
        """Ids whose images this dataset contains (itself included). The subject overlaps of a
        dataset outside the release catalog (a conversion) name its origins too; the release's
        own lists are the paper's and are only used directly."""
        converted = () if self.spec.id in get_catalog() else self.spec.subject_overlaps
        return frozenset((self.spec.id, *self.derived_from, *converted))


def _known_origins(info: dict[str, Any]) -> tuple[str, ...]:
    """``derived_from`` of info.yaml, plus the origins of a MedMNIST conversion's flag."""
    listed = info.get("derived_from") or []
    out = [str(v) for v in (listed if isinstance(listed, list) else [listed])]
    converted = info.get("converted_from")
    if isinstance(converted, dict) and converted.get("kind") == "medmnist":
        from medimeta.catalog.medmnist import MEDMNIST_2D  # lazy: a data table

        row = MEDMNIST_2D.get(str(converted.get("flag")))
        out += list(row.overlaps) if row is not None else []
    return tuple(dict.fromkeys(out))


Pool = Iterable[DatasetSpec | Candidate] | str | Path | None


def _candidates(datasets: Pool) -> list[Candidate]:
    if datasets is None:
        return [Candidate(s) for s in get_catalog()]
    if isinstance(datasets, str | Path):
        pool = []
        for path in find_datasets(datasets).values():
            folder = DatasetFolder(path, check=False)
            pool.append(Candidate(folder.spec, _known_origins(folder.info)))
        return pool
    return [d if isinstance(d, Candidate) else Candidate(d) for d in datasets]


def _pool(datasets: Pool) -> list[DatasetSpec]:
    return [c.spec for c in _candidates(datasets)]


def _target(target: str | TaskSpec | DatasetSpec, pool: list[Candidate]) -> Candidate:
    if isinstance(target, DatasetSpec):
        return next((c for c in pool if c.spec == target), Candidate(target))
    dataset_id = (
        target.dataset_id if isinstance(target, TaskSpec) else target.partition(":")[0].strip()
    )
    for cand in pool:
        if cand.id == dataset_id:
            return cand
    catalog = get_catalog()
    if dataset_id in catalog:
        return Candidate(catalog.get(dataset_id))
    raise UnknownNameError("target dataset", dataset_id, {c.id for c in pool} | set(catalog.ids))


def _domain_neighbours(cand: Candidate, pool: list[Candidate]) -> set[str]:
    """``domain_overlaps`` of the dataset and of its origins (catalog or pool facts)."""
    catalog = get_catalog()
    known = {c.id: c.spec for c in pool}
    out = set(cand.spec.domain_overlaps)
    for origin in cand.origins - {cand.id}:
        spec = known.get(origin) or (catalog.get(origin) if origin in catalog else None)
        if spec is not None:
            out.update(spec.domain_overlaps)
    return out


def _reason(other: Candidate, target: Candidate, pool: list[Candidate]) -> str | None:
    spec = target.spec
    if other.id in spec.subject_overlaps or spec.id in other.spec.subject_overlaps:
        return "subject overlap"
    if target.id in other.derived_from:
        return f"derived from {target.id}"
    if other.id in target.derived_from:
        return f"origin of {target.id}"
    shared = sorted(other.origins & target.origins)
    if shared:
        return f"shared origin {', '.join(shared)}"
    if other.id in spec.domain_overlaps or spec.id in other.spec.domain_overlaps:
        return "domain overlap"
    if other.origins & _domain_neighbours(target, pool) or target.origins & _domain_neighbours(
        other, pool
    ):
        return "domain overlap (through its origin)"
    return None


def excluded_datasets(
    target: str | TaskSpec | DatasetSpec,
    *,
    datasets: Pool = None,
    exclude_same_domain: bool = False,
) -> dict[str, str]:
    """Datasets left out of the sources for ``target``, each with the reason."""
    pool = _candidates(datasets)
    cand = _target(target, pool)
    out = {cand.id: "target"}
    for other in pool:
        if other.id in out:
            continue
        reason = _reason(other, cand, pool)
        if reason is None and exclude_same_domain and other.spec.domain == cand.spec.domain:
            reason = f"same domain ({cand.spec.domain})"
        if reason is not None:
            out[other.id] = reason
    return out


def _selected(ref: str, spec: DatasetSpec, tasks: str) -> list[TaskSpec]:
    """The tasks of ``spec`` an ``ID`` or ``ID:TASK`` reference selects."""
    _, sep, name = ref.partition(":")
    if sep and name.strip():
        return [spec.task(name.strip())]
    return list(spec.tasks[:1] if tasks == "first" else spec.tasks)


def source_tasks(
    target: str | TaskSpec | DatasetSpec,
    *,
    datasets: Pool = None,
    tasks: str = "first",
    exclude_same_domain: bool = False,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> list[TaskSpec]:
    """Source tasks for a target ``"dataset_id[:task]"``, in the order of ``datasets``.

    ``datasets``: the catalog (default), a data root (the datasets present there) or specs.
    ``tasks``: ``"first"`` (the first task of each dataset, as in the paper) or ``"all"``.
    ``exclude_same_domain`` also drops datasets whose domain equals the target's.
    ``include``: only these sources (``ID`` or ``ID:TASK``); one the leave-one-out rule
    excludes is refused (EpisodeError naming the reason). ``exclude``: drop these (``ID`` drops
    the dataset, ``ID:TASK`` one task).
    """
    check_choice("task selection", tasks, TASK_SELECTIONS)
    pool = _candidates(datasets)
    skip = excluded_datasets(target, datasets=pool, exclude_same_domain=exclude_same_domain)
    by_id = {c.id: c.spec for c in pool}
    for ref in (*include, *exclude):
        ds = ref.partition(":")[0].strip()
        if ds not in by_id:
            raise UnknownNameError("source dataset", ds, sorted(by_id))
    if include:
        chosen: list[TaskSpec] = []
        for ref in include:
            ds = ref.partition(":")[0].strip()
            if ds in skip:
                raise EpisodeError(
                    f"{ds} cannot be a source for {target!s}: {skip[ds]} (leave-one-out); "
                    "drop it from --sources"
                )
            chosen.extend(t for t in _selected(ref, by_id[ds], tasks) if t not in chosen)
    else:
        chosen = [
            t
            for spec in (c.spec for c in pool)
            if spec.id not in skip and spec.tasks
            for t in (spec.tasks[:1] if tasks == "first" else spec.tasks)
        ]
    dropped = {
        t for ref in exclude for t in _selected(ref, by_id[ref.partition(":")[0].strip()], "all")
    }
    return [t for t in chosen if t not in dropped]
