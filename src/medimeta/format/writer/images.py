"""Pixel output of the writer: one sample's TIFF, its ``images.hdf5`` row and auxiliary images.

``images.hdf5`` is created once with h5py as a contiguous, unfiltered uint8 dataset (the
release layout) and closed; the header is then final and every row lives at a fixed byte
offset. Rows are written there with positional writes, by whichever process made the image,
so parallel and serial builds write the same bytes to the same places and the file is a
valid HDF5 file at every moment of the build.
"""

from __future__ import annotations

import io
import os
import signal
import traceback
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from medimeta.errors import BuildError, FormatError
from medimeta.format import layout
from medimeta.format.record import SampleRecord
from medimeta.format.writer.files import cell_text
from medimeta.format.writer.records import check_aux_folder

ProcessFn = Callable[[SampleRecord], Any]


@dataclass(frozen=True)
class ImageJob:
    """What a worker needs to place outputs: folder, channels, HDF5 row geometry."""

    folder: str
    num_channels: int
    hdf5_offset: int

    @property
    def sample_shape(self) -> tuple[int, ...]:
        size = layout.IMAGE_SIZE
        return (size, size, 3) if self.num_channels == 3 else (size, size)

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.sample_shape))


@dataclass
class Produced:
    """Outcome of one sample: CRCs of what was written and its extra annotations (as text)."""

    index: int
    row_crc: int
    files: dict[str, list[int]]
    annotations: dict[str, str]
    aux: list[str] = field(default_factory=list)


@dataclass
class Failure:
    """A sample that could not be produced (picklable stand-in for the exception)."""

    index: int
    kind: str
    message: str
    trace: str


def create_hdf5(path: Path, num_samples: int, num_channels: int) -> int:
    """Create ``images.hdf5`` (contiguous uint8, key ``images``); return the rows' byte offset."""
    import h5py

    size = layout.IMAGE_SIZE
    shape = (num_samples, size, size) + ((3,) if num_channels == 3 else ())
    with h5py.File(path, "w") as fh:
        dset = fh.create_dataset(layout.HDF5_KEY, shape=shape, dtype=np.uint8)
        # allocates the whole contiguous block, so its offset is fixed from now on; an array,
        # not the scalar 0, which h5py writes as one small write per pixel (1.5 s for RGB)
        dset[0] = np.zeros(shape[1:], np.uint8)
        offset = dset.id.get_offset()
    if offset is None:
        raise BuildError(f"{path}: HDF5 did not allocate contiguous storage for 'images'")
    return int(offset)


def _result_parts(result: Any) -> tuple[Any, Mapping[str, Any], Mapping[str, Any]]:
    """Accept ``image``, ``(image, annotations)`` or ``(image, annotations, aux images)``."""
    if isinstance(result, tuple):
        if not 1 <= len(result) <= 3:
            raise BuildError(
                f"process() returned a tuple of {len(result)} items; "
                "return image, (image, annotations) or (image, annotations, aux_images)"
            )
        image = result[0]
        annotations = result[1] if len(result) > 1 and result[1] is not None else {}
        aux = result[2] if len(result) > 2 and result[2] is not None else {}
        return image, annotations, aux
    return result, {}, {}


def check_image(image: Any, num_channels: int, where: str) -> np.ndarray:
    """The image as a C-contiguous uint8 array of the dataset's shape, or FormatError."""
    size = layout.IMAGE_SIZE
    mode = "RGB" if num_channels == 3 else "L"
    expected = (size, size, 3) if num_channels == 3 else (size, size)
    fix = f"return a {size}x{size} mode-{mode} PIL image or a uint8 array of shape {expected}"
    if isinstance(image, Image.Image):
        if image.mode != mode or image.size != (size, size):
            raise FormatError(
                where,
                "process() returned an image of the wrong size or mode",
                key="image",
                expected=f"{size}x{size} {mode}",
                actual=f"{image.size[0]}x{image.size[1]} {image.mode}",
                fix=fix,
            )
        return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.shape != expected:
            raise FormatError(
                where,
                "process() returned an array of the wrong shape or dtype",
                key="image",
                expected=f"uint8 {expected}",
                actual=f"{image.dtype} {image.shape}",
                fix=fix,
            )
        return np.ascontiguousarray(image)
    raise FormatError(
        where,
        "process() returned no image",
        key="image",
        expected="PIL image or numpy array",
        actual=type(image).__name__,
        fix=fix,
    )


