"""The label view episodes are drawn from: one task, one split, optional subjects; no pixels."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import cast

import numpy as np

from medimeta.catalog import TaskSpec, TaskTarget
from medimeta.errors import EpisodeError, SplitError
from medimeta.format import layout
from medimeta.format.reader import DatasetFolder

FINGERPRINT_TAG = b"medimeta-episodes-fingerprint-v1\x00"


def normalise_split(split: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``None``/``"all"`` -> None; ``"train+val"``, ``"train,val"`` or a list -> sorted names."""
    if split is None:
        return None
    if isinstance(split, str):
        if split.strip().lower() in ("", "all"):
            return None
        names = [s.strip() for s in split.replace("+", ",").split(",") if s.strip()]
    else:
        names = [str(s) for s in split]
    unknown = [s for s in names if s not in layout.SPLIT_NAMES]
    if unknown or not names:
        raise SplitError(
            f"unknown split {split!r}; use one of {list(layout.SPLIT_NAMES)}, several joined "
            f"with '+' (e.g. 'train+val'), or 'all'"
        )
    return tuple(sorted(set(names), key=layout.SPLIT_NAMES.index))


def split_label(split: tuple[str, ...] | None, original: bool = False) -> str:
    """Text form of a split selection: ``all``, ``test``, ``train+val``, ``original:test``."""
    text = "+".join(split) if split else "all"
    return f"original:{text}" if original and split else text


@dataclass(frozen=True)
class Units:
    """Sampling units: single samples, or subjects owning a group of samples.

    Unit ``u`` has code ``codes[u]`` (a global sample index, or a subject code) and owns
    ``rows[starts[u]:starts[u + 1]]`` (global sample indices); ``starts is None`` means one
    row per unit.
    """

    codes: np.ndarray
    rows: np.ndarray
    starts: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.codes.size)

    def members(self, picks: np.ndarray) -> np.ndarray:
        """Global indices of the picked units, unit after unit."""
        if self.starts is None:
            return self.rows[picks]
        parts = [self.rows[self.starts[p] : self.starts[p + 1]] for p in picks.tolist()]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def _group(rows: np.ndarray, subjects: np.ndarray) -> Units:
    order = np.lexsort((rows, subjects))
    rows, subjects = rows[order], subjects[order]
    codes, starts = np.unique(subjects, return_index=True)
    return Units(codes, rows, np.append(starts, rows.size).astype(np.int64))


