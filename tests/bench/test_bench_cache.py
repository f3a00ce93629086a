"""Embedding cache: keys (every change misses), atomic files, incremental rows, and the
frozen-feature methods giving the uncached numbers from cached features."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from medimeta.data.pixels import Normalizer
from medimeta.evaluate.metrics import UndefinedMetricWarning
from medimeta.features.cache import FeatureCache, embed_rows
from medimeta.features.reader import EpisodeReader
from medimeta.format.reader import DatasetFolder
from medimeta.models.build import build_backbone
from medimeta.paths import CACHE_ENV, cache_dir
from medimeta.train.fewshot import EpisodePlan, FewShotConfig, RunSettings, run_fewshot

HALF = Normalizer((0.5,), (0.5,))


def _reader(size: int = 16, norm: Normalizer = HALF) -> EpisodeReader:
    return EpisodeReader(image_size=size, normalizer=norm, device=torch.device("cpu"))


def _table(cache: FeatureCache, folder: Path, rows: np.ndarray, **kw: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = {
        "split": "all",
        "backbone": build_backbone("tiny_cnn"),
        "backbone_name": "tiny_cnn",
        "reader": _reader(),
    }
    args.update(kw)
    return cache.table(folder=folder, rows=rows, **args)  # type: ignore[arg-type]


def test_cache_dir_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CACHE_ENV, raising=False)
    assert cache_dir(None, tmp_path) == tmp_path / ".cache"
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env"))
    assert cache_dir(None, tmp_path) == tmp_path / "env"
    assert cache_dir(tmp_path / "given", tmp_path) == tmp_path / "given"


def test_features_are_computed_once_and_equal_direct_ones(bench_root: Path, tmp_path: Path) -> None:
    folder = bench_root / "target"
    cache = FeatureCache(tmp_path / "c", chunk=5)
    first = _table(cache, folder, np.array([3, 1, 7, 1]))
    assert first.info["computed"] == 3 and first.info["from_cache"] == 0
    path = Path(first.info["file"])
    assert path.is_file() and not [p for p in path.parent.iterdir() if p.suffix == ".tmp"]
    more = _table(cache, folder, np.arange(10))
    assert more.info == {**more.info, "computed": 7, "from_cache": 3, "requested": 10}
    again = _table(FeatureCache(tmp_path / "c"), folder, np.arange(10))
    assert again.info["computed"] == 0 and again.info["from_cache"] == 10
    # the cached features are those of the backbone on the episode reader's input
    backbone, reader = build_backbone("tiny_cnn"), _reader()
    direct = embed_rows(folder, [np.arange(10)], backbone, reader)
    np.testing.assert_allclose(again.take(np.arange(10)).numpy(), direct, rtol=1e-5, atol=1e-6)
    with h5py.File(path) as f:
        assert sorted(f) == ["features", "indices"]
        assert f["indices"][...].tolist() == list(range(10))


def test_every_key_change_misses_the_cache(bench_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(bench_root / "target", root / "target")
    folder = root / "target"
    cache = FeatureCache(tmp_path / "c")
    rows = np.arange(6)
    base = _table(cache, folder, rows)
    assert _table(cache, folder, rows).info["computed"] == 0  # same key: hit

    other = build_backbone("tiny_cnn")
    with torch.no_grad():
        other.conv1.weight.add_(0.01)  # other weights, same name
    changes = {
        "backbone name": {"backbone_name": "tiny_cnn_v2"},
        "weights": {"backbone": other},
        "image size": {"reader": _reader(size=8)},
        "normalisation": {"reader": _reader(norm=Normalizer((0.4,), (0.3,)))},
        "split": {"split": "test"},
    }
    files = {base.info["file"]}
    for what, change in changes.items():
        got = _table(cache, folder, rows, **change)
        assert got.info["computed"] == rows.size, what
        files.add(got.info["file"])
    # the dataset's images change (same ids, labels and splits): a new fingerprint
    with h5py.File(folder / "images.hdf5", "r+") as f:
        images = f["images"]
        images[0] = 255 - images[0]
    changed = _table(cache, folder, rows)
    assert changed.info["computed"] == rows.size
    files.add(changed.info["file"])
    assert len(files) == len(changes) + 2
    assert not np.allclose(changed.take([0]).numpy(), base.take([0]).numpy())


def test_a_file_written_for_another_key_is_not_used(bench_root: Path, tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path / "c")
    got = _table(cache, bench_root / "target", np.arange(4))
    path = Path(got.info["file"])
    with h5py.File(path, "r+") as f:
        f.attrs["key"] = '{"other": 1}'
    again = _table(cache, bench_root / "target", np.arange(4))
    assert again.info["computed"] == 4


def test_memory_only_when_not_persisting(bench_root: Path, tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path / "c", persist=False)
    assert _table(cache, bench_root / "target", np.arange(4)).info["file"] is None
    assert _table(cache, bench_root / "target", np.arange(4)).info["computed"] == 0
    assert not (tmp_path / "c" / "embeddings").exists()


@pytest.mark.parametrize("method", ["linear-probe", "protonet", "knn"])
@pytest.mark.parametrize("task", ["case category", "Malignancy", "finding labels"])
def test_cached_runs_give_the_uncached_episode_numbers(
    bench_root: Path, tmp_path: Path, method: str, task: str
) -> None:
    cfg = FewShotConfig(method=method, backbone="tiny_cnn", pretrained=False, image_size=16)
    plan = EpisodePlan(shots=2, queries=2, episodes=4, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        plain = run_fewshot(
            bench_root, f"target:{task}", cfg, episodes=plan, run=RunSettings(tmp_path / "a")
        )
        file = tmp_path / "a" / "episodes.json"
        cache = FeatureCache(tmp_path / "cache")
        cold = run_fewshot(
            bench_root, None, cfg, episodes=file, run=RunSettings(tmp_path / "b"), features=cache
        )
        warm = run_fewshot(
            bench_root, None, cfg, episodes=file, run=RunSettings(tmp_path / "c"), features=cache
        )
    assert plain is not None and cold is not None and warm is not None
    assert cold.details["stage"]["features"]["computed"] > 0
    assert warm.details["stage"]["features"]["computed"] == 0
    for got in (cold, warm):
        for a, b in zip(plain.per_episode, got.per_episode, strict=True):
            assert a["metrics"].keys() == b["metrics"].keys()
            for name, value in a["metrics"].items():
                assert b["metrics"][name] == pytest.approx(value, abs=1e-6, nan_ok=True), name
    assert DatasetFolder(bench_root / "target").num_samples == 36


def test_a_killed_embedding_keeps_the_rows_it_flushed(
    bench_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import medimeta.features.cache as cache_module

    monkeypatch.setattr(cache_module, "FLUSH_S", -1.0)  # save after every chunk
    calls = {"n": 0}
    real_write = FeatureCache.write

    def dying_write(path: Path, key: dict, idx: np.ndarray, feats: np.ndarray) -> None:
        real_write(path, key, idx, feats)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # killed after the second save

    monkeypatch.setattr(FeatureCache, "write", staticmethod(dying_write))
    cache = FeatureCache(tmp_path / "c", chunk=3)
    with pytest.raises(KeyboardInterrupt):
        _table(cache, bench_root / "target", np.arange(12))
    monkeypatch.setattr(FeatureCache, "write", staticmethod(real_write))
    again = _table(FeatureCache(tmp_path / "c", chunk=3), bench_root / "target", np.arange(12))
    assert again.info["from_cache"] == 6 and again.info["computed"] == 6
