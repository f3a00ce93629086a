"""The pixel kernel: stored uint8 rows to output tensors in one pass, chunk by chunk, straight
into one preallocated output.

Every batched read of the datasets (``ds[[...]]``, ``__getitems__``, ``ds.loader()``), of the
episode loader and of the cross-domain batches comes here through
:func:`medimeta.data.pixels.load_images`. Rows are visited in file order; each row is cut into
chunks of :data:`CHUNK` uint8 elements, and each chunk is converted (``x * scale + shift`` in
float32, two roundings, exactly as :class:`~medimeta.data.pixels.Normalizer` does) while it and
its float output are still in the core's L2 cache. Nothing is written twice and no temporary of
the batch's size is made.

Where the output lives matters as much as the arithmetic: a new 38.5 MB float batch is above
glibc's mmap ceiling, so every fresh allocation is page-faulted afresh. Batches therefore go to

* a per-process :class:`BufferPool` (main process): a buffer is handed out again only when no
  tensor (or view) of its previous use is alive, which the pool sees from the buffer's
  reference count; reuse is invisible to the user;
* shared memory, in a DataLoader worker: the batch then crosses to the main process as a
  handle instead of being copied into shared memory by the queue's pickler;
* page-locked memory (``pin=True``, needs an accelerator), from torch's caching host
  allocator, which reuses blocks only once their asynchronous copies have finished.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Iterable

import numpy as np
import torch

from medimeta.data.shared import WORKER_SLOTS, Lease
from medimeta.format.images import ImageStore

CHUNK = 98304  # uint8 elements per chunk: 96 KiB in + 384 KiB float32 out stay in L2; 3 | CHUNK
LUMA = (19595, 38470, 7471)  # ITU-R 601-2 luma in Pillow's fixed-point form (Convert.c, L24)
Affine = tuple[np.ndarray, np.ndarray]  # float32 scale and shift, one value per output channel


def _refs(entries: list[np.ndarray], i: int) -> int:
    return sys.getrefcount(entries[i])


# References a pooled buffer has when nothing outside the pool holds it (measured, not assumed:
# the count an interpreter reports for a list item passed to getrefcount differs by version).
_IDLE = _refs([np.empty(0)], 0)


class BufferPool:
    """Reusable output buffers of one process, keyed by row shape and dtype.

    :meth:`take` hands out a buffer of ``rows`` rows that nothing else references (a tensor made
    from it with ``torch.from_numpy`` keeps it referenced for as long as the tensor, or any view
    of it, lives), else a new one; at most ``slots`` buffers are kept per key. After a fork
    the child starts with an empty pool.
    """

    def __init__(self, slots: int = 4) -> None:
        self.slots = slots
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._buffers: dict[tuple[tuple[int, ...], str], list[np.ndarray]] = {}

    def take(self, rows: int, row_shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A (rows, *row_shape) array nobody else uses (a view of a pooled buffer, or new)."""
        key = (tuple(row_shape), np.dtype(dtype).str)
        with self._lock:
            if self._pid != os.getpid():
                self._buffers, self._pid = {}, os.getpid()
            entries = self._buffers.setdefault(key, [])
            fit = [
                i
                for i in range(len(entries))
                if rows <= entries[i].shape[0] <= rows + rows // 4 and _refs(entries, i) <= _IDLE
            ]
            if fit:
                best = min(fit, key=lambda i: entries[i].shape[0])
                return entries[best][:rows]
            fresh = np.empty((rows, *row_shape), dtype=dtype)
            if len(entries) < self.slots:
                entries.append(fresh)
            else:  # replace an idle buffer of another size, if any
                idle = [i for i in range(len(entries)) if _refs(entries, i) <= _IDLE]
                if idle:
                    entries[idle[0]] = fresh
            return fresh

    def clear(self) -> None:
        """Drop the pooled buffers (those still in use live on with their tensors)."""
        with self._lock:
            self._buffers = {}


POOL = BufferPool()
_warned_pin = False


def _accelerator() -> bool:
    acc = getattr(torch, "accelerator", None)
    if acc is not None:
        return bool(acc.is_available())
    return bool(torch.cuda.is_available())