class TaskPool:
    """Labels (as stored), global indices and optional subject codes of one task and split."""

    def __init__(
        self,
        folder: DatasetFolder,
        task_name: str,
        split: str | Sequence[str] | None = None,
        *,
        original_split: bool = False,
        subject_column: str | None = None,
    ) -> None:
        self.folder = folder
        self.task: TaskSpec = folder.task(task_name)
        self.split = normalise_split(split)
        self.original_split = bool(original_split and self.split)
        if self.split is None:
            self.indices = np.arange(folder.num_samples, dtype=np.int64)
        else:
            self.indices = folder.split_indices(self.split, original=self.original_split)
        if self.indices.size == 0:
            raise SplitError(
                f"{folder.path}: split {self.split_label!r} has no samples; pick another split"
            )
        self.all_labels = folder.labels(self.task.name)
        self.labels = self.all_labels[self.indices]
        self.subject_column = subject_column
        self.subjects: np.ndarray | None = None
        self.subject_names: np.ndarray | None = None
        if subject_column:
            self.subject_names, self.subjects = self._read_subjects(subject_column)

    def __repr__(self) -> str:
        return f"TaskPool({self.identifier!r}, split={self.split_label!r}, n={self.indices.size})"

    @property
    def identifier(self) -> str:
        return self.task.identifier

    @property
    def target(self) -> TaskTarget:
        return self.task.target

    @property
    def split_label(self) -> str:
        return split_label(self.split, self.original_split)

    @property
    def class_keys(self) -> tuple[int, ...]:
        """Keys episodes choose from (binary: 0 and 1; multi-label: one key per label)."""
        return (0, 1) if self.target is TaskTarget.BINARY_CLASSIFICATION else self.task.keys

    def class_name(self, key: int) -> str:
        return self.task.labels[key]

    def _read_subjects(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        values = self.folder.metadata([column])[column][self.indices]
        names = np.array([str(v) for v in values], dtype=object)
        missing = np.array([v is None or v != v or str(v).strip() == "" for v in values])
        if missing.any():
            # A sample without a subject id cannot share a subject with anything: its own unit.
            warnings.warn(
                f"{self.folder.path}: {int(missing.sum())} samples have no {column!r}; each "
                f"counts as its own subject",
                UserWarning,
                stacklevel=3,
            )
            names[missing] = [f"<no subject: sample {i}>" for i in self.indices[missing]]
        uniq, codes = np.unique(names.astype(str), return_inverse=True)
        return uniq, codes.astype(np.int64)

    # -- sampling units -------------------------------------------------------------------------
    def class_units(self, key: int) -> Units:
        """Units of one class of a single-label task (subjects: only their images of ``key``)."""
        return self._class_units[key]

    @cached_property
    def _class_units(self) -> dict[int, Units]:
        if self.target is TaskTarget.MULTILABEL_CLASSIFICATION:
            raise EpisodeError(f"{self.identifier} is multi-label; it has no single-label classes")
        out: dict[int, Units] = {}
        for key in self.class_keys:
            sel = self.labels == key
            rows = self.indices[sel]
            if self.subjects is None:
                out[key] = Units(rows, rows)
            else:
                out[key] = _group(rows, self.subjects[sel])
        return out

    @cached_property
    def label_cover(self) -> tuple[Units, np.ndarray, np.ndarray]:
        """Multi-label units over the whole pool with (U, L) masks 'has a positive/negative'."""
        if self.target is not TaskTarget.MULTILABEL_CLASSIFICATION:
            raise EpisodeError(f"{self.identifier} is not multi-label")
        positive = self.labels.astype(bool)
        if self.subjects is None:
            return Units(self.indices, self.indices), positive, ~positive
        units = _group(self.indices, self.subjects)
        order = np.lexsort((self.indices, self.subjects))
        heads = cast(np.ndarray, units.starts)[:-1]  # always set by _group
        pos = np.logical_or.reduceat(positive[order], heads, axis=0)
        neg = np.logical_or.reduceat(~positive[order], heads, axis=0)
        return units, pos, neg

    def unit_counts(self) -> dict[int, tuple[int, int]]:
        """Units per class key: (positives, negatives) for multi-label, (count, 0) otherwise."""
        if self.target is TaskTarget.MULTILABEL_CLASSIFICATION:
            _, pos, neg = self.label_cover
            return {
                key: (int(pos[:, col].sum()), int(neg[:, col].sum()))
                for col, key in enumerate(self.class_keys)
            }
        return {key: (len(self.class_units(key)), 0) for key in self.class_keys}

    # -- identity of the data -------------------------------------------------------------------
    @cached_property
    def fingerprint(self) -> str:
        """sha256 over dataset id, task, split, the split's indices and their labels (int64)."""
        digest = hashlib.sha256(FINGERPRINT_TAG)
        head = {
            "dataset": self.folder.id,
            "task": self.task.name,
            "split": list(self.split) if self.split else None,
            "original_split": self.original_split,
            "labels_shape": list(self.labels.shape),
            "subject_column": self.subject_column,
        }
        digest.update(json.dumps(head, sort_keys=True).encode("utf-8") + b"\x00")
        digest.update(self.indices.astype("<i8").tobytes())
        digest.update(np.ascontiguousarray(self.labels.astype("<i8")).tobytes())
        if self.subjects is not None and self.subject_names is not None:
            per_row = self.subject_names[self.subjects]
            digest.update("\x00".join(per_row.tolist()).encode("utf-8"))
        return digest.hexdigest()
