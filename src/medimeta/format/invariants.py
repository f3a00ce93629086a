"""The rules every dataset folder keeps, shared by ``verify`` and the loaders.

``verify`` lists every broken rule; a loader refuses on the first one (:func:`require`), so no
loader hands out data that ``verify`` rejects. The cheap rules (split files: counts as in
info.yaml, disjoint, covering; image array shape equal to ``input_size``) are checked when a
folder is opened; the costly ones when the data they guard is first read (label arrays per
task, ``annotations.csv`` rows keyed by ``filepath`` in index order).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from medimeta.errors import FormatError
from medimeta.format import layout
from medimeta.logs import plural

SplitReader = Callable[[str, bool], np.ndarray]


class Folder(Protocol):
    """What the rules read of a dataset folder (``reader.DatasetFolder``)."""

    path: Path

    @property
    def num_samples(self) -> int: ...

    def split_counts(self, *, original: bool = False) -> dict[str, int]: ...

    def split_indices(self, split: str, *, original: bool = False) -> np.ndarray: ...


def require(problems: Iterable[FormatError]) -> None:
    """Raise the first problem, if any."""
    for problem in problems:
        raise problem


def split_problems(folder: Folder, read_split: SplitReader, *, original: bool) -> list[FormatError]:
    """Split files against info.yaml: line counts, no sample in two splits, none in no split."""
    kind = "original_splits" if original else "splits"
    counts = folder.split_counts(original=original)
    seen = np.zeros(folder.num_samples, dtype=np.int64)
    problems: list[FormatError] = []
    for split in layout.SPLIT_NAMES:
        path = layout.split_path(folder.path, split, original=original)
        try:
            idx = read_split(split, original)
        except FormatError as exc:
            problems.append(exc)
            continue
        want = counts.get(split, 0)
        if idx.size != want:
            problems.append(
                FormatError(
                    path,
                    f"{idx.size} lines, info.yaml {kind}_num_samples.{split} = {want}",
                    key=f"{kind}_num_samples.{split}",
                    expected=want,
                    actual=int(idx.size),
                    fix="re-download or rebuild the dataset (or correct info.yaml)",
                )
            )
        seen[idx] += 1
    twice = np.flatnonzero(seen > 1)
    if twice.size:
        problems.append(
            FormatError(
                folder.path / kind,
                f"{plural(int(twice.size), 'sample')} listed in more than one split "
                f"(first: {layout.image_name(int(twice[0]))})",
                expected="disjoint splits",
                actual=f"{twice.size} shared samples",
                fix="each sample belongs to exactly one of train/val/test; rebuild the splits",
            )
        )
    missing = np.flatnonzero(seen == 0)
    if missing.size and not twice.size:
        problems.append(
            FormatError(
                folder.path / kind,
                f"{plural(int(missing.size), 'sample')} in no split "
                f"(first: {layout.image_name(int(missing[0]))})",
                expected="splits covering every sample",
                actual=f"{missing.size} uncovered samples",
                fix="each sample belongs to exactly one of train/val/test; rebuild the splits",
            )
        )
    return problems


def annotation_problems(folder: Folder, frame: Any) -> list[FormatError]:
    """``annotations.csv``: one row per sample, keyed by ``filepath`` in index order, and a
    ``split`` column (if any) that agrees with the split files."""
    path = folder.path / layout.ANNOTATIONS_FILE
    n = folder.num_samples
    if len(frame) != n:
        return [
            FormatError(
                path,
                f"{len(frame)} rows, expected {n} (one per sample)",
                key="rows",
                expected=n,
                actual=len(frame),
                fix="re-download or rebuild the dataset",
            )
        ]
    expected = np.array([layout.image_name(i) for i in range(n)], dtype=object)
    given = frame["filepath"].astype(str).to_numpy()
    wrong = np.flatnonzero(given != expected)
    if wrong.size:
        row = int(wrong[0])
        return [
            FormatError(
                path,
                f"rows are not keyed by 'filepath' in index order (first at row {row + 1})",
                key="filepath",
                expected=str(expected[row]),
                actual=str(given[row]),
                fix="sort the rows by filepath (images/000000.tiff, ...) or rebuild the dataset",
            )
        ]
    if "split" in frame.columns:
        column = frame["split"].to_numpy()
        for split in layout.SPLIT_NAMES:
            idx = folder.split_indices(split)
            bad = idx[column[idx] != split] if idx.size else idx
            if bad.size:
                return [
                    FormatError(
                        path,
                        f"'split' column disagrees with splits/{split}.txt "
                        f"(first: {layout.image_name(int(bad[0]))})",
                        key="split",
                        expected=split,
                        actual=str(column[bad[0]]),
                        fix="rebuild the dataset (the split files are authoritative)",
                    )
                ]
    return []
