"""The feature cache: eval-mode backbone features keyed by image content, computed once.

A feature is stored under the digest of the image it was computed from
(:mod:`medimeta.features.digests`) and the *model key*: backbone name, sha256 of its weights
file and of its state (so random-init and user modules are keyed too), its pooling and the
reader's preprocessing (size, channels, normalisation). So ``medimeta embed``, ``fewshot`` and
``benchmark`` share features whatever split, task or episode file asks, and only images never
seen by this model are embedded.

Layout: ``DIR/features/<backbone>-<key hash>/`` holds ``key.json`` and chunk files
``chunk-*.h5`` (``digests`` (N, 32) uint8, ``features`` (N, F) float32; attributes: the key,
the sha256 of the features and the datasets the images came from). Every chunk is written
atomically while the embedding runs (every minute, at the end, and when it is interrupted),
so a killed run keeps what it computed; each rank of a torchrun job writes its own chunks.
A chunk whose key or feature digest does not match, or whose digests and features do not
pair up, is ignored, reported once, removed and recomputed; so is a memo of image digests that does
not hold one digest per image (:mod:`medimeta.features.digests`).
Files are HDF5 and JSON; no pickle. ``DIR`` is ``--cache``, else ``$MEDIMETA_CACHE``, else
``<data root>/.cache`` (:func:`medimeta.paths.cache_dir`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import medimeta.data.distributed as D
import medimeta.safeio as safeio
from medimeta.features.digests import DIGEST_BYTES, CacheIntegrityWarning, image_digests
from medimeta.features.embedding import embed_rows, state_sha256
from medimeta.features.reader import EpisodeReader
from medimeta.features.table import FeatureTable
from medimeta.logs import Log, emit, plural
from medimeta.models.backbone import Backbone
from medimeta.paths import cache_dir

FORMAT = 2
CHUNK = 16  # images per forward pass: on CPU small batches run fastest per image
STORE_DIR = "features"
KEY_FILE = "key.json"
COMPACT_ABOVE = 64  # chunk files of one model merged into one beyond this many


def feature_source(cache: str | Path | None, root: str | Path) -> FeatureCache:
    """The cache of ``cache_dir(cache, root)`` (what ``medimeta fewshot`` uses by default)."""
    return FeatureCache(cache_dir(cache, root))


class FeatureCache:
    """The cache in ``directory``; implements :class:`~medimeta.features.table.FeatureSource`.

    ``persist=False`` (or a folder that cannot be written) keeps features in memory only.
    """

    def __init__(self, directory: str | Path, *, persist: bool = True, chunk: int = CHUNK) -> None:
        self.directory = Path(directory)
        self.chunk = int(chunk)
        self.persist = persist and safeio.writable_cache(self.directory, "feature cache")
        self._stores: dict[str, dict[bytes, np.ndarray]] = {}  # model dir -> digest -> row
        self._seen: dict[str, set[str]] = {}  # model dir -> chunk files read

    # -- keys -----------------------------------------------------------------------------
    def model_key(
        self, *, backbone: Backbone, backbone_name: str, reader: EpisodeReader
    ) -> dict[str, Any]:
        """Everything a feature depends on besides the image itself."""
        described = backbone.describe()
        return {
            "format": FORMAT,
            "features": "eval-mode pooled backbone output, float32",
            "backbone": backbone_name,
            "weights_sha256": (backbone.weights or {}).get("sha256"),
            "state_sha256": state_sha256(backbone),
            "pooling": described.get("pooling"),
            "preprocessing": reader.preprocessing(),
        }

    def model_dir(self, key: dict[str, Any]) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
        name = re.sub(r"[^0-9A-Za-z_.-]", "_", str(key["backbone"]))[:40]
        return self.directory / STORE_DIR / f"{name}-{digest}"

    def digests(self, folder: Path) -> np.ndarray:
        """(N, 32) uint8 digests of the folder's images (memoised in the cache folder)."""
        return image_digests(folder, self.directory if self.persist else None)

    # -- reading --------------------------------------------------------------------------
    def stored(self, key: dict[str, Any]) -> dict[bytes, np.ndarray]:
        """Digest -> features of everything stored for ``key`` (new chunk files read)."""
        where = self.model_dir(key)
        store = self._stores.setdefault(str(where), {})
        if not self.persist or not where.is_dir():
            return store
        seen = self._seen.setdefault(str(where), set())
        for path in sorted(where.glob("chunk-*.h5")):
            if path.name not in seen:
                seen.add(path.name)
                store.update(_read_chunk(path, key))
        return store

    def cached_rows(
        self,
        *,
        folder: Path,
        rows: np.ndarray,
        backbone: Backbone,
        backbone_name: str,
        reader: EpisodeReader,
    ) -> np.ndarray:
        """The ``rows`` of ``folder`` whose features are in the cache for this model."""
        key = self.model_key(backbone=backbone, backbone_name=backbone_name, reader=reader)
        store = self.stored(key)
        digests = self.digests(folder)
        rows = np.asarray(rows, np.int64)
        return rows[[bytes(digests[r]) in store for r in rows]] if rows.size else rows

    # -- the FeatureSource protocol -------------------------------------------------------
    def table(
        self,
        *,
        folder: Path,
        split: str,
        rows: np.ndarray,
        backbone: Backbone,
        backbone_name: str,
        reader: EpisodeReader,
        env: D.DistEnv | None = None,
        log: Log | None = None,
        progress: bool = False,
    ) -> FeatureTable:
        """Features of ``rows`` (global indices of ``folder``, any ``split``): stored ones
        read, the others computed (sharded over ranks) and stored."""
        env = env or D.DistEnv()
        t0 = time.perf_counter()
        key = self.model_key(backbone=backbone, backbone_name=backbone_name, reader=reader)
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        digests = self.digests(folder)
        store = self.stored(key)
        missing = np.array([r for r in rows if bytes(digests[r]) not in store], np.int64)
        if env.active and self.persist:
            # one view of what is missing for every rank: a rank that looks after another
            # stored its first chunks would shard other rows, and some would be computed by none
            missing = D.broadcast_object(missing, env)
        if missing.size:
            job = _Fill(self, key, folder, digests, backbone, reader, env, log, progress)
            job.run(missing)
            store = self.stored(key)
        feats = np.stack([store[bytes(digests[r])] for r in rows]) if rows.size else None
        if feats is None:
            feats = np.empty((0, backbone.num_features), np.float32)
        where = self.model_dir(key)
        info = {
            "file": str(where) if self.persist else None,
            "key_sha256": where.name.rsplit("-", 1)[-1],
            "requested": int(rows.size),
            "from_cache": int(rows.size - missing.size),
            "computed": int(missing.size),
            "seconds": time.perf_counter() - t0,
        }
        emit(log)(
            f"features of {plural(int(rows.size), 'sample')}: {info['from_cache']} from the "
            f"cache, {info['computed']} computed ({info['seconds']:.1f} s) [{where}]"
        )
        if self.persist and env.is_main:
            compact(where, key)
        return FeatureTable(rows, np.ascontiguousarray(feats, np.float32), info)


