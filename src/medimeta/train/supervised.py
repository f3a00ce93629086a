"""Supervised training of one task: epochs, validation, early stopping, checkpoints, test.

Files in ``out_dir``: ``config.json`` (the protocol), ``log.csv`` (one row per epoch),
``last.safetensors`` (model + optimiser + state, for ``resume``), ``best.safetensors``
(best validation model), ``predictions_val.csv``/``predictions_test.csv`` and
the run record (:mod:`medimeta.runs.record`: metrics of the selected checkpoint plus the
protocol and timings).

Randomness: the sample order of epoch ``e`` comes from ``numpy.random.default_rng([seed,
e, 1])`` and the augmentation from a torch generator seeded with ``[seed, e, 2]``; model
initialisation and anything else drawing from torch's global generator run under
:func:`~medimeta.models.build.seeded`. A run is therefore a function of its seed, and
resuming at an epoch boundary continues exactly as if it had not stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import medimeta.data.distributed as D
from medimeta.format.locate import resolve_task_ref
from medimeta.logs import Log
from medimeta.models.build import seeded
from medimeta.train.config import TrainConfig
from medimeta.train.records import TrainResult
from medimeta.train.run import SupervisedRun
from medimeta.train.settings import RunSettings

__all__ = ["TrainResult", "summarize_seeds", "train_supervised"]


def train_supervised(
    root: str | Path,
    dataset_id: str,
    task_name: str | None = None,
    *,
    backbone: str = "resnet18",
    config: TrainConfig | None = None,
    seed: int = 0,
    run: RunSettings | None = None,
    log: Log | None = None,
    env: D.DistEnv | None = None,
) -> TrainResult:
    """Train ``backbone`` + head on ``dataset_id``/``task_name`` (None: the dataset's first
    task, with a note); see the module docstring.

    ``run``: the run folder and how the run executes (default: ``runs/train``, no resume)."""
    config = config or TrainConfig()
    if task_name is None:
        dataset_id, task_name = resolve_task_ref(root, dataset_id)
    run = run or RunSettings(out_dir=Path("runs/train"), resume=False)
    own_env = env is None
    env = D.init_distributed() if env is None else env
    try:
        with seeded(seed):
            return SupervisedRun(
                root, f"{dataset_id}:{task_name}", backbone, config, seed, run, log, env
            ).run(run.resume)
    finally:
        if own_env:
            D.shutdown(env)


def summarize_seeds(results: list[TrainResult], split: str = "test") -> dict[str, Any]:
    """Mean, sample standard deviation and values per metric over runs with different seeds."""
    metrics = sorted({k for r in results for k in r.metrics(split)})
    out: dict[str, Any] = {"seeds": [r.record.seed for r in results], "split": split}
    for name in metrics:
        values = np.array([r.metrics(split).get(name, np.nan) for r in results], float)
        out[name] = {
            "mean": float(np.nanmean(values)),
            "std": float(np.nanstd(values, ddof=1)) if values.size > 1 else None,
            "values": values.tolist(),
        }
    return out
