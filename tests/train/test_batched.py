"""The batched frozen-feature solvers give the per-episode numbers: on real BUSI features
(EfficientNet-Lite0, ImageNet weights) and on every task target of the toy root, the scores
of every episode and its metrics agree within 1e-4 with the one-episode path, and a run's
record is the same either way."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from medimeta.episodes import EpisodeSampler
from medimeta.evaluate.compute import episode_metrics
from medimeta.evaluate.metrics import UndefinedMetricWarning
from medimeta.features.cache import FeatureCache
from medimeta.features.reader import EpisodeReader
from medimeta.features.table import FeatureTable, episode_batch, episode_rows
from medimeta.format.reader import locate_dataset
from medimeta.models.build import build_backbone, make_normalizer
from medimeta.train.fewshot import EpisodePlan, FewShotConfig, RunSettings, run_fewshot

REALDATA = Path(os.environ.get("MEDIMETA_REALDATA", Path(__file__).parents[3] / "shared/realdata"))
SETTINGS = [
    ("linear-probe", {}),
    ("protonet", {}),
    ("protonet", {"distance": "cosine"}),
    ("protonet", {"distance": "euclidean"}),
    ("knn", {}),
    ("knn", {"knn_k": 3}),
    ("simpleshot", {}),
]


def _compare(table: FeatureTable, episodes: list, cfg: FewShotConfig, stage: dict) -> None:
    spec = cfg.spec
    batch = episode_batch(table, episodes)
    assert batch is not None
    batched = spec.score_batch(batch, cfg, stage)
    assert batched is not None and len(batched) == len(episodes)
    one = spec.scorer(None, _Reader(), cfg, stage, table)  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        for ep, (scores, _) in zip(episodes, batched, strict=True):
            want, _ = one(ep, 0)
            assert scores.shape == want.shape
            np.testing.assert_allclose(scores, want, atol=1e-4, rtol=0)
            a = episode_metrics(ep.task_target.value, ep.query_labels, scores)
            b = episode_metrics(ep.task_target.value, ep.query_labels, want)
            for name in a:
                assert a[name] == pytest.approx(b[name], abs=1e-4, nan_ok=True), name


class _Reader:
    device = torch.device("cpu")


@pytest.fixture(scope="module")
def busi(tmp_path_factory: pytest.TempPathFactory) -> tuple[FeatureTable, list]:
    if not (REALDATA / "busi-256").is_dir():
        pytest.skip(f"real BUSI images absent ({REALDATA / 'busi-256'})")
    from medimeta.builders import build_dataset

    root = tmp_path_factory.mktemp("busi")
    build_dataset("bus", REALDATA / "busi-256", root=root, workers=1)
    sampler = EpisodeSampler.from_root(
        root, "bus:case category", None, shots=5, queries=10, seed=0, num_episodes=20
    )
    episodes = list(sampler.sample())
    backbone = build_backbone("efficientnet_lite0", pretrained=True)
    reader = EpisodeReader(
        image_size=64, normalizer=make_normalizer(FewShotConfig(), backbone), device="cpu"
    )
    table = FeatureCache(root / "cache", persist=False).table(
        folder=locate_dataset(root, "bus"),
        split="all",
        rows=episode_rows(episodes),
        backbone=backbone,
        backbone_name="efficientnet_lite0",
        reader=reader,
    )
    return table, episodes


@pytest.mark.realdata
@pytest.mark.parametrize(("method", "options"), SETTINGS)
def test_batched_solvers_equal_the_per_episode_path_on_busi(
    busi: tuple[FeatureTable, list], method: str, options: dict
) -> None:
    table, episodes = busi
    _compare(table, episodes, FewShotConfig(method=method, **options), {})


@pytest.mark.realdata
@pytest.mark.parametrize("tau", [1.0, 10.0, 37.5])
def test_meta_baseline_centroids_batched_on_busi(
    busi: tuple[FeatureTable, list], tau: float
) -> None:
    table, episodes = busi
    _compare(table, episodes, FewShotConfig(method="meta-baseline"), {"tau": tau})


@pytest.mark.filterwarnings("ignore::medimeta.episodes.SmallClassWarning")
@pytest.mark.parametrize("task", ["case category", "Malignancy", "finding labels", "DR level"])
@pytest.mark.parametrize(("method", "options"), [*SETTINGS, ("meta-baseline", {})])
def test_every_task_target(fewshot_root: Path, task: str, method: str, options: dict) -> None:
    sampler = EpisodeSampler.from_root(
        fewshot_root, f"target:{task}", None, shots=2, queries=3, seed=1, num_episodes=6
    )
    episodes = list(sampler.sample())
    rows = episode_rows(episodes)
    gen = np.random.default_rng(0)
    table = FeatureTable(rows, gen.normal(size=(rows.size, 12)).astype(np.float32))
    _compare(table, episodes, FewShotConfig(method=method, **options), {"tau": 10.0})


def test_a_run_records_the_same_numbers_either_way(fewshot_root: Path, tmp_path: Path) -> None:
    cfg = FewShotConfig(method="linear-probe", backbone="tiny_cnn", pretrained=False, image_size=16)
    plan = EpisodePlan(shots=2, queries=3, episodes=5, seed=3)
    records = {}
    for batched in (True, False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            records[batched] = run_fewshot(
                fewshot_root,
                "target:case category",
                cfg,
                episodes=plan,
                run=RunSettings(tmp_path / str(batched), batched=batched),
                features=FeatureCache(tmp_path / "cache"),
            )
    fast, slow = records[True], records[False]
    assert fast is not None and slow is not None
    assert fast.protocol["run"] == slow.protocol["run"]  # the same run, however it was solved
    for a, b in zip(fast.per_episode, slow.per_episode, strict=True):
        assert a["metrics"] == pytest.approx(b["metrics"], abs=1e-4, nan_ok=True)
