"""Images as model-ready tensors: one batched read, resize, normalisation, device (episodes and
any rows of a dataset folder)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medimeta.data.device import model_input
from medimeta.data.pixels import Normalizer
from medimeta.data.splits import resize_uint8
from medimeta.episodes import Episode, EpisodeLoader


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

    def preprocessing(self) -> dict[str, Any]:
        """What :meth:`prepare` does to an image, as data (part of the feature cache's key):
        the size it is resized to (None: as stored), the channels read and the normalisation."""
        return {
            "image_size": self.image_size,
            "resize": "auto (area for whole factors, else bilinear; resize_uint8)",
            "channels": self.loader.channels,
            "mean": [float(v) for v in self.normalizer.mean],
            "std": [float(v) for v in self.normalizer.std],
        }

    def first_rows(self, folder: Path, n: int) -> torch.Tensor:
        """The first ``n`` images of a dataset folder (fewer when it is smaller), prepared."""
        from medimeta.format.reader import DatasetFolder

        total = DatasetFolder(folder, check=False).num_samples
        return self.prepare(self.loader.images(folder, np.arange(min(n, total), dtype=np.int64)))

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