class _Fill:
    """Computes the missing rows of one table request (this rank's share) and stores them."""

    def __init__(
        self,
        cache: FeatureCache,
        key: dict[str, Any],
        folder: Path,
        digests: np.ndarray,
        backbone: Backbone,
        reader: EpisodeReader,
        env: D.DistEnv,
        log: Log | None,
        progress: bool,
    ) -> None:
        self.cache, self.key, self.folder, self.digests = cache, key, folder, digests
        self.backbone, self.reader, self.env = backbone, reader, env
        self.log, self.progress = emit(log), progress
        self.saved = 0

    def save(self, rows: np.ndarray, feats: np.ndarray) -> None:
        digests = self.digests[rows]
        store = self.cache._stores.setdefault(str(self.cache.model_dir(self.key)), {})
        store.update({bytes(d): f for d, f in zip(digests, feats, strict=True)})
        if self.cache.persist:
            write_chunk(self.cache.model_dir(self.key), self.key, digests, feats, self.folder)
        self.saved += int(rows.size)

    def run(self, missing: np.ndarray) -> None:
        c = self.cache.chunk
        chunks = [missing[i : i + c] for i in range(0, missing.size, c)]
        shard = self.env.active and self.cache.persist  # in memory, every rank computes all
        mine = chunks[self.env.rank :: self.env.world_size] if shard else chunks
        label = f"embed {self.folder.name}"
        try:
            embed_rows(
                self.folder, mine, self.backbone, self.reader, self.progress, label, self.save
            )
        except KeyboardInterrupt:
            if self.cache.persist:
                self.log(f"saved {self.saved} features to the cache; rerun to resume")
            raise
        if self.env.active and self.cache.persist:  # the other ranks' chunks
            where = self.cache.model_dir(self.key)
            needed = {bytes(d) for d in self.digests[missing]}

            def ready() -> bool:
                return needed <= set(self.cache.stored(self.key))

            safeio.wait_for(where / KEY_FILE, ready, "the features of the other ranks")


