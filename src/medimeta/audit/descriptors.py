"""Per-image descriptors for the duplicate search: an exact pixel hash and a small grey
thumbnail of the image's content box.

For each image (uint8, grey ``(H, W)`` or RGB ``(H, W, 3)``):

1. **grey**: RGB becomes ITU-R 601 luma (``0.299 R + 0.587 G + 0.114 B``, Pillow's ``L``
   weights); a grey image stored in three equal channels gives its own values back.
2. **exact hash**: BLAKE2b-128 of the pixel bytes; of one channel when the three channels are
   equal, so a grey image and its RGB copy hash alike. Equal hashes are *exact* duplicates.
3. **content box**: a *border line* is a row (column) that is constant (``max - min <=
   FLAT_TOL``: padding of any colour, with JPEG noise) or near-black (``max <= BLACK``). From
   the top and the bottom the same number of rows is stripped: the shorter of the two border
   runs (likewise for columns). Padding to a square is centred, so both bars go; a dark region
   at one end only (an ultrasound's shadow, smooth in a 28 px copy, speckled at 224 px) is
   content and stays. A box under ``MIN_BOX`` pixels falls back to the whole image.
4. **thumbnail**: the box area-averaged to ``BASE`` x ``BASE`` (exact box filter, fractional
   edges weighted by their overlap), stored as float16. Area averaging makes a 224 px image and
   its 28 px copy (upscaled again to 224) give nearly the same thumbnail, and averages JPEG
   noise away.

The thumbnails are the input of :mod:`medimeta.audit.pairing`, which derives zero-mean,
unit-norm 16 x 16 vectors (whole box and central crops) from them. Images whose thumbnail has
a standard deviation under ``FLAT_STD`` grey levels are *flat*: they carry no pattern to
correlate and are only matched exactly.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from medimeta.format.reader import DatasetFolder
from medimeta.logs import Log

VERSION = 1
BASE = 32
FLAT_TOL = 12.0
BLACK = 12.0
MIN_BOX = 8
FLAT_STD = 2.0
BATCH = 256
HASH_BYTES = 16
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def params() -> dict[str, float | int | str]:
    """The settings a cached descriptor file depends on."""
    return {
        "version": VERSION,
        "base": BASE,
        "flat_tol": FLAT_TOL,
        "black": BLACK,
        "min_box": MIN_BOX,
        "hash": f"blake2b-{HASH_BYTES * 8}",
    }


@dataclass
class Descriptors:
    """Descriptors of every image of one dataset, in index order (row of images.hdf5)."""

    dataset_id: str
    fingerprint: str
    thumbs: np.ndarray  # (N, BASE, BASE) float16, grey levels 0..255
    hashes: np.ndarray  # (N, HASH_BYTES) uint8
    boxes: np.ndarray  # (N, 4) int16: y0, y1, x0, x1 (end exclusive)
    seconds: float = 0.0
    from_cache: bool = False

    def __len__(self) -> int:
        return int(self.thumbs.shape[0])

    @cached_property
    def flat(self) -> np.ndarray:
        """Boolean mask of images too uniform to correlate (matched only exactly)."""
        std = self.thumbs.reshape(len(self), -1).astype(np.float32).std(axis=1)
        return np.asarray(std < FLAT_STD)

    def hash_keys(self) -> np.ndarray:
        """The hashes as one void scalar per image (for grouping and joins)."""
        raw = np.ascontiguousarray(self.hashes)
        return raw.view(np.dtype((np.void, raw.shape[1]))).reshape(-1)


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Small matrix products on one BLAS thread: waking OpenBLAS's pool for each 32 x 224
    product costs more than the product (milliseconds per image on a busy machine)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn's dependency; without it, run as configured
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield


def to_grey(batch: np.ndarray) -> np.ndarray:
    """uint8 ``(B, H, W)`` or ``(B, H, W, 3)`` -> float32 ``(B, H, W)`` grey levels."""
    if batch.ndim == 3:
        return batch.astype(np.float32)
    return np.tensordot(batch.astype(np.float32), LUMA, axes=([3], [0]))


def pixel_hashes(batch: np.ndarray) -> np.ndarray:
    """``(B, HASH_BYTES)`` uint8 digests; an RGB image with equal channels hashes as grey."""
    out = np.empty((batch.shape[0], HASH_BYTES), dtype=np.uint8)
    for i, img in enumerate(batch):
        if (
            img.ndim == 3
            and (img[..., 0] == img[..., 1]).all()
            and (img[..., 0] == img[..., 2]).all()
        ):
            img = img[..., 0]
        digest = hashlib.blake2b(np.ascontiguousarray(img).data, digest_size=HASH_BYTES)
        out[i] = np.frombuffer(digest.digest(), dtype=np.uint8)
    return out


def _bands(border: np.ndarray) -> np.ndarray:
    """Width of the band stripped from both ends of each line of ``border`` (B, L): the
    shorter of the border runs at the two ends (padding to a square is centred, so both
    bars are equal; a dark region at one end only is content, not padding)."""
    length = border.shape[1]
    keep = ~border
    lead = keep.argmax(axis=1)
    trail = keep[:, ::-1].argmax(axis=1)
    band = np.minimum(lead, trail)
    band[~keep.any(axis=1)] = 0
    return np.minimum(band, length // 2)


def content_boxes(grey: np.ndarray) -> np.ndarray:
    """``(B, 4)`` boxes ``y0, y1, x0, x1`` of the content of each grey image (module doc)."""
    h, w = grey.shape[1:3]
    bands = []
    for axis in (2, 1):  # rows (reduce over columns), then columns
        hi = grey.max(axis=axis)
        lo = grey.min(axis=axis)
        bands.append(_bands((hi <= BLACK) | (hi - lo <= FLAT_TOL)))
    rows, cols = bands
    out = np.stack([rows, h - rows, cols, w - cols], axis=1).astype(np.int64)
    small = (out[:, 1] - out[:, 0] < MIN_BOX) | (out[:, 3] - out[:, 2] < MIN_BOX)
    out[small] = (0, h, 0, w)
    return out


def area_matrix(lo: np.ndarray, hi: np.ndarray, n_in: int, n_out: int) -> np.ndarray:
    """``(B, n_out, n_in)`` box-filter weights mapping pixels ``[lo, hi)`` to ``n_out`` cells.

    Cell k covers ``[lo + k w, lo + (k + 1) w)`` with ``w = (hi - lo) / n_out``; pixel p
    (covering ``[p, p + 1)``) weighs its overlap with the cell divided by ``w``, so rows sum
    to 1 and a constant image stays constant.
    """
    lo = np.asarray(lo, dtype=np.float64).reshape(-1, 1)
    hi = np.asarray(hi, dtype=np.float64).reshape(-1, 1)
    steps = np.arange(n_out + 1, dtype=np.float64) / n_out
    edges = lo + (hi - lo) * steps  # (B, n_out + 1)
    pix = np.arange(n_in, dtype=np.float64)
    left = np.maximum(edges[:, :-1, None], pix[None, None, :])
    right = np.minimum(edges[:, 1:, None], pix[None, None, :] + 1.0)
    width = (hi - lo)[:, :, None] / n_out
    return (np.clip(right - left, 0.0, None) / width).astype(np.float32)


def thumbnails(grey: np.ndarray, boxes: np.ndarray, side: int = BASE) -> np.ndarray:
    """Each image's box area-averaged to ``side`` x ``side`` (float32)."""
    h, w = grey.shape[1:3]
    ry = area_matrix(boxes[:, 0], boxes[:, 1], h, side)  # (B, side, H)
    rx = area_matrix(boxes[:, 2], boxes[:, 3], w, side)  # (B, side, W)
    out = np.empty((grey.shape[0], side, side), dtype=np.float32)
    for i in range(grey.shape[0]):  # 2-D products use BLAS; numpy's stacked matmul does not
        out[i] = (ry[i] @ grey[i]) @ rx[i].T
    return out


