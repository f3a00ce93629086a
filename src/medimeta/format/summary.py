"""What a dataset folder holds, counted: samples per split, per task and class."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medimeta.catalog import TaskTarget
from medimeta.format import layout
from medimeta.format.reader import DatasetFolder


def folder_summary(path: str | Path) -> dict[str, Any]:
    """Counts of one dataset folder as plain data (JSON-ready).

    ``splits``: samples per split (as the split files list them); ``tasks``: per task its
    target and, per class name, the samples in each split and in all (multi-label: positives
    per label). ``partial`` is True for a build of part of a source (``--partial``).
    """
    folder = DatasetFolder(path)
    spec = folder.spec
    split_idx = {s: folder.split_indices(s) for s in layout.SPLIT_NAMES}
    tasks = []
    for task in spec.tasks:
        labels = folder.labels(task.name)
        classes = []
        for i, (key, name) in enumerate(task.labels.items()):
            hit = (
                labels[:, i] == 1
                if task.target is TaskTarget.MULTILABEL_CLASSIFICATION
                else labels == key
            )
            per_split = {s: int(np.count_nonzero(hit[idx])) for s, idx in split_idx.items()}
            classes.append({"key": key, "name": name, "all": int(hit.sum()), **per_split})
        tasks.append({"name": task.name, "target": task.target.short, "classes": classes})
    return {
        "id": spec.id,
        "name": spec.name,
        "domain": spec.domain,
        "path": str(folder.path),
        "input_size": list(spec.input_size),
        "samples": spec.num_samples,
        "partial": bool(folder.info.get("partial")),
        "license": spec.license,
        "splits": {s: int(idx.size) for s, idx in split_idx.items()},
        "tasks": tasks,
    }
