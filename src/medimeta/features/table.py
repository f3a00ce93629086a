"""Precomputed features for the methods that only read eval-mode backbone features.

The features of every sample an episode set touches can be computed once and looked up per
episode. :class:`FeatureSource` is what the few-shot runner asks for them (implemented by
:class:`medimeta.features.cache.FeatureCache`); :class:`FeatureTable` holds them by global
sample index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

import medimeta.data.distributed as D
from medimeta.episodes import Episode
from medimeta.errors import EpisodeError
from medimeta.features.reader import EpisodeReader
from medimeta.logs import Log
from medimeta.models.backbone import Backbone


@dataclass
class FeatureTable:
    """Features (N, F) float32 of the sorted global sample ``indices`` of one dataset."""

    indices: np.ndarray
    features: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def take(self, rows: np.ndarray) -> torch.Tensor:
        """Features of global sample indices ``rows`` (in that order)."""
        rows = np.asarray(rows, dtype=np.int64)
        pos = np.searchsorted(self.indices, rows)
        ok = pos < self.indices.size
        ok[ok] = self.indices[pos[ok]] == rows[ok]
        if not bool(np.all(ok)):
            missing = rows[~ok][:5].tolist()
            raise EpisodeError(f"features of samples {missing} are not in the feature table")
        return torch.from_numpy(np.ascontiguousarray(self.features[pos]))


class FeatureSource(Protocol):
    """Gives the features of samples ``rows`` of a dataset folder for a backbone and reader."""

    def table(
        self,
        *,
        folder: Path,
        split: str,
        rows: np.ndarray,
        backbone: Backbone,
        backbone_name: str,
        reader: EpisodeReader,
        env: D.DistEnv,
        log: Log | None = None,
        progress: bool = False,
    ) -> FeatureTable: ...


def episode_rows(episodes: list[Episode]) -> np.ndarray:
    """Sorted distinct global indices of every support and query sample of ``episodes``."""
    if not episodes:
        return np.empty(0, dtype=np.int64)
    parts = [np.concatenate([e.support_indices, e.query_indices]) for e in episodes]
    return np.unique(np.concatenate(parts).astype(np.int64))
