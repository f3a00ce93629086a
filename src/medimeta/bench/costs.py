"""Estimated time of every cell from the calibration (see :mod:`medimeta.bench.calibrate`).

A few-shot cell's estimate is its method's own cost model
(:meth:`~medimeta.train.fewshot.registry.FewShotMethod.estimate`), fed by :class:`CellCosts`:
with ``f`` the forward time per image and ``t(n) = a + b n`` a training step on ``n`` images
(both measured), the episodes still to run, their mean support and query sizes, the images
the embedding cache does not hold yet, whether the method's stage is done, and the mean ways
of its source tasks. A supervised cell: at most epochs x (batches x ``t(batch)`` + ``f`` x
validation) + ``f`` x (validation + test), an upper bound (early stopping usually ends
sooner).

Every cell adds the backbone's build time, the time to load and check its episode file and,
per episode, the time to score it and write its result file (both timed on the cell's own
episode file); finished episodes are not counted.
"""

from __future__ import annotations

import math
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medimeta.bench.calibrate import Calibrator, parts_of
from medimeta.bench.cells import Cell
from medimeta.data.pixels import Normalizer
from medimeta.episodes import EpisodeSet
from medimeta.evaluate.compute import episode_metrics
from medimeta.features.cache import FeatureCache
from medimeta.features.table import episode_rows
from medimeta.format.reader import DatasetFolder, locate_dataset
from medimeta.runs.files import read_json, write_json
from medimeta.runs.record import episode_file
from medimeta.train.config import TrainConfig
from medimeta.train.fewshot.config import FewShotConfig
from medimeta.train.fewshot.setup import episode_run_hash
from medimeta.train.fewshot.stage import stage_file, stage_finished

REPORT_S = 0.2  # merging the episode files into the run record and the query predictions


def _train(cal: dict[str, Any], n: float) -> float:
    return float(cal["train"]["a"] + cal["train"]["b"] * n)


def _remaining(cell: Cell, episodes: EpisodeSet) -> int:
    """Episodes of the cell without a finished episode file."""
    if not (isinstance(cell.config, FewShotConfig) and cell.episodes_file is not None):
        raise RuntimeError("internal inconsistency (please report)")
    run = episode_run_hash(cell.config, cell.episodes_file)
    done = 0
    for ep in episodes:
        path = episode_file(cell.folder, ep.index)
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
        self._embedded: dict[str, set[bytes]] = {}
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
        b = p["backbone"]
        return {
            part: self.cal.get(part, b["name"], b["pretrained"], p["image_size"], norm)
            for part in parts_of(cell.method)
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
        load_s, book_s = self.bookkeeping(cell.episodes_file)
        ctx = CellCosts(self, cell, cfg, cal, eps, book_s)
        seconds, detail = cfg.spec.estimate(ctx)
        head = {"episodes": ctx.episodes, "support": ctx.support, "query": ctx.query}
        head.update(load_s=load_s, bookkeeping_per_episode_s=book_s)
        return load_s + seconds, {**head, **detail}

    def source_ways(self, cell: Cell) -> float:
        """Mean number of columns of the cell's source tasks (binary: 2)."""
        ways = []
        for ref in cell.sources:
            ds, _, task = ref.partition(":")
            spec = DatasetFolder(locate_dataset(self.root, ds), check=False).task(task)
            ways.append(2 if spec.target.value == "BINARY_CLASSIFICATION" else len(spec.keys))
        return float(np.mean(ways)) if ways else 2.0

    def trained_count(self, eps: EpisodeSet, todo: int) -> int:
        """Images a method embeds with the backbone its stage trained."""
        if self.features is not None:
            return int(episode_rows(list(eps)).size)
        per_episode = np.mean([e.support_indices.size + e.query_indices.size for e in eps])
        return round(float(per_episode) * todo)

    def embed_count(self, cell: Cell, eps: EpisodeSet) -> int:
        """Images the cell embeds: its episodes' images not cached nor embedded before it."""
        rows = episode_rows(list(eps))
        if self.features is None:
            return int(sum(e.support_indices.size + e.query_indices.size for e in eps))
        p = cell.protocol
        folder = locate_dataset(self.root, p["target"]["dataset_id"])
        norm = Normalizer(tuple(p["normalization"]["mean"]), tuple(p["normalization"]["std"]))
        b = p["backbone"]
        backbone, reader, _ = self.cal.setup(b["name"], b["pretrained"], p["image_size"], norm)
        key = self.features.model_key(backbone=backbone, backbone_name=b["name"], reader=reader)
        where = str(self.features.model_dir(key))
        if where not in self._embedded:
            self._embedded[where] = set(self.features.stored(key))
        have = self._embedded[where]
        digests = self.features.digests(folder)
        need = {bytes(digests[r]) for r in rows}
        missing = need - have
        have |= need
        return len(missing)


def _fwd(cal: dict[str, Any]) -> float:
    return float(cal["forward"]["s_per_image"])


@dataclass
class CellCosts:
    """The :class:`~medimeta.train.fewshot.registry.CostContext` of one few-shot cell."""

    estimator: Estimator
    cell: Cell
    cfg: FewShotConfig
    cal: dict[str, Any]
    eps: EpisodeSet
    bookkeeping_s: float
    episodes: int = field(init=False)
    support: float = field(init=False)
    query: float = field(init=False)
    folder: Path = field(init=False)
    sources: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.episodes = _remaining(self.cell, self.eps)
        self.support = float(np.mean([e.support_indices.size for e in self.eps]))
        self.query = float(np.mean([e.query_indices.size for e in self.eps]))
        self.folder = self.cell.folder
        self.sources = self.cell.sources

    def part(self, name: str) -> dict[str, Any]:
        return dict(self.cal[name])

    def forward_s(self) -> float:
        return _fwd(self.cal)

    def train_s(self, n: float) -> float:
        return _train(self.cal, n)

    def images_to_embed(self) -> int:
        return self.estimator.embed_count(self.cell, self.eps)

    def trained_images(self) -> int:
        return self.estimator.trained_count(self.eps, self.episodes)

    def stage_done(self) -> bool:
        if self.cell.episodes_file is None:
            return False
        path = stage_file(self.cell.folder, self.cfg)
        return path.is_file() and stage_finished(
            path, episode_run_hash(self.cfg, self.cell.episodes_file)
        )

    def source_ways(self) -> float:
        return self.estimator.source_ways(self.cell)
