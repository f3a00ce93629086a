"""Frozen-feature methods fed from precomputed features (the embedding cache).

``linear-probe``, ``protonet`` and ``knn`` only read eval-mode backbone features, so the
features of every sample an episode set touches can be computed once and looked up per
episode. :class:`FeatureSource` is what the runner asks for them (implemented by
:class:`medimeta.bench.cache.FeatureCache`); :class:`FeatureTable` holds them by global
sample index.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

import medimeta.train.distributed as D
from medimeta.episodes import Episode
from medimeta.errors import EpisodeError
from medimeta.models.backbone import Backbone
from medimeta.train.fewshot.config import FewShotConfig
from medimeta.train.fewshot.methods import FEATURE_LEARNERS
from medimeta.train.fewshot.tensors import EpisodeReader


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
        log: Callable[[str], None] | None = None,
        progress: bool = False,
    ) -> FeatureTable: ...


def episode_rows(episodes: list[Episode]) -> np.ndarray:
    """Sorted distinct global indices of every support and query sample of ``episodes``."""
    if not episodes:
        return np.empty(0, dtype=np.int64)
    parts = [np.concatenate([e.support_indices, e.query_indices]) for e in episodes]
    return np.unique(np.concatenate(parts).astype(np.int64))


def score_from_table(
    table: FeatureTable, ep: Episode, cfg: FewShotConfig, seed: int, device: torch.device
) -> tuple[np.ndarray, dict[str, Any]]:
    """The frozen-feature method ``cfg.method`` on one episode, features from ``table``."""
    learner = FEATURE_LEARNERS[cfg.method]
    support = table.take(ep.support_indices).to(device)
    query = table.take(ep.query_indices).to(device)
    support_y = torch.from_numpy(np.ascontiguousarray(ep.support_labels)).to(device)
    return learner(support, support_y, query, ep.task_target.value, ep.n_way, cfg, seed)