def allocate(
    shape: tuple[int, ...], dtype: np.dtype, *, batch: bool, pin: bool
) -> tuple[np.ndarray, torch.Tensor, Lease | None]:
    """An uninitialised C-contiguous output (the same memory as numpy, to fill, and torch, to
    hand out) and, for a worker's reused segment, its lease: pinned (``pin`` and an
    accelerator), a worker's shared memory (a batch inside a DataLoader worker), pooled (a
    batch in the main process) or plain new."""
    global _warned_pin
    tdtype = torch.from_numpy(np.empty(0, dtype=dtype)).dtype
    in_worker = torch.utils.data.get_worker_info() is not None
    if pin and not in_worker:
        if _accelerator():
            t = torch.empty(shape, dtype=tdtype, pin_memory=True)
            return t.numpy(), t, None
        if not _warned_pin:
            warnings.warn(
                "pin_memory=True but no accelerator is available; not pinning",
                RuntimeWarning,
                stacklevel=3,
            )
            _warned_pin = True
    if batch and in_worker:
        return WORKER_SLOTS.take(shape, tdtype)
    arr = POOL.take(shape[0], shape[1:], dtype) if batch else np.empty(shape, dtype=dtype)
    return arr, torch.from_numpy(arr), None


def _out(view: torch.Tensor, lease: Lease | None) -> torch.Tensor:
    return view if lease is None else lease.wrap(view)