def describe(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thumbnails float16, hashes, boxes int16) of a uint8 batch."""
    grey = to_grey(batch)
    boxes = content_boxes(grey)
    thumbs = thumbnails(grey, boxes).astype(np.float16)
    return thumbs, pixel_hashes(batch), boxes.astype(np.int16)


def compute_descriptors(
    folder: DatasetFolder,
    *,
    rows: np.ndarray | None = None,
    batch: int = BATCH,
    log: Log | None = None,
) -> Descriptors:
    """Descriptors of ``rows`` (default: every image) of ``folder``, read in file order.

    The fingerprint is the SHA-256 of the image shape and every image's hash, so it changes
    when any pixel does; it keys the cache (:mod:`medimeta.audit.store`).
    """
    t0 = time.perf_counter()
    store = folder.image_store()
    idx = np.arange(folder.num_samples) if rows is None else np.asarray(rows, dtype=np.int64)
    n = idx.size
    thumbs = np.empty((n, BASE, BASE), dtype=np.float16)
    hashes = np.empty((n, HASH_BYTES), dtype=np.uint8)
    boxes = np.empty((n, 4), dtype=np.int16)
    next_note = time.perf_counter() + 10.0
    with one_blas_thread():
        try:
            for start in range(0, n, batch):
                stop = min(start + batch, n)
                t, h, b = describe(store.read_batch(idx[start:stop]))
                thumbs[start:stop], hashes[start:stop], boxes[start:stop] = t, h, b
                if log is not None and time.perf_counter() > next_note:
                    log(f"  descriptors of {folder.id}: {stop:,}/{n:,} images")
                    next_note = time.perf_counter() + 10.0
        finally:
            store.close()
    digest = hashlib.sha256(f"{store.shape}|{VERSION}|".encode())
    digest.update(hashes.tobytes())
    return Descriptors(
        folder.id, digest.hexdigest(), thumbs, hashes, boxes, time.perf_counter() - t0
    )


def describe_path(path: str | Path) -> Descriptors:
    """Descriptors of the dataset folder at ``path`` (no cache)."""
    return compute_descriptors(DatasetFolder(path))
