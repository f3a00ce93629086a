"""Two torchrun-style processes (gloo, CPU), each with 2 DataLoader workers: disjoint shards
whose union is the whole epoch, and episode i identical on every rank."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

from medimeta.episodes import CrossDomainBatches, EpisodeSampler

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_two_ranks_two_workers(ep_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "gathered.json"
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
        "WORLD_SIZE": "2",
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE / "episode_dist_worker.py"), str(ep_root), str(out)],
            env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for rank in range(2)
    ]
    logs = [p.communicate(timeout=120)[0].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(logs)
    ranks = json.loads(out.read_text())
    assert [r["rank"] for r in ranks] == [0, 1]

    reference = CrossDomainBatches(
        ep_root, ["ep_rgb:case category", "ep_gray:Malignancy", "ep_rgb:finding labels"], 6,
        dtype="uint8", seed=5, rank=0, world_size=1,
    )  # fmt: skip
    whole: Counter = Counter()
    for t, positions in reference.schedule():
        ds = reference.datasets[t]
        whole[(ds.dataset_id, ds.task_name, tuple(ds.global_indices(positions).tolist()))] += 1
    shards = [Counter((a, b, tuple(i)) for a, b, i in r["batches"]) for r in ranks]
    assert not set(shards[0]) & set(shards[1]), "ranks share a batch"
    assert shards[0] + shards[1] == whole and max(whole.values()) == 1
    assert [r["len"] for r in ranks] == [sum(s.values()) for s in shards]

    sampler = EpisodeSampler.from_root(
        ep_root, "ep_rgb:finding labels", "train", shots=2, queries=2, seed=9
    )
    got = {**ranks[0]["episodes"], **ranks[1]["episodes"]}
    assert not set(ranks[0]["episodes"]) & set(ranks[1]["episodes"])
    assert sorted(int(i) for i in got) == list(range(11))
    for i, (support, query) in got.items():
        ep = sampler[int(i)]
        assert support == ep.support_indices.tolist() and query == ep.query_indices.tolist()
    for r in ranks:
        assert {int(i): v for i, v in r["fixed"].items()} == {
            i: sampler[i].support_indices.tolist() for i in (0, 5, 10)
        }
