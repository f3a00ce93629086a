"""Estimated time of every cell from the calibration (see :mod:`medimeta.bench.calibrate`).

With ``f`` the forward time per image, ``t(n) = a + b n`` a training step on ``n`` images,
``p`` a probe step and ``m(k, ns, nq)`` a meta-step (one timed second-order step scaled by
``(k t(ns) + t(nq)) / (t(10) + t(20))``), per cell:

* frozen features (linear-probe, protonet, knn): images to embed x ``f`` (the images of its
  episodes not in the embedding cache nor embedded by an earlier cell of the plan; without a
  cache every episode's images) + episodes x (probe steps x ``p`` | 5 ms);
* im-pt, mm-pt: episodes x (steps x ``t(support)`` + ``f`` x query), plus for mm-pt
  pre-training steps x ``t(batch)`` unless its backbone file is there;
* mm-maml: meta-steps x batch x ``m`` + episodes x (inner steps x ``t(support)`` + ``f`` x query);
* meta-baseline: pre-training steps x ``t(batch)`` (unless its classifier file is there) +
  meta-steps x batch x ``t(ways x (meta shots + meta queries))`` (unless its backbone file is
  there) + images to embed x ``f`` (with a cache the distinct images of its episodes: the
  trained backbone's features are never cached before its stage; without, every episode's);
* supervised: at most epochs x (batches x ``t(batch)`` + ``f`` x validation) + ``f`` x
  (validation + test): an upper bound, early stopping usually ends sooner.

Every cell adds the backbone's build time, the time to load and check its episode file and,
per episode, the time to score it and write its result file (both timed on the cell's own
episode file); finished episodes are not counted.
"""

from __future__ import annotations

import math
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from medimeta.bench.cache import FeatureCache
from medimeta.bench.calibrate import METHOD_PARTS, Calibrator
from medimeta.bench.cells import Cell
from medimeta.data.pixels import Normalizer
from medimeta.episodes import EpisodeSet
from medimeta.format.reader import DatasetFolder, locate_dataset
from medimeta.train.config import TrainConfig
from medimeta.train.fewshot.config import FROZEN_METHODS, SOURCE_METHODS, FewShotConfig
from medimeta.train.fewshot.frozen import episode_rows
from medimeta.train.fewshot.metabaseline import classifier_done
from medimeta.train.fewshot.setup import episode_run_hash
from medimeta.train.fewshot.tensors import episode_metrics
from medimeta.train.records import read_json, write_json

REPORT_S = 0.2  # merging the episode files into results.json and predictions_query.csv


def _train(cal: dict[str, Any], n: float) -> float:
    return float(cal["train"]["a"] + cal["train"]["b"] * n)


def _remaining(cell: Cell, episodes: EpisodeSet) -> int:
    """Episodes of the cell without a finished episode file."""
    if not (isinstance(cell.config, FewShotConfig) and cell.episodes_file is not None):
        raise RuntimeError("internal inconsistency (please report)")
    run = episode_run_hash(cell.config, cell.episodes_file)
    done = 0
    for ep in episodes:
        path = cell.folder / "episodes" / f"episode_{ep.index:05d}.json"
        try:
            done += path.is_file() and read_json(path).get("run") == run
        except (OSError, ValueError):
            continue
    return len(episodes) - done


