"""Overview pictures: one tile per dataset of a root (the MedIMeta paper's Fig. 1) and one row
of examples per class of a task."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medimeta.catalog import TaskSpec, TaskTarget
from medimeta.errors import DatasetNotFoundError, UnknownNameError
from medimeta.format.reader import DatasetFolder, find_datasets
from medimeta.logs import plural
from medimeta.plots.grid import Cell, GridStyle, Row, chunk, draw_grid, label_width_for
from medimeta.plots.source import Selection, pick_task, select

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def present_datasets(root: str | Path, ids: Sequence[str] = ()) -> dict[str, Path]:
    """Dataset folders in ``root`` (all, or those in ``ids``, in that order)."""
    found = find_datasets(root)
    if not found:
        raise DatasetNotFoundError(
            f"no dataset folders (with an info.yaml) in {root}; pass the folder that holds "
            "them as --root"
        )
    for ds_id in ids:
        if ds_id not in found:
            raise UnknownNameError("dataset id", ds_id, found, where=str(root))
    return {i: found[i] for i in ids} if ids else dict(sorted(found.items()))


def _tile_of(folder: DatasetFolder, seed: int) -> np.ndarray:
    # Seeded by the id too, so a dataset keeps its tile when others are added to the root.
    rng = np.random.default_rng([seed, zlib.crc32(folder.id.encode("utf-8"))])
    store = folder.image_store()
    try:
        return store.read_batch([int(rng.integers(folder.num_samples))])[0]
    finally:
        store.close()


def dataset_overview(
    root: str | Path,
    ids: Sequence[str] = (),
    *,
    seed: int = 0,
    columns: int = 5,
    tile: float = 1.6,
    title: str | None = None,
) -> Figure:
    """One example image per dataset present in ``root`` (or of ``ids``), captioned with the
    domain and the id, as in the MedIMeta paper's Fig. 1. The image of a dataset is a pure
    function of ``seed`` and its id."""
    folders = present_datasets(root, ids)
    cells = []
    for ds_id, path in folders.items():
        folder = DatasetFolder(path)
        cells.append(Cell(_tile_of(folder, seed), f"{folder.spec.domain}\n{ds_id}"))
    head = (
        title
        if title is not None
        else f"{plural(len(cells), 'dataset')} in {Path(root).name or root}"
    )
    rows = chunk(cells, min(columns, len(cells)))
    return draw_grid(rows, title=head, style=GridStyle(tile=tile))


def class_members(sel: Selection, task: TaskSpec) -> list[tuple[int, str, np.ndarray]]:
    """Per class of ``task``, in key order: key, name and the local positions of its samples
    (multi-label: of the samples where that label is positive)."""
    raw = sel.labels(task, sel.indices)
    out = []
    for j, key in enumerate(task.keys):
        if task.target is TaskTarget.MULTILABEL_CLASSIFICATION:
            mask = raw[:, j] == 1
        else:
            mask = raw.reshape(-1) == key
        out.append((key, task.labels[key], np.flatnonzero(mask)))
    return out


def class_grid(
    dataset: Any,
    per_class: int = 5,
    *,
    task: str | None = None,
    seed: int = 0,
    tile: float = 1.2,
    title: str | None = None,
) -> Figure:
    """``per_class`` random images of each class of ``task``, one row per class with its name
    and count. Multi-label tasks: one row per label showing images where it is positive (an
    image can appear in several rows). ``dataset``: a ``MedIMeta`` (its task and split), a
    ``MedIMetaMultiTask`` or a ``DatasetFolder`` (``task`` or the first task). The choice is a
    pure function of ``seed``."""
    sel = select(dataset)
    spec = pick_task(sel, task)
    rng = np.random.default_rng(seed)
    rows = []
    for _key, name, members in class_members(sel, spec):
        chosen = rng.choice(members, size=min(per_class, members.size), replace=False)
        cells: tuple[Cell, ...] = (Cell(None, note="no images"),)
        if chosen.size:
            cells = tuple(Cell(img) for img in sel.images(sel.global_indices(chosen)))
        rows.append(
            Row((cells,), label=f"{name}\n({plural(int(members.size), 'image', thousands=True)})")
        )
    multilabel = spec.target is TaskTarget.MULTILABEL_CLASSIFICATION
    if title is None:
        title = f"{sel.title}, task '{spec.name}', split {sel.split}: "
        title += (
            "multi-label, one row per label showing images where it is positive"
            if multilabel
            else f"{per_class} random images per class"
        )
        title += f" (seed {seed})"
    style = GridStyle(tile=tile, label_width=label_width_for([r.label for r in rows]))
    return draw_grid(rows, title=title, style=style)
