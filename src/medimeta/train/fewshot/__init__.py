"""Cross-domain few-shot baselines: im-pt, mm-pt, mm-maml, protonet, linear-probe, knn,
meta-baseline."""

from __future__ import annotations

from medimeta.train.fewshot.config import METHODS, FewShotConfig
from medimeta.train.fewshot.maml import adapt, maml_episode, meta_train
from medimeta.train.fewshot.metabaseline import centroid_scores, meta_finetune
from medimeta.train.fewshot.methods import (
    finetune_episode,
    linear_probe_episode,
    protonet_episode,
    prototype_scores,
)
from medimeta.train.fewshot.report import fewshot_table, result_markdown
from medimeta.train.fewshot.runner import run_fewshot
from medimeta.train.fewshot.tensors import EpisodeReader, EpisodeTensors

__all__ = [
    "METHODS",
    "EpisodeReader",
    "EpisodeTensors",
    "FewShotConfig",
    "adapt",
    "centroid_scores",
    "fewshot_table",
    "finetune_episode",
    "linear_probe_episode",
    "maml_episode",
    "meta_finetune",
    "meta_train",
    "protonet_episode",
    "prototype_scores",
    "result_markdown",
    "run_fewshot",
]
