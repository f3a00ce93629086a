"""Shared machinery of the PyTorch datasets: folder, sample selection, pixels, batch loaders."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

from medimeta.data.pixels import DTYPES, get_normalization, load_images
from medimeta.errors import DatasetNotFoundError, SplitError, UnknownNameError, check_choice
from medimeta.format.layout import default_root
from medimeta.format.reader import DatasetFolder, locate_dataset

Split = str | Sequence[str] | None


def resolve_root(data_path: str | Path | None) -> Path:
    """``data_path`` if given, else ``$MEDIMETA_ROOT``, else ``./data/MedIMeta``."""
    return Path(data_path) if data_path is not None else default_root()


def _present(root: Path, dataset_id: str) -> bool:
    """Whether ``dataset_id`` is already in ``root`` (downloaded, built or copied by hand)."""
    try:
        locate_dataset(root, dataset_id)
    except (DatasetNotFoundError, UnknownNameError):
        return False
    return True


def _as_index(index: Any) -> tuple[np.ndarray, bool]:
    """Normalise an int / sequence / array / tensor index to (int64 array, is_batch)."""
    if isinstance(index, int | np.integer):
        return np.array([int(index)], dtype=np.int64), False
    if isinstance(index, torch.Tensor):
        if index.ndim == 0:
            return np.array([int(index)], dtype=np.int64), False
        return index.to(torch.int64).numpy(), True
    if isinstance(index, slice):
        raise TypeError("slices are not supported; pass a list of positions")
    return np.asarray(index, dtype=np.int64).reshape(-1), True


class ImageDatasetBase(torch.utils.data.Dataset):
    """Selection of samples of one dataset folder plus the uint8 -> tensor pipeline.

    Indexing with an int gives one sample; with a list/array/tensor of positions it gives a whole
    batch, read in file order in one pass and converted with one vectorised operation.
    """

    def __init__(
        self,
        data_path: str | Path | None,
        dataset_id: str,
        *,
        split: Split = None,
        original_split: Split = None,
        use_hdf5: bool = True,
        backend: str | None = None,
        channels: int | None = None,
        dtype: str = "float",
        normalize: str = "half",
        download: bool = False,
        pin_memory: bool = False,
    ) -> None:
        root = resolve_root(data_path)
        if download and not _present(root, dataset_id):
            from medimeta.fetch import ensure_dataset

            ensure_dataset(root, dataset_id)
        self.data_path = root
        self.folder = DatasetFolder(locate_dataset(root, dataset_id))
        self.info: dict[str, Any] = self.folder.info
        if split is not None and original_split is not None:
            raise SplitError(
                f"pass either split={split!r} or original_split={original_split!r}, not both"
            )
        self.split = split
        self.original_split = original_split
        if split is not None:
            self.split_indices = self.folder.split_indices(split)
        elif original_split is not None:
            self.split_indices = self.folder.split_indices(original_split, original=True)
        else:
            self.split_indices = np.arange(self.folder.num_samples, dtype=np.int64)
        self.store = self.folder.image_store(backend or ("auto" if use_hdf5 else "tiff"))
        self.dtype = check_choice("dtype", dtype, DTYPES)
        self.normalize = normalize
        self._normalization = get_normalization(normalize)
        self._channels = channels
        self._set_channels(channels or self.folder.num_channels)
        self.pin_memory = bool(pin_memory)

    # The original loader's users set ``dataset.num_channels = 3`` to get RGB output; keep that.
    @property
    def num_channels(self) -> int:
        return self._out_channels

    @num_channels.setter
    def num_channels(self, value: int) -> None:
        self._set_channels(value)

    def _set_channels(self, channels: int) -> None:
        check_choice("channel count", str(channels), ("1", "3"))
        self._out_channels = int(channels)

    @property
    def dataset_id(self) -> str:
        return self.folder.id

    @property
    def input_size(self) -> list[int]:
        return list(self.folder.spec.input_size)

    def __len__(self) -> int:
        return int(self.split_indices.size)

    def global_indices(self, positions: np.ndarray) -> np.ndarray:
        """Global sample indices (rows of images.hdf5) of local positions."""
        n = len(self)
        if positions.size and (positions.min() < -n or positions.max() >= n):
            raise IndexError(f"position out of range for a dataset of {n} samples")
        return self.split_indices[positions]

    def read_pixels(
        self, positions: np.ndarray, *, batch: bool = True, contiguous: bool = False
    ) -> torch.Tensor:
        """(B, C, H, W) uint8 or normalised float32 images at local ``positions``.

        ``batch``: written into a reused buffer (or shared memory in a DataLoader worker);
        ``contiguous``: C-contiguous in every channel mode (see :func:`load_images`).
        """
        glob = self.global_indices(positions)
        return load_images(
            self.store,
            glob,
            self._out_channels,
            self.dtype,
            self._normalization,
            reuse=batch,
            pin=self.pin_memory,
            contiguous=contiguous,
        )

    def pil_image(self, global_index: int) -> Any:
        """One image as a PIL image in the output channel mode (for PIL-based transforms)."""
        from PIL import Image

        arr = self.store.read(global_index)
        img = Image.fromarray(arr)
        mode = "RGB" if self._out_channels == 3 else "L"
        return img if img.mode == mode else img.convert(mode)

    def plot(self, positions: Any, predictions: Any = None, **options: Any) -> Any:
        """A matplotlib figure of the samples at ``positions`` with their label names (and
        ``predictions`` beside the truth); options as :func:`medimeta.plots.plot_samples`."""
        from medimeta.plots import plot_samples

        return plot_samples(self, positions, predictions, **options)

    def montage(self, n: int = 20, *, seed: int = 0, **options: Any) -> Any:
        """An ``n`` x ``n`` PIL image grid of random samples (MedMNIST's ``montage``)."""
        from medimeta.plots import montage

        return montage(self, n, seed=seed, **options)

    def close(self) -> None:
        """Release open file handles (reading reopens them)."""
        self.store.close()

    def __enter__(self) -> ImageDatasetBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def loader(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int | None = None,
        drop_last: bool = False,
        num_workers: int = 0,
        multiprocessing_context: str | None = None,
        collate_fn: Callable[[Any], Any] | None = None,
        **kwargs: Any,
    ) -> DataLoader:
        """A DataLoader that hands whole index batches to the dataset (the fast batched path).

        With ``shuffle`` the order comes from a generator seeded by ``seed`` (random if None).
        """
        if shuffle:
            gen = torch.Generator()
            gen.manual_seed(int(seed) if seed is not None else int(torch.seed()))
            sampler: Iterable[int] = RandomSampler(range(len(self)), generator=gen)
        else:
            sampler = SequentialSampler(range(len(self)))
        return DataLoader(
            self,
            sampler=BatchSampler(sampler, batch_size=batch_size, drop_last=drop_last),  # type: ignore[arg-type]
            batch_size=None,
            num_workers=num_workers,
            multiprocessing_context=multiprocessing_context if num_workers else None,
            collate_fn=collate_fn or _keep_batch,
            **kwargs,
        )


def _keep_batch(batch: Any) -> Any:
    """Collate for already-batched items: leave them as they are."""
    return batch