# -- the per-row loops ----------------------------------------------------------------------------
def chunk_size(n: int) -> int:
    """Elements per chunk of an ``n``-element row: equal chunks of at most :data:`CHUNK`
    (no short tail), each a multiple of 3 so that an RGB pattern lines up."""
    parts = -(-n // CHUNK)
    per_part = -(-n // parts)
    return -(-per_part // 3) * 3


def affine_into(src: np.ndarray, dst: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> None:
    """``dst = src * scale + shift`` in float32, two roundings (exactly the normaliser's
    arithmetic) over flat contiguous arrays, chunk by chunk: an exact uint8 -> float32 copy,
    then multiply and add in place, three SIMD passes over a chunk that stays in L2 (faster
    here than numpy's casting multiply). ``scale``/``shift``: float32 scalars, or patterns at
    least one chunk long."""
    n = src.size
    if n <= CHUNK and scale.ndim == 0:  # one chunk (a grey 224 row): no slicing
        np.copyto(dst, src)
        dst *= scale
        dst += shift
        return
    step = chunk_size(n)
    pattern = scale.ndim > 0
    for a in range(0, n, step):
        d = dst[a : a + step]
        np.copyto(d, src[a : a + step])
        if pattern:
            d *= scale[: d.size]
            d += shift[: d.size]
        else:
            d *= scale
            d += shift


def luma_into(rgb: np.ndarray, out: np.ndarray, acc: np.ndarray, tmp: np.ndarray) -> None:
    """Pillow's ``convert("L")`` of one (H, W, 3) row into ``out`` (H, W) uint8, exactly:
    ``(19595 r + 38470 g + 7471 b + 0x8000) >> 16`` in int32 (``acc``/``tmp`` (H, W) int32)."""
    np.multiply(rgb[..., 0], np.int32(LUMA[0]), out=acc)
    np.multiply(rgb[..., 1], np.int32(LUMA[1]), out=tmp)
    acc += tmp
    np.multiply(rgb[..., 2], np.int32(LUMA[2]), out=tmp)
    acc += tmp
    acc += np.int32(0x8000)
    acc >>= 16
    np.copyto(out, acc, casting="unsafe")


def _scalar_or_pattern(affine: Affine, c: int) -> tuple[np.ndarray, np.ndarray]:
    scale, shift = affine
    return scale[c], shift[c]


def _interleaved_pattern(affine: Affine) -> tuple[np.ndarray, np.ndarray]:
    scale, shift = affine
    if np.all(scale == scale[0]) and np.all(shift == shift[0]):
        return scale[0], shift[0]  # a scalar: numpy's fastest loop
    reps = -(-CHUNK // scale.size)
    return np.tile(scale, reps), np.tile(shift, reps)


def fill_same(rows: Iterable[tuple[int, np.ndarray]], out: np.ndarray, affine: Affine) -> None:
    """Float rows in stored layout ((B, H, W) grey, (B, H, W, 3) channels-last RGB)."""
    scale, shift = _interleaved_pattern(affine)
    flat = out.reshape(out.shape[0], -1)
    for pos, row in rows:
        affine_into(row.reshape(-1), flat[pos], scale, shift)


def fill_planar(
    rows: Iterable[tuple[int, np.ndarray]], out: np.ndarray, affine: Affine, stored: int
) -> None:
    """Float (B, C, H, W) contiguous from grey (C = 3, one plane per channel) or RGB rows."""
    b, c, h, w = out.shape
    planes = out.reshape(b, c, h * w)
    uniform = bool(np.all(affine[0] == affine[0][0]) and np.all(affine[1] == affine[1][0]))
    scratch = np.empty((3, h * w), dtype=np.uint8) if stored == 3 else None
    for pos, row in rows:
        if scratch is not None:  # deinterleave once (a fast uint8 copy), then plane by plane
            np.copyto(scratch, row.reshape(h * w, 3).T)
            src = [scratch[k] for k in range(3)]
        else:
            src = [row.reshape(-1)] * c
        for k in range(c):
            if k and uniform and stored == 1:
                np.copyto(planes[pos, k], planes[pos, 0])  # same input, same constants
                continue
            affine_into(src[k], planes[pos, k], *_scalar_or_pattern(affine, k))


def fill_luma(
    rows: Iterable[tuple[int, np.ndarray]], out: np.ndarray, affine: Affine | None
) -> None:
    """Grey (B, H, W) from RGB rows: luma, then (float ``out``) the one-channel affine."""
    h, w = out.shape[1:]
    acc = np.empty((h, w), dtype=np.int32)
    tmp = np.empty((h, w), dtype=np.int32)
    grey = np.empty((h, w), dtype=np.uint8)
    for pos, row in rows:
        if affine is None:
            luma_into(row, out[pos], acc, tmp)
        else:
            luma_into(row, grey, acc, tmp)
            affine_into(grey.reshape(-1), out[pos].reshape(-1), affine[0][0], affine[1][0])


def copy_planar(rows: Iterable[tuple[int, np.ndarray]], out: np.ndarray, stored: int) -> None:
    """uint8 (B, C, H, W) contiguous from grey (C = 3) or RGB rows."""
    _, c, h, w = out.shape
    for pos, row in rows:
        if stored == 3:
            np.copyto(out[pos].reshape(3, h * w), row.reshape(h * w, 3).T)
        else:
            for k in range(c):
                out[pos, k] = row


def read_images(
    store: ImageStore,
    indices: np.ndarray,
    channels: int,
    dtype: str,
    affine: Affine | None = None,
    *,
    batch: bool = True,
    pin: bool = False,
    contiguous: bool = False,
) -> torch.Tensor:
    """(B, C, H, W) uint8, or (``affine`` given) normalised float32, images at global
    ``indices`` of ``store``, converted row by row straight into one output.

    Layouts as :func:`medimeta.data.pixels.to_uint8_tensor` and the normaliser always gave:
    RGB kept as RGB is a channels-last view, uint8 grey -> 3 an expanded view; with
    ``contiguous`` every output is a C-contiguous (B, C, H, W) tensor (what ``torch.stack`` of
    per-sample tensors gives). ``batch``: the output may come from the pool (main process) or
    shared memory (DataLoader worker); otherwise it is newly allocated.
    """
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    stored = store.num_channels
    h, w = store.sample_shape[:2]
    b = int(idx.size)
    batch = batch and b > 0
    planar = contiguous and stored == 3
    f32 = np.dtype(np.float32)
    if dtype == "uint8":
        if (channels == stored and not planar) or (channels == 3 and not contiguous):
            arr, t, lease = allocate(
                (b, *store.sample_shape), np.dtype(np.uint8), batch=batch, pin=pin
            )
            store.read_batch(idx, out=arr)
            if stored == 3:
                return _out(t.permute(0, 3, 1, 2), lease)
            grey = t.unsqueeze(1)
            return _out(grey if channels == 1 else grey.expand(-1, 3, -1, -1), lease)
        if channels == 1:  # RGB -> grey
            arr, t, lease = allocate((b, h, w), np.dtype(np.uint8), batch=batch, pin=pin)
            fill_luma(store.rows(idx), arr, None)
            return _out(t.unsqueeze(1), lease)
        arr, t, lease = allocate((b, 3, h, w), np.dtype(np.uint8), batch=batch, pin=pin)
        copy_planar(store.rows(idx), arr, stored)
        return _out(t, lease)
    if affine is None:
        raise ValueError("dtype 'float' needs the normaliser's affine constants")
    if channels == stored and not planar:
        arr, t, lease = allocate((b, *store.sample_shape), f32, batch=batch, pin=pin)
        fill_same(store.rows(idx), arr, affine)
        return _out(t.unsqueeze(1) if stored == 1 else t.permute(0, 3, 1, 2), lease)
    if channels == 1:
        arr, t, lease = allocate((b, h, w), f32, batch=batch, pin=pin)
        fill_luma(store.rows(idx), arr, affine)
        return _out(t.unsqueeze(1), lease)
    arr, t, lease = allocate((b, 3, h, w), f32, batch=batch, pin=pin)
    fill_planar(store.rows(idx), arr, affine, stored)
    return _out(t, lease)
