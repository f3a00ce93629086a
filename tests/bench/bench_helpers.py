"""Helpers of the benchmark tests: tiny settings and ``derived_from`` in an info.yaml."""

from __future__ import annotations

from pathlib import Path

import yaml

from medimeta.bench.settings import BenchSettings

TINY_FEWSHOT = {
    "finetune_steps": 3,
    "probe_steps": 5,
    "pretrain_steps": 3,
    "meta_steps": 2,
    "meta_shots": 2,
    "meta_queries": 2,
}


def tiny_settings(**changes: object) -> BenchSettings:
    """Settings small enough for a test: tiny_cnn at 16 px, 2-shot/2-query, 3 episodes."""
    values: dict[str, object] = {
        "methods": ("linear-probe", "protonet", "knn"),
        "backbones": ("tiny_cnn",),
        "shots": (2,),
        "queries": 2,
        "episodes": 3,
        "image_size": 16,
        "fewshot": dict(TINY_FEWSHOT),
        "train": {"epochs": 2, "batch_size": 16, "patience": 0},
    }
    values.update(changes)
    return BenchSettings(**values)  # type: ignore[arg-type]


def add_derived_from(folder: Path, origins: list[str]) -> None:
    """Write ``derived_from`` into a dataset's info.yaml (what --derived-from records)."""
    info_path = folder / "info.yaml"
    info = yaml.safe_load(info_path.read_text())
    info["derived_from"] = origins
    info_path.write_text(yaml.safe_dump(info, sort_keys=False, allow_unicode=True))