def tiff_bytes(image: Image.Image | np.ndarray) -> bytes:
    """Uncompressed TIFF, as the release writes (PIL ``save(compression=None)``)."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buf = io.BytesIO()
    image.save(buf, format="TIFF", compression=None)
    return buf.getvalue()


def _write_file(path: Path, data: bytes) -> list[int]:
    with open(path, "wb") as fh:
        fh.write(data)
    return [len(data), zlib.crc32(data)]


class RowWriter:
    """Positional writes into the HDF5 file; one descriptor per process (fork-safe)."""

    def __init__(self, path: Path, job: ImageJob) -> None:
        self.path = path
        self.job = job
        self._pid: int | None = None
        self._fd: int | None = None

    def write(self, index: int, data: bytes) -> None:
        fd = self._fd
        if fd is None or self._pid != os.getpid():
            fd = self._fd = os.open(self.path, os.O_WRONLY | getattr(os, "O_BINARY", 0))
            self._pid = os.getpid()
        position = self.job.hdf5_offset + index * self.job.row_bytes
        view = memoryview(data)
        while view:  # a short write (disk nearly full, signal) continues where it stopped
            if hasattr(os, "pwrite"):
                done = os.pwrite(fd, view, position)
            else:  # Windows: no pwrite, but this descriptor belongs to this process alone
                os.lseek(fd, position, os.SEEK_SET)
                done = os.write(fd, view)
            view = view[done:]
            position += done

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None
        self._pid = None


def produce(
    job: ImageJob, rows: RowWriter, process: ProcessFn, index: int, record: SampleRecord
) -> Produced:
    """Run ``process`` on one record and write its TIFF, HDF5 row and auxiliary images."""
    where = f"record {index} ({record.original_filepath})"
    image, annotations, aux = _result_parts(process(record))
    arr = check_image(image, job.num_channels, where)
    folder = Path(job.folder)
    name = layout.image_name(index)
    files = {name: _write_file(folder / name, tiff_bytes(arr))}
    data = arr.tobytes()
    rows.write(index, data)
    for sub, aux_image in sorted(aux.items()):
        rel = f"{check_aux_folder(sub)}/{index:06d}.tiff"
        if not folder.is_dir():  # the build was abandoned (its staging folder deleted)
            raise BuildError(f"{folder}: the folder being built is gone")
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        files[rel] = _write_file(folder / rel, tiff_bytes(aux_image))
    if not isinstance(annotations, Mapping):
        raise BuildError(f"{where}: process() annotations must be a mapping, got {annotations!r}")
    return Produced(
        index=index,
        row_crc=zlib.crc32(data),
        files=files,
        annotations={str(k): cell_text(v) for k, v in annotations.items()},
        aux=sorted(aux),
    )


def produce_safely(
    job: ImageJob, rows: RowWriter, process: ProcessFn, index: int, record: SampleRecord
) -> Produced | Failure:
    """:func:`produce`, with any exception turned into a picklable :class:`Failure`."""
    try:
        return produce(job, rows, process, index, record)
    except Exception as exc:  # reported by the parent with the record it belongs to
        return Failure(index, type(exc).__name__, str(exc), traceback.format_exc())


# -- pool workers --------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def init_worker(job: ImageJob, hdf5_path: str, process: ProcessFn) -> None:
    """Pool initializer: keep the job, the row writer and the processing function."""
    # The parent handles Ctrl-C and SIGTERM and then terminates the pool; a forked worker
    # would otherwise inherit the parent's SIGTERM handler and print a spurious traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _WORKER.update(job=job, rows=RowWriter(Path(hdf5_path), job), process=process)


def run_item(item: tuple[int, SampleRecord]) -> Produced | Failure:
    """Pool task: produce one (index, record) pair."""
    index, record = item
    return produce_safely(_WORKER["job"], _WORKER["rows"], _WORKER["process"], index, record)


# -- resume checks -------------------------------------------------------------------------


def count_intact(folder: Path, job: ImageJob, entries: list[dict[str, Any]]) -> int:
    """How many leading journal entries still match the files on disk (CRC of row and files)."""
    hdf5 = folder / layout.HDF5_FILE
    total = os.path.getsize(hdf5)
    n_rows = (total - job.hdf5_offset) // job.row_bytes
    if not entries or n_rows <= 0:
        return 0
    rows = np.memmap(
        hdf5, dtype=np.uint8, mode="r", offset=job.hdf5_offset, shape=(n_rows, job.row_bytes)
    )
    for pos, entry in enumerate(entries):
        i = entry["i"]
        if i != pos or i >= n_rows or zlib.crc32(rows[i].tobytes()) != entry["row_crc"]:
            return pos
        for rel, (size, crc) in entry["files"].items():
            path = folder / rel
            try:
                data = path.read_bytes()
            except OSError:
                return pos
            if len(data) != size or zlib.crc32(data) != crc:
                return pos
    return len(entries)
