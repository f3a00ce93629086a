"""Images and labels of one task split as arrays for training and evaluation.

Images stay uint8 (N, C, S, S) at the training size ``S`` (resized once, with antialiasing
when shrinking; then, when given, a ``transform`` of the uint8 batch such as a model's own
resize and crop); the caller turns a batch into floats, optionally augments it in [0, 1] and
normalises it with :class:`medimeta.data.pixels.Normalizer`. Splits that fit in
``max_preload_bytes`` are read into memory once; larger ones are read per batch from the
image store. Pixels are read with :func:`medimeta.data.pixels.load_images`, the route the
datasets use.

Labels come in the ``"metric"`` encoding of :meth:`medimeta.catalog.TaskSpec.encode_labels`
(what the losses and :func:`medimeta.evaluate.compute_metrics` take): multi-class and
ordinal as class indices 0..C-1 (ordinal keys mapped in rank order), binary 0/1 (N,),
multi-label multi-hot (N, C).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional as F

from medimeta.catalog.tasks import TaskSpec
from medimeta.data.pixels import load_images
from medimeta.errors import ShapeError, SplitError
from medimeta.format.images import ImageStore
from medimeta.format.reader import DatasetFolder

DEFAULT_MAX_PRELOAD_BYTES = 4 << 30
RESIZE_MODES = ("auto", "area", "bilinear", "bicubic", "nearest")


def resize_uint8(x: torch.Tensor, size: int | None, mode: str = "auto") -> torch.Tensor:
    """(B, C, H, W) uint8 resized to (size, size); unchanged when already that size.

    ``"auto"``: shrinking by a whole factor averages blocks ("area"; this exactly undoes a
    nearest-neighbour enlargement such as MedMNIST 28 -> 224), other sizes use bilinear
    interpolation, antialiased when shrinking.
    """
    if size is None or tuple(x.shape[-2:]) == (size, size):
        return x
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {RESIZE_MODES}; got {mode!r}")
    h, w = x.shape[-2:]
    if mode == "auto":
        whole = h % size == 0 and w % size == 0 and h >= size and w >= size
        mode = "area" if whole else "bilinear"
    kwargs: dict[str, bool] = {}
    if mode in ("bilinear", "bicubic"):
        kwargs = {"antialias": size < min(h, w), "align_corners": False}
    out = F.interpolate(x.float(), size=(size, size), mode=mode, **kwargs)
    return out.round_().clamp_(0, 255).to(torch.uint8)


@dataclass
class SplitData:
    """The samples of one split: global indices, labels and a way to read image batches."""

    folder: DatasetFolder
    task: TaskSpec
    split: str
    indices: np.ndarray
    labels: np.ndarray
    image_size: int | None
    channels: int
    resize_mode: str = "auto"
    images: torch.Tensor | None = None  # preloaded uint8 (N, C, S, S)
    transform: Callable[[torch.Tensor], torch.Tensor] | None = field(default=None, repr=False)
    _store: ImageStore | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.indices.size)

    @property
    def preloaded(self) -> bool:
        return self.images is not None

    def _read(self, global_indices: np.ndarray) -> torch.Tensor:
        if self._store is None:
            self._store = self.folder.image_store()
        x = load_images(self._store, global_indices, self.channels, "uint8").contiguous()
        x = resize_uint8(x, self.image_size, self.resize_mode)
        return x if self.transform is None else self.transform(x)

    def preload(self, chunk: int = 256) -> None:
        """Read every image once into memory (at the training size)."""
        if self.images is not None or len(self) == 0:
            return
        parts = [self._read(self.indices[i : i + chunk]) for i in range(0, len(self), chunk)]
        self.images = torch.cat(parts)

    def batch(self, positions: np.ndarray | Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images (B, C, S, S) and label tensor at local ``positions``."""
        pos = np.asarray(positions, dtype=np.int64)
        if self.images is not None:
            x = self.images[torch.from_numpy(pos)]
        else:
            x = self._read(self.indices[pos])
        return x, torch.from_numpy(self.labels[pos])

    def class_counts(self) -> dict[int, int]:
        """Samples per class (multi-label: positives per label)."""
        if self.labels.ndim == 2:
            return {c: int(v) for c, v in enumerate(self.labels.sum(axis=0))}
        values, counts = np.unique(self.labels, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts, strict=True)}


def load_split(
    folder: DatasetFolder,
    task: TaskSpec,
    split: str,
    *,
    image_size: int | None,
    channels: int | None = None,
    original: bool = False,
    resize_mode: str = "auto",
    max_preload_bytes: int = DEFAULT_MAX_PRELOAD_BYTES,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> SplitData:
    """The ``split`` of ``task`` (``original=True``: from original_splits/), preloaded if small;
    ``transform`` maps each uint8 batch after the resize (e.g. a model's own resize and crop)."""
    indices = folder.split_indices(split, original=original)
    channels = channels or folder.num_channels
    if channels not in (1, 3):
        raise ShapeError(f"channels must be 1 or 3; got {channels}")
    labels = task.encode_labels(folder.labels(task.name), "metric")[indices]
    data = SplitData(folder, task, split, indices, labels, image_size, channels, resize_mode)
    data.transform = transform
    side = image_size or folder.spec.input_size[-1]
    if indices.size * channels * side * side <= max_preload_bytes:
        data.preload()
    return data


def require_nonempty(data: SplitData, purpose: str) -> None:
    """SplitError naming the dataset and split when ``data`` has no samples."""
    if len(data) == 0:
        raise SplitError(
            f"{data.folder.path}: split {data.split!r} of task {data.task.name!r} is empty; "
            f"it is needed for {purpose}"
        )
