"""Benchmark presets (``--preset fm-grid``) and cells a backbone cannot run: left out of the
plan with one note per method and backbone, refused with that note by a single run."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from bench_helpers import tiny_settings

from medimeta.bench.runner import run_benchmark
from medimeta.bench.settings import GRID_PRESETS, BenchSettings, preset_names
from medimeta.cli.app import main
from medimeta.errors import OptionError, UnknownNameError
from medimeta.evaluate.metrics import UndefinedMetricWarning
from medimeta.train.fewshot import FewShotConfig, run_fewshot
from medimeta.train.fewshot.methods.protonet import ProtoNet
from medimeta.train.fewshot.registry import register_method, unregister_method
from medimeta.train.settings import EpisodePlan, RunSettings
from models.hf_helpers import save_tiny, save_tiny_contrastive


def test_fm_grid_is_the_authors_protocol_and_explicit_options_win() -> None:
    grid = BenchSettings.from_preset("fm-grid")
    assert grid.shots == (1, 2, 3, 5, 7, 10, 15, 20, 25, 30)
    assert (grid.queries, grid.episodes) == (10, 100)
    assert grid.methods == ("linear-probe", "knn", "simpleshot", "zero-shot", "finetune")
    mine = BenchSettings.from_preset("fm-grid", shots=(1, 5), episodes=20, methods=("knn",))
    assert (mine.shots, mine.episodes, mine.queries, mine.methods) == ((1, 5), 20, 10, ("knn",))
    medmnist = BenchSettings.from_preset("medmnist", shots=())
    assert medmnist.train_preset == "medmnist" and medmnist.shots == (5,)
    assert set(preset_names()) == {"paper", "medmnist", *GRID_PRESETS}
    with pytest.raises(UnknownNameError, match="fm-grid"):
        BenchSettings.from_preset("fm_grid")


@pytest.mark.realdata
def test_fm_grid_dry_run_plans_ten_shot_levels_and_leaves_out_what_cannot_run(
    busi_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save_tiny("vit", tmp_path / "vit")
    save_tiny_contrastive("clip", tmp_path / "clip")
    backbones = f"hf:{tmp_path / 'vit'},hf:{tmp_path / 'clip'}"
    args = ["benchmark", "--root", str(busi_root), "--targets", "bus", "--preset", "fm-grid"]
    args += ["--backbones", backbones, "--dry-run", "--out", str(tmp_path / "grid")]
    args += ["--cache", str(tmp_path / "cache")]
    with warnings.catch_warnings(), pytest.raises(SystemExit) as ended:
        warnings.simplefilter("ignore")
        main(args)
    assert ended.value.code in (0, None)
    text = capsys.readouterr().out
    levels = [line for line in text.splitlines() if "-shot: " in line and "cells" in line]
    assert [int(line.split("-shot")[0]) for line in levels] == [1, 2, 3, 5, 7, 10, 15, 20, 25, 30]
    # 5 methods on CLIP, 4 on the ViT (no text tower): 9 cells per shot level
    assert all(" 9 cells, 9 to run, estimated " in line for line in levels)
    assert text.count(f"left out: zero-shot on hf:{tmp_path / 'vit'}: needs a text tower") == 1
    assert "total to run:" in text
    plan = json.loads((tmp_path / "grid" / "plan.json").read_text())
    assert len(plan["cells"]) == 90 and len(plan["left_out"]) == 1
    episodes = sorted((tmp_path / "grid" / "episodes").iterdir())
    assert len(episodes) == 10 and all("10query_100ep" in p.name for p in episodes)


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
