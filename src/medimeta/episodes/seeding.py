"""Per-item random generators and the split of work over DataLoader workers and ranks.

Every random draw here comes from a generator built for one item (an episode, an epoch) out
of the user's seed, the item's index and a stable hash of what is being sampled. Nothing reads
or advances numpy's, Python's or torch's global generators, so item ``i`` is the same whatever
the iteration order, the number of workers or the rank that computes it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from medimeta.errors import EpisodeError


def stable_hash(*parts: Any) -> int:
    """A 128-bit integer from the canonical JSON of ``parts`` (identical across runs and hosts)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return int.from_bytes(hashlib.sha256(text.encode("ascii")).digest()[:16], "little")


def check_seed(seed: object) -> int:
    """``seed`` as a non-negative int, else EpisodeError."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or int(seed) < 0:
        raise EpisodeError(f"seed must be a non-negative integer; got {seed!r}")
    return int(seed)


def item_rng(seed: int, index: int, key: int) -> np.random.Generator:
    """Generator of item ``index`` under ``seed`` for the sampling problem hashed into ``key``."""
    words = [(key >> (32 * i)) & 0xFFFFFFFF for i in range(4)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, index, *words])))


@dataclass(frozen=True)
class Shard:
    """One slice of an enumerated list of work items: items ``[rank::world][worker::workers]``."""

    rank: int = 0
    world_size: int = 1
    worker: int = 0
    num_workers: int = 1

    @property
    def index(self) -> int:
        """Global shard number, ``worker + num_workers * rank``."""
        return self.worker + self.num_workers * self.rank

    @property
    def count(self) -> int:
        return self.num_workers * self.world_size

    def rank_items(self, total: int, *, equal: bool = False) -> range:
        """Item numbers of this rank (all its workers together)."""
        if equal:
            total -= total % self.world_size
        return range(self.rank, total, self.world_size)

    def items(self, total: int, *, equal: bool = False) -> range:
        """Item numbers this worker of this rank produces."""
        return self.rank_items(total, equal=equal)[self.worker :: self.num_workers]


def resolve_rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Rank and world size: the arguments, else torch.distributed, else $RANK/$WORLD_SIZE."""
    if rank is None or world_size is None:
        found_rank, found_world = 0, 1
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            found_rank, found_world = dist.get_rank(), dist.get_world_size()
        elif "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # set by torchrun
            found_rank, found_world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        rank = found_rank if rank is None else rank
        world_size = found_world if world_size is None else world_size
    if world_size < 1 or not 0 <= rank < world_size:
        raise EpisodeError(f"rank {rank} is not in 0..world_size-1 (world_size={world_size})")
    return int(rank), int(world_size)


def current_shard(rank: int, world_size: int) -> Shard:
    """The shard of the calling process: this rank, and the DataLoader worker if inside one."""
    from torch.utils.data import get_worker_info

    info = get_worker_info()
    if info is None:
        return Shard(rank, world_size)
    return Shard(rank, world_size, info.id, info.num_workers)
