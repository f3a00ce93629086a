"""Benchmark presets (``--preset fm-grid``) and cells a backbone cannot run: left out of the
plan with one note per method and backbone, refused with that note by a single run."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from bench_helpers import tiny_settings

from medimeta.bench.runner import run_benchmark
from medimeta.errors import OptionError
from medimeta.evaluate.metrics import UndefinedMetricWarning
from medimeta.train.fewshot import FewShotConfig, run_fewshot
from medimeta.train.fewshot.methods.protonet import ProtoNet
from medimeta.train.fewshot.registry import register_method, unregister_method
from medimeta.train.settings import EpisodePlan, RunSettings


class _TinyOnly(ProtoNet):
    """ProtoNet that refuses backbones wider than 16 features (a stand-in for zero-shot's
    text-tower check, which needs a CLIP model)."""

    name = "tiny-only-protonet"
    paper_name = "Tiny-only ProtoNet"
    in_default_benchmark = False

    def unsupported(self, backbone):  # type: ignore[no-untyped-def]
        return None if backbone.num_features <= 16 else "needs a tiny backbone (a test's toy)"


WIDE = "resnet18_cifar"


@pytest.fixture
def tiny_only() -> Iterator[str]:
    register_method(_TinyOnly)
    yield _TinyOnly.name
    unregister_method(_TinyOnly.name)


def test_a_method_a_backbone_cannot_run_is_left_out_with_one_note(
    bench_root: Path, tmp_path: Path, tiny_only: str
) -> None:
    settings = tiny_settings(
        methods=("protonet", "tiny-only-protonet"),
        backbones=("tiny_cnn", WIDE),
        shots=(1, 2),
        targets=("target",),
    )
    lines: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        summary = run_benchmark(
            bench_root, settings, out=tmp_path / "b", dry_run=True, log=lines.append
        )
    text = "\n".join(lines)
    labels = [c.label for c in summary["cells"]]
    assert len(labels) == 6  # 2 shot levels x (2 methods on tiny_cnn + protonet on the wide one)
    assert not any("tiny-only" in label and WIDE in label for label in labels)
    note = f"left out: tiny-only-protonet on {WIDE}: needs a tiny backbone (a test's toy)"
    assert text.count(note) == 1
    assert "  1-shot: 3 cells, 3 to run, estimated" in text
    assert "  2-shot: 3 cells, 3 to run, estimated" in text
    config = FewShotConfig(method="tiny-only-protonet", backbone=WIDE, pretrained=False)
    plan = EpisodePlan(shots=1, queries=2, episodes=2)
    with pytest.raises(OptionError, match=f"cannot run on --backbone {WIDE}: needs a tiny"):
        run_fewshot(
            bench_root,
            "target:case category",
            replace(config, image_size=16),
            episodes=plan,
            run=RunSettings(out_dir=tmp_path / "one"),
        )
