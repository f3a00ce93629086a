"""Multi-process training with ``torchrun``: process group, batch sharding, gathering.

Every rank draws the same global batch order from the shared seed and takes a contiguous
slice of each global batch. Each rank's mean loss is scaled by
``local_size * world_size / global_size`` before DDP averages the gradients, so the update
equals that of one process on the whole batch, also when the batch does not divide evenly.
(Modules with BatchNorm still normalise with per-rank statistics, as in any DDP run; models
without cross-sample layers give the single-process curve up to float rounding.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistEnv:
    """Rank and world size of this process (1 process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def init_distributed(backend: str | None = None) -> DistEnv:
    """Join the process group torchrun describes in the environment (no-op without it).

    Backend: ``nccl`` when CUDA is available, else ``gloo``.
    """
    if dist.is_available() and dist.is_initialized():
        return DistEnv(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available():
        return DistEnv()
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    dist.init_process_group(backend=backend)
    return DistEnv(
        dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), True
    )


def shutdown(env: DistEnv) -> None:
    """Leave the process group if this module created it."""
    if env.initialized_here and dist.is_initialized():
        dist.destroy_process_group()


def device_for(env: DistEnv, requested: str | None = None) -> torch.device:
    """``requested``, else this rank's GPU when CUDA is available, else the CPU."""
    if requested:
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda", env.local_rank)
    return torch.device("cpu")


def shard(positions: np.ndarray, env: DistEnv) -> np.ndarray:
    """This rank's contiguous slice of a global batch (sizes differ by at most one)."""
    if not env.active:
        return positions
    return np.array_split(positions, env.world_size)[env.rank]


def loss_scale(local: int, total: int, env: DistEnv) -> float:
    """Factor that turns a rank's mean loss into its share of the global mean (see module)."""
    return local * env.world_size / total if env.active else 1.0


def all_gather_objects(obj: Any, env: DistEnv) -> list[Any]:
    """Every rank's ``obj`` in rank order (just ``[obj]`` in a single process)."""
    if not env.active:
        return [obj]
    out: list[Any] = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, env: DistEnv) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not env.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(env: DistEnv) -> None:
    if env.active:
        dist.barrier()
