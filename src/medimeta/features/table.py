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
    e = len(episodes)
    first = np.asarray(episodes[0].support_labels)
    label_shape = (first.shape[1],) if first.ndim == 2 and first.shape[1] > 1 else ()
    support, smask = _padded(table, [ep.support_indices for ep in episodes], s_max)
    query, qmask = _padded(table, [ep.query_indices for ep in episodes], q_max)
    labels = np.zeros((e, s_max, *label_shape), dtype=np.int64)
    for i, ep in enumerate(episodes):
        ns = ep.support_indices.size
        labels[i, :ns] = np.asarray(ep.support_labels).reshape(ns, *label_shape)
    dev = torch.device(device)
    return FeatureBatch(
        list(episodes),
        support.to(dev),
        smask.to(dev),
        torch.from_numpy(labels).to(dev),
        query.to(dev),
        qmask.to(dev),
        target,
        n_way,
    )


def _padded(
    table: FeatureTable, rows: list[np.ndarray], width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (E, width, F) of each episode's ``rows``, zero-padded, and the real-row mask;
    gathered in one look-up (one small copy per episode took most of a warm run's time)."""
    mask = np.zeros((len(rows), width), dtype=bool)
    for i, r in enumerate(rows):
        mask[i, : r.size] = True
    flat = table.take(np.concatenate(rows) if rows else np.empty(0, np.int64))
    out = torch.zeros(len(rows), width, flat.shape[1], dtype=flat.dtype)
    mask_t = torch.from_numpy(mask)
    out[mask_t] = flat  # row-major: the rows of episode 0, then of episode 1, ...
    return out, mask_t
