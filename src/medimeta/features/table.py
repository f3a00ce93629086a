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


@dataclass
class FeatureBatch:
    """The support and query features of many episodes of one task, padded to one shape.

    ``support`` (E, S, F), ``query`` (E, Q, F); ``support_mask`` / ``query_mask`` (E, S) /
    (E, Q) mark the real rows (episodes of a multi-label task differ in size); ``support_y``
    (E, S) class indices, or (E, S, L) 0/1 labels of a multi-label task (0 on padding).
    Every episode has ``n_way`` classes (labels) of a task with target ``target``.
    """

    episodes: list[Episode]
    support: torch.Tensor
    support_mask: torch.Tensor
    support_y: torch.Tensor
    query: torch.Tensor
    query_mask: torch.Tensor
    target: str
    n_way: int

    @property
    def multilabel(self) -> bool:
        return self.support_y.ndim == 3

    def unpad(self, scores: torch.Tensor) -> list[np.ndarray]:
        """Per episode, the float64 scores (Q_e, C) of its real query rows."""
        out = []
        for e in range(len(self.episodes)):
            rows = scores[e][self.query_mask[e]]
            out.append(rows.double().cpu().numpy())
        return out


def episode_batch(
    table: FeatureTable, episodes: list[Episode], device: torch.device | str = "cpu"
) -> FeatureBatch | None:
    """The episodes' features as one padded batch; None when they do not share a target and
    a number of ways (then they are scored one by one)."""
    if not episodes:
        return None
    kinds = {(ep.task_target.value, ep.n_way) for ep in episodes}
    if len(kinds) != 1:
        return None
    target, n_way = kinds.pop()
    s_max = max(ep.support_indices.size for ep in episodes)
    q_max = max(ep.query_indices.size for ep in episodes)
    dim = int(table.features.shape[1])
    e = len(episodes)
    first = np.asarray(episodes[0].support_labels)
    label_shape = (first.shape[1],) if first.ndim == 2 and first.shape[1] > 1 else ()
    support = torch.zeros(e, s_max, dim)
    query = torch.zeros(e, q_max, dim)
    smask = torch.zeros(e, s_max, dtype=torch.bool)
    qmask = torch.zeros(e, q_max, dtype=torch.bool)
    labels = torch.zeros((e, s_max, *label_shape), dtype=torch.long)
    for i, ep in enumerate(episodes):
        ns, nq = ep.support_indices.size, ep.query_indices.size
        support[i, :ns] = table.take(ep.support_indices)
        query[i, :nq] = table.take(ep.query_indices)
        smask[i, :ns], qmask[i, :nq] = True, True
        y = torch.from_numpy(np.ascontiguousarray(ep.support_labels)).long()
        labels[i, :ns] = y.reshape(ns, *label_shape)
    dev = torch.device(device)
    return FeatureBatch(
        list(episodes),
        support.to(dev),
        smask.to(dev),
        labels.to(dev),
        query.to(dev),
        qmask.to(dev),
        target,
        n_way,
    )