class Estimator:
    """Estimates cells in plan order (so the embedding cache fills as the plan runs)."""

    def __init__(self, root: Path, calibrator: Calibrator, features: FeatureCache | None) -> None:
        self.root = root
        self.cal = calibrator
        self.features = features
        self._embedded: dict[str, np.ndarray] = {}
        self._books: dict[Path, tuple[float, float]] = {}

    def bookkeeping(self, file: Path) -> tuple[float, float]:
        """Seconds to load ``file`` with its data check, and per episode to compute its
        metrics and write its result file (timed on the first episode)."""
        if file not in self._books:
            t0 = time.perf_counter()
            eps = EpisodeSet.load(file, self.root)
            load_s = time.perf_counter() - t0
            ep = eps[0]
            target, n = ep.task_target.value, ep.query_indices.size
            gen = np.random.default_rng(0)
            cols = 1 if target == "BINARY_CLASSIFICATION" else ep.n_way
            scores = gen.dirichlet(np.ones(max(cols, 2)), n)[:, :cols]
            with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                for _ in range(5):
                    metrics = episode_metrics(target, ep.query_labels, scores)
                    write_json(Path(tmp) / "e.json", {"metrics": metrics, "scores": scores})
                per_episode = (time.perf_counter() - t0) / 5
            self._books[file] = (load_s, per_episode)
        return self._books[file]

    def calibration(self, cell: Cell) -> dict[str, Any]:
        p = cell.protocol
        norm = Normalizer(tuple(p["normalization"]["mean"]), tuple(p["normalization"]["std"]))
        folder = locate_dataset(self.root, p["target"]["dataset_id"])
        b = p["backbone"]
        return {
            part: self.cal.get(
                part, b["name"], b["pretrained"], b["weights_sha256"], folder, p["image_size"], norm
            )
            for part in METHOD_PARTS[cell.method]
        }

    def estimate(self, cell: Cell) -> None:
        """Set ``cell.estimate_s`` and ``cell.detail``."""
        cal = self.calibration(cell)
        if cell.kind == "supervised":
            seconds, detail = self._supervised(cell, cal)
        else:
            seconds, detail = self._fewshot(cell, cal)
        cell.estimate_s = seconds + cal["forward"]["build_s"] + REPORT_S
        cell.detail = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in detail.items()}

    def _supervised(self, cell: Cell, cal: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        cfg = cell.config
        if not (isinstance(cfg, TrainConfig)):
            raise RuntimeError("internal inconsistency (please report)")
        splits = cell.protocol["data"]["splits"]
        n_train, n_val, n_test = splits["train"], splits["val"], splits["test"]
        batches = math.ceil(n_train / cfg.batch_size)
        epoch = batches * _train(cal, min(cfg.batch_size, n_train)) + n_val * _fwd(cal)
        total = cfg.epochs * epoch + (n_val + n_test) * _fwd(cal)
        return total, {"epochs_at_most": cfg.epochs, "epoch_s": epoch, "upper_bound": True}

    def _fewshot(self, cell: Cell, cal: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        cfg = cell.config
        if not (isinstance(cfg, FewShotConfig) and cell.episodes_file is not None):
            raise RuntimeError("internal inconsistency (please report)")
        eps = EpisodeSet.load(cell.episodes_file)
        todo = _remaining(cell, eps)
        load_s, book_s = self.bookkeeping(cell.episodes_file)
        support = float(np.mean([e.support_indices.size for e in eps]))
        query = float(np.mean([e.query_indices.size for e in eps]))
        detail: dict[str, Any] = {"episodes": todo, "support": support, "query": query}
        detail.update(load_s=load_s, bookkeeping_per_episode_s=book_s)
        if cfg.method == "meta-baseline":
            images = self._trained_count(eps, todo) if todo else 0
            stage = self._stage(cell, cfg, cal)
            detail.update(embed_images=images, per_episode_s=book_s, stage_s=stage)
            return load_s + stage + images * _fwd(cal) + todo * book_s, detail
        if cfg.method in FROZEN_METHODS:
            images = self._embed_count(cell, eps) if todo else 0
            head = cfg.probe_steps * cal["probe"]["s_per_step"] if "probe" in cal else 0.0
            detail.update(embed_images=images, per_episode_s=head + book_s)
            return load_s + images * _fwd(cal) + todo * (head + book_s), detail
        steps = cfg.eval_inner_steps if cfg.method == "mm-maml" else cfg.finetune_steps
        per_episode = steps * _train(cal, support) + query * _fwd(cal) + book_s
        stage = self._stage(cell, cfg, cal)
        detail.update(per_episode_s=per_episode, stage_s=stage)
        return load_s + stage + todo * per_episode, detail

    def _stage(self, cell: Cell, cfg: FewShotConfig, cal: dict[str, Any]) -> float:
        from medimeta.train.checkpoint import load_checkpoint

        if cfg.method not in SOURCE_METHODS:
            return 0.0
        path = cell.folder / f"{cfg.method.replace('-', '_')}_backbone.safetensors"
        if not (cell.episodes_file is not None):
            raise RuntimeError("internal inconsistency (please report)")
        if path.is_file():
            try:
                if load_checkpoint(path).get("run") == episode_run_hash(cfg, cell.episodes_file):
                    return 0.0
            except Exception:  # an unreadable file is retrained, as the runner does
                pass
        if cfg.method == "mm-pt":
            return cfg.pretrain_steps * _train(cal, cfg.pretrain_batch_size)
        ways = self._source_ways(cell)
        if cfg.method == "meta-baseline":
            pre = 0.0
            if not classifier_done(cell.folder, cfg, cell.sources):
                pre = cfg.pretrain_steps * _train(cal, cfg.pretrain_batch_size)
            n = ways * (cfg.meta_shots + cfg.meta_queries)
            return pre + cfg.meta_steps * cfg.meta_batch_size * _train(cal, n)
        ns, nq = cfg.meta_shots * ways, cfg.meta_queries * ways
        m = cal["maml"]
        scale = (cfg.inner_steps * _train(cal, ns) + _train(cal, nq)) / max(
            _train(cal, m["support"]) + _train(cal, m["query"]), 1e-9
        )
        return cfg.meta_steps * cfg.meta_batch_size * m["s_per_meta_step"] * scale

    def _source_ways(self, cell: Cell) -> float:
        ways = []
        for ref in cell.sources:
            ds, _, task = ref.partition(":")
            spec = DatasetFolder(locate_dataset(self.root, ds), check=False).task(task)
            ways.append(2 if spec.target.value == "BINARY_CLASSIFICATION" else len(spec.keys))
        return float(np.mean(ways)) if ways else 2.0

    def _trained_count(self, eps: EpisodeSet, todo: int) -> int:
        """Images meta-baseline embeds with its trained backbone."""
        if self.features is not None:
            return int(episode_rows(list(eps)).size)
        per_episode = np.mean([e.support_indices.size + e.query_indices.size for e in eps])
        return round(float(per_episode) * todo)

    def _embed_count(self, cell: Cell, eps: EpisodeSet) -> int:
        """Images the cell embeds: its episodes' images not cached nor embedded before it."""
        rows = episode_rows(list(eps))
        if self.features is None:
            return int(sum(e.support_indices.size + e.query_indices.size for e in eps))
        p = cell.protocol
        folder = locate_dataset(self.root, p["target"]["dataset_id"])
        norm = Normalizer(tuple(p["normalization"]["mean"]), tuple(p["normalization"]["std"]))
        b = p["backbone"]
        backbone, reader, _ = self.cal.setup(b["name"], b["pretrained"], p["image_size"], norm)
        key = self.features.key(
            folder=folder,
            split=p["episodes"]["split"],
            backbone=backbone,
            backbone_name=b["name"],
            reader=reader,
        )
        path = self.features.path(key)
        have = self._embedded.get(str(path))
        if have is None:
            have = self.features.cached_indices(path, key) if self.features.persist else rows[:0]
        missing = np.setdiff1d(rows, have)
        self._embedded[str(path)] = np.union1d(have, rows)
        return int(missing.size)


def _fwd(cal: dict[str, Any]) -> float:
    return float(cal["forward"]["s_per_image"])
