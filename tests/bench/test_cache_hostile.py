"""A feature cache that was edited, cut short or mixed up is recomputed with one warning line.

The cache keys features by image content (:mod:`medimeta.features.cache`): chunk files carry
the sha256 of their features and the model key, the memo of image digests the sha256 of its
digests and the image count. One generated fault per class: a feature value changed in place
(the issue's ``+ 1000``), a memo with fewer rows than the dataset (the issue's IndexError),
memo digests edited, chunk digests of the wrong width, non-finite features with a matching
sha256, a chunk of another model, a chunk that is not HDF5 at all. Every case gives the
features of a fresh cache, bit for bit, and names the damaged file.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from medimeta.data.pixels import Normalizer
from medimeta.features.cache import CacheIntegrityWarning, FeatureCache
from medimeta.features.reader import EpisodeReader
from medimeta.models.build import build_backbone

ROWS = np.arange(6)


def _table(cache: FeatureCache, folder: Path) -> np.ndarray:
    reader = EpisodeReader(
        image_size=16, normalizer=Normalizer((0.5,), (0.5,)), device=torch.device("cpu")
    )
    table = cache.table(
        folder=folder,
        split="all",
        rows=ROWS,
        backbone=build_backbone("tiny_cnn"),
        backbone_name="tiny_cnn",
        reader=reader,
    )
    return np.asarray(table.features)


def _chunk(directory: Path) -> Path:
    (path,) = sorted((directory / "features").glob("*/chunk-*.h5"))
    return path


def _memo(directory: Path) -> Path:
    (path,) = sorted((directory / "digests").glob("*.h5"))
    return path


def _plus_1000(directory: Path) -> Path:
    path = _chunk(directory)
    with h5py.File(path, "r+") as f:
        f["features"][0, 0] += 1000.0
    return path


def _memo_short(directory: Path) -> Path:
    path = _memo(directory)
    with h5py.File(path, "r+") as f:
        digests = f["digests"][:3]
        del f["digests"]
        f.create_dataset("digests", data=digests)
        f.attrs["digests_sha256"] = hashlib.sha256(digests.tobytes()).hexdigest()  # consistent
    return path


def _memo_edited(directory: Path) -> Path:
    path = _memo(directory)
    with h5py.File(path, "r+") as f:
        f["digests"][1] = f["digests"][0]  # two images now claim the same content
    return path


def _chunk_digests_width(directory: Path) -> Path:
    path = _chunk(directory)
    with h5py.File(path, "r+") as f:
        digests = f["digests"][:, :16]
        del f["digests"]
        f.create_dataset("digests", data=digests)
    return path


def _chunk_nan_resealed(directory: Path) -> Path:
    path = _chunk(directory)
    with h5py.File(path, "r+") as f:
        feats = f["features"][...]
        feats[2, :] = np.nan
        f["features"][...] = feats
        f.attrs["features_sha256"] = hashlib.sha256(feats.astype(np.float32).tobytes()).hexdigest()
    return path


def _chunk_other_model(directory: Path) -> Path:
    path = _chunk(directory)
    with h5py.File(path, "r+") as f:
        key = json.loads(str(f.attrs["key"]))
        f.attrs["key"] = json.dumps({**key, "backbone": "resnet18"}, sort_keys=True)
    return path


def _chunk_not_hdf5(directory: Path) -> Path:
    path = _chunk(directory)
    path.write_bytes(b"not hdf5" * 100)
    return path


#: class of fault -> (damage, words of the warning)
FAULTS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "feature-value-plus-1000": (_plus_1000, "do not match their recorded sha256"),
    "memo-fewer-rows-than-dataset": (_memo_short, "holds 3 digests for"),
    "memo-digests-edited": (_memo_edited, "digests do not match their recorded sha256"),
    "chunk-digests-wrong-width": (_chunk_digests_width, "do not pair up"),
    "chunk-non-finite-resealed": (_chunk_nan_resealed, "non-finite features"),
    "chunk-of-another-model": (_chunk_other_model, "not this model's"),
    "chunk-not-hdf5": (_chunk_not_hdf5, "feature cache file ignored"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_damaged_cache_is_recomputed_with_a_notice(
    bench_root: Path, tmp_path: Path, fault: str
) -> None:
    damage, words = FAULTS[fault]
    folder = bench_root / "target"
    fresh = _table(FeatureCache(tmp_path / "fresh"), folder)
    directory = tmp_path / "cache"
    _table(FeatureCache(directory), folder)
    path = damage(directory)
    with pytest.warns(CacheIntegrityWarning) as caught:
        again = _table(FeatureCache(directory), folder)
    text = " ".join(str(w.message) for w in caught)
    assert words in text and str(path) in text, text
    np.testing.assert_array_equal(again, fresh)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheIntegrityWarning)  # healed: said once, not again
        np.testing.assert_array_equal(_table(FeatureCache(directory), folder), fresh)
