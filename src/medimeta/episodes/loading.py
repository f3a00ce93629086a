"""Episodes as tensors: one batched image read per episode, map-style and streaming datasets.

Use the datasets with ``DataLoader(..., batch_size=None)``: each item is already one episode.
:class:`EpisodeDataset` is map-style (any sampler, e.g. ``DistributedSampler``, splits it);
:class:`EpisodeStream` is iterable and splits episode indices over DataLoader workers and
torch.distributed ranks itself, so every episode is produced exactly once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset

from medimeta.catalog import TaskTarget
from medimeta.data import TaskDescription
from medimeta.data.pixels import DTYPES, get_normalization, load_images
from medimeta.episodes.episode import Episode
from medimeta.episodes.seeding import current_shard, resolve_rank
from medimeta.errors import EpisodeError, check_choice
from medimeta.format.images import ImageStore
from medimeta.format.reader import DatasetFolder


class EpisodeSource(Protocol):
    """Anything that hands out episodes by index: samplers, episode sets, lists."""

    def __getitem__(self, index: int) -> Episode: ...


@dataclass(frozen=True)
class LoadedEpisode:
    """Images (B, C, H, W) and labels of an episode; unpacks as ``sx, sy, qx, qy``.

    Labels: multi-class/ordinal (B,) in 0..n_way-1; binary (B, 1) 0/1; multi-label
    (B, n_way) multi-hot. ``episode.classes`` maps label indices back to the task's keys.
    """

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor
    episode: Episode
    # support_x and query_x as the one tensor they are views of (set by EpisodeLoader): pickled
    # (e.g. from a DataLoader worker) as that one tensor, so one handle crosses, not two
    images: torch.Tensor | None = field(default=None, repr=False, compare=False)

    def __reduce__(self) -> Any:
        if self.images is None:
            return (LoadedEpisode, (*self, self.episode))
        n = self.support_x.shape[0]
        return (_rebuild_episode, (self.images, n, self.support_y, self.query_y, self.episode))

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter((self.support_x, self.support_y, self.query_x, self.query_y))

    @property
    def support(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.support_x, self.support_y

    @property
    def query(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.query_x, self.query_y

    @property
    def description(self) -> TaskDescription:
        return self.episode.description

    @property
    def index(self) -> int:
        return self.episode.index

    def to(self, device: str | torch.device, *, normalize: str | None = None) -> LoadedEpisode:
        """The episode on ``device``; with ``normalize``, uint8 images become normalised float
        there (moving uint8 and converting on the accelerator moves 4x fewer bytes)."""

        def images(x: torch.Tensor) -> torch.Tensor:
            x = x.to(device, non_blocking=True)
            if normalize is None:
                return x
            if x.dtype != torch.uint8:
                raise EpisodeError(f"normalize={normalize!r} needs uint8 images; got {x.dtype}")
            return get_normalization(normalize)(x)

        return LoadedEpisode(
            images(self.support_x),
            self.support_y.to(device),
            images(self.query_x),
            self.query_y.to(device),
            self.episode,
        )


def _rebuild_episode(
    images: torch.Tensor, n: int, sy: torch.Tensor, qy: torch.Tensor, episode: Episode
) -> LoadedEpisode:
    return LoadedEpisode(images[:n], sy, images[n:], qy, episode, images)


def label_tensor(labels: np.ndarray, target: TaskTarget) -> torch.Tensor:
    """Episode labels as the loader hands them out (binary gets a trailing dimension of 1)."""
    t = torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64))
    return t.reshape(-1, 1) if target is TaskTarget.BINARY_CLASSIFICATION else t


class EpisodeLoader:
    """Turns episodes into tensors through the format core's batched read.

    ``channels`` (1, 3 or None for the dataset's own), ``dtype`` ("float" or "uint8"),
    ``normalize`` ("half", "imagenet", "unit"), ``backend`` of the image store, and an optional
    ``transform`` applied per PIL image (slow path, as in ``MedIMeta``). Support and query are
    read and converted together by the pixel kernel into one reused output (shared memory in a
    DataLoader worker; page-locked with ``pin_memory``, which needs an accelerator). Picklable;
    files open lazily in the process that reads.
    """

    def __init__(
        self,
        *,
        channels: int | None = None,
        dtype: str = "float",
        normalize: str = "half",
        backend: str = "auto",
        transform: Callable[[Any], torch.Tensor] | None = None,
        pin_memory: bool = False,
    ) -> None:
        if channels is not None:
            check_choice("channel count", str(channels), ("1", "3"))
        self.channels = channels
        self.dtype = check_choice("dtype", dtype, DTYPES)
        self.normalization = get_normalization(normalize)
        self.backend = backend
        self.transform = transform
        self.pin_memory = bool(pin_memory)
        self._stores: dict[Path, ImageStore] = {}

    def store(self, folder: Path) -> ImageStore:
        if folder not in self._stores:
            self._stores[folder] = DatasetFolder(folder).image_store(self.backend)
        return self._stores[folder]

    def images(self, folder: Path, rows: np.ndarray) -> torch.Tensor:
        """(B, C, H, W) images of global indices ``rows`` of one dataset folder."""
        store = self.store(folder)
        channels = self.channels or store.num_channels
        if self.transform is not None:
            return torch.stack([self.transform(_pil(store.read(int(g)), channels)) for g in rows])
        return load_images(
            store, rows, channels, self.dtype, self.normalization, reuse=True, pin=self.pin_memory
        )

    def load(self, episode: Episode) -> LoadedEpisode:
        """Support and query tensors of ``episode``, read together in one batched read."""
        if episode.folder is None:
            raise EpisodeError(
                f"{episode!r} is not bound to a dataset folder; load its file with "
                f"EpisodeSet.load(path, root) (which also checks it against the data)"
            )
        n = episode.support_indices.size
        x = self.images(
            episode.folder, np.concatenate([episode.support_indices, episode.query_indices])
        )
        target = episode.task_target
        return LoadedEpisode(
            x[:n],
            label_tensor(episode.support_labels, target),
            x[n:],
            label_tensor(episode.query_labels, target),
            episode,
            x,
        )

    def close(self) -> None:
        for store in self._stores.values():
            store.close()


def _pil(arr: np.ndarray, channels: int) -> Any:
    from PIL import Image

    img = Image.fromarray(arr)
    mode = "RGB" if channels == 3 else "L"
    return img if img.mode == mode else img.convert(mode)


def _length(source: object) -> int | None:
    try:
        return len(source)  # type: ignore[arg-type]
    except TypeError:
        return None


class EpisodeDataset(Dataset):
    """Map-style dataset: item ``i`` is episode ``i`` of ``episodes``, loaded as tensors."""

    def __init__(self, episodes: EpisodeSource, loader: EpisodeLoader | None = None) -> None:
        self.episodes = episodes
        self.loader = loader or EpisodeLoader()
        n = _length(episodes)
        if n is None:
            raise EpisodeError(
                "EpisodeDataset needs a bounded source: give the sampler num_episodes"
            )
        self._len = n

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> LoadedEpisode:
        return self.loader.load(self.episodes[int(index)])


class EpisodeStream(IterableDataset):
    """Episodes ``start, start + 1, ...`` split over DataLoader workers and ranks.

    Rank ``r`` of ``R`` takes episode numbers ``r, r + R, ...``; its worker ``w`` of ``W``
    takes every ``W``-th of those. ``num_episodes`` defaults to ``len(episodes)``; None on an
    unbounded sampler streams forever. ``equal_shards`` drops the last ``< R`` episodes so
    every rank yields as many (DistributedDataParallel needs equal step counts).
    ``loader=None`` yields :class:`LoadedEpisode` through a default loader; pass
    ``load=False`` to yield index-only :class:`Episode` objects. Rank and world size come from
    the arguments, else torch.distributed, else $RANK/$WORLD_SIZE, read at construction.
    """

    def __init__(
        self,
        episodes: EpisodeSource,
        loader: EpisodeLoader | None = None,
        *,
        num_episodes: int | None = None,
        start: int = 0,
        load: bool = True,
        rank: int | None = None,
        world_size: int | None = None,
        equal_shards: bool = False,
    ) -> None:
        self.episodes = episodes
        self.loader = (loader or EpisodeLoader()) if load else None
        self.num_episodes = num_episodes if num_episodes is not None else _length(episodes)
        self.start = int(start)
        self.rank, self.world_size = resolve_rank(rank, world_size)
        self.equal_shards = equal_shards

    def __len__(self) -> int:
        """Episodes this rank yields (all its workers together)."""
        if self.num_episodes is None:
            raise TypeError("unbounded stream (num_episodes=None)")
        return len(
            current_shard(self.rank, self.world_size).rank_items(
                self.num_episodes, equal=self.equal_shards
            )
        )

    def indices(self) -> Iterator[int]:
        """Episode numbers the calling worker of this rank produces."""
        shard = current_shard(self.rank, self.world_size)
        if self.num_episodes is not None:
            for j in shard.items(self.num_episodes, equal=self.equal_shards):
                yield self.start + j
            return
        j = shard.rank + shard.world_size * shard.worker
        step = shard.world_size * shard.num_workers
        while True:
            yield self.start + j
            j += step

    def __iter__(self) -> Iterator[Any]:
        for i in self.indices():
            episode = self.episodes[i]
            yield episode if self.loader is None else self.loader.load(episode)
