"""Embedding cache: eval-mode backbone features computed once per sample and reused.

A cache file holds the features of samples of one dataset for one *key*: backbone name, sha256
of its weights file and of its state (so random-init and user modules are keyed too), image
size, channels, normalisation, the dataset fingerprint (sha256 of ``images.hdf5``, its id and
size) and the split label of the episodes. Any change of the key gives another file. Rows are
added as episodes need them (a sample's features are computed once, whichever episode, task
or method asks), so a cold run never embeds more images than the episodes contain.

Layout: ``DIR/embeddings/<dataset id>/<backbone>-<key hash>.h5`` with datasets ``indices``
(int64, sorted global sample indices) and ``features`` (float32, N x F) and the attribute
``key`` (the key as JSON, checked on every read). Files are written atomically
(:func:`medimeta.safeio.atomic_path`); no pickle. ``DIR`` is ``--cache``, else
``$MEDIMETA_CACHE``, else ``<data root>/.cache`` (:func:`medimeta.paths.cache_dir`). Image
fingerprints are memoised by file size, mtime and inode in ``DIR/fingerprints.json``.

While one process embeds, the rows done so far are written every minute, so a killed run
loses at most a minute of work. Under torchrun the missing rows are cut into fixed chunks;
rank r embeds chunks r, r + R, ... into a part file and rank 0 merges them, so the features
equal those of one process.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

import medimeta.data.distributed as D
import medimeta.safeio as safeio
from medimeta.features.reader import EpisodeReader
from medimeta.features.table import FeatureTable
from medimeta.format import layout
from medimeta.logs import Log
from medimeta.models.backbone import Backbone
from medimeta.models.weights import sha256_of
from medimeta.paths import cache_dir
from medimeta.progress import Progress
from medimeta.safeio import wait_for

FORMAT = 1
CHUNK = 16  # images per forward pass: on CPU small batches run fastest per image
FLUSH_S = 60.0  # while embedding, the rows done so far are saved this often


def feature_source(cache: str | Path | None, root: str | Path) -> FeatureCache:
    """The cache of ``cache_dir(cache, root)`` (what ``medimeta fewshot`` uses by default)."""
    return FeatureCache(cache_dir(cache, root))


def state_sha256(module: torch.nn.Module) -> str:
    """sha256 over the names, dtypes, shapes and bytes of a module's state dict."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def images_sha256(folder: Path, memo_dir: Path | None = None) -> str:
    """sha256 of ``folder/images.hdf5``, memoised by size, mtime and inode in
    ``memo_dir/fingerprints.json`` when given."""
    path = (Path(folder) / layout.HDF5_FILE).resolve()
    st = path.stat()
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}
    memo: dict[str, Any] = {}
    memo_file = memo_dir / "fingerprints.json" if memo_dir is not None else None
    if memo_file is not None and memo_file.is_file():
        try:
            memo = json.loads(memo_file.read_text(encoding="utf-8"))
        except ValueError:
            memo = {}
    entry = memo.get(str(path))
    if entry and {k: entry.get(k) for k in stamp} == stamp:
        return str(entry["sha256"])
    digest = sha256_of(path)
    if memo_file is not None:
        memo[str(path)] = {**stamp, "sha256": digest}
        safeio.write_json(memo_file, memo, sort_keys=True)
    return digest


