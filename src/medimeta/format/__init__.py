"""What a dataset folder is on disk: layout, reader, image store, writer, verify.

The names below are imported on first use, so reading a dataset (``format.reader``) does not
pay for the writer's imports, and worker processes stay light.

* :class:`DatasetFolder`, :func:`locate_dataset`, :func:`find_datasets` (``reader``): one
  folder in the release layout (``layout``), its info, labels, splits and annotations;
  :func:`resolve_task_ref` (``locate``): ``ID:TASK`` or ``ID`` alone (its first task);
* :class:`ImageStore` (``images``): its pixels, memory-mapped, via h5py or TIFF files;
* :func:`write_dataset` and :class:`SampleRecord` (``writer``, ``record``): making a folder;
* :func:`verify_dataset` (``verify``): checking one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medimeta._lazy import lazy_getattr

_LAZY = {
    "DatasetFolder": "medimeta.format.reader",
    "find_datasets": "medimeta.format.reader",
    "locate_dataset": "medimeta.format.reader",
    "resolve_task_ref": "medimeta.format.locate",
    "ImageStore": "medimeta.format.images",
    "SampleRecord": "medimeta.format.record",
    "write_dataset": "medimeta.format.writer",
    "VerifyReport": "medimeta.format.verify",
    "verify_dataset": "medimeta.format.verify",
}

__all__ = [
    "DatasetFolder",
    "ImageStore",
    "SampleRecord",
    "VerifyReport",
    "find_datasets",
    "locate_dataset",
    "resolve_task_ref",
    "verify_dataset",
    "write_dataset",
]

if TYPE_CHECKING:
    from medimeta.format.images import ImageStore
    from medimeta.format.locate import resolve_task_ref
    from medimeta.format.reader import DatasetFolder, find_datasets, locate_dataset
    from medimeta.format.record import SampleRecord
    from medimeta.format.verify import VerifyReport, verify_dataset
    from medimeta.format.writer import write_dataset


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
