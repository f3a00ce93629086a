"""Images as model-ready tensors: one batched read, resize, normalisation, device (episodes and
any rows of a dataset folder).

Two pixel paths: the default one (resize to ``image_size``, then the normaliser's mean and std)
and, for a backbone with its own :class:`~medimeta.models.preprocessing.Preprocessing` (an
``hf:`` model), that preprocessing applied to the uint8 batch (the model processor's resize,
centre crop, rescale and normalisation, grey expanded to RGB). :meth:`EpisodeReader.
preprocessing` describes the path taken; :func:`reader_for` picks it from the backbone.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medimeta.data.device import model_input
from medimeta.data.pixels import Normalizer
from medimeta.data.splits import resize_uint8
from medimeta.episodes import Episode, EpisodeLoader
from medimeta.models.build import NormalizeChoice, make_normalizer
from medimeta.models.preprocessing import Preprocessing


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
    """Reads episodes at ``image_size`` and normalises them for the backbone (or applies the
    backbone's own ``preprocessing`` after that resize)."""

    def __init__(
        self,
        *,
        image_size: int | None,
        normalizer: Normalizer,
        device: torch.device,
        channels_last: bool = False,
        channels: int | None = None,
        preprocessing: Preprocessing | None = None,
    ) -> None:
        self.image_size = image_size
        self.normalizer = normalizer
        self.device = device
        self.channels_last = channels_last
        self.pixels = preprocessing
        self.loader = EpisodeLoader(dtype="uint8", channels=channels)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) -> normalised float on the device at the reader's size."""
        x = resize_uint8(x.contiguous(), self.image_size)
        if self.pixels is not None:
            out = self.pixels(x).to(self.device, non_blocking=True)
            return out.contiguous(memory_format=torch.channels_last) if self.channels_last else out
        return model_input(
            self.normalizer.to_float(x), self.normalizer, self.device, self.channels_last
        )

    def preprocessing(self) -> dict[str, Any]:
        """What :meth:`prepare` does to an image, as data (part of the feature cache's key):
        the size it is resized to (None: as stored), the channels read and the normalisation,
        or the model's own preprocessing (an ``hf:`` backbone's)."""
        channels = self.loader.channels
        if self.pixels is not None:
            return {
                "path": "model preprocessing",
                "image_size": self.image_size,
                "channels": channels,
                **self.pixels.to_dict(),
            }
        return {
            "path": "resize + normalise",
            "image_size": self.image_size,
            "resize": "auto (area for whole factors, else bilinear; resize_uint8)",
            "channels": channels,
            "mean": [float(v) for v in self.normalizer.mean],
            "std": [float(v) for v in self.normalizer.std],
        }

    def read(self, folder: Path, rows: np.ndarray) -> torch.Tensor:
        """Rows (global indices) of a dataset folder, prepared."""
        return self.prepare(self.loader.images(folder, rows))

    def batches(self, folder: Path, chunks: list[np.ndarray]) -> Iterator[torch.Tensor]:
        """The prepared batches of ``chunks``, in order; batch i + 1 is read and prepared on a
        background thread while the caller works on batch i."""
        if not chunks:
            return
        with ThreadPoolExecutor(1, "medimeta-read") as pool:
            pending = pool.submit(self.read, folder, chunks[0])
            for rows in chunks[1:]:
                ready = pending.result()
                pending = pool.submit(self.read, folder, rows)
                yield ready
            yield pending.result()

    def first_rows(self, folder: Path, n: int) -> torch.Tensor:
        """The first ``n`` images of a dataset folder (fewer when it is smaller), prepared."""
        from medimeta.format.reader import DatasetFolder

        total = DatasetFolder(folder, check=False).num_samples
        return self.read(folder, np.arange(min(n, total), dtype=np.int64))

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


def reader_for(
    backbone: nn.Module,
    *,
    image_size: int | None,
    device: torch.device,
    normalize: str = "auto",
    channels_last: bool = False,
    channels: int | None = None,
) -> EpisodeReader:
    """The reader of ``backbone``: its own preprocessing when it has one (``normalize`` other
    than ``auto`` replaces its mean and std), else resize and the normaliser of ``normalize``
    (``auto``: the weights' statistics)."""
    normalizer = make_normalizer(NormalizeChoice(normalize), backbone)
    prep: Preprocessing | None = getattr(backbone, "preprocessing", None)
    if prep is not None and normalize != "auto":
        prep = prep.with_normalization(normalizer.mean, normalizer.std)
    return EpisodeReader(
        image_size=image_size,
        normalizer=normalizer,
        device=device,
        channels_last=channels_last,
        channels=channels,
        preprocessing=prep,
    )
