"""The peers as released, timed in their own venv: medimeta 0.0.6 and torchcross 0.0.6.

Run by ``benchmarks/loader.py`` and ``benchmarks/episodes.py`` as
``ANCHOR_PYTHON -I benchmarks/anchor/peer.py MODE ...`` (``-I``: nothing of this repository
on sys.path, so ``import medimeta`` is the released 0.0.6), over the same generated folder.
Prints one JSON line: the median rate, every repeat's rate, versions and the protocol.

* ``loader``: ``DataLoader(MedIMeta(root, id, task), batch_size=B, shuffle=True)``, medimeta
  0.0.6's default path (PIL image, torchvision Resize + ToTensor + Normalize(0.5, 0.5), then
  ``default_collate``); samples/s over ``--batches`` batches per repeat.
* ``episodes``: torchcross 0.0.6's ``FewShotMetaDataset`` over medimeta 0.0.6's ``MedIMeta``
  with ``collate_fn=torchcross.utils.collate_fn.stack`` (the way medimeta 0.0.6 pre-samples
  and loads few-shot tasks); episodes/s over ``--episodes`` episodes per repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from collections.abc import Callable
from importlib.metadata import version


def rates(fn: Callable[[], int], repeats: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        count = fn()
        out.append(count / (time.perf_counter() - t0))
    return out


def run_loader(args: argparse.Namespace) -> list[float]:
    import torch
    from torch.utils.data import DataLoader

    from medimeta import MedIMeta

    torch.manual_seed(0)
    data = MedIMeta(args.root, args.dataset, args.task)
    loader = DataLoader(data, batch_size=args.batch, shuffle=True, num_workers=0)

    def one() -> int:
        n = 0
        for k, (_, y) in enumerate(loader):
            n += len(y)
            if k + 1 >= args.batches:
                break
        return n

    return rates(one, args.repeats)


def run_episodes(args: argparse.Namespace) -> list[float]:
    import numpy as np
    from torchcross.data.metadataset import FewShotMetaDataset
    from torchcross.utils.collate_fn import stack

    from medimeta import MedIMeta

    np.random.seed(0)
    random.seed(0)
    data = MedIMeta(args.root, args.dataset, args.task)
    tasks = FewShotMetaDataset(
        data,
        collate_fn=stack,
        n_support_samples_per_class=args.shots,
        n_query_samples_per_class=args.queries,
        length=args.episodes,
    )

    def one() -> int:
        return sum(1 for _ in tasks)

    return rates(one, args.repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["loader", "episodes"])
    parser.add_argument("--root", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    t0 = time.perf_counter()
    import torch

    torch.set_num_threads(args.threads)
    values = (run_loader if args.mode == "loader" else run_episodes)(args)
    record = {
        "mode": args.mode,
        "median": statistics.median(values),
        "rates": values,
        "unit": "samples/s" if args.mode == "loader" else "episodes/s",
        "seconds": time.perf_counter() - t0,
        "versions": {
            p: version(p) for p in ("medimeta", "torchcross", "torch", "torchvision", "numpy")
        },
        "protocol": vars(args) | {"torch_threads": torch.get_num_threads(), "workers": 0},
        "pid": os.getpid(),
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
