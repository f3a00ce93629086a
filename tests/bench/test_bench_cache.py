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
from medimeta.features.cache import CacheIntegrityWarning, FeatureCache
from medimeta.features.embedding import embed_rows
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


def _chunks(cache: Path) -> list[Path]:
    return sorted(cache.glob("features/*/chunk-*.h5"))


def test_features_are_computed_once_and_equal_direct_ones(bench_root: Path, tmp_path: Path) -> None:
    folder = bench_root / "target"
    cache = FeatureCache(tmp_path / "c", chunk=5)
    first = _table(cache, folder, np.array([3, 1, 7, 1]))
    assert first.info["computed"] == 3 and first.info["from_cache"] == 0
    where = Path(first.info["file"])
    assert (where / "key.json").is_file() and _chunks(tmp_path / "c")
    assert not [p for p in where.iterdir() if p.suffix == ".tmp"]
    more = _table(cache, folder, np.arange(10))
    assert more.info == {**more.info, "computed": 7, "from_cache": 3, "requested": 10}
    again = _table(FeatureCache(tmp_path / "c"), folder, np.arange(10))
    assert again.info["computed"] == 0 and again.info["from_cache"] == 10
    # the cached features are those of the backbone on the episode reader's input
    backbone, reader = build_backbone("tiny_cnn"), _reader()
    direct = embed_rows(folder, [np.arange(10)], backbone, reader)
    np.testing.assert_allclose(again.take(np.arange(10)).numpy(), direct, rtol=1e-5, atol=1e-6)
    with h5py.File(_chunks(tmp_path / "c")[0]) as f:
        assert sorted(f) == ["digests", "features"] and f["digests"].shape[1] == 32
        assert len(str(f.attrs["features_sha256"])) == 64


def test_features_are_keyed_by_image_content_and_shared_by_splits(
    bench_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    shutil.copytree(bench_root / "target", root / "target")
    folder = root / "target"
    cache = FeatureCache(tmp_path / "c")
    rows = np.arange(6)
    base = _table(cache, folder, rows)
    assert _table(cache, folder, rows, split="test").info["computed"] == 0  # any split
    other = build_backbone("tiny_cnn")
    with torch.no_grad():
        other.conv1.weight.add_(0.01)  # other weights, same name
    changes = {
        "backbone name": {"backbone_name": "tiny_cnn_v2"},
        "weights": {"backbone": other},
        "image size": {"reader": _reader(size=8)},
        "normalisation": {"reader": _reader(norm=Normalizer((0.4,), (0.3,)))},
    }
    files = {base.info["file"]}
    for what, change in changes.items():
        got = _table(cache, folder, rows, **change)
        assert got.info["computed"] == rows.size, what
        files.add(got.info["file"])
    assert len(files) == len(changes) + 1
    # one image changes: only its features are computed again
    with h5py.File(folder / "images.hdf5", "r+") as f:
        images = f["images"]
        images[0] = 255 - images[0]
    changed = _table(cache, folder, rows)
    assert changed.info["computed"] == 1 and changed.info["file"] == base.info["file"]
    assert not np.allclose(changed.take([0]).numpy(), base.take([0]).numpy())
    np.testing.assert_array_equal(changed.take([1, 2]).numpy(), base.take([1, 2]).numpy())


def test_the_same_images_in_another_dataset_hit_the_cache(bench_root: Path, tmp_path: Path) -> None:
    copy = tmp_path / "root" / "target"
    shutil.copytree(bench_root / "target", copy)
    cache = FeatureCache(tmp_path / "c")
    _table(cache, bench_root / "target", np.arange(8))
    assert _table(cache, copy, np.arange(8)).info["computed"] == 0


def test_a_damaged_or_foreign_cache_file_is_recomputed_with_a_notice(
    bench_root: Path, tmp_path: Path
) -> None:
    cache_dir_ = tmp_path / "c"
    _table(FeatureCache(cache_dir_), bench_root / "target", np.arange(4))
    (chunk,) = _chunks(cache_dir_)
    with h5py.File(chunk, "r+") as f:
        f["features"][0, 0] += 1000.0  # one value edited in place
    with pytest.warns(CacheIntegrityWarning, match="do not match their recorded sha256"):
        again = _table(FeatureCache(cache_dir_), bench_root / "target", np.arange(4))
    assert again.info["computed"] == 4
    fresh = _table(FeatureCache(tmp_path / "d"), bench_root / "target", np.arange(4))
    np.testing.assert_array_equal(again.features, fresh.features)
    for path in _chunks(cache_dir_):
        with h5py.File(path, "r+") as f:
            f.attrs["key"] = '{"other": 1}'
    with pytest.warns(CacheIntegrityWarning, match="not this model's"):
        other = _table(FeatureCache(cache_dir_), bench_root / "target", np.arange(4))
    assert other.info["computed"] == 4


def test_memory_only_when_not_persisting(bench_root: Path, tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path / "c", persist=False)
    assert _table(cache, bench_root / "target", np.arange(4)).info["file"] is None
    assert _table(cache, bench_root / "target", np.arange(4)).info["computed"] == 0
    assert not (tmp_path / "c").exists()


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


def test_an_interrupted_embedding_keeps_what_it_saved_and_says_so(
    bench_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import medimeta.features.embedding as embedding

    monkeypatch.setattr(embedding, "FLUSH_S", -1.0)  # save after every chunk
    calls = {"n": 0}
    backbone = build_backbone("tiny_cnn")
    original = backbone.forward

    def dying(x: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # Ctrl-C in the third chunk
        return original(x)

    monkeypatch.setattr(backbone, "forward", dying)
    said: list[str] = []
    cache = FeatureCache(tmp_path / "c", chunk=3)
    with pytest.raises(KeyboardInterrupt):
        _table(cache, bench_root / "target", np.arange(12), backbone=backbone, log=said.append)
    assert said == ["saved 6 features to the cache; rerun to resume"]
    again = _table(FeatureCache(tmp_path / "c", chunk=3), bench_root / "target", np.arange(12))
    assert again.info["from_cache"] == 6 and again.info["computed"] == 6


def test_many_chunk_files_are_compacted(
    bench_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import medimeta.features.cache as cache_module
    import medimeta.features.embedding as embedding

    monkeypatch.setattr(embedding, "FLUSH_S", -1.0)
    monkeypatch.setattr(cache_module, "COMPACT_ABOVE", 3)
    got = _table(FeatureCache(tmp_path / "c", chunk=2), bench_root / "target", np.arange(12))
    assert len(_chunks(tmp_path / "c")) == 1  # six chunk files merged into one
    again = _table(FeatureCache(tmp_path / "c"), bench_root / "target", np.arange(12))
    assert again.info["computed"] == 0
    np.testing.assert_array_equal(again.features, got.features)
