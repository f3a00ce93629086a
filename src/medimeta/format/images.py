"""Random access to a dataset's pixels: memory-mapped HDF5, h5py, or one TIFF per sample.

The store opens its files lazily in the process that reads, so a dataset holding it can be
pickled and sent to DataLoader workers started with fork, spawn or forkserver.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medimeta.errors import DatasetNotFoundError, FormatError, check_choice
from medimeta.format import layout

BACKENDS = ("auto", "memmap", "hdf5", "tiff")


def hdf5_layout(path: Path) -> tuple[tuple[int, ...], np.dtype, int | None]:
    """Shape, dtype and byte offset (None unless contiguous and unfiltered) of ``images``."""
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise FormatError(
            path,
            f"not a readable HDF5 file ({exc}); it may be truncated or empty",
            key=layout.HDF5_KEY,
            expected="an HDF5 file with a uint8 dataset 'images'",
            actual=f"{path.stat().st_size} bytes" if path.is_file() else "no file",
            fix="re-download or rebuild the dataset, or pass use_hdf5=False to read the TIFFs",
        ) from None
    with handle as f:
        if layout.HDF5_KEY not in f:
            raise FormatError(
                path,
                "HDF5 file has no dataset named 'images'",
                key=layout.HDF5_KEY,
                expected="dataset 'images'",
                actual=sorted(f.keys()),
                fix="rewrite the file with the images under the key 'images'",
            )
        dset = f[layout.HDF5_KEY]
        offset = None
        # A contiguous, unfiltered dataset is a plain C-ordered array at a fixed file offset,
        # which numpy can map directly: no HDF5 call, no global lock, on every read.
        if (
            dset.chunks is None
            and dset.compression is None
            and not dset.id.get_create_plist().get_nfilters()
        ):
            offset = dset.id.get_offset()
        return tuple(dset.shape), dset.dtype, offset


class ImageStore:
    """Reads images of one dataset folder by global sample index (lazily opened, picklable)."""

    def __init__(
        self,
        folder: str | Path,
        *,
        num_samples: int,
        num_channels: int,
        image_size: tuple[int, int] = (layout.IMAGE_SIZE, layout.IMAGE_SIZE),
        backend: str = "auto",
    ) -> None:
        self.folder = Path(folder)
        self.num_samples = num_samples
        self.num_channels = num_channels
        self.image_size = tuple(image_size)
        check_choice("image backend", backend, BACKENDS)
        self.hdf5_path = self.folder / layout.HDF5_FILE
        self.shape: tuple[int, ...]
        if backend == "tiff":
            self.backend = "tiff"
            self.shape = (num_samples, *self.image_size) + ((3,) if num_channels == 3 else ())
            self._offset: int | None = None
        else:
            if not self.hdf5_path.is_file():
                raise DatasetNotFoundError(
                    f"{self.hdf5_path}: images.hdf5 is missing; re-download or rebuild the "
                    f"dataset, or pass use_hdf5=False to read images/NNNNNN.tiff instead"
                )
            shape, dtype, offset = hdf5_layout(self.hdf5_path)
            self._check_shape(shape, dtype)
            self.shape = shape
            self._offset = offset
            if backend == "memmap" and offset is None:
                raise FormatError(
                    self.hdf5_path,
                    "'images' is chunked or compressed, so it cannot be memory-mapped",
                    key="images.layout",
                    expected="contiguous",
                    actual="chunked/filtered",
                    fix="use backend='hdf5' (or 'auto')",
                )
            self.backend = (
                "memmap" if backend in ("auto", "memmap") and offset is not None else "hdf5"
            )
        self._pid: int | None = None
        self._handle: Any = None
        self._array: Any = None

    def _check_shape(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        expected = (self.num_samples, *self.image_size) + ((3,) if self.num_channels == 3 else ())
        if tuple(shape) != expected:
            raise FormatError(
                self.hdf5_path,
                "images dataset has the wrong shape for info.yaml "
                "(total_num_samples and input_size [C, H, W])",
                key="images.shape",
                expected=expected,
                actual=tuple(shape),
                fix="check info.yaml (total_num_samples, input_size) against the data",
            )
        if dtype != np.uint8:
            raise FormatError(
                self.hdf5_path,
                "images dataset has the wrong dtype",
                key="images.dtype",
                expected="uint8",
                actual=str(dtype),
                fix="store pixels as uint8",
            )

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.shape[1:])

    def _open(self) -> None:
        if self._pid == os.getpid():
            return
        # A handle inherited through fork is not ours to use (HDF5 is not fork-safe).
        self._handle = None
        self._array = None
        if self.backend == "memmap":
            mapped = np.memmap(
                self.hdf5_path, dtype=np.uint8, mode="r", offset=self._offset or 0, shape=self.shape
            )
            # a plain ndarray view of the mapping: indexing a np.memmap runs Python-level
            # __array_finalize__ on every row, a measurable cost at ~10 us per image
            self._array = np.asarray(mapped)
        elif self.backend == "hdf5":
            import h5py

            self._handle = h5py.File(self.hdf5_path, "r")
            self._array = self._handle[layout.HDF5_KEY]
        self._pid = os.getpid()

    def close(self) -> None:
        """Release file handles (they reopen on the next read)."""
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle = None
        self._array = None
        self._pid = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_pid=None, _handle=None, _array=None)
        return state

    def __del__(self) -> None:
        # at interpreter shutdown h5py may already be gone: nothing useful left to do then
        with contextlib.suppress(Exception):
            self.close()

    def _check_index(self, index: int) -> int:
        if not 0 <= index < self.num_samples:
            raise IndexError(f"sample index {index} out of range 0..{self.num_samples - 1}")
        return int(index)

    def read(self, index: int) -> np.ndarray:
        """One image as uint8 (H, W) or (H, W, 3)."""
        index = self._check_index(index)
        if self.backend == "tiff":
            return self._read_tiff(index)
        self._open()
        return np.array(self._array[index])

    def _checked(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_samples):
            bad = idx[(idx < 0) | (idx >= self.num_samples)][0]
            self._check_index(int(bad))
        return idx

    def rows(self, indices: Sequence[int] | np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """``(position, image)`` pairs for ``indices``, visited in increasing file order.

        Images may be read-only views that are only valid until the next pair is produced.
        """
        idx = self._checked(indices)
        order = np.argsort(idx, kind="stable").tolist()
        if self.backend == "tiff":
            for pos in order:
                yield pos, self._read_tiff(int(idx[pos]))
            return
        self._open()
        array = self._array
        if self.backend == "memmap":
            for pos in order:
                yield pos, array[idx[pos]]
            return
        buf = np.empty(self.sample_shape, dtype=np.uint8)
        for pos in order:
            array.read_direct(buf, source_sel=np.s_[int(idx[pos])])
            yield pos, buf

    def read_batch(
        self, indices: Sequence[int] | np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Images at ``indices`` (in that order) as one uint8 array (B, H, W[, 3]).

        Rows are visited in increasing file order (sequential I/O), each copied once into place.
        """
        idx = self._checked(indices)
        if out is None:
            out = np.empty((idx.size, *self.sample_shape), dtype=np.uint8)
        for pos, row in self.rows(idx):
            out[pos] = row
        return out

    def _read_tiff(self, index: int) -> np.ndarray:
        from PIL import Image

        path = self.folder / layout.image_name(index)
        if not path.is_file():
            raise DatasetNotFoundError(
                f"{path}: TIFF for sample {index} is missing; "
                "use use_hdf5=True or rebuild the dataset"
            )
        mode = "RGB" if self.num_channels == 3 else "L"
        try:
            with Image.open(path) as img:
                pixels = img if img.mode == mode else img.convert(mode)
                arr = np.asarray(pixels, dtype=np.uint8).copy()
        except (OSError, ValueError) as exc:  # PIL's UnidentifiedImageError is an OSError
            raise FormatError(
                path,
                f"not a readable TIFF image ({type(exc).__name__}: {exc})",
                fix="re-download or rebuild the dataset, or read images.hdf5 (use_hdf5=True)",
            ) from None
        if arr.shape != self.sample_shape:
            raise FormatError(
                path,
                "TIFF has the wrong size for info.yaml input_size",
                expected=self.sample_shape,
                actual=arr.shape,
                fix="re-download or rebuild the dataset",
            )
        return arr