class FeatureCache:
    """The cache in ``directory``; implements :class:`~medimeta.features.table.FeatureSource`.

    ``persist=False`` (or a folder that cannot be written) keeps features in memory only.
    """

    def __init__(self, directory: str | Path, *, persist: bool = True, chunk: int = CHUNK) -> None:
        self.directory = Path(directory)
        self.chunk = int(chunk)
        self.persist = persist and self._writable()
        self._memo: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _writable(self) -> bool:
        return safeio.writable_cache(self.directory, "embedding cache")

    # -- keys -----------------------------------------------------------------------------
    def fingerprint(self, folder: Path) -> str:
        """sha256 of the dataset's ``images.hdf5`` (memoised in this cache's folder)."""
        return images_sha256(folder, self.directory if self.persist else None)

    def key(
        self,
        *,
        folder: Path,
        split: str,
        backbone: Backbone,
        backbone_name: str,
        reader: EpisodeReader,
    ) -> dict[str, Any]:
        """Everything the features depend on (see the module docstring)."""
        from medimeta.format.reader import DatasetFolder

        spec = DatasetFolder(folder, check=False).spec
        weights = backbone.weights or {}
        return {
            "format": FORMAT,
            "features": "eval-mode pooled backbone output, float32",
            "backbone": backbone_name,
            "weights_sha256": weights.get("sha256"),
            "state_sha256": state_sha256(backbone),
            "image_size": int(reader.image_size or spec.input_size[-1]),
            "channels": int(reader.loader.channels or spec.num_channels),
            "normalization": {
                "mean": [float(v) for v in reader.normalizer.mean],
                "std": [float(v) for v in reader.normalizer.std],
            },
            "dataset": {
                "id": spec.id,
                "num_samples": spec.num_samples,
                "images_sha256": self.fingerprint(folder),
            },
            "split": split,
            # a backbone with its own preprocessing (hf:): that and its pooling
            **(
                {"preprocessing": reader.preprocessing(), "pooling": backbone.pooling}
                if getattr(reader, "pixels", None) is not None
                else {}
            ),
        }

    def path(self, key: dict[str, Any]) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
        name = re.sub(r"[^0-9A-Za-z_.-]", "_", key["backbone"])[:40]
        return self.directory / "embeddings" / key["dataset"]["id"] / f"{name}-{digest}.h5"

    # -- files ----------------------------------------------------------------------------
    @staticmethod
    def read(path: Path, key: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
        """(indices, features) of a cache file written for ``key``, else None."""
        if not path.is_file():
            return None
        try:
            with h5py.File(path, "r") as f:
                if json.loads(str(f.attrs["key"])) != key:
                    return None
                return np.asarray(f["indices"][...], np.int64), np.asarray(f["features"][...])
        except (OSError, KeyError, ValueError) as exc:
            warnings.warn(f"{path}: unreadable cache file ignored ({exc})", stacklevel=2)
            return None

    @staticmethod
    def cached_indices(path: Path, key: dict[str, Any]) -> np.ndarray:
        """The sample indices a cache file for ``key`` holds (empty if none)."""
        try:
            with h5py.File(path, "r") as f:
                if json.loads(str(f.attrs["key"])) == key:
                    return np.asarray(f["indices"][...], np.int64)
        except (OSError, KeyError, ValueError):
            pass
        return np.empty(0, np.int64)

    @staticmethod
    def write(path: Path, key: dict[str, Any], indices: np.ndarray, feats: np.ndarray) -> None:
        """Write a cache file atomically (temporary file, then rename)."""
        from medimeta.runs.files import environment

        order = np.argsort(indices, kind="stable")
        with safeio.atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            f.create_dataset("indices", data=np.asarray(indices, np.int64)[order])
            f.create_dataset("features", data=np.asarray(feats, np.float32)[order])
            f.attrs["key"] = json.dumps(key, sort_keys=True)
            f.attrs["created_with"] = json.dumps(environment(), sort_keys=True)

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
        """Features of ``rows`` (global indices of ``folder``): cached ones read, the others
        computed (sharded over ranks) and added to the cache file."""
        env = env or D.DistEnv()
        t0 = time.perf_counter()
        key = self.key(
            folder=folder,
            split=split,
            backbone=backbone,
            backbone_name=backbone_name,
            reader=reader,
        )
        path = self.path(key)
        have = self._load(path, key)
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        missing = np.setdiff1d(rows, have[0]) if have is not None else rows
        if missing.size:
            have = self._fill(path, key, have, missing, folder, backbone, reader, env, progress)
        if not (have is not None):
            raise RuntimeError("internal inconsistency (please report)")
        info = {
            "file": str(path) if self.persist else None,
            "key_sha256": path.stem.rsplit("-", 1)[-1],
            "requested": int(rows.size),
            "from_cache": int(rows.size - missing.size),
            "computed": int(missing.size),
            "seconds": time.perf_counter() - t0,
        }
        if log is not None:
            log(
                f"features of {info['requested']} samples: {info['from_cache']} from the cache, "
                f"{info['computed']} computed ({info['seconds']:.1f} s) [{path}]"
            )
        return FeatureTable(have[0], have[1], info)

    def _load(self, path: Path, key: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
        if str(path) in self._memo:
            return self._memo[str(path)]
        return self.read(path, key) if self.persist else None

    def _fill(
        self,
        path: Path,
        key: dict[str, Any],
        have: tuple[np.ndarray, np.ndarray] | None,
        missing: np.ndarray,
        folder: Path,
        backbone: Backbone,
        reader: EpisodeReader,
        env: D.DistEnv,
        progress: bool,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Compute the ``missing`` rows (this rank's chunks), merge and store them."""
        chunks = [missing[i : i + self.chunk] for i in range(0, missing.size, self.chunk)]
        label = f"embed {key['dataset']['id']}"
        if not (env.active and self.persist):  # one process (or every rank for itself)

            def flush(done: np.ndarray, out: np.ndarray) -> None:  # a kill loses <= FLUSH_S
                self.write(path, key, *_merge(have, done, out))

            save = flush if self.persist else None
            feats = embed_rows(folder, chunks, backbone, reader, progress, label, save)
            idx = missing
        else:
            tag = hashlib.sha256(missing.tobytes()).hexdigest()[:12]
            parts = [
                path.with_name(f"{path.stem}.part-{tag}-{r}of{env.world_size}.h5")
                for r in range(env.world_size)
            ]
            if self.read(parts[env.rank], key) is None:  # a part of a killed run is kept
                mine = chunks[env.rank :: env.world_size]
                out = embed_rows(folder, mine, backbone, reader, progress, label)
                ids = np.concatenate(mine) if mine else np.empty(0, np.int64)
                self.write(parts[env.rank], key, ids, out)
            if not env.is_main:
                wait_for(path, lambda: _covers(path, key, missing), "the merged feature cache")
                got = self.read(path, key)
                if not (got is not None):
                    raise RuntimeError("internal inconsistency (please report)")
                return got
            pieces = []
            for part in parts:
                wait_for(part, _readable(part, key), f"features {part}")
                pieces.append(self.read(part, key))
            idx = np.concatenate([p[0] for p in pieces if p is not None])
            feats = np.concatenate([p[1] for p in pieces if p is not None])
        merged = _merge(have, idx, feats)
        if self.persist:
            self.write(path, key, *merged)
            if env.active:
                for part in parts:
                    part.unlink(missing_ok=True)
        else:
            self._memo[str(path)] = merged
        return merged


def _merge(
    have: tuple[np.ndarray, np.ndarray] | None, idx: np.ndarray, feats: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cached rows plus new ones, sorted by sample index."""
    if have is not None and have[0].size:
        idx, feats = np.concatenate([have[0], idx]), np.concatenate([have[1], feats])
    order = np.argsort(idx, kind="stable")
    return idx[order], np.ascontiguousarray(feats[order], dtype=np.float32)


def _readable(path: Path, key: dict[str, Any]) -> Callable[[], bool]:
    return lambda: FeatureCache.read(path, key) is not None


def _covers(path: Path, key: dict[str, Any], rows: np.ndarray) -> bool:
    got = FeatureCache.read(path, key)
    return got is not None and bool(np.isin(rows, got[0]).all())


@torch.no_grad()
def embed_rows(
    folder: Path,
    chunks: list[np.ndarray],
    backbone: Backbone,
    reader: EpisodeReader,
    progress: bool = False,
    label: str = "embed",
    flush: Callable[[np.ndarray, np.ndarray], None] | None = None,
) -> np.ndarray:
    """Eval-mode features (float32) of each chunk of global indices, read and prepared as
    the episode reader prepares episodes; ``flush(rows, features)`` gets what is done so far
    every ``FLUSH_S`` seconds."""
    was_training = backbone.training
    backbone.eval()
    out = []
    last = time.perf_counter()
    try:
        with Progress(progress, len(chunks), label) as bar:
            for j, x in enumerate(reader.batches(folder, chunks)):  # reads ahead
                out.append(backbone(x).float().cpu().numpy())
                bar.advance()
                if (
                    flush is not None
                    and time.perf_counter() - last > FLUSH_S
                    and j + 1 < len(chunks)
                ):
                    flush(np.concatenate(chunks[: j + 1]), np.concatenate(out))
                    last = time.perf_counter()
    finally:
        backbone.train(was_training)
    if not out:
        return np.empty((0, backbone.num_features), np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)
