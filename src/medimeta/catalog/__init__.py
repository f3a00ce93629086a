"""What exists in MedIMeta: the 19 datasets, their 54 tasks, labels, counts, licences, sources.

The facts live in ``datasets.yaml`` next to this file (read once, lazily);
``DatasetSpec.to_info_dict()`` re-creates each release ``info.yaml`` exactly.
"""

from __future__ import annotations

from medimeta.catalog.catalog import Catalog
from medimeta.catalog.frozen import FrozenMap
from medimeta.catalog.loader import (
    get_catalog,
    get_dataset,
    get_task,
    list_datasets,
    list_tasks,
    load_catalog,
    task_from_identifier,
)
from medimeta.catalog.model import DatasetSpec, ReleaseRecord
from medimeta.catalog.tasks import (
    LABEL_ENCODINGS,
    SPLIT_NAMES,
    SourceRecord,
    TaskSpec,
    TaskTarget,
    labels_to_indices,
)

__all__ = [
    "LABEL_ENCODINGS",
    "RELEASE",
    "SPLIT_NAMES",
    "Catalog",
    "DatasetSpec",
    "FrozenMap",
    "ReleaseRecord",
    "SourceRecord",
    "TaskSpec",
    "TaskTarget",
    "get_catalog",
    "get_dataset",
    "get_task",
    "labels_to_indices",
    "list_datasets",
    "list_tasks",
    "load_catalog",
    "task_from_identifier",
]


def __getattr__(name: str) -> ReleaseRecord:
    # RELEASE comes from datasets.yaml; reading it lazily keeps `import medimeta` free of I/O.
    if name == "RELEASE":
        return get_catalog().release
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
