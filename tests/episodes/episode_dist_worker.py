"""One torchrun-style process of the distributed test (run as a script, not collected).

Reads RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT, joins a gloo group, computes this rank's shard of
a cross-domain epoch and of an episode stream (each through a 2-worker DataLoader), and
gathers everything on rank 0, which writes it as JSON to argv[2].
"""

from __future__ import annotations

import json
import sys

import torch.distributed as dist
from torch.utils.data import DataLoader

from medimeta.episodes import CrossDomainBatches, EpisodeSampler, EpisodeStream

TASKS = ["ep_rgb:case category", "ep_gray:Malignancy", "ep_rgb:finding labels"]


def main(root: str, out: str) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    batches = CrossDomainBatches(root, TASKS, 6, dtype="uint8", seed=5)  # rank from the group
    mine = [
        [b.task.dataset_id, b.task.task_name, b.indices.tolist()]
        for b in batches.loader(num_workers=2)
    ]
    sampler = EpisodeSampler.from_root(
        root, "ep_rgb:finding labels", "train", shots=2, queries=2, seed=9
    )
    stream = EpisodeStream(sampler, num_episodes=11, load=False)
    loader = DataLoader(stream, batch_size=None, num_workers=2)
    episodes = {ep.index: [ep.support_indices.tolist(), ep.query_indices.tolist()] for ep in loader}
    fixed = {i: sampler[i].support_indices.tolist() for i in (0, 5, 10)}
    record = {
        "rank": rank,
        "batches": mine,
        "episodes": episodes,
        "fixed": fixed,
        "len": len(batches),
    }
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, record)
    if rank == 0:
        with open(out, "w", encoding="utf-8") as fh:
            json.dump(gathered, fh)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
