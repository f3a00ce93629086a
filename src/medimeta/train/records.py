"""What a supervised run hands back (:class:`TrainResult`) and the data facts it records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medimeta.catalog.tasks import TaskSpec
from medimeta.format.reader import DatasetFolder
from medimeta.runs.model import RunRecord


@dataclass
class TrainResult:
    """What a supervised run produced: its folder, its run record and the epoch history."""

    out_dir: Path
    record: RunRecord
    history: list[dict[str, Any]]

    def metrics(self, split: str = "test") -> dict[str, float]:
        """The selected checkpoint's metrics on ``split`` (``val`` or ``test``)."""
        return dict((self.record.details.get(split) or {}).get("metrics") or {})

    @property
    def test_metrics(self) -> dict[str, float]:
        return self.metrics("test")


def dataset_record(folder: DatasetFolder, task: TaskSpec, **extra: Any) -> dict[str, Any]:
    """Which data: dataset id, name, folder, task, target, classes and split sizes."""
    spec = folder.spec
    return {
        "dataset_id": spec.id,
        "dataset_name": spec.name,
        "domain": spec.domain,
        "folder": str(folder.path),
        "num_samples": spec.num_samples,
        "splits": dict(spec.splits),
        "task": task.name,
        "target": task.target.value,
        "classes": {int(k): v for k, v in task.labels.items()},
        **extra,
    }
