"""MedIMeta toolkit: catalog, reader, PyTorch datasets and tools for the MedIMeta meta-dataset.

Top-level names are imported on first use, so processes that only convert or build data (and
their worker pools) do not pay for importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medimeta._lazy import lazy_getattr
from medimeta._version import __version__

_LAZY = {
    "MedIMeta": "medimeta.data",
    "MedIMetaMultiTask": "medimeta.data",
    "TaskDescription": "medimeta.data",
    "get_catalog": "medimeta.catalog",
    "get_dataset": "medimeta.catalog",
    "get_task": "medimeta.catalog",
    "list_datasets": "medimeta.catalog",
}

__all__ = [
    "MedIMeta",
    "MedIMetaMultiTask",
    "TaskDescription",
    "__version__",
    "get_catalog",
    "get_dataset",
    "get_task",
    "list_datasets",
]

if TYPE_CHECKING:
    from medimeta.catalog import get_catalog, get_dataset, get_task, list_datasets
    from medimeta.data import MedIMeta, MedIMetaMultiTask, TaskDescription


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
