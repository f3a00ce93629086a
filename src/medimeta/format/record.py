"""The contract between whatever produces samples (builders, converters) and the writer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SampleRecord:
    """One sample to write; its position in the records list is its global index.

    ``source`` is whatever the processing function needs to produce the image (a path, a
    tuple of a volume path and a slice number, ...); it must be picklable for ``workers > 1``.
    ``labels`` maps every task name to a label: a label key for multi-class, binary and
    ordinal tasks, a sequence of C zeros and ones for multi-label tasks. ``annotations`` are
    extra ``annotations.csv`` columns (values are written as text, tuples as ``(2048, 1536)``).
    """

    source: Any
    labels: Mapping[str, Any]
    split: str
    original_split: str
    original_filepath: str
    patient_id: str | int | None = None
    annotations: Mapping[str, Any] = field(default_factory=dict)
