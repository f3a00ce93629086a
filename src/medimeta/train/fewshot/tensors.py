"""Episodes as model-ready tensors: one batched read, resize, normalisation, device."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from medimeta.catalog.tasks import TaskTarget
from medimeta.data.pixels import Normalizer
from medimeta.data.splits import resize_uint8
from medimeta.episodes import Episode, EpisodeLoader
from medimeta.evaluate.compute import compute_metrics
from medimeta.models import make_head
from medimeta.train.inputs import model_input


@dataclass
class EpisodeTensors:
    """Support and query of one episode; labels as the episode stores them (re-indexed)."""

    episode: Episode
    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor

    @property
    def target(self) -> str:
        return self.episode.task_target.value

    @property
    def n_way(self) -> int:
        return self.episode.n_way


class EpisodeReader:
    """Reads episodes at ``image_size`` and normalises them for the backbone."""

    def __init__(
        self,
        *,
        image_size: int | None,
        normalizer: Normalizer,
        device: torch.device,
        channels_last: bool = False,
        channels: int | None = None,
    ) -> None:
        self.image_size = image_size
        self.normalizer = normalizer
        self.device = device
        self.channels_last = channels_last
        self.loader = EpisodeLoader(dtype="uint8", channels=channels)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) -> normalised float on the device at the reader's size."""
        x = resize_uint8(x.contiguous(), self.image_size)
        return model_input(
            self.normalizer.to_float(x), self.normalizer, self.device, self.channels_last
        )

    def load(self, episode: Episode) -> EpisodeTensors:
        loaded = self.loader.load(episode)
        return EpisodeTensors(
            episode,
            self.prepare(loaded.support_x),
            torch.from_numpy(np.ascontiguousarray(episode.support_labels)).to(self.device),
            self.prepare(loaded.query_x),
            torch.from_numpy(np.ascontiguousarray(episode.query_labels)).to(self.device),
        )

    def close(self) -> None:
        self.loader.close()


def episode_head(
    target: str, n_way: int, num_features: int, *, init: str = "zero", ordinal: str = "nominal"
) -> torch.nn.Linear:
    """A fresh head for an episode's classes (zero init: every class row starts at 0)."""
    return make_head(target, n_way, num_features, init, ordinal=ordinal)


def episode_metrics(target: str, labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """The task target's metric set on the query predictions of one episode."""
    s = scores[:, 0] if target == TaskTarget.BINARY_CLASSIFICATION and scores.ndim == 2 else scores
    return compute_metrics(target, labels, s)
