"""Run by ``torch.distributed.run`` in test_distributed.py: train the toy task, save history."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from medimeta.train import TrainConfig, train_supervised
from medimeta.train.augment import AugmentConfig
from medimeta.train.settings import RunSettings

CONFIG = TrainConfig(
    epochs=3,
    batch_size=9,
    lr=1e-2,
    pretrained=False,
    patience=None,
    image_size=32,
    augment=AugmentConfig(hflip=0.5, rotation=10.0, rotation_p=0.5),
    eval_batch_size=7,
)


def main(root: str, out: str) -> None:
    torch.set_num_threads(1)
    run = RunSettings(out_dir=Path(out), resume=False)
    result = train_supervised(
        root, "learn", "case category", backbone="tiny_cnn", config=CONFIG, seed=3, run=run
    )
    # every rank returns the record; two ranks writing one file interleave their bytes
    if os.environ.get("RANK", "0") == "0":
        Path(out, "history.json").write_text(json.dumps(result.history))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