def write_chunk(
    where: Path, key: dict[str, Any], digests: np.ndarray, feats: np.ndarray, folder: Path
) -> Path:
    """One chunk file (atomically), with the key file of its model folder."""
    from medimeta.runs.files import environment

    feats = np.ascontiguousarray(feats, np.float32)
    if not (where / KEY_FILE).is_file():
        safeio.write_json(where / KEY_FILE, key, sort_keys=True)
    name = f"chunk-{time.time_ns()}-{os.getpid()}-{os.urandom(3).hex()}.h5"
    with safeio.atomic_path(where / name) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("digests", data=np.asarray(digests, np.uint8))
        f.create_dataset("features", data=feats)
        f.attrs["key"] = json.dumps(key, sort_keys=True)
        f.attrs["features_sha256"] = hashlib.sha256(feats.tobytes()).hexdigest()
        f.attrs["images"] = json.dumps({"folder": str(folder), "count": len(digests)})
        f.attrs["created_with"] = json.dumps(environment(), sort_keys=True)
    return where / name


def _read_chunk(path: Path, key: dict[str, Any]) -> dict[bytes, np.ndarray]:
    """Digest -> features of a chunk file, checked; {} (with a notice) when it does not hold
    what it says: the features are then recomputed."""
    try:
        with h5py.File(path, "r") as f:
            if json.loads(str(f.attrs["key"])) != key:
                raise ValueError("its key is not this model's")
            feats = np.asarray(f["features"][...], np.float32)
            digests = np.asarray(f["digests"][...], np.uint8)
            recorded = str(f.attrs["features_sha256"])
        if hashlib.sha256(np.ascontiguousarray(feats).tobytes()).hexdigest() != recorded:
            raise ValueError("its features do not match their recorded sha256 (changed on disk)")
        if feats.ndim != 2 or digests.shape != (len(feats), DIGEST_BYTES):
            raise ValueError("its digests and features do not pair up")
        if not np.isfinite(feats).all():
            raise ValueError("it holds non-finite features")
    except (OSError, KeyError, ValueError) as exc:
        warnings.warn(
            f"{path}: feature cache file ignored and removed, its features are recomputed ({exc})",
            CacheIntegrityWarning,
            stacklevel=3,
        )
        with contextlib.suppress(OSError):  # a read-only cache keeps it (and says so again)
            path.unlink()
        return {}
    return {bytes(d): f for d, f in zip(digests, feats, strict=True)}


def compact(where: Path, key: dict[str, Any]) -> None:
    """Merge a model folder's chunk files into one when there are many (readers that saw the
    old files keep their features in memory; a reader rescanning finds the merged file)."""
    from filelock import FileLock, Timeout

    files = sorted(where.glob("chunk-*.h5"))
    if len(files) <= COMPACT_ABOVE:
        return
    try:
        with FileLock(str(where / ".compact.lock"), timeout=0):
            merged: dict[bytes, np.ndarray] = {}
            for path in files:
                merged.update(_read_chunk(path, key))
            if merged:
                digests = np.stack([np.frombuffer(d, np.uint8) for d in merged])
                write_chunk(where, key, digests, np.stack(list(merged.values())), where)
            for path in files:
                path.unlink(missing_ok=True)
    except Timeout:
        return  # another process is compacting
