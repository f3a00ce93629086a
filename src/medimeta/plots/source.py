"""What the plots read: a dataset object or folder as (folder, image store, selected indices),
and the names of labels.

Dataset objects are read through the attributes :class:`~medimeta.data.MedIMeta` and
:class:`~medimeta.data.MedIMetaMultiTask` share (``folder``, ``store``, ``split_indices``,
``task``/``tasks``), so this package does not import ``medimeta.data`` and the dataset
classes can call into it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medimeta.catalog import TaskSpec, TaskTarget
from medimeta.errors import MedIMetaError
from medimeta.format.images import ImageStore
from medimeta.format.reader import DatasetFolder


@dataclass
class Selection:
    """Images of one dataset folder restricted to some global indices (a split, or all)."""

    folder: DatasetFolder
    store: ImageStore
    indices: np.ndarray
    split: str
    tasks: tuple[TaskSpec, ...]
    ordinal_index: bool = False  # ordinal labels handed out as positions, not keys

    def __len__(self) -> int:
        return int(self.indices.size)

    def global_indices(self, positions: Sequence[int] | np.ndarray) -> np.ndarray:
        """Global indices of local ``positions`` (IndexError when out of range)."""
        pos = np.asarray(positions, dtype=np.int64).reshape(-1)
        n = len(self)
        if pos.size and (pos.min() < -n or pos.max() >= n):
            raise IndexError(f"position out of range for a selection of {n} samples")
        return self.indices[pos]

    def images(self, glob: np.ndarray) -> np.ndarray:
        """Stored uint8 images (B, H, W) or (B, H, W, 3) at global indices ``glob``."""
        return self.store.read_batch(glob)

    def labels(self, task: TaskSpec, glob: np.ndarray) -> np.ndarray:
        """Stored labels of ``task`` at ``glob`` (binary and ordinal as keys, multi-label rows)."""
        return self.folder.labels(task.name)[glob]

    @property
    def title(self) -> str:
        spec = self.folder.spec
        return f"{spec.name} ({spec.id})"


def _split_label(split: Any, original: Any) -> str:
    value = split if split is not None else original
    if value is None:
        return "all"
    label = value if isinstance(value, str) else "+".join(value)
    return f"original {label}" if split is None else label


def select(data: Any, split: str | Sequence[str] | None = None) -> Selection:
    """A :class:`Selection` of a ``MedIMeta``/``MedIMetaMultiTask`` dataset (its split), a
    :class:`DatasetFolder` or a dataset folder path (``split`` or all samples); a Selection
    is returned as it is."""
    if isinstance(data, Selection):
        return data
    if isinstance(data, str | Path):
        data = DatasetFolder(data)
    if isinstance(data, DatasetFolder):
        indices = (
            data.split_indices(split)
            if split is not None
            else np.arange(data.num_samples, dtype=np.int64)
        )
        return Selection(
            data, data.image_store(), indices, _split_label(split, None), data.spec.tasks
        )
    folder = getattr(data, "folder", None)
    store = getattr(data, "store", None)
    if not isinstance(folder, DatasetFolder) or not isinstance(store, ImageStore):
        raise TypeError(
            f"expected a MedIMeta or MedIMetaMultiTask dataset, a DatasetFolder or a folder "
            f"path; got {type(data).__name__}"
        )
    if hasattr(data, "tasks"):
        tasks = tuple(data.tasks)
    elif hasattr(data, "task"):
        tasks = (data.task,)
    else:
        tasks = folder.spec.tasks
    return Selection(
        folder,
        store,
        np.asarray(data.split_indices, dtype=np.int64),
        _split_label(getattr(data, "split", None), getattr(data, "original_split", None)),
        tasks,
        ordinal_index=getattr(data, "ordinal_labels", "key") == "index",
    )


def pick_task(sel: Selection, task: str | None) -> TaskSpec:
    """The task called ``task`` (any task of the folder), else the selection's first task."""
    if task is not None:
        return sel.folder.task(task)
    return sel.tasks[0]


def label_text(task: TaskSpec, value: Any) -> str:
    """Name(s) of a stored label: the class name; for multi-label the positive label names
    (``none`` when no label is positive)."""
    arr = np.asarray(value).reshape(-1)
    if task.target is TaskTarget.MULTILABEL_CLASSIFICATION:
        if arr.size != task.num_classes:
            raise MedIMetaError(
                f"task {task.identifier}: a multi-label value needs {task.num_classes} entries "
                f"(one per label); got {arr.size}"
            )
        names = [task.labels[k] for k, v in zip(task.keys, arr.tolist(), strict=True) if v]
        return ", ".join(names) or "none"
    key = int(arr[0])
    return task.labels.get(key, str(key))


def prediction_text(task: TaskSpec, value: Any, *, ordinal_index: bool = False) -> str:
    """A prediction as text: a class name (str), names (list of str), a label key, or (with
    ``ordinal_index``) an ordinal class position; multi-label also as multi-hot or scores
    (positive above 0.5)."""
    if isinstance(value, str):
        return value
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    if isinstance(value, Sequence) and value and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    arr = np.asarray(value)
    if task.target is TaskTarget.MULTILABEL_CLASSIFICATION:
        return label_text(task, (arr.reshape(-1) > 0.5).astype(np.int64))
    if arr.size > 1:
        raise MedIMetaError(
            f"task {task.identifier}: pass one class per prediction (a key, a name), "
            f"not an array of {arr.size} values"
        )
    key = int(arr.reshape(-1)[0])
    if ordinal_index and task.target is TaskTarget.ORDINAL_REGRESSION:
        key = task.index_to_key(key)
    return label_text(task, key)
