"""``MedIMetaMultiTask``: one image with all (or selected) task labels and metadata columns."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medimeta.data.base import ImageDatasetBase, Split, _as_index
from medimeta.data.collate import sample_views
from medimeta.data.dataset import ORDINAL_ENCODINGS
from medimeta.errors import check_choice
from medimeta.format.layout import ANNOTATIONS_FILE


class MedIMetaMultiTask(ImageDatasetBase):
    """Samples as dicts: ``image``, ``labels`` (task name -> tensor), ``index``, ``dataset``,
    ``metadata`` (selected annotation columns) and ``subject`` (``patient_id`` when present).

    Batched indexing returns the same dict with stacked tensors and metadata lists.
    """

    def __init__(
        self,
        data_path: str | Path | None,
        dataset_id: str,
        tasks: Sequence[str] | None = None,
        split: Split = None,
        original_split: Split = None,
        *,
        metadata: Sequence[str] = (),
        ordinal_labels: str = "key",
        **options: Any,
    ) -> None:
        """``options``: the pixel and access options of ``MedIMeta`` (channels, dtype,
        normalize, use_hdf5, backend, download, pin_memory)."""
        super().__init__(
            data_path, dataset_id, split=split, original_split=original_split, **options
        )
        check_choice("ordinal label encoding", ordinal_labels, ORDINAL_ENCODINGS)
        names = list(tasks) if tasks is not None else [t.name for t in self.folder.spec.tasks]
        self.tasks = [self.folder.task(n) for n in names]
        self._labels = {
            t.name: torch.from_numpy(t.encode_labels(self.folder.labels(t.name), ordinal_labels))
            for t in self.tasks
        }
        self.metadata_columns = list(metadata)
        self._metadata = self.folder.metadata(self.metadata_columns) if metadata else {}
        self._subjects = self._subject_column()

    def _subject_column(self) -> np.ndarray | None:
        if not (self.folder.path / ANNOTATIONS_FILE).is_file():
            return None
        ann = self.folder.annotations
        return ann["patient_id"].to_numpy() if "patient_id" in ann.columns else None

    def __repr__(self) -> str:
        return (
            f"MedIMetaMultiTask({self.dataset_id!r}, tasks={[t.name for t in self.tasks]}, "
            f"n={len(self)}, metadata={self.metadata_columns})"
        )

    def __getitem__(self, index: Any) -> dict[str, Any]:
        positions, batched = _as_index(index)
        return self._sample(positions, batched)

    def _sample(self, positions: np.ndarray, batched: bool, contiguous: bool = False) -> dict:
        glob = self.global_indices(positions)
        gt = torch.from_numpy(glob)
        images = self.read_pixels(positions, batch=batched, contiguous=contiguous)
        sample: dict[str, Any] = {
            "image": images if batched else images[0],
            "labels": {n: (v[gt] if batched else v[int(glob[0])]) for n, v in self._labels.items()},
            "index": gt if batched else int(glob[0]),
            "dataset": self.dataset_id,
            "metadata": {c: _pick(v, glob, batched) for c, v in self._metadata.items()},
        }
        if self._subjects is not None:
            sample["subject"] = _pick(self._subjects, glob, batched)
        return sample

    def __getitems__(self, positions: list[int]) -> list[dict[str, Any]]:
        """Batched read for DataLoader auto-collation: the per-sample dicts of ``self[p]``,
        read in one pass; the images are views of one batch tensor that ``default_collate``
        hands back without a copy (:mod:`medimeta.data.collate`)."""
        batch = self._sample(np.asarray(positions, dtype=np.int64), True, contiguous=True)
        images = sample_views(batch["image"])
        labels = {n: v.unbind(0) for n, v in batch["labels"].items()}
        out = []
        for k, image in enumerate(images):
            sample: dict[str, Any] = {
                "image": image,
                "labels": {n: v[k] for n, v in labels.items()},
                "index": int(batch["index"][k]),
                "dataset": self.dataset_id,
                "metadata": {c: v[k] for c, v in batch["metadata"].items()},
            }
            if "subject" in batch:
                sample["subject"] = batch["subject"][k]
            out.append(sample)
        return out


def _pick(values: np.ndarray, glob: np.ndarray, batched: bool) -> Any:
    picked = values[glob]
    return (
        picked.tolist()
        if batched
        else picked[0].item()
        if hasattr(picked[0], "item")
        else picked[0]
    )
