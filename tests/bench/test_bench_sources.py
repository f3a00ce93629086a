"""Source tasks of mm-pt / mm-maml: a dataset derived from the target is never a source;
--sources / --exclude-sources; the plan prints the sources of every cell."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import yaml
from bench_helpers import add_derived_from, tiny_settings
from typer.testing import CliRunner

from medimeta.bench.plan import build_plan, plan_table
from medimeta.data.distributed import DistEnv
from medimeta.episodes import excluded_datasets, source_tasks
from medimeta.errors import EpisodeError
from medimeta.evaluate.metrics import UndefinedMetricWarning
from medimeta.runs.record import read_run
from medimeta.train.fewshot import EpisodePlan, FewShotConfig, RunSettings, run_fewshot
from train.train_toys import make_learnable


def ids(tasks: list) -> list[str]:
    return [t.dataset_id for t in tasks]


def test_a_dataset_derived_from_the_target_is_never_a_source(bench_root: Path) -> None:
    skip = excluded_datasets("target", datasets=bench_root)
    assert skip == {"target": "target", "copy": "derived from target"}
    assert ids(source_tasks("target:case category", datasets=bench_root)) == ["source"]
    assert ids(source_tasks("target", datasets=bench_root, tasks="all")) == ["source"] * 4
    # the other way round: the origin is not a source for its copy either
    assert excluded_datasets("copy", datasets=bench_root)["target"] == "origin of copy"
    with pytest.raises(EpisodeError, match="copy cannot be a source for target.*derived from"):
        source_tasks("target", datasets=bench_root, include=["copy"])


def test_include_and_exclude(bench_root: Path) -> None:
    got = source_tasks("copy", datasets=bench_root, include=["source:Malignancy"])
    assert [(t.dataset_id, t.name) for t in got] == [("source", "Malignancy")]
    assert source_tasks("target", datasets=bench_root, exclude=["source"]) == []
    some = source_tasks("target", datasets=bench_root, tasks="all", exclude=["source:DR level"])
    assert "DR level" not in [t.name for t in some] and len(some) == 3


def test_shared_origins_and_medmnist_flags(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for name in ("bus", "mine", "other", "bm"):
        make_learnable(root, name, splits={"train": 6, "val": 0, "test": 3}, domain=name)
    add_derived_from(root / "mine", ["bus"])
    add_derived_from(root / "other", ["bus"])
    info = yaml.safe_load((root / "bm" / "info.yaml").read_text())
    info["converted_from"] = {"kind": "medmnist", "flag": "breastmnist"}  # no overlaps listed
    (root / "bm" / "info.yaml").write_text(yaml.safe_dump(info, sort_keys=False))
    skip = excluded_datasets("mine", datasets=root)
    assert skip["bus"] == "origin of mine"
    assert skip["other"] == "shared origin bus"
    assert skip["bm"] == "shared origin bus"
    assert excluded_datasets("bus", datasets=root)["bm"] == "derived from bus"


def test_mm_pt_run_records_sources_without_the_copy(bench_root: Path, tmp_path: Path) -> None:
    cfg = FewShotConfig(
        method="mm-pt",
        backbone="tiny_cnn",
        pretrained=False,
        image_size=16,
        pretrain_steps=2,
        finetune_steps=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        record = run_fewshot(
            bench_root,
            "target:case category",
            cfg,
            episodes=EpisodePlan(shots=2, queries=2, episodes=2),
            run=RunSettings(tmp_path / "run"),
        )
    assert record is not None
    assert record.details["stage"]["sources"] == ["source:case category"]
    assert record.details["stage"]["excluded"]["copy"] == "derived from target"
    with pytest.raises(EpisodeError, match="no source tasks"):
        run_fewshot(
            bench_root,
            "target:case category",
            cfg.with_overrides(exclude_sources=("source",)),
            episodes=EpisodePlan(shots=2, queries=2, episodes=2),
            run=RunSettings(tmp_path / "none"),
        )


def test_the_plan_prints_the_sources_of_every_cell(bench_root: Path, tmp_path: Path) -> None:
    settings = tiny_settings(methods=("mm-pt", "mm-maml"), exclude_sources=("source:Malignancy",))
    cells = build_plan(
        bench_root, tmp_path, ["target:case category"], settings, DistEnv(), print
    ).cells
    for cell in cells:
        assert cell.sources == ["source:case category"]
        assert cell.protocol["excluded"]["copy"] == "derived from target"
    text = plan_table(cells)
    assert text.count("sources: source:case category") == 2
    assert "copy (derived from target)" in text


def test_fewshot_cli_takes_sources(bench_root: Path, tmp_path: Path) -> None:
    import typer

    from medimeta.cli.train import fewshot_command

    app = typer.Typer()
    app.command()(fewshot_command)
    args = [
        "--root",
        str(bench_root),
        "--target",
        "target:case category",
        "--method",
        "mm-pt",
        "--backbone",
        "tiny_cnn",
        "--pretrained",
        "none",
        "--image-size",
        "16",
        "--shots",
        "2",
        "--query",
        "2",
        "--episodes",
        "2",
        "--steps",
        "2",
        "--pretrain-steps",
        "2",
        "--sources",
        "source:Malignancy",
        "--out",
        str(tmp_path / "o"),
        "--quiet",
    ]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    record = read_run(tmp_path / "o")
    assert record.details["stage"]["sources"] == ["source:Malignancy"]
    assert record.settings["sources"] == ["source:Malignancy"]


def test_sources_sharing_images_with_the_target_are_refused(tmp_path: Path) -> None:
    from fixtures.release import ToySpec, make_release_dataset
    from medimeta.train.fewshot import FewShotConfig
    from medimeta.train.fewshot.pretrain import choose_sources

    make_release_dataset(tmp_path, ToySpec(dataset_id="toy_t", seed=1, domain="Toy A"))
    # the same pixels under another id and domain, declaring no origin (a user's re-upload)
    make_release_dataset(tmp_path, ToySpec(dataset_id="toy_copy", seed=1, domain="Toy B"))
    make_release_dataset(tmp_path, ToySpec(dataset_id="toy_other", seed=7, domain="Toy C"))
    chosen = choose_sources(tmp_path, "toy_t:case category", FewShotConfig(method="mm-pt"))
    used = {t.split(":")[0] for t in chosen["tasks"]}
    assert used == {"toy_other"}
    assert "shares" in chosen["excluded"]["toy_copy"]
    assert "--allow-shared" in chosen["excluded"]["toy_copy"]
    kept = choose_sources(
        tmp_path, "toy_t:case category", FewShotConfig(method="mm-pt", allow_shared=True)
    )
    assert {t.split(":")[0] for t in kept["tasks"]} == {"toy_copy", "toy_other"}
    assert kept["allow_shared"] is True


def test_a_conversion_declared_derived_from_bus_is_never_its_source(tmp_path: Path) -> None:
    import yaml
    from typer.testing import CliRunner

    from fixtures.release import ToySpec, make_release_dataset
    from fixtures.writing import write_image
    from medimeta.cli.convert import app as convert_app
    from medimeta.train.fewshot import FewShotConfig
    from medimeta.train.fewshot.pretrain import choose_sources

    root = tmp_path / "root"
    make_release_dataset(root, ToySpec(dataset_id="bus", seed=1, domain="Toy A"))
    make_release_dataset(root, ToySpec(dataset_id="toy_other", seed=7, domain="Toy C"))
    images = tmp_path / "mine"
    for cls in ("benign", "malignant"):
        for k in range(6):  # other pixels than bus: only the declaration ties them
            write_image(images / cls / f"{k}.png", (60, 50), "L", seed=100 + k + 10 * len(cls))
    args = ["folder", str(images), "--root", str(root), "--id", "mine", "--task", "kind"]
    result = CliRunner().invoke(convert_app, [*args, "--derived-from", "bus", "-q"])
    assert result.exit_code == 0, result.output
    info = yaml.safe_load((root / "mine" / "info.yaml").read_text(encoding="utf-8"))
    assert info["derived_from"] == ["bus"]
    chosen = choose_sources(root, "bus:case category", FewShotConfig(method="mm-pt"))
    assert {t.split(":")[0] for t in chosen["tasks"]} == {"toy_other"}
    assert "mine" in chosen["excluded"]
