"""Reading one MedIMeta dataset folder exactly as released: info, labels, splits, annotations.

Finding folders in a root (``find_datasets``, ``locate_dataset``, ``read_info_file``) lives in
:mod:`medimeta.format.locate`, which needs no numpy; the names are importable from here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from medimeta.catalog import DatasetSpec, TaskSpec, TaskTarget
from medimeta.errors import DatasetNotFoundError, FormatError, UnknownNameError
from medimeta.format import invariants, layout
from medimeta.format.images import ImageStore
from medimeta.format.locate import find_datasets, locate_dataset, read_info_file

__all__ = [
    "DatasetFolder",
    "find_datasets",
    "locate_dataset",
    "read_info_file",
    "validate_labels",
]


class DatasetFolder:
    """One dataset folder: its parsed info, label arrays, split indices and annotations.

    Opening checks the cheap rules of :mod:`medimeta.format.invariants` (split files against
    info.yaml, disjoint and covering); label arrays and annotations are checked when first
    read. ``check=False`` skips the opening checks (``verify`` reports them itself).
    """

    def __init__(self, path: str | Path, *, check: bool = True) -> None:
        self.path = Path(path)
        self.info_path = self.path / layout.INFO_FILE
        self.info = read_info_file(self.info_path)
        self.spec = DatasetSpec.from_info_dict(self.info, info_file=str(self.info_path))
        self._labels: dict[str, np.ndarray] = {}
        self._splits: dict[tuple[str, bool], np.ndarray] = {}
        if check:
            for original in (False, True):
                invariants.require(
                    invariants.split_problems(self, self._read_split, original=original)
                )

    @classmethod
    def from_root(cls, root: str | Path, dataset_id: str) -> DatasetFolder:
        return cls(locate_dataset(root, dataset_id))

    def __repr__(self) -> str:
        return f"DatasetFolder({str(self.path)!r}, id={self.spec.id!r}, n={self.num_samples})"

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def num_samples(self) -> int:
        return self.spec.num_samples

    @property
    def num_channels(self) -> int:
        return self.spec.num_channels

    def task(self, task_name: str) -> TaskSpec:
        return self.spec.task(task_name)

    # -- labels ---------------------------------------------------------------------------
    def labels(self, task_name: str) -> np.ndarray:
        """The task's label array as stored (binary flat, ordinal raw keys), validated, int64."""
        if task_name not in self._labels:
            self._labels[task_name] = self._load_labels(self.task(task_name))
        return self._labels[task_name]

    def _load_labels(self, task: TaskSpec) -> np.ndarray:
        path = layout.task_label_path(self.path, task.name)
        if not path.is_file():
            raise DatasetNotFoundError(
                f"{path}: label file of task {task.name!r} is missing "
                f"(the file stem must equal the task name, spaces included); rebuild or re-download"
            )
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise FormatError(
                path,
                f"not a readable plain numpy array ({exc})",
                key=task.name,
                fix="re-download or rebuild the dataset (labels are saved as int64 .npy)",
            ) from None
        return validate_labels(arr, task, self.num_samples, path)

    # -- splits ---------------------------------------------------------------------------
    def split_counts(self, *, original: bool = False) -> dict[str, int]:
        return dict(self.spec.original_splits if original else self.spec.splits)

    def split_indices(self, split: str | Iterable[str], *, original: bool = False) -> np.ndarray:
        """Sorted global indices of one split or the union of several."""
        names = [split] if isinstance(split, str) else list(split)
        parts = [self._read_split(name, original) for name in names]
        if not parts:
            return np.empty(0, dtype=np.int64)
        return np.sort(np.concatenate(parts))

    def _read_split(self, split: str, original: bool) -> np.ndarray:
        if (split, original) not in self._splits:
            self._splits[split, original] = self._parse_split(split, original)
        return self._splits[split, original]

    def _parse_split(self, split: str, original: bool) -> np.ndarray:
        if split not in layout.SPLIT_NAMES:
            raise UnknownNameError("split", split, layout.SPLIT_NAMES)
        path = layout.split_path(self.path, split, original=original)
        expected = self.split_counts(original=original).get(split, 0)
        if not path.is_file():
            if expected:
                raise FormatError(
                    path,
                    "split file is missing but info.yaml lists samples for it",
                    key=f"{'original_' if original else ''}splits_num_samples.{split}",
                    expected=f"{expected} lines",
                    actual="no file",
                    fix="re-download or rebuild the dataset",
                )
            return np.empty(0, dtype=np.int64)  # a missing file is an empty split
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError(
                path, f"not UTF-8 text ({exc.reason})", fix="re-download or rebuild the dataset"
            ) from None
        lines = [ln for ln in text.splitlines() if ln.strip()]
        try:
            idx = np.array([layout.index_from_line(ln) for ln in lines], dtype=np.int64)
        except ValueError as exc:
            raise FormatError(path, str(exc), fix="each line must be images/NNNNNN.tiff") from None
        if idx.size and (idx.max() >= self.num_samples):
            raise FormatError(
                path,
                "split lists an index beyond the dataset",
                expected=f"< {self.num_samples}",
                actual=int(idx.max()),
            )
        if np.unique(idx).size != idx.size:
            raise FormatError(path, "split lists a sample twice", fix="remove duplicate lines")
        return np.sort(idx)

    # -- images and annotations -----------------------------------------------------------
    def image_store(self, backend: str = "auto") -> ImageStore:
        return ImageStore(
            self.path,
            num_samples=self.num_samples,
            num_channels=self.num_channels,
            image_size=self.spec.image_size,
            backend=backend,
        )

    @cached_property
    def annotations(self) -> Any:
        """``annotations.csv`` as a pandas DataFrame: one row per sample, keyed by
        ``filepath`` in index order (FormatError otherwise)."""
        frame = self.read_annotations()
        invariants.require(invariants.annotation_problems(self, frame))
        return frame

    def read_annotations(self) -> Any:
        """``annotations.csv`` as a pandas DataFrame, unchecked but for its ``filepath`` column."""
        import pandas as pd

        path = self.path / layout.ANNOTATIONS_FILE
        if not path.is_file():
            raise DatasetNotFoundError(
                f"{path}: annotations.csv is missing; rebuild or re-download"
            )
        try:
            frame = pd.read_csv(path, keep_default_na=True, low_memory=False)
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise FormatError(
                path,
                f"not a readable CSV file ({type(exc).__name__}: {exc})",
                fix="re-download or rebuild the dataset",
            ) from None
        if not len(frame.columns) or frame.columns[0] != "filepath":
            raise FormatError(
                path,
                "first column must be 'filepath'",
                expected="filepath",
                actual=frame.columns[0] if len(frame.columns) else None,
            )
        return frame

    def metadata(self, columns: Sequence[str]) -> dict[str, np.ndarray]:
        """Selected annotation columns as arrays indexed by global sample index."""
        frame = self.annotations
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise UnknownNameError(
                "annotation column", missing[0], list(frame.columns), where=str(self.path)
            )
        return {c: frame[c].to_numpy() for c in columns}


