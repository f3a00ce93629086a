"""MedIMeta toolkit: catalog, reader, PyTorch datasets and tools for the MedIMeta meta-dataset."""

from __future__ import annotations

__version__ = "0.1.0"

from medimeta.catalog import get_catalog, get_dataset, get_task, list_datasets
from medimeta.data import MedIMeta, MedIMetaMultiTask, TaskDescription

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
