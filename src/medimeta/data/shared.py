"""Reused shared-memory outputs for DataLoader workers.

A batch made in a worker travels to the main process as a shared-memory handle. PyTorch's own
route (``default_collate`` in a worker, or the queue's pickler) puts every batch in a *new*
shared-memory segment, and a new segment is page-faulted 4 KiB at a time as it is written:
measured here at about 2,000 RGB float images/s per core, 20x slower than writing a reused
buffer. That, not start-up or pickling, is what made workers slower than the main process.

Each worker therefore keeps :data:`SLOTS` segments, each ending in a 64-byte header whose first
int32 is 1 while the slot's current batch is alive somewhere, 0 once it is free. A batch
written into a slot leaves the worker as a :class:`SlotTensor`; pickling it sends the segment
(PyTorch's handle passing, nothing more: the header travels inside it), and unpickling in the
main process returns a plain tensor whose memory is the segment, with a finaliser that
resets the header when the last tensor or view of it dies there. The worker writes into a slot
again only once its header is back to 0; when no slot is free it takes a new
segment, as PyTorch would. A SlotTensor that is pickled a second time is sent as a copy, and
one never sent keeps its slot (which is then simply not reused), so reuse can never overwrite a
batch that is still alive.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

SLOTS = 4  # per worker: DataLoader's prefetch (2 per worker), the batch in use and one spare
HEADER = 64  # bytes at the end of a segment; the first int32: 1 while in use, 0 when free


def _plain(t: torch.Tensor) -> torch.Tensor:
    return t


def _header(storage: torch.UntypedStorage) -> np.ndarray:
    """The count at the end of a slot segment, as a one-element int32 array (it keeps the
    segment mapped for as long as it lives)."""
    n = storage.nbytes()
    head = torch.empty(0, dtype=torch.int32).set_(storage, (n - HEADER) // 4, (1,), (1,))
    return head.numpy()


def _release(header: np.ndarray) -> None:
    header[0] -= 1


def _rebuild(t: torch.Tensor) -> torch.Tensor:
    """In the receiving process: ``t`` (a view of a slot segment) as a plain tensor that gives
    its count back when it and all its views are gone."""
    owner = t.numpy()
    weakref.finalize(owner, _release, _header(t.untyped_storage()))
    return torch.from_numpy(owner)


class Lease:
    """The current batch of one slot (its header is 1 from :meth:`WorkerSlots.take` on, until
    the one SlotTensor handed out, sent and rebuilt elsewhere, dies there)."""

    def __init__(self, header: np.ndarray) -> None:
        self.header = header

    def wrap(self, view: torch.Tensor) -> SlotTensor:
        """``view`` (of the slot's memory) as the SlotTensor that carries this lease."""
        s = view.as_subclass(SlotTensor)
        s._mm_lease = self
        return s


class SlotTensor(torch.Tensor):
    """A tensor in a worker's reused shared-memory slot (plain in every operation)."""

    _mm_lease: Lease | None

    @classmethod
    def __torch_function__(
        cls,
        func: Callable[..., Any],
        types: Sequence[type],
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        with torch._C.DisableTorchFunctionSubclass():
            return func(*args, **(kwargs or {}))

    def __reduce_ex__(self, protocol: Any) -> Any:
        plain = self.as_subclass(torch.Tensor)
        lease = self.__dict__.pop("_mm_lease", None)
        if lease is None:  # sent before (or retired): a copy, so the slot stays safe
            return (_plain, (plain.clone(),))
        return (_rebuild, (plain,))


class WorkerSlots:
    """The segments of one worker process (re-made after a fork)."""

    def __init__(self, slots: int = SLOTS) -> None:
        self.slots = slots
        self._pid: int | None = None

    def _reset(self) -> None:
        self._pid = os.getpid()
        self.segments: list[tuple[torch.Tensor, np.ndarray] | None] = [None] * self.slots

    def take(
        self, shape: tuple[int, ...], dtype: torch.dtype
    ) -> tuple[np.ndarray, torch.Tensor, Lease | None]:
        """A shared-memory (array, tensor) of ``shape`` and the lease of its slot (None: a
        new segment, no slot was free)."""
        if self._pid != os.getpid():
            self._reset()
        nbytes = int(np.prod(shape)) * torch.empty(0, dtype=dtype).element_size()
        free = [k for k, seg in enumerate(self.segments) if seg is None or seg[1][0] == 0]
        sized = [
            k
            for k in free
            if (seg := self.segments[k]) is not None
            and nbytes <= seg[0].numel() - HEADER <= nbytes + nbytes // 4
        ]
        if not free:
            t = _new_shared(nbytes)
            view = t.view(dtype).view(shape)
            return view.numpy(), view, None
        slot = sized[0] if sized else free[0]
        if slot not in sized:
            seg_t = _new_shared(-(-nbytes // HEADER) * HEADER + HEADER)
            self.segments[slot] = (seg_t, _header(seg_t.untyped_storage()))
        seg_t, header = self.segments[slot]  # type: ignore[misc]
        header[0] = 1
        view = seg_t[:nbytes].view(dtype).view(shape)
        return view.numpy(), view, Lease(header)


def _new_shared(nbytes: int) -> torch.Tensor:
    storage = torch.UntypedStorage._new_shared(nbytes)
    return torch.empty(0, dtype=torch.uint8).set_(storage, 0, (nbytes,), (1,))


WORKER_SLOTS = WorkerSlots()