def validate_labels(arr: np.ndarray, task: TaskSpec, num_samples: int, path: Path) -> np.ndarray:
    """Check a label array against its task (shape, values) and return it as int64."""
    target = task.target
    multilabel = target is TaskTarget.MULTILABEL_CLASSIFICATION
    expected_shape: tuple[int, ...] = (
        (num_samples, task.num_classes) if multilabel else (num_samples,)
    )
    if target is TaskTarget.BINARY_CLASSIFICATION and arr.shape == (num_samples, 1):
        arr = arr.reshape(num_samples)
    if arr.shape != expected_shape:
        raise FormatError(
            path,
            f"label array has the wrong shape for a {target.value} task",
            key=task.name,
            expected=expected_shape,
            actual=arr.shape,
            fix="one row per sample; multi-label tasks one column per label",
        )
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise FormatError(
                path, "labels must be whole numbers", key=task.name, actual=str(arr.dtype)
            )
    elif arr.dtype.kind not in "iub":
        raise FormatError(
            path, "labels must be integers", key=task.name, expected="int64", actual=str(arr.dtype)
        )
    labels = arr.astype(np.int64, copy=False)
    allowed = np.array([0, 1] if multilabel else task.keys, dtype=np.int64)
    bad = ~np.isin(labels, allowed)
    if bad.any():
        first = np.argwhere(bad)[0]
        raise FormatError(
            path,
            f"label value not allowed (first at row {int(first[0])})",
            key=task.name,
            expected=sorted(allowed.tolist()),
            actual=int(labels[tuple(first)]),
            fix="labels must be keys of the task's label dict (multi-label: 0/1)",
        )
    return labels
