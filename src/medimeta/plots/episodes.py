"""The images of a few-shot episode: support and query side by side, one row per class."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medimeta.catalog import TaskTarget
from medimeta.errors import EpisodeError
from medimeta.format.reader import DatasetFolder
from medimeta.plots.grid import Cell, GridStyle, Row, draw_grid, label_width_for

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _members(episode: Any, labels: np.ndarray, cls: Any) -> np.ndarray:
    """Positions of the samples of episode class ``cls`` (multi-label: its positives)."""
    if episode.task_target is TaskTarget.MULTILABEL_CLASSIFICATION:
        return np.flatnonzero(labels[:, cls.index] == 1)
    if episode.task_target is TaskTarget.BINARY_CLASSIFICATION:
        return np.flatnonzero(labels.reshape(-1) == cls.key)  # binary labels stay 0/1 keys
    return np.flatnonzero(labels.reshape(-1) == cls.index)


def _cells(
    images: np.ndarray, rows: np.ndarray, indices: np.ndarray, limit: int | None
) -> tuple[Cell, ...]:
    take = rows[:limit] if limit is not None else rows
    cells = tuple(Cell(images[r], f"#{int(indices[r])}") for r in take)
    return cells or (Cell(None, note="none"),)


def episode_grid(
    episode: Any,
    folder: str | Path | DatasetFolder | None = None,
    *,
    max_support: int | None = None,
    max_query: int | None = None,
    tile: float = 1.0,
) -> Figure:
    """Support and query images of ``episode`` (a :class:`~medimeta.episodes.Episode`), one row
    per class with its name, each tile captioned with its global sample index.

    Multi-label episodes have one row per label showing the positives of that label (the
    title says so; an image can appear in several rows). Images come from ``folder`` (a
    dataset folder) or, when it is omitted, from the folder the episode is bound to
    (``EpisodeSet.load(path, root)`` binds it). ``max_support``/``max_query`` cap the tiles
    per row.
    """
    where = folder if folder is not None else episode.folder
    if where is None:
        raise EpisodeError(
            f"episode {episode.index} of {episode.task_id} is not bound to a dataset folder; "
            "load the set with EpisodeSet.load(path, root) or pass folder="
        )
    data = where if isinstance(where, DatasetFolder) else DatasetFolder(where)
    store = data.image_store()
    try:
        support = store.read_batch(episode.support_indices)
        query = store.read_batch(episode.query_indices)
    finally:
        store.close()
    rows = []
    for cls in episode.classes:
        s_rows = _members(episode, episode.support_labels, cls)
        q_rows = _members(episode, episode.query_labels, cls)
        rows.append(
            Row(
                (
                    _cells(support, s_rows, episode.support_indices, max_support),
                    _cells(query, q_rows, episode.query_indices, max_query),
                ),
                label=f"{cls.name}\n{s_rows.size} support, {q_rows.size} query",
            )
        )
    multilabel = episode.task_target is TaskTarget.MULTILABEL_CLASSIFICATION
    title = (
        f"{episode.task_identifier}: episode {episode.index} "
        f"({episode.n_way}-way, split {episode.split}, seed {episode.seed})"
    )
    if multilabel:
        title += "; multi-label: each row shows the positives of one label"
    style = GridStyle(tile=tile, label_width=label_width_for([r.label for r in rows]))
    return draw_grid(rows, headers=("support", "query"), title=title, style=style)
