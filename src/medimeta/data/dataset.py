"""``MedIMeta``: one task of one dataset as a PyTorch dataset (drop-in for medimeta 0.0.6)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medimeta.catalog.tasks import TaskTarget
from medimeta.data.base import ImageDatasetBase, Split, _as_index, resolve_root
from medimeta.data.collate import sample_views
from medimeta.errors import Note, check_choice
from medimeta.format.reader import DatasetFolder, find_datasets, locate_dataset

ORDINAL_ENCODINGS = ("key", "index")


@dataclass(frozen=True)
class TaskDescription:
    """What a model needs to know about a task (mirrors TorchCross' TaskDescription)."""

    task_target: TaskTarget
    classes: dict[int, str]
    task_identifier: str
    domain_identifier: str
    dataset_id: str = ""
    task_name: str = ""


class MedIMeta(ImageDatasetBase):
    """One task of a MedIMeta dataset: ``(image, label)`` samples.

    Same arguments and default output as medimeta 0.0.6: a float (C, 224, 224) image normalised
    with mean 0.5 / std 0.5 and an int64 label tensor (0-d for multi-class and ordinal (raw key),
    (1,) for binary, (C,) multi-hot for multi-label). A ``transform`` receives a PIL image, as in
    the original. Keyword options: ``channels`` (1 or 3), ``dtype`` ("float" or "uint8"),
    ``normalize`` ("half", "imagenet", "unit"), ``ordinal_labels`` ("key" or "index"),
    ``backend`` ("auto", "memmap", "hdf5", "tiff"), ``download``, ``pin_memory`` (write
    batches straight into page-locked memory; needs an accelerator, see docs/loading.md).
    Without ``task_name``, the dataset's first task (announced as a note).
    """

    def __init__(
        self,
        data_path: str | Path | None,
        dataset_id: str,
        task_name: str | None = None,
        split: Split = None,
        original_split: Split = None,
        transform: Callable[[Any], Any] | None = None,
        use_hdf5: bool = True,
        *,
        channels: int | None = None,
        dtype: str = "float",
        normalize: str = "half",
        ordinal_labels: str = "key",
        backend: str | None = None,
        download: bool = False,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(
            data_path,
            dataset_id,
            split=split,
            original_split=original_split,
            use_hdf5=use_hdf5,
            backend=backend,
            channels=channels,
            dtype=dtype,
            normalize=normalize,
            download=download,
            pin_memory=pin_memory,
        )
        if task_name is None:  # the dataset's first task (the paper's primary one), with a note
            task_name = self.folder.spec.tasks[0].name
            warnings.warn(
                f"MedIMeta({dataset_id!r}) without a task means its first task: "
                f"{dataset_id}:{task_name}",
                Note,
                stacklevel=2,
            )
        self.task = self.folder.task(task_name)
        self.task_name = self.task.name
        self.transform = transform
        self.ordinal_labels = check_choice(
            "ordinal label encoding", ordinal_labels, ORDINAL_ENCODINGS
        )
        all_labels = self.task.encode_labels(self.folder.labels(self.task.name), ordinal_labels)
        self._all_labels = torch.from_numpy(all_labels)
        self.labels: np.ndarray = all_labels[self.split_indices]
        self.task_target = self.task.target
        if self.task.target is TaskTarget.ORDINAL_REGRESSION and ordinal_labels == "index":
            self.classes = dict(enumerate(self.task.class_names))
        else:
            self.classes = dict(self.task.labels)
        self.task_identifier = f"{self.info['name']}: {self.task.name}"
        self.domain_identifier = self.folder.spec.domain
        self.task_description = TaskDescription(
            self.task_target,
            self.classes,
            self.task_identifier,
            self.domain_identifier,
            self.dataset_id,
            self.task.name,
        )

    def __repr__(self) -> str:
        where = self.split or self.original_split or "all"
        return (
            f"MedIMeta({self.dataset_id!r}, {self.task_name!r}, split={where!r}, n={len(self)}, "
            f"target={self.task_target.value}, channels={self.num_channels}, dtype={self.dtype})"
        )

    def __getitem__(self, index: Any) -> tuple[Any, torch.Tensor]:
        positions, batched = _as_index(index)
        if batched:
            return self.get_batch(positions)
        global_index = int(self.global_indices(positions)[0])
        label = self._all_labels[global_index]
        if self.transform is not None:
            return self.transform(self.pil_image(global_index)), label
        return self.read_pixels(positions, batch=False)[0], label

    def __getitems__(self, positions: list[int]) -> list[tuple[Any, torch.Tensor]]:
        """Batched read for DataLoader auto-collation: per-sample pairs whose images are views
        of one C-contiguous batch tensor, which ``default_collate`` hands back without a copy
        (:mod:`medimeta.data.collate`)."""
        if self.transform is not None:
            return [self[p] for p in positions]
        x, y = self.get_batch(np.asarray(positions, dtype=np.int64), contiguous=True)
        return list(zip(sample_views(x), y.unbind(0), strict=True))

    def get_batch(self, positions: Any, *, contiguous: bool = False) -> tuple[Any, torch.Tensor]:
        """Images and labels at local ``positions`` as batched tensors (B, C, H, W) / (B, ...).

        ``contiguous``: C-contiguous images in every channel mode (else RGB comes channels-last
        and uint8 grey -> 3 as an expanded view, which convolutions take as they are).
        """
        pos, _ = _as_index(positions)
        glob = self.global_indices(pos)
        labels = self._all_labels[torch.from_numpy(glob)]
        if self.transform is not None:
            return torch.stack([self.transform(self.pil_image(int(g))) for g in glob]), labels
        return self.read_pixels(pos, contiguous=contiguous), labels

    def get_split_indices(self, split: Split, use_original_split: bool = False) -> np.ndarray:
        """Global indices of a split (or of several), as in medimeta 0.0.6."""
        if split is None:
            return np.arange(self.folder.num_samples, dtype=np.int64)
        return self.folder.split_indices(split, original=use_original_split)

    # -- medimeta 0.0.6 class-level helpers, without its shared mutable caches ---------------
    @staticmethod
    def get_available_datasets(data_path: str | Path | None = None) -> list[str]:
        return sorted(find_datasets(resolve_root(data_path)))

    @staticmethod
    def get_available_tasks(data_path: str | Path | None = None) -> dict[str, list[str]]:
        found = find_datasets(resolve_root(data_path))
        return {
            ds: [t.name for t in DatasetFolder(p).spec.tasks] for ds, p in sorted(found.items())
        }

    @staticmethod
    def get_info_dict(data_path: str | Path | None, dataset_id: str) -> dict[str, Any]:
        return DatasetFolder(locate_dataset(resolve_root(data_path), dataset_id)).info
