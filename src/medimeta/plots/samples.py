"""Pictures of samples of one dataset: labelled panels (torchgeo's ``plot``) and a plain
image grid (MedMNIST's ``montage``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from medimeta.errors import MedIMetaError
from medimeta.plots.grid import Cell, GridStyle, chunk, draw_grid
from medimeta.plots.source import Selection, label_text, prediction_text, select

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from PIL import Image


def _positions(positions: int | Sequence[int] | np.ndarray) -> np.ndarray:
    if isinstance(positions, int | np.integer):
        return np.array([int(positions)], dtype=np.int64)
    return np.asarray(positions, dtype=np.int64).reshape(-1)


def _caption(
    sel: Selection, glob: int, prediction: Any, show_task: bool, tasks: Sequence[Any]
) -> str:
    lines = []
    for task in tasks:
        truth = label_text(task, sel.labels(task, np.array([glob]))[0])
        pred = prediction.get(task.name) if isinstance(prediction, Mapping) else prediction
        if show_task:
            line = f"{task.name}: {truth}"
            if pred is not None:
                line += (
                    f" / prediction: {prediction_text(task, pred, ordinal_index=sel.ordinal_index)}"
                )
            lines.append(line)
            continue
        lines.append(f"label: {truth}")
        if pred is not None:
            lines.append(
                f"prediction: {prediction_text(task, pred, ordinal_index=sel.ordinal_index)}"
            )
    return "\n".join(lines)


def plot_samples(
    dataset: Any,
    positions: int | Sequence[int] | np.ndarray,
    predictions: Sequence[Any] | None = None,
    *,
    columns: int = 4,
    tasks: Sequence[str] | None = None,
    tile: float = 2.0,
    title: str | None = None,
) -> Figure:
    """Images at local ``positions`` of ``dataset`` with their label names.

    ``dataset`` is a ``MedIMeta`` (its task), a ``MedIMetaMultiTask`` (one line per task,
    ``tasks`` to choose) or a :class:`~medimeta.format.reader.DatasetFolder`. Labels are shown
    by name: the class name, for multi-label tasks the names of the positive labels. Grey
    images are drawn with the grey colour map. ``predictions`` (one per position) are shown
    beside the truth, torchgeo's way ("label: X" / "prediction: Y"): a class name, a label key
    as stored (an ordinal class position when the dataset hands out ``ordinal_labels="index"``),
    for multi-label a multi-hot row or scores (positive above 0.5); for several tasks a dict
    task name -> such a value. Returns a matplotlib ``Figure`` with one image axes per sample.
    """
    sel = select(dataset)
    pos = _positions(positions)
    if predictions is not None and len(predictions) != pos.size:
        raise MedIMetaError(f"{len(predictions)} predictions for {pos.size} positions")
    chosen = [sel.folder.task(t) for t in tasks] if tasks is not None else list(sel.tasks)
    glob = sel.global_indices(pos)
    images = sel.images(glob)
    cells = [
        Cell(
            images[i],
            _caption(
                sel,
                int(glob[i]),
                None if predictions is None else predictions[i],
                len(chosen) > 1,
                chosen,
            ),
        )
        for i in range(pos.size)
    ]
    head = title if title is not None else f"{sel.title}, split {sel.split}"
    return draw_grid(chunk(cells, min(columns, len(cells))), title=head, style=GridStyle(tile=tile))


def montage(
    dataset: Any,
    n: int = 20,
    *,
    seed: int = 0,
    replace: bool = False,
    tile_size: int | None = None,
    length: int | None = None,
) -> Image.Image:
    """An ``n`` x ``n`` grid of randomly chosen images of ``dataset`` as a PIL image.

    MedMNIST's ``montage(length=20)`` convention: ``n`` (alias ``length``) is the side of the
    grid, so ``n * n`` samples are drawn, without replacement unless ``replace``. The choice is
    a pure function of ``seed`` (``numpy.random.default_rng(seed)``; global RNGs untouched).
    Tiles keep the stored size unless ``tile_size`` (pixels) is given. Grey data give an ``L``
    image, RGB data an ``RGB`` image. ``dataset``: as for :func:`plot_samples`.
    """
    from PIL import Image

    side = length if length is not None else n
    sel = select(dataset)
    count = side * side
    if side < 1:
        raise MedIMetaError(f"montage side must be at least 1; got {side}")
    if count > len(sel) and not replace:
        raise MedIMetaError(
            f"a {side}x{side} montage needs {count} images but {sel.title} (split {sel.split}) "
            f"has {len(sel)}; pass replace=True or a smaller n"
        )
    rng = np.random.default_rng(seed)
    positions = rng.choice(len(sel), size=count, replace=replace)
    images = sel.images(sel.global_indices(positions))
    if tile_size is not None:
        size = (tile_size, tile_size)
        images = np.stack(
            [
                np.asarray(Image.fromarray(img).resize(size, Image.Resampling.LANCZOS))
                for img in images
            ]
        )
    h, w = images.shape[1:3]
    grid = images.reshape(side, side, h, w, *images.shape[3:])
    grid = grid.swapaxes(1, 2).reshape(side * h, side * w, *images.shape[3:])
    return Image.fromarray(np.ascontiguousarray(grid))
