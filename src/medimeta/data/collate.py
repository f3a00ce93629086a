"""Per-sample views of one batch tensor that PyTorch's ``default_collate`` reassembles for free.

``DataLoader(ds, batch_size=64)`` calls ``ds.__getitems__(indices)`` and hands the list of
per-sample ``(image, label)`` pairs to ``default_collate``, which stacks the images into a new
tensor: a second full copy of a batch the dataset had just produced in one piece. The images
of that list are :class:`SampleView` tensors, views of the one batch tensor. They behave as
plain tensors, except that ``torch.stack`` of exactly the samples of one batch, in order, along
dim 0, returns the batch tensor itself (what the copy would have been: same values, shape,
dtype and C-contiguous layout).

Inside a worker, ``default_collate`` first asks the first sample for a new shared-memory
storage of the batch's size (``elem._typed_storage()._new_shared(n)``; PyTorch fallocates it,
about 17 ms to make and free for 38.5 MB here) and then stacks into it with ``out=``. A batch
that already lives in shared memory (the kernel writes worker batches there) answers that
request with its own storage, so ``out`` is the batch's memory and the stack is skipped; any
other batch is copied into ``out``. Should a stack into such an aliasing ``out`` not be the
whole batch in order (a custom collate that reorders), it is computed into a temporary first,
so results are always those of ``torch.stack``.

Nothing global changes: no collate map is registered, no PyTorch function is patched; any
other use of the views gets plain tensors and plain results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch


def _plain(t: torch.Tensor) -> torch.Tensor:
    return t


class SampleView(torch.Tensor):
    """One sample of a batch tensor (``_mm_batch[_mm_pos]``), as handed to collation."""

    _mm_batch: torch.Tensor
    _mm_pos: int

    @classmethod
    def __torch_function__(
        cls,
        func: Callable[..., Any],
        types: Sequence[type],
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        if func is torch.stack:
            whole = _whole_batch(args, kwargs)
            if whole is not None:
                return whole
        with torch._C.DisableTorchFunctionSubclass():
            if func is torch.stack and _aliases_input(args, kwargs):
                out = kwargs.pop("out")
                return out.copy_(func(*args, **kwargs))
            return func(*args, **kwargs)

    def __reduce_ex__(self, protocol: Any) -> Any:
        # pickled (e.g. by a custom collate in a worker) as the plain view it is
        return (_plain, (self.as_subclass(torch.Tensor),))

    def _typed_storage(self) -> Any:
        storage = super()._typed_storage()
        batch = self._mm_batch
        if _shareable(batch):
            fresh = storage._new_shared

            def new_shared(size: int, *, device: Any = None) -> Any:
                if size == batch.numel() and torch.device(device or "cpu").type == "cpu":
                    return torch.TypedStorage(
                        wrap_storage=batch.untyped_storage(), dtype=batch.dtype, _internal=True
                    )
                return fresh(size, device=device)

            storage._new_shared = new_shared  # this storage object only
        return storage


def _shareable(batch: torch.Tensor) -> bool:
    """A batch in shared memory that ``out = new(storage).resize_(batch.shape)`` would cover
    exactly: contiguous from the start of its storage."""
    return batch.is_shared() and batch.is_contiguous() and batch.storage_offset() == 0


def _aliases_input(args: Sequence[Any], kwargs: dict[str, Any]) -> bool:
    out = kwargs.get("out")
    tensors = args[0] if args else kwargs.get("tensors", ())
    if out is None or not tensors:
        return False
    ptr = out.untyped_storage().data_ptr()
    return any(t.untyped_storage().data_ptr() == ptr for t in tensors)


def sample_views(batch: torch.Tensor) -> list[torch.Tensor]:
    """``batch[0], batch[1], ...`` as :class:`SampleView` tensors."""
    views: list[torch.Tensor] = []
    for pos, v in enumerate(batch.unbind(0)):
        s = v.as_subclass(SampleView)
        s._mm_batch = batch
        s._mm_pos = pos
        views.append(s)
    return views


def _whole_batch(args: Sequence[Any], kwargs: dict[str, Any]) -> torch.Tensor | None:
    """The batch tensor if ``torch.stack(*args, **kwargs)`` would rebuild it exactly, else None."""
    tensors = args[0] if args else kwargs.get("tensors")
    dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
    if dim != 0 or not isinstance(tensors, list | tuple) or not tensors:
        return None
    batch = getattr(tensors[0], "_mm_batch", None)
    if batch is None or len(tensors) != batch.shape[0] or not batch.is_contiguous():
        return None
    for pos, t in enumerate(tensors):
        if type(t) is not SampleView or t._mm_batch is not batch or t._mm_pos != pos:
            return None
    out = kwargs.get("out")
    if out is None or batch.is_shared():
        return batch
    with torch._C.DisableTorchFunctionSubclass():
        return out.resize_(batch.shape).copy_(batch)
