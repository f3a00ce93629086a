"""Source tasks for leave-one-out cross-domain experiments.

The paper's experiments pre-trained on every dataset except the target, the datasets listed
in the target's ``domain_overlaps`` and ``subject_overlaps``, and used the first task of each
remaining dataset. Overlaps are taken in both directions (a dataset that lists the target is
excluded too); the release's lists are symmetric, so this equals the paper's selection.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from medimeta.catalog import DatasetSpec, TaskSpec, get_catalog
from medimeta.errors import UnknownNameError, check_choice
from medimeta.format.reader import DatasetFolder, find_datasets

TASK_SELECTIONS = ("first", "all")


def _pool(datasets: Iterable[DatasetSpec] | str | Path | None) -> list[DatasetSpec]:
    if datasets is None:
        return list(get_catalog())
    if isinstance(datasets, str | Path):
        return [DatasetFolder(p).spec for p in find_datasets(datasets).values()]
    return list(datasets)


def _target(target: str | TaskSpec | DatasetSpec, pool: list[DatasetSpec]) -> DatasetSpec:
    if isinstance(target, DatasetSpec):
        return target
    dataset_id = (
        target.dataset_id if isinstance(target, TaskSpec) else target.partition(":")[0].strip()
    )
    for spec in pool:
        if spec.id == dataset_id:
            return spec
    catalog = get_catalog()
    if dataset_id in catalog:
        return catalog.get(dataset_id)
    raise UnknownNameError("target dataset", dataset_id, {s.id for s in pool} | set(catalog.ids))


def excluded_datasets(
    target: str | TaskSpec | DatasetSpec,
    *,
    datasets: Iterable[DatasetSpec] | str | Path | None = None,
    exclude_same_domain: bool = False,
) -> dict[str, str]:
    """Datasets left out of the sources for ``target``, each with the reason."""
    pool = _pool(datasets)
    spec = _target(target, pool)
    out = {spec.id: "target"}
    for other in pool:
        if other.id in out:
            continue
        if other.id in spec.subject_overlaps or spec.id in other.subject_overlaps:
            out[other.id] = "subject overlap"
        elif other.id in spec.domain_overlaps or spec.id in other.domain_overlaps:
            out[other.id] = "domain overlap"
        elif exclude_same_domain and other.domain == spec.domain:
            out[other.id] = f"same domain ({spec.domain})"
    return out


def source_tasks(
    target: str | TaskSpec | DatasetSpec,
    *,
    datasets: Iterable[DatasetSpec] | str | Path | None = None,
    tasks: str = "first",
    exclude_same_domain: bool = False,
) -> list[TaskSpec]:
    """Source tasks for a target ``"dataset_id[:task]"``, in the order of ``datasets``.

    ``datasets``: the catalog (default), a data root (the datasets present there) or specs.
    ``tasks``: ``"first"`` (the first task of each dataset, as in the paper) or ``"all"``.
    ``exclude_same_domain`` also drops datasets whose domain equals the target's.
    """
    check_choice("task selection", tasks, TASK_SELECTIONS)
    pool = _pool(datasets)
    skip = excluded_datasets(target, datasets=pool, exclude_same_domain=exclude_same_domain)
    chosen: list[TaskSpec] = []
    for spec in pool:
        if spec.id not in skip and spec.tasks:
            chosen.extend(spec.tasks[:1] if tasks == "first" else spec.tasks)
    return chosen
